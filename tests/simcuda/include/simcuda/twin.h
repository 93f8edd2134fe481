// simcuda/twin.h — give an nvcc-compiled __global__ kernel a CPU twin.
//
//   __global__ void scale(float* x, float a, int n) { ... }
//   static void scale_cpu(const simcuda::Grid& g, float* x, float a, int n) {
//     for (auto i : g.threads()) if (i < n) x[i] *= a;   // or loop however you like
//   }
//   SIMCUDA_TWIN(scale, scale_cpu);
//
// On the simulated GPU the twin runs (on the stream's worker thread) whenever
// the kernel is launched. On a real GPU the registration finds no simulated
// runtime and does nothing, so the same source trains on real hardware.
//
// The parameter layout reported to the driver (and hence to cuFuncGetParamInfo)
// is the kernel's real one: each parameter at the next offset aligned to its
// alignment, which is how nvcc lays out the kernel parameter block.
#pragma once

#include <dlfcn.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>

#include "simcuda/image.h"

namespace simcuda {

// The launch geometry, as the twin sees it.
struct Grid {
  const simcuda_launch* launch;
  std::uint64_t blocks() const {
    return std::uint64_t(launch->grid[0]) * launch->grid[1] * launch->grid[2];
  }
  std::uint64_t threads_per_block() const {
    return std::uint64_t(launch->block[0]) * launch->block[1] * launch->block[2];
  }
  // Total threads in the launch: a 1-D kernel's `blockIdx.x*blockDim.x+threadIdx.x`
  // ranges over [0, total_threads()).
  std::uint64_t total_threads() const { return blocks() * threads_per_block(); }
};

namespace detail {

template <typename... Args>
struct Layout {
  static constexpr std::size_t count = sizeof...(Args);
  static constexpr std::size_t align_up(std::size_t v, std::size_t a) { return (v + a - 1) / a * a; }
  static constexpr auto compute() {
    struct Table { simcuda_param p[count == 0 ? 1 : count]; };
    Table t{};
    std::size_t offset = 0, i = 0;
    ((offset = align_up(offset, alignof(Args)),
      t.p[i++] = simcuda_param{static_cast<std::uint32_t>(offset), static_cast<std::uint32_t>(sizeof(Args))},
      offset += sizeof(Args)), ...);
    return t;
  }
  static constexpr auto table = compute();
};

template <typename Arg>
Arg read_param(const unsigned char* params, const simcuda_param& p) {
  Arg value;
  std::memcpy(&value, params + p.offset_bytes, sizeof(Arg));
  return value;
}

template <auto Twin, typename... Args, std::size_t... I>
void invoke(const simcuda_launch* launch, const unsigned char* params, std::index_sequence<I...>) {
  Twin(Grid{launch}, read_param<Args>(params, Layout<Args...>::table.p[I])...);
}

template <auto Twin, typename... Args>
void body(const simcuda_launch* launch, const unsigned char* params) {
  invoke<Twin, Args...>(launch, params, std::index_sequence_for<Args...>{});
}

template <auto Twin, typename... Args>
const simcuda_kernel_desc* describe(void (*)(Args...), const char* name) {
  static const simcuda_kernel_desc desc{name, &body<Twin, std::decay_t<Args>...>,
                                        static_cast<std::uint32_t>(sizeof...(Args)),
                                        Layout<std::decay_t<Args>...>::table.p};
  return &desc;
}

inline bool register_twin(const void* host_fun, const simcuda_kernel_desc* desc) {
  auto* fn = reinterpret_cast<simcuda_register_twin_fn>(dlsym(RTLD_DEFAULT, SIMCUDA_REGISTER_TWIN_SYMBOL));
  if (fn != nullptr) fn(host_fun, desc);
  return fn != nullptr;
}

}  // namespace detail
}  // namespace simcuda

#define SIMCUDA_TWIN_CAT2(a, b) a##b
#define SIMCUDA_TWIN_CAT(a, b) SIMCUDA_TWIN_CAT2(a, b)
// Registers `twin` as the CPU body of `kernel`. Use at namespace scope, once per kernel.
#define SIMCUDA_TWIN(kernel, twin)                                                          \
  [[maybe_unused]] static const bool SIMCUDA_TWIN_CAT(simcuda_twin_registered_, __LINE__) = \
      ::simcuda::detail::register_twin(                                                     \
          reinterpret_cast<const void*>(&kernel),                                           \
          ::simcuda::detail::describe<&twin>(&kernel, #kernel))
