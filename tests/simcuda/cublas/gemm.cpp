// GEMM API: Sgemm/Dgemm (_v2), SgemmStridedBatched, SgemmBatched, GemmEx, GemmStridedBatchedEx.
// Every variant is one strided-batched kernel launch (a plain GEMM is batch 1, strides 0).
#include <algorithm>

#include "handle.h"

using namespace simcublas;

namespace {

// The reference BLAS / cuBLAS argument checks: INVALID_VALUE for an unknown operation, a negative
// size or batch, or a leading dimension smaller than max(1, rows of the stored matrix).
cublasStatus_t check_gemm(cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k, int lda, int ldb,
                          int ldc, int batch) {
  if (!valid_op(transa) || !valid_op(transb)) return CUBLAS_STATUS_INVALID_VALUE;
  if (m < 0 || n < 0 || k < 0 || batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
  const int a_rows = transa == CUBLAS_OP_N ? m : k;
  const int b_rows = transb == CUBLAS_OP_N ? k : n;
  if (lda < std::max(1, a_rows) || ldb < std::max(1, b_rows) || ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  return CUBLAS_STATUS_SUCCESS;
}

// Fills the fields every GEMM block shares (SIMCUBLAS_GEMM_TAIL in kernels.h).
template <typename P>
void set_shape(P& p, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k, int lda, int ldb,
               int ldc, int batch) {
  p.transa = transa;
  p.transb = transb;
  p.m = m;
  p.n = n;
  p.k = k;
  p.lda = lda;
  p.ldb = ldb;
  p.ldc = ldc;
  p.batch = batch;
}

template <typename T, typename P>
cublasStatus_t typed_gemm(cublasHandle_t handle, Kernel kernel, cublasOperation_t transa, cublasOperation_t transb,
                          int m, int n, int k, const T* alpha, const T* a, int lda, long long stride_a, const T* b,
                          int ldb, long long stride_b, const T* beta, T* c, int ldc, long long stride_c, int batch) {
  const DriverApi* api = nullptr;
  if (cublasStatus_t s = enter(handle, &api); s != CUBLAS_STATUS_SUCCESS) return s;
  if (cublasStatus_t s = check_gemm(transa, transb, m, n, k, lda, ldb, ldc, batch); s != CUBLAS_STATUS_SUCCESS)
    return s;
  if (m == 0 || n == 0 || batch == 0) return CUBLAS_STATUS_SUCCESS;  // nothing to write
  P p{};
  p.a = a;
  p.b = b;
  p.c = c;
  p.stride_a = stride_a;
  p.stride_b = stride_b;
  p.stride_c = stride_c;
  set_shape(p, transa, transb, m, n, k, lda, ldb, ldc, batch);
  if (cublasStatus_t s = take_scalar(handle, alpha, &p.alpha, &p.alpha_ptr); s != CUBLAS_STATUS_SUCCESS) return s;
  if (cublasStatus_t s = take_scalar(handle, beta, &p.beta, &p.beta_ptr); s != CUBLAS_STATUS_SUCCESS) return s;
  return launch(*api, handle, kernel, p);
}

bool is_fp32_compute(cublasComputeType_t t) {
  return t == CUBLAS_COMPUTE_32F || t == CUBLAS_COMPUTE_32F_PEDANTIC || t == CUBLAS_COMPUTE_32F_FAST_16F ||
         t == CUBLAS_COMPUTE_32F_FAST_16BF || t == CUBLAS_COMPUTE_32F_FAST_TF32 ||
         t == CUBLAS_COMPUTE_32F_EMULATED_16BFX9;
}
bool is_fp64_compute(cublasComputeType_t t) {
  return t == CUBLAS_COMPUTE_64F || t == CUBLAS_COMPUTE_64F_PEDANTIC || t == CUBLAS_COMPUTE_64F_EMULATED_FIXEDPOINT;
}

// The cuBLAS GemmEx type table, fp32-compute rows we simulate: A and B alike, C like them or fp32.
// Every fast/TF32 compute type runs in full fp32 here (allowed: they permit less precision).
bool supported_fp32_types(cudaDataType a, cudaDataType b, cudaDataType c) {
  if (a != b || (a != CUDA_R_32F && a != CUDA_R_16F && a != CUDA_R_16BF)) return false;
  return c == a || c == CUDA_R_32F;
}

cublasStatus_t gemm_ex(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
                       const void* alpha, const void* a, cudaDataType a_type, int lda, long long stride_a,
                       const void* b, cudaDataType b_type, int ldb, long long stride_b, const void* beta, void* c,
                       cudaDataType c_type, int ldc, long long stride_c, int batch, cublasComputeType_t compute) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (is_fp64_compute(compute)) {
    if (a_type != CUDA_R_64F || b_type != CUDA_R_64F || c_type != CUDA_R_64F) return CUBLAS_STATUS_NOT_SUPPORTED;
    return typed_gemm<double, DgemmParams>(
        handle, Kernel::dgemm, transa, transb, m, n, k, static_cast<const double*>(alpha),
        static_cast<const double*>(a), lda, stride_a, static_cast<const double*>(b), ldb, stride_b,
        static_cast<const double*>(beta), static_cast<double*>(c), ldc, stride_c, batch);
  }
  if (!is_fp32_compute(compute) || !supported_fp32_types(a_type, b_type, c_type)) return CUBLAS_STATUS_NOT_SUPPORTED;
  const DriverApi* api = nullptr;
  if (cublasStatus_t s = enter(handle, &api); s != CUBLAS_STATUS_SUCCESS) return s;
  if (cublasStatus_t s = check_gemm(transa, transb, m, n, k, lda, ldb, ldc, batch); s != CUBLAS_STATUS_SUCCESS)
    return s;
  if (m == 0 || n == 0 || batch == 0) return CUBLAS_STATUS_SUCCESS;
  GemmExParams p{};
  p.a = a;
  p.b = b;
  p.c = c;
  p.stride_a = stride_a;
  p.stride_b = stride_b;
  p.stride_c = stride_c;
  p.a_type = a_type;
  p.b_type = b_type;
  p.c_type = c_type;
  set_shape(p, transa, transb, m, n, k, lda, ldb, ldc, batch);
  // fp32 compute: alpha and beta are floats (cuBLAS's "scale type" for these rows).
  const auto* alpha_f = static_cast<const float*>(alpha);
  const auto* beta_f = static_cast<const float*>(beta);
  if (cublasStatus_t s = take_scalar(handle, alpha_f, &p.alpha, &p.alpha_ptr); s != CUBLAS_STATUS_SUCCESS) return s;
  if (cublasStatus_t s = take_scalar(handle, beta_f, &p.beta, &p.beta_ptr); s != CUBLAS_STATUS_SUCCESS) return s;
  return launch(*api, handle, Kernel::gemm_ex, p);
}

}  // namespace

SIMCUBLAS_EXPORT cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa,
                                               cublasOperation_t transb, int m, int n, int k, const float* alpha,
                                               const float* A, int lda, const float* B, int ldb, const float* beta,
                                               float* C, int ldc) {
  return typed_gemm<float, SgemmParams>(handle, Kernel::sgemm, transa, transb, m, n, k, alpha, A, lda, 0, B, ldb, 0,
                                        beta, C, ldc, 0, 1);
}

