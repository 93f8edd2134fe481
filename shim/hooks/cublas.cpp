// Exported cuBLAS wrappers: compute the exact device ranges of the call from
// its arguments, record the op, call the real function (found with RTLD_NEXT).
// Matrices are column-major: an m x n matrix with leading dimension ld spans
// ld*(n-1)+m elements. C is read as well as written unless beta is a host 0.
#include <cublas_v2.h>

#include "../engine/library.h"
#include "../engine/real.h"
#include "common.h"

using namespace oversub;

namespace {

namespace cublas_types {
using GemmExFn = cublasStatus_t(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                               const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                               cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
using GemmStridedBatchedExFn = cublasStatus_t(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                              const void*, const void*, cudaDataType, int, long long, const void*,
                                              cudaDataType, int, long long, const void*, void*, cudaDataType, int,
                                              long long, int, cublasComputeType_t, cublasGemmAlgo_t);
#define OVERSUB_CUBLAS(symbol, type) using symbol##_fn = type;
#include "cublas_api.def"
#undef OVERSUB_CUBLAS
}  // namespace cublas_types

struct RealCublas {
#define OVERSUB_CUBLAS(symbol, type) cublas_types::symbol##_fn* symbol = nullptr;
#include "cublas_api.def"
#undef OVERSUB_CUBLAS
  cublasStatus_t (*get_stream)(cublasHandle_t, cudaStream_t*) = nullptr;
  cublasStatus_t (*get_pointer_mode)(cublasHandle_t, cublasPointerMode_t*) = nullptr;
};

const RealCublas& real_cublas() {
  static const RealCublas r = [] {
    RealCublas t;
    const void* self = reinterpret_cast<const void*>(&real_cublas);
#define OVERSUB_CUBLAS(symbol, type) \
  t.symbol = reinterpret_cast<cublas_types::symbol##_fn*>(next_symbol_after(self, #symbol));
#include "cublas_api.def"
#undef OVERSUB_CUBLAS
    t.get_stream = reinterpret_cast<decltype(t.get_stream)>(next_symbol_after(self, "cublasGetStream_v2"));
    t.get_pointer_mode =
        reinterpret_cast<decltype(t.get_pointer_mode)>(next_symbol_after(self, "cublasGetPointerMode_v2"));
    return t;
  }();
  return r;
}

template <typename Fn, typename... Args>
cublasStatus_t call_real(Fn* fn, Args... args) {
  return fn != nullptr ? fn(args...) : CUBLAS_STATUS_NOT_SUPPORTED;
}
#define REAL_CUBLAS(symbol, ...) call_real(real_cublas().symbol, __VA_ARGS__)

CUstream stream_of(cublasHandle_t h) {
  cudaStream_t s = nullptr;
  if (real_cublas().get_stream) real_cublas().get_stream(h, &s);
  return reinterpret_cast<CUstream>(s);
}

// C is only written when beta is a host-side zero; otherwise it is also read.
template <typename T>
Access output_access(cublasHandle_t h, const T* beta) {
  cublasPointerMode_t mode = CUBLAS_POINTER_MODE_HOST;
  if (real_cublas().get_pointer_mode) real_cublas().get_pointer_mode(h, &mode);
  if (mode == CUBLAS_POINTER_MODE_HOST && beta != nullptr && *beta == T(0)) return Access::write;
  return Access::read_write;
}
Access output_access_ex(cublasHandle_t h, const void* beta, cublasComputeType_t compute) {
  if (compute == CUBLAS_COMPUTE_64F || compute == CUBLAS_COMPUTE_64F_PEDANTIC)
    return output_access(h, static_cast<const double*>(beta));
  if (compute == CUBLAS_COMPUTE_16F || compute == CUBLAS_COMPUTE_16F_PEDANTIC) return Access::read_write;
  return output_access(h, static_cast<const float*>(beta));
}

std::uint64_t type_bytes(cudaDataType t) {
  switch (t) {
    case CUDA_R_16F: case CUDA_R_16BF: return 2;
    case CUDA_R_32F: case CUDA_C_16F: case CUDA_C_16BF: case CUDA_R_32I: return 4;
    case CUDA_R_64F: case CUDA_C_32F: return 8;
    case CUDA_C_64F: return 16;
    case CUDA_R_8I: case CUDA_R_8U: return 1;
    default: return 4;
  }
}

bool transposed(cublasOperation_t op) { return op != CUBLAS_OP_N; }

// op(A) is m x k: stored k x m when transposed.
std::uint64_t operand_bytes(cublasOperation_t op, int rows, int cols, std::int64_t ld, std::uint64_t element) {
  return transposed(op) ? matrix_bytes(cols, rows, ld, element) : matrix_bytes(rows, cols, ld, element);
}

void add_gemm(RangeList& r, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void* A,
              std::int64_t lda, const void* B, std::int64_t ldb, void* C, std::int64_t ldc, std::uint64_t a_el,
              std::uint64_t b_el, std::uint64_t c_el, Access c_access) {
  add_range(r, A, operand_bytes(ta, m, k, lda, a_el), Access::read);
  add_range(r, B, operand_bytes(tb, k, n, ldb, b_el), Access::read);
  add_range(r, C, matrix_bytes(m, n, ldc, c_el), c_access);
}

std::uint64_t batch_bytes(std::uint64_t one, std::int64_t stride, int batch, std::uint64_t element) {
  if (one == 0 || batch <= 0) return 0;
  return one + static_cast<std::uint64_t>(stride < 0 ? -stride : stride) * element * static_cast<std::uint64_t>(batch - 1);
}

std::uint32_t name_of(const char* symbol) { return intern_name(symbol); }

}  // namespace

#define NAME(symbol)                                                \
  static const std::uint32_t op_name = (ensure_started(), name_of(#symbol))

OVERSUB_EXPORT cublasStatus_t cublasSgemm_v2(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                             int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                                             const float* beta, float* C, int ldc) {
  NAME(cublasSgemm_v2);
  RangeList r;
  add_gemm(r, ta, tb, m, n, k, A, lda, B, ldb, C, ldc, 4, 4, 4, output_access(h, beta));
  return library_call(OpKind::cublas, op_name, stream_of(h), r, CUBLAS_STATUS_ALLOC_FAILED,
                      [&] { return REAL_CUBLAS(cublasSgemm_v2, h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc); });
}

OVERSUB_EXPORT cublasStatus_t cublasDgemm_v2(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                             int k, const double* alpha, const double* A, int lda, const double* B,
                                             int ldb, const double* beta, double* C, int ldc) {
  NAME(cublasDgemm_v2);
  RangeList r;
  add_gemm(r, ta, tb, m, n, k, A, lda, B, ldb, C, ldc, 8, 8, 8, output_access(h, beta));
  return library_call(OpKind::cublas, op_name, stream_of(h), r, CUBLAS_STATUS_ALLOC_FAILED,
                      [&] { return REAL_CUBLAS(cublasDgemm_v2, h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc); });
}

OVERSUB_EXPORT cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                           int k, const void* alpha, const void* A, cudaDataType at, int lda,
                                           const void* B, cudaDataType bt, int ldb, const void* beta, void* C,
                                           cudaDataType ct, int ldc, cublasComputeType_t compute, cublasGemmAlgo_t algo) {
  NAME(cublasGemmEx);
  RangeList r;
  add_gemm(r, ta, tb, m, n, k, A, lda, B, ldb, C, ldc, type_bytes(at), type_bytes(bt), type_bytes(ct),
           output_access_ex(h, beta, compute));
  return library_call(OpKind::cublas, op_name, stream_of(h), r, CUBLAS_STATUS_ALLOC_FAILED, [&] {
    return REAL_CUBLAS(cublasGemmEx, h, ta, tb, m, n, k, alpha, A, at, lda, B, bt, ldb, beta, C, ct, ldc, compute, algo);
  });
}

OVERSUB_EXPORT cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                                        int m, int n, int k, const float* alpha, const float* A, int lda,
                                                        long long sa, const float* B, int ldb, long long sb,
                                                        const float* beta, float* C, int ldc, long long sc, int batch) {
  NAME(cublasSgemmStridedBatched);
  RangeList r;
  add_range(r, A, batch_bytes(operand_bytes(ta, m, k, lda, 4), sa, batch, 4), Access::read);
  add_range(r, B, batch_bytes(operand_bytes(tb, k, n, ldb, 4), sb, batch, 4), Access::read);
  add_range(r, C, batch_bytes(matrix_bytes(m, n, ldc, 4), sc, batch, 4), output_access(h, beta));
  return library_call(OpKind::cublas, op_name, stream_of(h), r, CUBLAS_STATUS_ALLOC_FAILED, [&] {
    return REAL_CUBLAS(cublasSgemmStridedBatched, h, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc,
                       batch);
  });
}

OVERSUB_EXPORT cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                                         int m, int n, int k, const void* alpha, const void* A,
                                                         cudaDataType at, int lda, long long sa, const void* B,
                                                         cudaDataType bt, int ldb, long long sb, const void* beta,
                                                         void* C, cudaDataType ct, int ldc, long long sc, int batch,
                                                         cublasComputeType_t compute, cublasGemmAlgo_t algo) {
  NAME(cublasGemmStridedBatchedEx);
  RangeList r;
  add_range(r, A, batch_bytes(operand_bytes(ta, m, k, lda, type_bytes(at)), sa, batch, type_bytes(at)), Access::read);
  add_range(r, B, batch_bytes(operand_bytes(tb, k, n, ldb, type_bytes(bt)), sb, batch, type_bytes(bt)), Access::read);
  add_range(r, C, batch_bytes(matrix_bytes(m, n, ldc, type_bytes(ct)), sc, batch, type_bytes(ct)),
            output_access_ex(h, beta, compute));
  return library_call(OpKind::cublas, op_name, stream_of(h), r, CUBLAS_STATUS_ALLOC_FAILED, [&] {
    return REAL_CUBLAS(cublasGemmStridedBatchedEx, h, ta, tb, m, n, k, alpha, A, at, lda, sa, B, bt, ldb, sb, beta, C,
                       ct, ldc, sc, batch, compute, algo);
  });
}

