// half.h — bit-exact fp16 / bf16 <-> fp32 conversions for the simulated GemmEx.
// Widening is exact; narrowing rounds to nearest, ties to even, as the GPU's __float2half_rn and
// __float2bfloat16_rn do, so results do not depend on the compiler's _Float16 support.
#pragma once

#include <bit>
#include <cstdint>

namespace simcublas {

inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu;
  const std::uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));  // inf/NaN
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return std::bit_cast<float>(sign | std::bit_cast<std::uint32_t>(magnitude));
  }
  return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

inline std::uint16_t float_to_half(float value) {
  std::uint32_t x = std::bit_cast<std::uint32_t>(value);
  const std::uint32_t sign = x & 0x80000000u;
  x ^= sign;
  std::uint32_t out;
  if (x >= (127u + 16u) << 23) {                    // >= 2^16 (finite overflow), inf or NaN
    out = x > 0x7f800000u ? 0x7e00u : 0x7c00u;    // quiet NaN / inf
  } else if (x < 113u << 23) {                      // below 2^-14: half subnormal or zero
    // Adding 0.5 makes the float adder round the 10-bit half mantissa for us (ties to even).
    const std::uint32_t magic_bits = (127u - 15u + 23u - 10u + 1u) << 23;
    const float sum = std::bit_cast<float>(x) + std::bit_cast<float>(magic_bits);
    out = std::bit_cast<std::uint32_t>(sum) - magic_bits;
  } else {                                          // normal: rebias, round the 13 dropped bits
    const std::uint32_t odd = (x >> 13) & 1u;
    x += (static_cast<std::uint32_t>(15 - 127) << 23) + 0xfffu + odd;
    out = x >> 13;                                  // a carry into exponent 31 gives inf: correct
  }
  return static_cast<std::uint16_t>(out | (sign >> 16));
}

inline float bfloat16_to_float(std::uint16_t b) { return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16); }

inline std::uint16_t float_to_bfloat16(float value) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(value);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  const std::uint32_t rounded = x + 0x7fffu + ((x >> 16) & 1u);
  return static_cast<std::uint16_t>(rounded >> 16);
}

}  // namespace simcublas
