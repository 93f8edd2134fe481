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
#include <vector>

#include "workload.h"

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

// Every helper records its call in the workload manifest (Note [Workload manifest]), with the
// ranges computed from the column-major arguments cuBLAS receives.

// C[M×N] = alpha · op(A) · op(B) + beta · C.
inline void gemm(cublasHandle_t handle, Op op_a, Op op_b, int m, int n, int k, float alpha, const float* a, int lda,
                 const float* b, int ldb, float beta, float* c, int ldc) {
  GPT_CUBLAS(cublasSgemm(handle, to_cublas(op_b), to_cublas(op_a), n, m, k, &alpha, b, ldb, a, lda, &beta, c, ldc));
  if (workload::manifest().enabled()) {
    std::vector<workload::Range> ranges;
    workload::add_gemm_ranges(ranges, op_b == Op::T, op_a == Op::T, n, m, k, b, ldb, a, lda, beta, c, ldc);
    workload::manifest().op("cublasSgemm_v2", ranges);
  }
}

// The same for `batch` matrices at fixed strides (in elements).
inline void gemm_strided(cublasHandle_t handle, Op op_a, Op op_b, int m, int n, int k, float alpha, const float* a,
                         int lda, long long stride_a, const float* b, int ldb, long long stride_b, float beta, float* c,
                         int ldc, long long stride_c, int batch) {
  GPT_CUBLAS(cublasSgemmStridedBatched(handle, to_cublas(op_b), to_cublas(op_a), n, m, k, &alpha, b, ldb, stride_b, a,
                                       lda, stride_a, &beta, c, ldc, stride_c, batch));
  if (workload::manifest().enabled()) {
    std::vector<workload::Range> ranges;  // one triple per matrix of the batch
    for (int i = 0; i < batch; ++i)
      workload::add_gemm_ranges(ranges, op_b == Op::T, op_a == Op::T, n, m, k, b + i * stride_b, ldb, a + i * stride_a,
                                lda, beta, c + i * stride_c, ldc);
    workload::manifest().op("cublasSgemmStridedBatched", ranges);
  }
}

// The same for `batch` matrices whose addresses sit in DEVICE arrays a_ptrs, b_ptrs, c_ptrs.
//
// Note [Pointers in device memory]
// cublasSgemmBatched reads its operand addresses from device memory when the kernel runs, so
// the launch's parameter block holds only the three array addresses: the buffers the GEMM
// really touches are invisible to a scan of the parameters (DESIGN.md, "Which buffers a
// kernel touches"). gpt_train builds these arrays per step (the activations they point into
// are fresh each step), with a stream-ordered copy, and frees them right after the call.
//
// host_a, host_b and host_c are host copies of the three arrays' contents: the manifest
// records the pointer arrays (read) and every matrix they point to.
inline void gemm_batched(cublasHandle_t handle, Op op_a, Op op_b, int m, int n, int k, float alpha,
                         const float* const* a_ptrs, int lda, const float* const* b_ptrs, int ldb, float beta,
                         float* const* c_ptrs, int ldc, int batch, const float* const* host_a,
                         const float* const* host_b, const float* const* host_c) {
  GPT_CUBLAS(cublasSgemmBatched(handle, to_cublas(op_b), to_cublas(op_a), n, m, k, &alpha, b_ptrs, ldb, a_ptrs, lda,
                                &beta, c_ptrs, ldc, batch));
  if (workload::manifest().enabled()) {
    const std::size_t array_bytes = sizeof(float*) * static_cast<std::size_t>(batch);
    std::vector<workload::Range> ranges = {{a_ptrs, array_bytes, workload::Access::r},
                                           {b_ptrs, array_bytes, workload::Access::r},
                                           {c_ptrs, array_bytes, workload::Access::r}};
    for (int i = 0; i < batch; ++i)
      workload::add_gemm_ranges(ranges, op_b == Op::T, op_a == Op::T, n, m, k, host_b[i], ldb, host_a[i], lda, beta,
                                host_c[i], ldc);
    workload::manifest().op("cublasSgemmBatched", ranges);
  }
}

}  // namespace gpt
