// handle.h — what the simulated cuBLAS's API files share: the handle, the export macro, entry
// checks and the one way work reaches the device (a cuLaunchKernel on the handle's stream).
#pragma once

#include <cublas_api.h>
#include <cuda.h>

#include <cstddef>

#include "driver_api.h"
#include "kernels.h"

// Every real libcublas.so.13 export is marked with this; the rest stays hidden (the library is
// built with hidden visibility and libcublas.map gives each export its version node).
#define SIMCUBLAS_EXPORT extern "C" __attribute__((visibility("default")))

// cublas_api.h declares `struct cublasContext` and cublasHandle_t as a pointer to it.
struct cublasContext {
  CUcontext context = nullptr;  // current on the thread that created the handle
  CUstream stream = nullptr;    // cublasSetStream; 0 = the legacy default stream
  cublasPointerMode_t pointer_mode = CUBLAS_POINTER_MODE_HOST;
  cublasMath_t math_mode = CUBLAS_DEFAULT_MATH;
  void* workspace = nullptr;  // cublasSetWorkspace: accepted, unused (our GEMMs need none)
  std::size_t workspace_bytes = 0;
  CUdeviceptr scratch = 0;  // device cell for host-pointer-mode results (dot, nrm2)
};

namespace simcublas {

// Entry check of every handle-taking call: NOT_INITIALIZED for a null handle; otherwise makes the
// handle's context current on this thread if the thread has none. Cost: one cuCtxGetCurrent.
cublasStatus_t enter(cublasHandle_t handle, const DriverApi** api);

// Entry check of the handle-less calls (Set/GetVector, Set/GetMatrix).
cublasStatus_t enter_without_handle(const DriverApi** api);

// The loaded module's function for `kernel` (valid once any handle exists).
CUfunction function(Kernel kernel);

// Queues `kernel` with parameter block `params` on the handle's stream: one cuLaunchKernel with a
// 1x1x1 grid, whose packed parameters are the whole description of the work.
template <typename P>
cublasStatus_t launch(const DriverApi& api, cublasHandle_t handle, Kernel kernel, P& params) {
  auto addresses = ParamTraits<P>::addresses(params);
  const CUresult r =
      api.cuLaunchKernel(function(kernel), 1, 1, 1, 1, 1, 1, 0, handle->stream, addresses.data(), nullptr);
  return r == CUDA_SUCCESS ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

// Splits a caller's alpha/beta by pointer mode (Note [Scalars and pointer mode] in kernels.h):
// host mode reads the value now; device mode keeps the pointer for the kernel.
template <typename T>
cublasStatus_t take_scalar(cublasHandle_t handle, const T* scalar, T* value, const T** device) {
  if (scalar == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  if (handle->pointer_mode == CUBLAS_POINTER_MODE_HOST) {
    *value = *scalar;
    *device = nullptr;
  } else {
    *value = T{};
    *device = scalar;
  }
  return CUBLAS_STATUS_SUCCESS;
}

// Real types accept N, T and C (C means T); anything else is INVALID_VALUE.
inline bool valid_op(cublasOperation_t op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C; }

}  // namespace simcublas
