// driver_table.h — every driver entry point the simulated runtime uses, declared once.
//
// Note [How the runtime reaches the driver]
// The real libcudart never links libcuda: it does dlopen("libcuda.so.1"), dlsym's one symbol,
// cuGetProcAddress_v2, and asks it for every other entry point by *base* name ("cuMemAlloc", not
// "cuMemAlloc_v2") together with the CUDA version it was built for (13000). The driver picks the
// versioned variant. cuBLAS, cuDNN and PyTorch's statically linked runtimes do the same, which is
// why the oversub shim must hook cuGetProcAddress; this runtime behaves identically so the shim is
// exercised the way a real job exercises it.
//
// Per-thread default stream: the real runtime's _ptsz/_ptds exports call the driver's _ptsz/_ptds
// variants, which it obtains by passing CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM. We resolve
// the same table twice (legacy and per-thread) and let each exported wrapper pick one.
#pragma once

#include <cuda.h>

namespace simcudart {

// X(name, need): `name` is the base name as cuda.h spells it. Inside the X-macro `#name` is
// the unexpanded base name (what we ask cuGetProcAddress for), while a plain `name` expands
// through cuda.h's versioning macros (cuMemAlloc -> cuMemAlloc_v2), so both the field type and
// every `api->cuMemAlloc(...)` call site consistently mean the _v2 function.
// need = required: init fails (cudaErrorInsufficientDriver) without it. optional: the API call
// that needs it returns cudaErrorNotSupported, so a partially written driver still runs the rest.
#define SIMCUDART_DRIVER_FUNCTIONS(X)           \
  X(cuInit, required)                           \
  X(cuDriverGetVersion, required)               \
  X(cuDeviceGet, required)                      \
  X(cuDeviceGetCount, required)                 \
  X(cuDevicePrimaryCtxRetain, required)         \
  X(cuCtxSetCurrent, required)                  \
  X(cuDeviceGetName, optional)                  \
  X(cuDeviceTotalMem, optional)                 \
  X(cuDeviceGetAttribute, optional)             \
  X(cuDeviceGetUuid, optional)                  \
  X(cuCtxSynchronize, optional)                 \
  X(cuCtxGetStreamPriorityRange, optional)      \
  X(cuMemGetInfo, optional)                     \
  X(cuMemAlloc, optional)                       \
  X(cuMemFree, optional)                        \
  X(cuMemHostAlloc, optional)                   \
  X(cuMemFreeHost, optional)                    \
  X(cuMemHostRegister, optional)                \
  X(cuMemHostUnregister, optional)              \
  X(cuMemHostGetDevicePointer, optional)        \
  X(cuMemHostGetFlags, optional)                \
  X(cuMemAllocAsync, optional)                  \
  X(cuMemFreeAsync, optional)                   \
  X(cuMemcpy, optional)                         \
  X(cuMemcpyHtoD, optional)                     \
  X(cuMemcpyDtoH, optional)                     \
  X(cuMemcpyDtoD, optional)                     \
  X(cuMemcpyAsync, optional)                    \
  X(cuMemcpyHtoDAsync, optional)                \
  X(cuMemcpyDtoHAsync, optional)                \
  X(cuMemcpyDtoDAsync, optional)                \
  X(cuMemcpy2D, optional)                       \
  X(cuMemcpy2DAsync, optional)                  \
  X(cuMemsetD8, optional)                       \
  X(cuMemsetD8Async, optional)                  \
  X(cuPointerGetAttribute, optional)            \
  X(cuStreamCreate, optional)                   \
  X(cuStreamCreateWithPriority, optional)       \
  X(cuStreamDestroy, optional)                  \
  X(cuStreamSynchronize, optional)              \
  X(cuStreamQuery, optional)                    \
  X(cuStreamWaitEvent, optional)                \
  X(cuStreamAddCallback, optional)              \
  X(cuStreamIsCapturing, optional)              \
  X(cuStreamGetFlags, optional)                 \
  X(cuStreamGetPriority, optional)              \
  X(cuLaunchHostFunc, optional)                 \
  X(cuEventCreate, optional)                    \
  X(cuEventRecord, optional)                    \
  X(cuEventRecordWithFlags, optional)           \
  X(cuEventQuery, optional)                     \
  X(cuEventSynchronize, optional)               \
  X(cuEventElapsedTime, optional)               \
  X(cuEventDestroy, optional)                   \
  X(cuModuleLoadData, optional)                 \
  X(cuModuleGetFunction, optional)              \
  X(cuFuncGetAttribute, optional)               \
  X(cuFuncSetAttribute, optional)               \
  X(cuLaunchKernel, optional)

// The driver's entry points, as cuGetProcAddress_v2 returned them (nullptr = not provided).
struct DriverApi {
#define SIMCUDART_DECLARE_FIELD(name, need) decltype(&::name) name = nullptr;
  SIMCUDART_DRIVER_FUNCTIONS(SIMCUDART_DECLARE_FIELD)
#undef SIMCUDART_DECLARE_FIELD
};

}  // namespace simcudart