// Note [Pointer arrays in device memory]
// SgemmBatched takes arrays of matrix pointers that live in device memory,
// invisible to any scan of the call's arguments. We read them: a copy on the
// handle's stream (so it sees every earlier write to the arrays), then a wait
// for that stream. It costs a host wait per batched call, which is rare in
// training next to strided-batched GEMMs, and it is the only way to know.
// Only swap mode (which must make the matrices resident) and a traced run
// (which records them) read them; plain passthrough leaves the call's timing
// alone. A program whose stream waits for something the calling thread does
// only after the call would deadlock here: a known limit.
OVERSUB_EXPORT cublasStatus_t cublasSgemmBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                                                 int n, int k, const float* alpha, const float* const A[], int lda,
                                                 const float* const B[], int ldb, const float* beta, float* const C[],
                                                 int ldc, int batch) {
  NAME(cublasSgemmBatched);
  RangeList r;
  const CUstream stream = stream_of(h);
  const std::uint64_t array_bytes = batch > 0 ? std::uint64_t(batch) * sizeof(void*) : 0;
  add_range(r, A, array_bytes, Access::read);
  add_range(r, B, array_bytes, Access::read);
  add_range(r, C, array_bytes, Access::read);
  const RealDriver& d = real_driver();
  const bool need_targets = Residency::get() != nullptr || tracing();
  if (need_targets && batch > 0 && d.cuMemcpyDtoHAsync_v2 != nullptr && d.cuStreamSynchronize != nullptr) {
    std::vector<std::uint64_t> pointers(std::size_t(batch) * 3);
    const std::uint64_t arrays[3] = {reinterpret_cast<std::uint64_t>(A), reinterpret_cast<std::uint64_t>(B),
                                     reinterpret_cast<std::uint64_t>(C)};
    bool ok = true;
    for (int i = 0; i < 3 && ok; ++i)
      ok = d.cuMemcpyDtoHAsync_v2(pointers.data() + std::size_t(i) * batch, arrays[i], array_bytes, stream) ==
           CUDA_SUCCESS;
    ok = ok && d.cuStreamSynchronize(stream) == CUDA_SUCCESS;
    const Access c_access = output_access(h, beta);
    for (int i = 0; ok && i < batch; ++i) {
      add_exact_range(r, pointers[i], operand_bytes(ta, m, k, lda, 4), Access::read);
      add_exact_range(r, pointers[std::size_t(batch) + i], operand_bytes(tb, k, n, ldb, 4), Access::read);
      add_exact_range(r, pointers[std::size_t(2) * batch + i], matrix_bytes(m, n, ldc, 4), c_access);
    }
  }
  return library_call(OpKind::cublas, op_name, stream, r, CUBLAS_STATUS_ALLOC_FAILED, [&] {
    return REAL_CUBLAS(cublasSgemmBatched, h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, batch);
  });
}

