// kernels.h — the simulated cuBLAS's kernels: their parameter blocks and CPU bodies.
//
// Note [cuBLAS parameter blocks]
// Every cuBLAS call is one cuLaunchKernel whose parameters are what a real cuBLAS kernel gets:
// the device pointers it touches and the scalars (sizes, leading dimensions, transposes, alpha
// and beta). Each kernel's fields are listed once, in an X-macro, from which we derive
//  - the C struct (so each field sits at its natural alignment, as nvcc lays out a parameter
//    list),
//  - the simcuda_param table (offset and size of each field) the driver packs by, and
//  - the kernelParams array (one pointer per field) a call hands to cuLaunchKernel,
// so the three can never drift apart. An interposer reading the launch (cuFuncGetParamInfo +
// the packed bytes) sees every device range the kernel will touch.
//
// Note [Scalars and pointer mode]
// alpha/beta travel twice: as a value (`alpha`) and as a device pointer (`alpha_ptr`). With
// CUBLAS_POINTER_MODE_HOST the call copies the value into the block and alpha_ptr is null; with
// CUBLAS_POINTER_MODE_DEVICE alpha_ptr is the caller's device pointer and the kernel reads it
// when it runs, on the stream, exactly as the real library does.
//
// Note [Deterministic math]
// Bodies run on the stream's worker thread. GEMM and GEMV go through OpenBLAS, forced to one
// thread (see image.cpp), so the order of every sum is fixed; dot and nrm2 accumulate in double
// in index order and round once. Same inputs give the same bits whatever the timing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>

#include "simcuda/image.h"

