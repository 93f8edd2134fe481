// Level-2/3 kernel bodies: gemv, geam and the GEMM family. GEMM and GEMV are OpenBLAS calls on the
// stream's worker thread (single-threaded OpenBLAS: Note [Deterministic math] in kernels.h).
#include <cblas.h>
#include <cublas_api.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "half.h"
#include "kernels.h"

namespace simcublas {
namespace {

// cuBLAS operation -> CBLAS transpose. For real types CUBLAS_OP_C means transpose; the call has
// already rejected anything else.
CBLAS_TRANSPOSE to_cblas(std::int32_t op) { return op == CUBLAS_OP_N ? CblasNoTrans : CblasTrans; }

template <typename T>
T scalar(const T* device, T value) {
  return device != nullptr ? *device : value;  // Note [Scalars and pointer mode]
}

// Element (i, j) of op(X), X column-major with leading dimension ld.
inline std::int64_t at(std::int32_t op, std::int64_t i, std::int64_t j, std::int64_t ld) {
  return op == CUBLAS_OP_N ? i + j * ld : j + i * ld;
}

// Reads a rows x cols column-major matrix of `type` (CUDA_R_32F/16F/16BF) into dense fp32.
std::vector<float> widen(const void* source, std::int32_t type, std::int64_t rows, std::int64_t cols, std::int64_t ld) {
  std::vector<float> out(static_cast<std::size_t>(rows * cols));
  for (std::int64_t j = 0; j < cols; ++j) {
    for (std::int64_t i = 0; i < rows; ++i) {
      const std::int64_t s = i + j * ld;
      float v;
      if (type == CUDA_R_16F)
        v = half_to_float(static_cast<const std::uint16_t*>(source)[s]);
      else if (type == CUDA_R_16BF)
        v = bfloat16_to_float(static_cast<const std::uint16_t*>(source)[s]);
      else
        v = static_cast<const float*>(source)[s];
      out[static_cast<std::size_t>(i + j * rows)] = v;
    }
  }
  return out;
}

std::size_t element_bytes(std::int32_t type) { return type == CUDA_R_32F ? 4 : 2; }

}  // namespace

void sgemv_body(const simcuda_launch*, const unsigned char* params) {
  const auto p = unpack<GemvParams>(params);
  const float alpha = scalar(p.alpha_ptr, p.alpha), beta = scalar(p.beta_ptr, p.beta);
  cblas_sgemv(CblasColMajor, to_cblas(p.trans), p.m, p.n, alpha, p.a, p.lda, p.x, p.incx, beta, p.y, p.incy);
}

// C = alpha * op(A) + beta * op(B). A term whose scalar is zero is not read (so A or B may then
// hold NaN, or alias C), as cuBLAS documents for geam.
void sgeam_body(const simcuda_launch*, const unsigned char* params) {
  const auto p = unpack<GeamParams>(params);
  const float alpha = scalar(p.alpha_ptr, p.alpha), beta = scalar(p.beta_ptr, p.beta);
  for (std::int64_t j = 0; j < p.n; ++j) {
    for (std::int64_t i = 0; i < p.m; ++i) {
      const float a = alpha == 0.0f ? 0.0f : alpha * p.a[at(p.transa, i, j, p.lda)];
      const float b = beta == 0.0f ? 0.0f : beta * p.b[at(p.transb, i, j, p.ldb)];
      p.c[i + j * p.ldc] = a + b;
    }
  }
}

void sgemm_body(const simcuda_launch*, const unsigned char* params) {
  const auto p = unpack<SgemmParams>(params);
  const float alpha = scalar(p.alpha_ptr, p.alpha), beta = scalar(p.beta_ptr, p.beta);
  for (std::int64_t b = 0; b < p.batch; ++b)
    cblas_sgemm(CblasColMajor, to_cblas(p.transa), to_cblas(p.transb), p.m, p.n, p.k, alpha, p.a + b * p.stride_a,
                p.lda, p.b + b * p.stride_b, p.ldb, beta, p.c + b * p.stride_c, p.ldc);
}

void dgemm_body(const simcuda_launch*, const unsigned char* params) {
  const auto p = unpack<DgemmParams>(params);
  const double alpha = scalar(p.alpha_ptr, p.alpha), beta = scalar(p.beta_ptr, p.beta);
  for (std::int64_t b = 0; b < p.batch; ++b)
    cblas_dgemm(CblasColMajor, to_cblas(p.transa), to_cblas(p.transb), p.m, p.n, p.k, alpha, p.a + b * p.stride_a,
                p.lda, p.b + b * p.stride_b, p.ldb, beta, p.c + b * p.stride_c, p.ldc);
}

// The pointer arrays are device memory: reading them here, on the worker, is what the real kernel
// does; the calling thread never looks at them.
void sgemm_batched_body(const simcuda_launch*, const unsigned char* params) {
  const auto p = unpack<SgemmBatchedParams>(params);
  const float alpha = scalar(p.alpha_ptr, p.alpha), beta = scalar(p.beta_ptr, p.beta);
  for (std::int64_t b = 0; b < p.batch; ++b)
    cblas_sgemm(CblasColMajor, to_cblas(p.transa), to_cblas(p.transb), p.m, p.n, p.k, alpha, p.a_array[b], p.lda,
                p.b_array[b], p.ldb, beta, p.c_array[b], p.ldc);
}

// fp32 compute for fp32/fp16/bf16 storage: inputs widen exactly to fp32, OpenBLAS accumulates in
// fp32, and a 16-bit C is rounded once (to nearest even) after alpha/beta are applied.
void gemm_ex_body(const simcuda_launch*, const unsigned char* params) {
  const auto p = unpack<GemmExParams>(params);
  const float alpha = scalar(p.alpha_ptr, p.alpha), beta = scalar(p.beta_ptr, p.beta);
  const std::int64_t a_rows = p.transa == CUBLAS_OP_N ? p.m : p.k, a_cols = p.transa == CUBLAS_OP_N ? p.k : p.m;
  const std::int64_t b_rows = p.transb == CUBLAS_OP_N ? p.k : p.n, b_cols = p.transb == CUBLAS_OP_N ? p.n : p.k;
  const auto* a_base = static_cast<const unsigned char*>(p.a);
  const auto* b_base = static_cast<const unsigned char*>(p.b);
  auto* c_base = static_cast<unsigned char*>(p.c);
  for (std::int64_t b = 0; b < p.batch; ++b) {
    const void* a = a_base + b * p.stride_a * static_cast<std::int64_t>(element_bytes(p.a_type));
    const void* bm = b_base + b * p.stride_b * static_cast<std::int64_t>(element_bytes(p.b_type));
    void* c = c_base + b * p.stride_c * static_cast<std::int64_t>(element_bytes(p.c_type));
    if (p.a_type == CUDA_R_32F && p.c_type == CUDA_R_32F) {
      cblas_sgemm(CblasColMajor, to_cblas(p.transa), to_cblas(p.transb), p.m, p.n, p.k, alpha,
                  static_cast<const float*>(a), p.lda, static_cast<const float*>(bm), p.ldb, beta,
                  static_cast<float*>(c), p.ldc);
      continue;
    }
    const std::vector<float> wa = widen(a, p.a_type, a_rows, a_cols, p.lda);
    const std::vector<float> wb = widen(bm, p.b_type, b_rows, b_cols, p.ldb);
    const int lda = static_cast<int>(a_rows > 1 ? a_rows : 1), ldb = static_cast<int>(b_rows > 1 ? b_rows : 1);
    if (p.c_type == CUDA_R_32F) {
      cblas_sgemm(CblasColMajor, to_cblas(p.transa), to_cblas(p.transb), p.m, p.n, p.k, alpha, wa.data(), lda,
                  wb.data(), ldb, beta, static_cast<float*>(c), p.ldc);
      continue;
    }
    // 16-bit C: beta == 0 means C is not read (it may hold NaN), as for every cuBLAS GEMM.
    std::vector<float> wc = beta == 0.0f ? std::vector<float>(static_cast<std::size_t>(p.m) * p.n, 0.0f)
                                         : widen(c, p.c_type, p.m, p.n, p.ldc);
    cblas_sgemm(CblasColMajor, to_cblas(p.transa), to_cblas(p.transb), p.m, p.n, p.k, alpha, wa.data(), lda, wb.data(),
                ldb, beta, wc.data(), p.m > 1 ? p.m : 1);
    auto* out = static_cast<std::uint16_t*>(c);
    for (std::int64_t j = 0; j < p.n; ++j)
      for (std::int64_t i = 0; i < p.m; ++i) {
        const float v = wc[static_cast<std::size_t>(i + j * p.m)];
        out[i + j * p.ldc] = p.c_type == CUDA_R_16F ? float_to_half(v) : float_to_bfloat16(v);
      }
  }
}

}  // namespace simcublas