OVERSUB_EXPORT cublasStatus_t cublasSaxpy_v2(cublasHandle_t h, int n, const float* alpha, const float* x, int incx,
                                             float* y, int incy) {
  NAME(cublasSaxpy_v2);
  RangeList r;
  add_range(r, x, strided_bytes(n, incx, 4), Access::read);
  add_range(r, y, strided_bytes(n, incy, 4), Access::read_write);
  return library_call(OpKind::cublas, op_name, stream_of(h), r, CUBLAS_STATUS_ALLOC_FAILED,
                      [&] { return REAL_CUBLAS(cublasSaxpy_v2, h, n, alpha, x, incx, y, incy); });
}

OVERSUB_EXPORT cublasStatus_t cublasSscal_v2(cublasHandle_t h, int n, const float* alpha, float* x, int incx) {
  NAME(cublasSscal_v2);
  RangeList r;
  add_range(r, x, strided_bytes(n, incx, 4), Access::read_write);
  return library_call(OpKind::cublas, op_name, stream_of(h), r, CUBLAS_STATUS_ALLOC_FAILED,
                      [&] { return REAL_CUBLAS(cublasSscal_v2, h, n, alpha, x, incx); });
}

// The result pointer is device memory only in device pointer mode; add_range
// ignores it when it is not tracked device memory.
OVERSUB_EXPORT cublasStatus_t cublasSdot_v2(cublasHandle_t h, int n, const float* x, int incx, const float* y, int incy,
                                            float* result) {
  NAME(cublasSdot_v2);
  RangeList r;
  add_range(r, x, strided_bytes(n, incx, 4), Access::read);
  add_range(r, y, strided_bytes(n, incy, 4), Access::read);
  add_range(r, result, 4, Access::write);
  return library_call(OpKind::cublas, op_name, stream_of(h), r, CUBLAS_STATUS_ALLOC_FAILED,
                      [&] { return REAL_CUBLAS(cublasSdot_v2, h, n, x, incx, y, incy, result); });
}

