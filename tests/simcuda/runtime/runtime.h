// runtime.h — what the simulated libcudart's files share: the export macro, lazy init, the
// driver table, error conversion and the thread's last error.
//
// Note [Runtime init]
// Nothing touches the driver until the first API call (static constructors only record nvcc's
// __cudaRegister* calls into tables), exactly like the real runtime: eager init in a static
// constructor deadlocks or fails in programs that fork or dlopen us. The first call that needs
// the device runs process init once (std::call_once): dlopen libcuda.so.1, resolve the table,
// cuInit(0), count devices. Each thread then binds the primary context of its current device
// (cudaSetDevice, default 0) before its first driver call, as the runtime does since CUDA 4.
#pragma once

#include <cuda.h>
#include <cuda_runtime_api.h>

#include <utility>

#include "driver_table.h"

// Everything the real libcudart.so.13 exports is marked with this; the rest stays hidden (the
// library is built with -fvisibility=hidden and libcudart.map gives each export its version node).
#define SIMCUDART_EXPORT extern "C" __attribute__((visibility("default")))

namespace simcudart {

// Which default stream stream 0 means: the legacy one (plain exports) or the calling thread's
// own (the _ptsz/_ptds exports, used by code built with --default-stream per-thread).
enum class StreamMode { legacy, per_thread };

struct Entered {
  cudaError_t error;     // cudaSuccess, or why the runtime cannot reach a device
  const DriverApi* api;  // valid only when error == cudaSuccess
};

// Init the process (once) and bind this thread to its device's primary context (once per
// thread and device). Cost after the first call: one acquire load and one TLS compare.
Entered enter(StreamMode mode = StreamMode::legacy);

// Init the process (once) without binding a context: for calls that only query the driver.
Entered enter_driver();

// The raw cuGetProcAddress_v2 of the loaded driver (nullptr before init or without a driver).
decltype(&::cuGetProcAddress_v2) driver_get_proc_address();

// The loaded driver's cuDriverGetVersion, or 0 when no usable driver was found.
int loaded_driver_version();

int device_count();              // after a successful enter_driver()
int current_device();            // this thread's device, as cudaSetDevice left it
cudaError_t set_current_device(int device);

// CUresult -> cudaError_t, as the real runtime reports driver failures.
cudaError_t to_cuda_error(CUresult result);

// Stores `error` as this thread's last error (unless it is a success or "not ready") and
// returns it: every exported API function returns through this.
cudaError_t record(cudaError_t error);

// Calls an optional driver entry point: cudaErrorNotSupported when the driver lacks it.
template <typename Fn, typename... Args>
cudaError_t call(Fn* fn, Args&&... args) {
  if (fn == nullptr) return cudaErrorNotSupported;
  return to_cuda_error(fn(std::forward<Args>(args)...));
}

inline CUdeviceptr device_ptr(const void* p) { return reinterpret_cast<CUdeviceptr>(p); }

}  // namespace simcudart
