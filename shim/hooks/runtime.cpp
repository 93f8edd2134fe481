// Exported runtime API wrappers (cudaMalloc, cudaFree and their stream-ordered
// forms). In passthrough mode they only forward: the runtime allocates through
// the driver, whose calls reach our driver wrappers via cuGetProcAddress, and
// that is where allocations are recorded. The residency engine (swap mode)
// serves them itself, so that freeing never synchronises the device.
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include "../engine/real.h"
#include "common.h"

namespace {

template <typename Fn>
Fn* real_runtime(const char* name) {
  return reinterpret_cast<Fn*>(oversub::next_symbol_after(reinterpret_cast<const void*>(&real_runtime<Fn>), name));
}

#define RUNTIME_FORWARD(symbol, ...)                                                     \
  static auto* const real = real_runtime<decltype(::symbol)>(#symbol);                   \
  oversub::ensure_started();                                                             \
  return real != nullptr ? real(__VA_ARGS__) : cudaErrorInsufficientDriver

}  // namespace

OVERSUB_EXPORT cudaError_t cudaMalloc(void** p, size_t n) { RUNTIME_FORWARD(cudaMalloc, p, n); }
OVERSUB_EXPORT cudaError_t cudaFree(void* p) { RUNTIME_FORWARD(cudaFree, p); }
OVERSUB_EXPORT cudaError_t cudaMallocAsync(void** p, size_t n, cudaStream_t s) { RUNTIME_FORWARD(cudaMallocAsync, p, n, s); }
OVERSUB_EXPORT cudaError_t cudaFreeAsync(void* p, cudaStream_t s) { RUNTIME_FORWARD(cudaFreeAsync, p, s); }