OVERSUB_EXPORT cublasStatus_t cublasSnrm2_v2(cublasHandle_t h, int n, const float* x, int incx, float* result) {
  NAME(cublasSnrm2_v2);
  RangeList r;
  add_range(r, x, strided_bytes(n, incx, 4), Access::read);
  add_range(r, result, 4, Access::write);
  return library_call(OpKind::cublas, op_name, stream_of(h), r, CUBLAS_STATUS_ALLOC_FAILED,
                      [&] { return REAL_CUBLAS(cublasSnrm2_v2, h, n, x, incx, result); });
}

OVERSUB_EXPORT cublasStatus_t cublasSgemv_v2(cublasHandle_t h, cublasOperation_t trans, int m, int n,
                                             const float* alpha, const float* A, int lda, const float* x, int incx,
                                             const float* beta, float* y, int incy) {
  NAME(cublasSgemv_v2);
  RangeList r;
  add_range(r, A, matrix_bytes(m, n, lda, 4), Access::read);
  add_range(r, x, strided_bytes(transposed(trans) ? m : n, incx, 4), Access::read);
  add_range(r, y, strided_bytes(transposed(trans) ? n : m, incy, 4), output_access(h, beta));
  return library_call(OpKind::cublas, op_name, stream_of(h), r, CUBLAS_STATUS_ALLOC_FAILED,
                      [&] { return REAL_CUBLAS(cublasSgemv_v2, h, trans, m, n, alpha, A, lda, x, incx, beta, y, incy); });
}

OVERSUB_EXPORT cublasStatus_t cublasSgeam(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                          const float* alpha, const float* A, int lda, const float* beta,
                                          const float* B, int ldb, float* C, int ldc) {
  NAME(cublasSgeam);
  RangeList r;
  add_range(r, A, operand_bytes(ta, m, n, lda, 4), Access::read);
  add_range(r, B, operand_bytes(tb, m, n, ldb, 4), Access::read);
  add_range(r, C, matrix_bytes(m, n, ldc, 4), Access::write);
  return library_call(OpKind::cublas, op_name, stream_of(h), r, CUBLAS_STATUS_ALLOC_FAILED,
                      [&] { return REAL_CUBLAS(cublasSgeam, h, ta, tb, m, n, alpha, A, lda, beta, B, ldb, C, ldc); });
}

// Set/Get copy between host and device on the legacy stream, synchronously.
OVERSUB_EXPORT cublasStatus_t cublasSetVector(int n, int element_bytes, const void* x, int incx, void* y, int incy) {
  NAME(cublasSetVector);
  RangeList r;
  add_range(r, y, strided_bytes(n, incy, std::uint64_t(element_bytes)), Access::write);
  return library_call(OpKind::cublas, op_name, nullptr, r, CUBLAS_STATUS_ALLOC_FAILED,
                      [&] { return REAL_CUBLAS(cublasSetVector, n, element_bytes, x, incx, y, incy); });
}

