// driver_api.h — every driver entry point the simulated cuBLAS uses, declared once.
//
// Note [How cuBLAS reaches the driver]
// The real libcublas carries a static copy of the CUDA runtime, so it never links libcuda and
// never calls the application's libcudart: it dlopen()s libcuda.so.1, dlsym()s the single symbol
// cuGetProcAddress_v2 and asks it for every other entry point by base name ("cuLaunchKernel",
// "cuMemcpy2D") and the CUDA version it was built for. An interposer therefore sees cuBLAS's work
// only through cuGetProcAddress; this library behaves the same way so the oversub shim is
// exercised as a real job exercises it (DESIGN.md "The simulated GPU").
#pragma once

#include <cuda.h>

namespace simcublas {

// X(name): `#name` is the base name we ask cuGetProcAddress for; `name` itself expands through
// cuda.h's versioning macros (cuMemAlloc -> cuMemAlloc_v2), so each field has the type of the
// variant the driver hands out for version 13000. All are required: cuBLAS cannot work without
// any of them, and the simulated driver provides every one.
#define SIMCUBLAS_DRIVER_FUNCTIONS(X) \
  X(cuInit)                           \
  X(cuDeviceGet)                      \
  X(cuDevicePrimaryCtxRetain)         \
  X(cuCtxGetCurrent)                  \
  X(cuCtxSetCurrent)                  \
  X(cuModuleLoadData)                 \
  X(cuModuleGetFunction)              \
  X(cuLaunchKernel)                   \
  X(cuMemAlloc)                       \
  X(cuMemFree)                        \
  X(cuMemcpy2D)                       \
  X(cuMemcpy2DAsync)                  \
  X(cuMemcpyDtoHAsync)                \
  X(cuStreamSynchronize)

struct DriverApi {
#define SIMCUBLAS_DECLARE_FIELD(name) decltype(&::name) name = nullptr;
  SIMCUBLAS_DRIVER_FUNCTIONS(SIMCUBLAS_DECLARE_FIELD)
#undef SIMCUBLAS_DECLARE_FIELD
};

// The driver table, loaded once (thread-safe); nullptr when libcuda.so.1 cannot be opened or
// lacks an entry point. Cost after the first call: one acquire load.
const DriverApi* driver();

// Makes sure the calling thread has a current context: when it has none, retains the primary
// context of device 0 and makes it current, as the runtime inside the real cuBLAS does.
// `out` receives the (now) current context. CUDA_SUCCESS or the driver's error.
CUresult bind_context(const DriverApi& api, CUcontext* out);

}  // namespace simcublas
