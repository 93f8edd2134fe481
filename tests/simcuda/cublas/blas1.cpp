// Level-1 API: Saxpy, Sscal, Sdot, Snrm2 (the _v2 names the real library exports). Each call
// checks its arguments, fills a parameter block and queues one kernel; none touches device
// memory on the calling thread.
#include "handle.h"

using namespace simcublas;

namespace {

// Results of dot/nrm2: in device pointer mode the kernel writes the caller's device pointer; in
// host mode it writes the handle's scratch cell, which is copied back on the handle's stream and
// waited for, since the real host-mode reductions return only once the value has arrived.
float* result_target(cublasHandle_t handle, float* result) {
  return handle->pointer_mode == CUBLAS_POINTER_MODE_DEVICE ? result : reinterpret_cast<float*>(handle->scratch);
}

cublasStatus_t deliver_result(const DriverApi& api, cublasHandle_t handle, float* result) {
  if (handle->pointer_mode == CUBLAS_POINTER_MODE_DEVICE) return CUBLAS_STATUS_SUCCESS;
  if (api.cuMemcpyDtoHAsync(result, handle->scratch, sizeof(float), handle->stream) != CUDA_SUCCESS ||
      api.cuStreamSynchronize(handle->stream) != CUDA_SUCCESS)
    return CUBLAS_STATUS_EXECUTION_FAILED;
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

SIMCUBLAS_EXPORT cublasStatus_t cublasSaxpy_v2(cublasHandle_t handle, int n, const float* alpha, const float* x,
                                               int incx, float* y, int incy) {
  const DriverApi* api = nullptr;
  if (cublasStatus_t s = enter(handle, &api); s != CUBLAS_STATUS_SUCCESS) return s;
  if (n <= 0) return CUBLAS_STATUS_SUCCESS;  // BLAS quick return
  AxpyParams p{x, y, nullptr, 0.0f, n, incx, incy};
  if (cublasStatus_t s = take_scalar(handle, alpha, &p.alpha, &p.alpha_ptr); s != CUBLAS_STATUS_SUCCESS) return s;
  return launch(*api, handle, Kernel::saxpy, p);
}

SIMCUBLAS_EXPORT cublasStatus_t cublasSscal_v2(cublasHandle_t handle, int n, const float* alpha, float* x, int incx) {
  const DriverApi* api = nullptr;
  if (cublasStatus_t s = enter(handle, &api); s != CUBLAS_STATUS_SUCCESS) return s;
  if (n <= 0 || incx <= 0) return CUBLAS_STATUS_SUCCESS;  // BLAS quick return
  ScalParams p{x, nullptr, 0.0f, n, incx};
  if (cublasStatus_t s = take_scalar(handle, alpha, &p.alpha, &p.alpha_ptr); s != CUBLAS_STATUS_SUCCESS) return s;
  return launch(*api, handle, Kernel::sscal, p);
}

// n <= 0 still launches: the result (0) must land where the caller asked, possibly on the device.
SIMCUBLAS_EXPORT cublasStatus_t cublasSdot_v2(cublasHandle_t handle, int n, const float* x, int incx, const float* y,
                                              int incy, float* result) {
  const DriverApi* api = nullptr;
  if (cublasStatus_t s = enter(handle, &api); s != CUBLAS_STATUS_SUCCESS) return s;
  if (result == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  DotParams p{x, y, result_target(handle, result), n, incx, incy};
  if (cublasStatus_t s = launch(*api, handle, Kernel::sdot, p); s != CUBLAS_STATUS_SUCCESS) return s;
  return deliver_result(*api, handle, result);
}

SIMCUBLAS_EXPORT cublasStatus_t cublasSnrm2_v2(cublasHandle_t handle, int n, const float* x, int incx, float* result) {
  const DriverApi* api = nullptr;
  if (cublasStatus_t s = enter(handle, &api); s != CUBLAS_STATUS_SUCCESS) return s;
  if (result == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  Nrm2Params p{x, result_target(handle, result), n, incx};
  if (cublasStatus_t s = launch(*api, handle, Kernel::snrm2, p); s != CUBLAS_STATUS_SUCCESS) return s;
  return deliver_result(*api, handle, result);
}