OVERSUB_EXPORT cublasStatus_t cublasGetVector(int n, int element_bytes, const void* x, int incx, void* y, int incy) {
  NAME(cublasGetVector);
  RangeList r;
  add_range(r, x, strided_bytes(n, incx, std::uint64_t(element_bytes)), Access::read);
  return library_call(OpKind::cublas, op_name, nullptr, r, CUBLAS_STATUS_ALLOC_FAILED,
                      [&] { return REAL_CUBLAS(cublasGetVector, n, element_bytes, x, incx, y, incy); });
}

OVERSUB_EXPORT cublasStatus_t cublasSetMatrix(int rows, int cols, int element_bytes, const void* A, int lda, void* B,
                                              int ldb) {
  NAME(cublasSetMatrix);
  RangeList r;
  add_range(r, B, matrix_bytes(rows, cols, ldb, std::uint64_t(element_bytes)), Access::write);
  return library_call(OpKind::cublas, op_name, nullptr, r, CUBLAS_STATUS_ALLOC_FAILED,
                      [&] { return REAL_CUBLAS(cublasSetMatrix, rows, cols, element_bytes, A, lda, B, ldb); });
}

OVERSUB_EXPORT cublasStatus_t cublasGetMatrix(int rows, int cols, int element_bytes, const void* A, int lda, void* B,
                                              int ldb) {
  NAME(cublasGetMatrix);
  RangeList r;
  add_range(r, A, matrix_bytes(rows, cols, lda, std::uint64_t(element_bytes)), Access::read);
  return library_call(OpKind::cublas, op_name, nullptr, r, CUBLAS_STATUS_ALLOC_FAILED,
                      [&] { return REAL_CUBLAS(cublasGetMatrix, rows, cols, element_bytes, A, lda, B, ldb); });
}

// The Async forms are the same copies, queued on the caller's stream.
OVERSUB_EXPORT cublasStatus_t cublasSetVectorAsync(int n, int element_bytes, const void* x, int incx, void* y, int incy,
                                                   cudaStream_t stream) {
  NAME(cublasSetVectorAsync);
  RangeList r;
  add_range(r, y, strided_bytes(n, incy, std::uint64_t(element_bytes)), Access::write);
  return library_call(OpKind::cublas, op_name, reinterpret_cast<CUstream>(stream), r, CUBLAS_STATUS_ALLOC_FAILED,
                      [&] { return REAL_CUBLAS(cublasSetVectorAsync, n, element_bytes, x, incx, y, incy, stream); });
}

OVERSUB_EXPORT cublasStatus_t cublasGetVectorAsync(int n, int element_bytes, const void* x, int incx, void* y, int incy,
                                                   cudaStream_t stream) {
  NAME(cublasGetVectorAsync);
  RangeList r;
  add_range(r, x, strided_bytes(n, incx, std::uint64_t(element_bytes)), Access::read);
  return library_call(OpKind::cublas, op_name, reinterpret_cast<CUstream>(stream), r, CUBLAS_STATUS_ALLOC_FAILED,
                      [&] { return REAL_CUBLAS(cublasGetVectorAsync, n, element_bytes, x, incx, y, incy, stream); });
}

OVERSUB_EXPORT cublasStatus_t cublasSetMatrixAsync(int rows, int cols, int element_bytes, const void* A, int lda,
                                                   void* B, int ldb, cudaStream_t stream) {
  NAME(cublasSetMatrixAsync);
  RangeList r;
  add_range(r, B, matrix_bytes(rows, cols, ldb, std::uint64_t(element_bytes)), Access::write);
  return library_call(OpKind::cublas, op_name, reinterpret_cast<CUstream>(stream), r, CUBLAS_STATUS_ALLOC_FAILED, [&] {
    return REAL_CUBLAS(cublasSetMatrixAsync, rows, cols, element_bytes, A, lda, B, ldb, stream);
  });
}

OVERSUB_EXPORT cublasStatus_t cublasGetMatrixAsync(int rows, int cols, int element_bytes, const void* A, int lda,
                                                   void* B, int ldb, cudaStream_t stream) {
  NAME(cublasGetMatrixAsync);
  RangeList r;
  add_range(r, A, matrix_bytes(rows, cols, lda, std::uint64_t(element_bytes)), Access::read);
  return library_call(OpKind::cublas, op_name, reinterpret_cast<CUstream>(stream), r, CUBLAS_STATUS_ALLOC_FAILED, [&] {
    return REAL_CUBLAS(cublasGetMatrixAsync, rows, cols, element_bytes, A, lda, B, ldb, stream);
  });
}
