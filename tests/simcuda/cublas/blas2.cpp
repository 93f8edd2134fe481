// Sgemv (_v2) and the BLAS-like extension Sgeam: argument checks, then one kernel launch.
#include <algorithm>

#include "handle.h"

using namespace simcublas;

SIMCUBLAS_EXPORT cublasStatus_t cublasSgemv_v2(cublasHandle_t handle, cublasOperation_t trans, int m, int n,
                                               const float* alpha, const float* A, int lda, const float* x, int incx,
                                               const float* beta, float* y, int incy) {
  const DriverApi* api = nullptr;
  if (cublasStatus_t s = enter(handle, &api); s != CUBLAS_STATUS_SUCCESS) return s;
  if (!valid_op(trans) || m < 0 || n < 0 || lda < std::max(1, m) || incx == 0 || incy == 0)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;  // BLAS quick return
  GemvParams p{};
  p.a = A;
  p.x = x;
  p.y = y;
  p.trans = trans;
  p.m = m;
  p.n = n;
  p.lda = lda;
  p.incx = incx;
  p.incy = incy;
  if (cublasStatus_t s = take_scalar(handle, alpha, &p.alpha, &p.alpha_ptr); s != CUBLAS_STATUS_SUCCESS) return s;
  if (cublasStatus_t s = take_scalar(handle, beta, &p.beta, &p.beta_ptr); s != CUBLAS_STATUS_SUCCESS) return s;
  return launch(*api, handle, Kernel::sgemv, p);
}

// C = alpha * op(A) + beta * op(B). In-place use (C == A or C == B) needs that operand
// untransposed with the same leading dimension as C, as cuBLAS documents.
SIMCUBLAS_EXPORT cublasStatus_t cublasSgeam(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                            int m, int n, const float* alpha, const float* A, int lda,
                                            const float* beta, const float* B, int ldb, float* C, int ldc) {
  const DriverApi* api = nullptr;
  if (cublasStatus_t s = enter(handle, &api); s != CUBLAS_STATUS_SUCCESS) return s;
  if (!valid_op(transa) || !valid_op(transb) || m < 0 || n < 0) return CUBLAS_STATUS_INVALID_VALUE;
  const int a_rows = transa == CUBLAS_OP_N ? m : n, b_rows = transb == CUBLAS_OP_N ? m : n;
  if (lda < std::max(1, a_rows) || ldb < std::max(1, b_rows) || ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if ((C == A && (transa != CUBLAS_OP_N || lda != ldc)) || (C == B && (transb != CUBLAS_OP_N || ldb != ldc)))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  GeamParams p{};
  p.a = A;
  p.b = B;
  p.c = C;
  p.transa = transa;
  p.transb = transb;
  p.m = m;
  p.n = n;
  p.lda = lda;
  p.ldb = ldb;
  p.ldc = ldc;
  if (cublasStatus_t s = take_scalar(handle, alpha, &p.alpha, &p.alpha_ptr); s != CUBLAS_STATUS_SUCCESS) return s;
  if (cublasStatus_t s = take_scalar(handle, beta, &p.beta, &p.beta_ptr); s != CUBLAS_STATUS_SUCCESS) return s;
  return launch(*api, handle, Kernel::sgeam, p);
}
