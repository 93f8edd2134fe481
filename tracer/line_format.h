// Raw formatting of trace fields into a caller-provided byte buffer: what the
// writer's hot path uses instead of snprintf/fmt (no locale, no allocation).
// Every function writes at `out` and returns the new end; callers reserve the
// worst case up front (max_hex_bytes per number) so there are no bounds checks here.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace oversub::trace::line_format {

inline constexpr size_t max_hex_bytes = 16;  // a uint64_t in hex
// A field as written: separator + the widest number or enum word ("host_func" is 9).
inline constexpr size_t max_field_bytes = 1 + max_hex_bytes;

// Cost: ~16 simple ops; lowercase hex with no leading zeros, "0" for zero.
inline char* put_hex(char* out, uint64_t value)
{
  const int digits = value == 0 ? 1 : (64 - std::countl_zero(value) + 3) / 4;
  char* end = out + digits;
  for (char* p = end; p != out;) {
    *--p = "0123456789abcdef"[value & 0xf];
    value >>= 4;
  }
  return end;
}

inline char* put_char(char* out, char c)
{
  *out = c;
  return out + 1;
}

inline char* put_field(char* out, uint64_t value) { return put_hex(put_char(out, ' '), value); }

inline char* put_word(char* out, std::string_view word)
{
  *out++ = ' ';
  std::memcpy(out, word.data(), word.size());
  return out + word.size();
}

// Name text is the rest of its line, so the only bytes that need escaping are the
// line terminators and the escape character itself. Cold path (interning only).
inline void append_escaped(std::string& out, std::string_view text)
{
  for (char c : text) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += c;
    }
  }
}

inline void append_hex(std::string& out, uint64_t value)
{
  char digits[max_hex_bytes];
  out.append(digits, static_cast<size_t>(put_hex(digits, value) - digits));
}

}  // namespace oversub::trace::line_format