namespace simcublas {

template <typename P>
struct ParamTraits;

#define SIMCUBLAS_FIELD(type, name) type name;
#define SIMCUBLAS_LAYOUT(type, name) \
  simcuda_param{static_cast<std::uint32_t>(offsetof(Self, name)), static_cast<std::uint32_t>(sizeof(type))},
#define SIMCUBLAS_ADDRESS(type, name) static_cast<void*>(&p.name),
#define SIMCUBLAS_PARAMS(Name, FIELDS)                                                          \
  struct Name {                                                                                 \
    FIELDS(SIMCUBLAS_FIELD)                                                                     \
  };                                                                                            \
  template <>                                                                                   \
  struct ParamTraits<Name> {                                                                    \
    using Self = Name;                                                                          \
    static constexpr simcuda_param layout[] = {FIELDS(SIMCUBLAS_LAYOUT)};                       \
    static std::array<void*, std::size(layout)> addresses(Self& p) { return {FIELDS(SIMCUBLAS_ADDRESS)}; } \
  };

// ---- level 1 ----
// y[i] = alpha * x[i] + y[i] (one rounding: fused multiply-add, as the GPU does)
#define SIMCUBLAS_AXPY_FIELDS(X) \
  X(const float*, x) X(float*, y) X(const float*, alpha_ptr) X(float, alpha) \
  X(std::int32_t, n) X(std::int32_t, incx) X(std::int32_t, incy)
SIMCUBLAS_PARAMS(AxpyParams, SIMCUBLAS_AXPY_FIELDS)

#define SIMCUBLAS_SCAL_FIELDS(X) \
  X(float*, x) X(const float*, alpha_ptr) X(float, alpha) X(std::int32_t, n) X(std::int32_t, incx)
SIMCUBLAS_PARAMS(ScalParams, SIMCUBLAS_SCAL_FIELDS)

// `result` is always a device pointer: the caller's (pointer mode device) or the handle's
// scratch cell, copied back to the host afterwards (pointer mode host).
#define SIMCUBLAS_DOT_FIELDS(X) \
  X(const float*, x) X(const float*, y) X(float*, result) \
  X(std::int32_t, n) X(std::int32_t, incx) X(std::int32_t, incy)
SIMCUBLAS_PARAMS(DotParams, SIMCUBLAS_DOT_FIELDS)

#define SIMCUBLAS_NRM2_FIELDS(X) X(const float*, x) X(float*, result) X(std::int32_t, n) X(std::int32_t, incx)
SIMCUBLAS_PARAMS(Nrm2Params, SIMCUBLAS_NRM2_FIELDS)

// ---- level 2 and geam ----
#define SIMCUBLAS_GEMV_FIELDS(X)                                                                \
  X(const float*, a) X(const float*, x) X(float*, y) X(const float*, alpha_ptr) X(const float*, beta_ptr) \
  X(float, alpha) X(float, beta) X(std::int32_t, trans) X(std::int32_t, m) X(std::int32_t, n)    \
  X(std::int32_t, lda) X(std::int32_t, incx) X(std::int32_t, incy)
SIMCUBLAS_PARAMS(GemvParams, SIMCUBLAS_GEMV_FIELDS)

#define SIMCUBLAS_GEAM_FIELDS(X)                                                                \
  X(const float*, a) X(const float*, b) X(float*, c) X(const float*, alpha_ptr) X(const float*, beta_ptr) \
  X(float, alpha) X(float, beta) X(std::int32_t, transa) X(std::int32_t, transb) X(std::int32_t, m) \
  X(std::int32_t, n) X(std::int32_t, lda) X(std::int32_t, ldb) X(std::int32_t, ldc)
SIMCUBLAS_PARAMS(GeamParams, SIMCUBLAS_GEAM_FIELDS)

// ---- level 3: every GEMM is strided-batched (a plain GEMM is batch 1) ----
#define SIMCUBLAS_GEMM_TAIL(X)                                                                  \
  X(std::int32_t, transa) X(std::int32_t, transb) X(std::int32_t, m) X(std::int32_t, n)          \
  X(std::int32_t, k) X(std::int32_t, lda) X(std::int32_t, ldb) X(std::int32_t, ldc) X(std::int32_t, batch)

#define SIMCUBLAS_SGEMM_FIELDS(X)                                                               \
  X(const float*, a) X(const float*, b) X(float*, c) X(const float*, alpha_ptr) X(const float*, beta_ptr) \
  X(std::int64_t, stride_a) X(std::int64_t, stride_b) X(std::int64_t, stride_c)                  \
  X(float, alpha) X(float, beta) SIMCUBLAS_GEMM_TAIL(X)
SIMCUBLAS_PARAMS(SgemmParams, SIMCUBLAS_SGEMM_FIELDS)

#define SIMCUBLAS_DGEMM_FIELDS(X)                                                               \
  X(const double*, a) X(const double*, b) X(double*, c) X(const double*, alpha_ptr)              \
  X(const double*, beta_ptr) X(std::int64_t, stride_a) X(std::int64_t, stride_b)                \
  X(std::int64_t, stride_c) X(double, alpha) X(double, beta) SIMCUBLAS_GEMM_TAIL(X)
SIMCUBLAS_PARAMS(DgemmParams, SIMCUBLAS_DGEMM_FIELDS)

// SgemmBatched: the three pointer arrays live in device memory and are read by the kernel.
#define SIMCUBLAS_SGEMM_BATCHED_FIELDS(X)                                                       \
  X(const float* const*, a_array) X(const float* const*, b_array) X(float* const*, c_array)      \
  X(const float*, alpha_ptr) X(const float*, beta_ptr) X(float, alpha) X(float, beta)            \
  SIMCUBLAS_GEMM_TAIL(X)
SIMCUBLAS_PARAMS(SgemmBatchedParams, SIMCUBLAS_SGEMM_BATCHED_FIELDS)

// GemmEx / GemmStridedBatchedEx with fp32 compute: a_type/b_type/c_type are cudaDataType values
// (CUDA_R_32F, CUDA_R_16F, CUDA_R_16BF), already checked by the call.
#define SIMCUBLAS_GEMM_EX_FIELDS(X)                                                             \
  X(const void*, a) X(const void*, b) X(void*, c) X(const float*, alpha_ptr) X(const float*, beta_ptr) \
  X(std::int64_t, stride_a) X(std::int64_t, stride_b) X(std::int64_t, stride_c)                  \
  X(float, alpha) X(float, beta) X(std::int32_t, a_type) X(std::int32_t, b_type)                 \
  X(std::int32_t, c_type) SIMCUBLAS_GEMM_TAIL(X)
SIMCUBLAS_PARAMS(GemmExParams, SIMCUBLAS_GEMM_EX_FIELDS)

// The image's kernels, in image order.
enum class Kernel : int { saxpy, sscal, sdot, snrm2, sgemv, sgeam, sgemm, dgemm, sgemm_batched, gemm_ex, count };

// Copies a packed parameter buffer into its struct (the buffer ends at the last field, which can
// be short of sizeof(P) by the struct's tail padding).
template <typename P>
P unpack(const unsigned char* packed) {
  constexpr const auto& layout = ParamTraits<P>::layout;
  constexpr std::size_t end = layout[std::size(layout) - 1].offset_bytes + layout[std::size(layout) - 1].size_bytes;
  P p{};
  std::memcpy(&p, packed, end);
  return p;
}

// Kernel bodies (simcuda_kernel_fn). Level 1 in kernels_blas1.cpp, the rest in kernels_gemm.cpp.
void saxpy_body(const simcuda_launch*, const unsigned char* params);
void sscal_body(const simcuda_launch*, const unsigned char* params);
void sdot_body(const simcuda_launch*, const unsigned char* params);
void snrm2_body(const simcuda_launch*, const unsigned char* params);
void sgemv_body(const simcuda_launch*, const unsigned char* params);
void sgeam_body(const simcuda_launch*, const unsigned char* params);
void sgemm_body(const simcuda_launch*, const unsigned char* params);
void dgemm_body(const simcuda_launch*, const unsigned char* params);
void sgemm_batched_body(const simcuda_launch*, const unsigned char* params);
void gemm_ex_body(const simcuda_launch*, const unsigned char* params);

// The module image holding every kernel above (static storage, loaded once per process).
const simcuda_image& image();
// Called before the first kernel can run: pins OpenBLAS to one thread (Note [Deterministic math]).
void prepare_blas_once();

}  // namespace simcublas
