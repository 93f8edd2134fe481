// gpt/blas.h — row-major GEMM helpers over cuBLAS (which is column-major).
//
// Note [Row-major GEMM]
// A row-major matrix with row stride ld is, to cuBLAS, its transpose in column-major order
// with the same ld. So row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: call
// cuBLAS with the operands swapped, the same transpose flags and m/n swapped. Every helper
// below takes row-major shapes (C is M×N, the inner dimension is K) and row strides.
#pragma once

#include <cublas_v2.h>

#include <cstdio>
#include <cstdlib>

#define GPT_CUBLAS(expr)                                                                       \
  do {                                                                                         \
    cublasStatus_t gpt_status_ = (expr);                                                       \
    if (gpt_status_ != CUBLAS_STATUS_SUCCESS) {                                                \
      std::fprintf(stderr, "%s:%d: %s failed: status %d\n", __FILE__, __LINE__, #expr,         \
                   static_cast<int>(gpt_status_));                                             \
      std::exit(1);                                                                            \
    }                                                                                          \
  } while (0)

namespace gpt {

enum class Op { N, T };
inline cublasOperation_t to_cublas(Op op) { return op == Op::N ? CUBLAS_OP_N : CUBLAS_OP_T; }

// C[M×N] = alpha · op(A) · op(B) + beta · C.
inline void gemm(cublasHandle_t handle, Op op_a, Op op_b, int m, int n, int k, float alpha, const float* a, int lda,
                 const float* b, int ldb, float beta, float* c, int ldc) {
  GPT_CUBLAS(cublasSgemm(handle, to_cublas(op_b), to_cublas(op_a), n, m, k, &alpha, b, ldb, a, lda, &beta, c, ldc));
}

// The same for `batch` matrices at fixed strides (in elements).
inline void gemm_strided(cublasHandle_t handle, Op op_a, Op op_b, int m, int n, int k, float alpha, const float* a,
                         int lda, long long stride_a, const float* b, int ldb, long long stride_b, float beta, float* c,
                         int ldc, long long stride_c, int batch) {
  GPT_CUBLAS(cublasSgemmStridedBatched(handle, to_cublas(op_b), to_cublas(op_a), n, m, k, &alpha, b, ldb, stride_b, a,
                                       lda, stride_a, &beta, c, ldc, stride_c, batch));
}

// The same for `batch` matrices whose addresses sit in DEVICE arrays a_ptrs, b_ptrs, c_ptrs.
//
// Note [Pointers in device memory]
// cublasSgemmBatched reads its operand addresses from device memory when the kernel runs, so
// the launch's parameter block holds only the three array addresses: the buffers the GEMM
// really touches are invisible to a scan of the parameters (DESIGN.md, "Which buffers a
// kernel touches"). gpt_train builds these arrays per step (the activations they point into
// are fresh each step), with a stream-ordered copy, and frees them right after the call.
inline void gemm_batched(cublasHandle_t handle, Op op_a, Op op_b, int m, int n, int k, float alpha,
                         const float* const* a_ptrs, int lda, const float* const* b_ptrs, int ldb, float beta,
                         float* const* c_ptrs, int ldc, int batch) {
  GPT_CUBLAS(cublasSgemmBatched(handle, to_cublas(op_b), to_cublas(op_a), n, m, k, &alpha, b_ptrs, ldb, a_ptrs, lda,
                                &beta, c_ptrs, ldc, batch));
}

}  // namespace gpt
