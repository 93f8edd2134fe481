// Shared by the hook files: the export attribute and calling the real function.
#pragma once

#include "../engine/ops.h"

#define OVERSUB_EXPORT extern "C" __attribute__((visibility("default")))

namespace oversub {

// Calls a real function, or reports CUDA_ERROR_NOT_SUPPORTED when the driver
// beneath lacks it (an optional entry of driver_api.def).
template <typename Fn, typename... Args>
inline CUresult forward_real(Fn* fn, Args... args) {
  return fn != nullptr ? fn(args...) : CUDA_ERROR_NOT_SUPPORTED;
}

// In a per-thread-default-stream (_ptsz/_ptds) call, stream 0 means the
// calling thread's default stream; record it as such.
inline CUstream per_thread(CUstream s) { return s == nullptr ? CU_STREAM_PER_THREAD : s; }

}  // namespace oversub

#define REAL(symbol, ...) ::oversub::forward_real(::oversub::real_driver().symbol, __VA_ARGS__)
#define REAL0(symbol) ::oversub::forward_real(::oversub::real_driver().symbol)