SIMCUBLAS_EXPORT cublasStatus_t cublasDgemm_v2(cublasHandle_t handle, cublasOperation_t transa,
                                               cublasOperation_t transb, int m, int n, int k, const double* alpha,
                                               const double* A, int lda, const double* B, int ldb,
                                               const double* beta, double* C, int ldc) {
  return typed_gemm<double, DgemmParams>(handle, Kernel::dgemm, transa, transb, m, n, k, alpha, A, lda, 0, B, ldb, 0,
                                         beta, C, ldc, 0, 1);
}

SIMCUBLAS_EXPORT cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
                                                          cublasOperation_t transb, int m, int n, int k,
                                                          const float* alpha, const float* A, int lda,
                                                          long long strideA, const float* B, int ldb,
                                                          long long strideB, const float* beta, float* C, int ldc,
                                                          long long strideC, int batchCount) {
  return typed_gemm<float, SgemmParams>(handle, Kernel::sgemm, transa, transb, m, n, k, alpha, A, lda, strideA, B, ldb,
                                        strideB, beta, C, ldc, strideC, batchCount);
}

// The arrays of matrix pointers are device memory: only their addresses go in the block.
SIMCUBLAS_EXPORT cublasStatus_t cublasSgemmBatched(cublasHandle_t handle, cublasOperation_t transa,
                                                   cublasOperation_t transb, int m, int n, int k, const float* alpha,
                                                   const float* const Aarray[], int lda, const float* const Barray[],
                                                   int ldb, const float* beta, float* const Carray[], int ldc,
                                                   int batchCount) {
  const DriverApi* api = nullptr;
  if (cublasStatus_t s = enter(handle, &api); s != CUBLAS_STATUS_SUCCESS) return s;
  if (cublasStatus_t s = check_gemm(transa, transb, m, n, k, lda, ldb, ldc, batchCount); s != CUBLAS_STATUS_SUCCESS)
    return s;
  if (m == 0 || n == 0 || batchCount == 0) return CUBLAS_STATUS_SUCCESS;
  SgemmBatchedParams p{};
  p.a_array = Aarray;
  p.b_array = Barray;
  p.c_array = Carray;
  set_shape(p, transa, transb, m, n, k, lda, ldb, ldc, batchCount);
  if (cublasStatus_t s = take_scalar(handle, alpha, &p.alpha, &p.alpha_ptr); s != CUBLAS_STATUS_SUCCESS) return s;
  if (cublasStatus_t s = take_scalar(handle, beta, &p.beta, &p.beta_ptr); s != CUBLAS_STATUS_SUCCESS) return s;
  return launch(*api, handle, Kernel::sgemm_batched, p);
}

SIMCUBLAS_EXPORT cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                             int m, int n, int k, const void* alpha, const void* A, cudaDataType Atype,
                                             int lda, const void* B, cudaDataType Btype, int ldb, const void* beta,
                                             void* C, cudaDataType Ctype, int ldc, cublasComputeType_t computeType,
                                             cublasGemmAlgo_t /*algo: every algorithm gives our one result*/) {
  return gemm_ex(handle, transa, transb, m, n, k, alpha, A, Atype, lda, 0, B, Btype, ldb, 0, beta, C, Ctype, ldc, 0, 1,
                 computeType);
}

SIMCUBLAS_EXPORT cublasStatus_t cublasGemmStridedBatchedEx(
    cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k, const void* alpha,
    const void* A, cudaDataType Atype, int lda, long long strideA, const void* B, cudaDataType Btype, int ldb,
    long long strideB, const void* beta, void* C, cudaDataType Ctype, int ldc, long long strideC, int batchCount,
    cublasComputeType_t computeType, cublasGemmAlgo_t /*algo*/) {
  return gemm_ex(handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype, ldb, strideB, beta, C, Ctype,
                 ldc, strideC, batchCount, computeType);
}
