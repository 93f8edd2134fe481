// Exported cuDNN wrappers: compute the exact device ranges of the call from
// its arguments and descriptors, record the op, call the real function (found
// with RTLD_NEXT). The shim never links libcudnn (Note [Real symbols]).
//
// Note [cuDNN descriptors]
// Tensor and filter sizes live in opaque descriptors, so we ask the real
// cuDNN getters on every call. Descriptors are mutable (cudnnSet*Descriptor
// may be called again between ops), so nothing is cached; a getter is a few
// loads and stores in the library. A tensor spans 1 + sum((dim-1)*stride)
// elements (strides may leave gaps or overlap; the span covers both); a
// filter is always packed, product(dims) elements. When a descriptor cannot
// be read (getter missing or failing) we record the whole allocation under
// the pointer: an over-estimate is safe, a missing range is not.
//
// Note [cuDNN blending]
// Legacy cuDNN ops compute dst = alpha*op(src) + beta*dst, with alpha and
// beta HOST pointers ("scaling parameters", cuDNN API reference): a double
// when the output's data type is CUDNN_DATA_DOUBLE, a float otherwise. The
// destination is therefore read unless *beta == 0, in which case cuDNN
// documents that it is not read (its prior contents may even be NaN).
#include <cudnn.h>

#include <algorithm>

#include "../engine/library.h"
#include "../engine/real.h"
#include "common.h"

using namespace oversub;

namespace {

namespace cudnn_types {
#define OVERSUB_CUDNN(symbol, type) using symbol##_fn = type;
#include "cudnn_api.def"
#undef OVERSUB_CUDNN
using GetStream_fn = decltype(cudnnGetStream);
using GetTensorNd_fn = decltype(cudnnGetTensorNdDescriptor);
using GetFilterNd_fn = decltype(cudnnGetFilterNdDescriptor);
using BackendGetAttribute_fn = decltype(cudnnBackendGetAttribute);
}  // namespace cudnn_types

struct RealCudnn {
#define OVERSUB_CUDNN(symbol, type) cudnn_types::symbol##_fn* symbol = nullptr;
#include "cudnn_api.def"
#undef OVERSUB_CUDNN
  // Queried for ranges and streams, never intercepted.
  cudnn_types::GetStream_fn* get_stream = nullptr;
  cudnn_types::GetTensorNd_fn* get_tensor = nullptr;
  cudnn_types::GetFilterNd_fn* get_filter = nullptr;
  cudnn_types::BackendGetAttribute_fn* backend_get_attribute = nullptr;
};

const RealCudnn& real_cudnn() {
  static const RealCudnn r = [] {
    RealCudnn t;
    const void* self = reinterpret_cast<const void*>(&real_cudnn);
#define OVERSUB_CUDNN(symbol, type) \
  t.symbol = reinterpret_cast<cudnn_types::symbol##_fn*>(next_symbol_after(self, #symbol));
#include "cudnn_api.def"
#undef OVERSUB_CUDNN
    t.get_stream = reinterpret_cast<decltype(t.get_stream)>(next_symbol_after(self, "cudnnGetStream"));
    t.get_tensor = reinterpret_cast<decltype(t.get_tensor)>(next_symbol_after(self, "cudnnGetTensorNdDescriptor"));
    t.get_filter = reinterpret_cast<decltype(t.get_filter)>(next_symbol_after(self, "cudnnGetFilterNdDescriptor"));
    t.backend_get_attribute =
        reinterpret_cast<decltype(t.backend_get_attribute)>(next_symbol_after(self, "cudnnBackendGetAttribute"));
    return t;
  }();
  return r;
}

template <typename Fn, typename... Args>
cudnnStatus_t call_real(Fn* fn, Args... args) {
  return fn != nullptr ? fn(args...) : CUDNN_STATUS_NOT_SUPPORTED;
}
#define REAL_CUDNN(symbol, ...) call_real(real_cudnn().symbol, __VA_ARGS__)

CUstream stream_of(cudnnHandle_t h) {
  cudaStream_t s = nullptr;
  if (real_cudnn().get_stream) real_cudnn().get_stream(h, &s);
  return reinterpret_cast<CUstream>(s);
}

// Bytes of one element. Sub-byte types (FP4, INT4) count as a byte: an
// over-estimate, clipped to the allocation. The vectorised INT8x4/x32 types
// count a whole vector per element, as cuDNN's own size queries do.
std::uint64_t type_bytes(cudnnDataType_t t) {
  switch (t) {
    case CUDNN_DATA_DOUBLE: case CUDNN_DATA_INT64: case CUDNN_DATA_COMPLEX_FP32: return 8;
    case CUDNN_DATA_COMPLEX_FP64: return 16;
    case CUDNN_DATA_HALF: case CUDNN_DATA_BFLOAT16: return 2;
    case CUDNN_DATA_INT8: case CUDNN_DATA_UINT8: case CUDNN_DATA_BOOLEAN: case CUDNN_DATA_FP8_E4M3:
    case CUDNN_DATA_FP8_E5M2: case CUDNN_DATA_FP8_E8M0: case CUDNN_DATA_FP4_E2M1: case CUDNN_DATA_INT4:
    case CUDNN_DATA_UINT4: return 1;
    case CUDNN_DATA_INT8x32: return 32;
    default: return 4;  // FLOAT, INT32, UINT32, INT8x4, UINT8x4
  }
}

// What a descriptor says about the memory behind its pointer.
struct Extent {
  bool known = false;  // false: the descriptor could not be read
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  std::uint64_t bytes = 0;
};

constexpr int kMaxDims = CUDNN_DIM_MAX;

// Note [cuDNN descriptors]: the strided span of a tensor.
Extent extent_of(cudnnTensorDescriptor_t desc) {
  Extent e;
  int count = 0;
  int dims[kMaxDims] = {};
  int strides[kMaxDims] = {};
  const auto get = real_cudnn().get_tensor;
  if (get == nullptr || get(desc, kMaxDims, &e.type, &count, dims, strides) != CUDNN_STATUS_SUCCESS) return e;
  e.known = true;
  std::uint64_t span = 1;
  for (int i = 0; i < std::min(count, kMaxDims); ++i) {
    if (dims[i] <= 0) return e;  // an empty tensor touches nothing
    const int stride = strides[i] < 0 ? -strides[i] : strides[i];
    span += static_cast<std::uint64_t>(dims[i] - 1) * static_cast<std::uint64_t>(stride);
  }
  e.bytes = span * type_bytes(e.type);
  return e;
}

// Note [cuDNN descriptors]: filters are packed.
Extent extent_of(cudnnFilterDescriptor_t desc) {
  Extent e;
  cudnnTensorFormat_t format{};
  int count = 0;
  int dims[kMaxDims] = {};
  const auto get = real_cudnn().get_filter;
  if (get == nullptr || get(desc, kMaxDims, &e.type, &format, &count, dims) != CUDNN_STATUS_SUCCESS) return e;
  e.known = true;
  std::uint64_t elements = 1;
  for (int i = 0; i < std::min(count, kMaxDims); ++i) elements *= static_cast<std::uint64_t>(std::max(dims[i], 0));
  e.bytes = elements * type_bytes(e.type);
  return e;
}

// Adds `pointer` sized by its extent; null pointers (optional buffers) add nothing.
void add_extent(RangeList& r, const void* pointer, const Extent& e, Access access) {
  if (pointer == nullptr) return;
  const auto address = reinterpret_cast<std::uint64_t>(pointer);
  if (e.known) add_exact_range(r, address, e.bytes, access);
  else add_allocation_range(r, address, access);
}

// A host scaling parameter that is zero: a double when the output's type is
// CUDNN_DATA_DOUBLE, a float otherwise (Note [cuDNN blending]).
bool host_zero(cudnnDataType_t type, const void* scale) {
  if (scale == nullptr) return false;
  return type == CUDNN_DATA_DOUBLE ? *static_cast<const double*>(scale) == 0.0
                                   : *static_cast<const float*>(scale) == 0.0f;
}

// Note [cuDNN blending]: write-only when *beta is a zero of the output's type.
Access blend_access(cudnnDataType_t type, const void* beta) {
  return host_zero(type, beta) ? Access::write : Access::read_write;
}

// An input read in full.
template <typename Desc>
void add_input(RangeList& r, Desc desc, const void* pointer) {
  if (pointer != nullptr) add_extent(r, pointer, extent_of(desc), Access::read);
}

// A blended output (Note [cuDNN blending]).
template <typename Desc>
void add_output(RangeList& r, Desc desc, void* pointer, const void* beta) {
  if (pointer == nullptr) return;
  const Extent e = extent_of(desc);
  add_extent(r, pointer, e, blend_access(e.type, beta));
}

// Scratch memory the algorithm may both write and read back.
void add_workspace(RangeList& r, void* workspace, std::size_t bytes) {
  add_range(r, workspace, bytes, Access::read_write);
}

// out = alpha*conv(a, b) + beta*out through an algorithm's scratch space:
// forward (x, w -> y), backward data (w, dy -> dx), backward filter (x, dy -> dw).
template <typename ADesc, typename BDesc, typename OutDesc>
void add_convolution(RangeList& r, ADesc a_desc, const void* a, BDesc b_desc, const void* b, void* workspace,
                     std::size_t workspace_bytes, const void* beta, OutDesc out_desc, void* out) {
  add_input(r, a_desc, a);
  add_input(r, b_desc, b);
  add_workspace(r, workspace, workspace_bytes);
  add_output(r, out_desc, out, beta);
}

// dst = alpha*f(src) + beta*dst: activation, pooling and softmax forward.
void add_forward(RangeList& r, cudnnTensorDescriptor_t x_desc, const void* x, const void* beta,
                 cudnnTensorDescriptor_t y_desc, void* y) {
  add_input(r, x_desc, x);
  add_output(r, y_desc, y, beta);
}

// dx = alpha*f'(y, dy, x) + beta*dx: activation and pooling backward. Some
// activation modes need no x (cuDNN accepts null there); add_input skips it.
void add_backward(RangeList& r, cudnnTensorDescriptor_t y_desc, const void* y, cudnnTensorDescriptor_t dy_desc,
                  const void* dy, cudnnTensorDescriptor_t x_desc, const void* x, const void* beta,
                  cudnnTensorDescriptor_t dx_desc, void* dx) {
  add_input(r, y_desc, y);
  add_input(r, dy_desc, dy);
  add_input(r, x_desc, x);
  add_output(r, dx_desc, dx, beta);
}

}  // namespace

#define NAME(symbol) static const std::uint32_t op_name = (ensure_started(), intern_name(#symbol))
#define CALL(symbol, handle, ranges, ...)                     \
  library_call(OpKind::cudnn, op_name, stream_of(handle), ranges, CUDNN_STATUS_ALLOC_FAILED, \
               [&] { return REAL_CUDNN(symbol, handle, __VA_ARGS__); })

// ---- convolution ----

OVERSUB_EXPORT cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void* alpha,
                                                     const cudnnTensorDescriptor_t xDesc, const void* x,
                                                     const cudnnFilterDescriptor_t wDesc, const void* w,
                                                     const cudnnConvolutionDescriptor_t convDesc,
                                                     cudnnConvolutionFwdAlgo_t algo, void* workSpace,
                                                     size_t workSpaceSizeInBytes, const void* beta,
                                                     const cudnnTensorDescriptor_t yDesc, void* y) {
  NAME(cudnnConvolutionForward);
  RangeList r;
  add_convolution(r, xDesc, x, wDesc, w, workSpace, workSpaceSizeInBytes, beta, yDesc, y);
  return CALL(cudnnConvolutionForward, handle, r, alpha, xDesc, x, wDesc, w, convDesc, algo, workSpace,
              workSpaceSizeInBytes, beta, yDesc, y);
}

OVERSUB_EXPORT cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void* alpha,
                                                          const cudnnFilterDescriptor_t wDesc, const void* w,
                                                          const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                                          const cudnnConvolutionDescriptor_t convDesc,
                                                          cudnnConvolutionBwdDataAlgo_t algo, void* workSpace,
                                                          size_t workSpaceSizeInBytes, const void* beta,
                                                          const cudnnTensorDescriptor_t dxDesc, void* dx) {
  NAME(cudnnConvolutionBackwardData);
  RangeList r;
  add_convolution(r, wDesc, w, dyDesc, dy, workSpace, workSpaceSizeInBytes, beta, dxDesc, dx);
  return CALL(cudnnConvolutionBackwardData, handle, r, alpha, wDesc, w, dyDesc, dy, convDesc, algo, workSpace,
              workSpaceSizeInBytes, beta, dxDesc, dx);
}

OVERSUB_EXPORT cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void* alpha,
                                                            const cudnnTensorDescriptor_t xDesc, const void* x,
                                                            const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                                            const cudnnConvolutionDescriptor_t convDesc,
                                                            cudnnConvolutionBwdFilterAlgo_t algo, void* workSpace,
                                                            size_t workSpaceSizeInBytes, const void* beta,
                                                            const cudnnFilterDescriptor_t dwDesc, void* dw) {
  NAME(cudnnConvolutionBackwardFilter);
  RangeList r;
  add_convolution(r, xDesc, x, dyDesc, dy, workSpace, workSpaceSizeInBytes, beta, dwDesc, dw);
  return CALL(cudnnConvolutionBackwardFilter, handle, r, alpha, xDesc, x, dyDesc, dy, convDesc, algo, workSpace,
              workSpaceSizeInBytes, beta, dwDesc, dw);
}

OVERSUB_EXPORT cudnnStatus_t cudnnConvolutionBackwardBias(cudnnHandle_t handle, const void* alpha,
                                                          const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                                          const void* beta, const cudnnTensorDescriptor_t dbDesc,
                                                          void* db) {
  NAME(cudnnConvolutionBackwardBias);
  RangeList r;
  add_forward(r, dyDesc, dy, beta, dbDesc, db);
  return CALL(cudnnConvolutionBackwardBias, handle, r, alpha, dyDesc, dy, beta, dbDesc, db);
}

// y = act(alpha1*conv(x, w) + alpha2*z + bias). y is not blended with its
// prior contents (there is no beta): it is written only. z is the residual,
// read unless *alpha2 is zero (Note [cuDNN blending]); it may be y itself, in
// which case RangeList merges the two adjacent ranges into read|write. bias is 1 x K x 1 x 1,
// broadcast over y; the workspace is scratch as for cudnnConvolutionForward.
OVERSUB_EXPORT cudnnStatus_t cudnnConvolutionBiasActivationForward(
    cudnnHandle_t handle, const void* alpha1, const cudnnTensorDescriptor_t xDesc, const void* x,
    const cudnnFilterDescriptor_t wDesc, const void* w, const cudnnConvolutionDescriptor_t convDesc,
    cudnnConvolutionFwdAlgo_t algo, void* workSpace, size_t workSpaceSizeInBytes, const void* alpha2,
    const cudnnTensorDescriptor_t zDesc, const void* z, const cudnnTensorDescriptor_t biasDesc, const void* bias,
    const cudnnActivationDescriptor_t activationDesc, const cudnnTensorDescriptor_t yDesc, void* y) {
  NAME(cudnnConvolutionBiasActivationForward);
  RangeList r;
  add_input(r, xDesc, x);
  add_input(r, wDesc, w);
  add_workspace(r, workSpace, workSpaceSizeInBytes);
  add_input(r, biasDesc, bias);
  const Extent out = extent_of(yDesc);
  if (!host_zero(out.type, alpha2)) add_input(r, zDesc, z);
  add_extent(r, y, out, Access::write);  // right after z: RangeList merges neighbours only
  return CALL(cudnnConvolutionBiasActivationForward, handle, r, alpha1, xDesc, x, wDesc, w, convDesc, algo,
              workSpace, workSpaceSizeInBytes, alpha2, zDesc, z, biasDesc, bias, activationDesc, yDesc, y);
}

// ---- tensor arithmetic ----

// C = alpha*A + beta*C, A broadcast over C.
OVERSUB_EXPORT cudnnStatus_t cudnnAddTensor(cudnnHandle_t handle, const void* alpha,
                                            const cudnnTensorDescriptor_t aDesc, const void* A, const void* beta,
                                            const cudnnTensorDescriptor_t cDesc, void* C) {
  NAME(cudnnAddTensor);
  RangeList r;
  add_forward(r, aDesc, A, beta, cDesc, C);
  return CALL(cudnnAddTensor, handle, r, alpha, aDesc, A, beta, cDesc, C);
}

// C = op(alpha1*A, alpha2*B) + beta*C. C may alias A or B (cuDNN allows
// in-place); RangeList merges the identical span into read|write.
OVERSUB_EXPORT cudnnStatus_t cudnnOpTensor(cudnnHandle_t handle, const cudnnOpTensorDescriptor_t opTensorDesc,
                                           const void* alpha1, const cudnnTensorDescriptor_t aDesc, const void* A,
                                           const void* alpha2, const cudnnTensorDescriptor_t bDesc, const void* B,
                                           const void* beta, const cudnnTensorDescriptor_t cDesc, void* C) {
  NAME(cudnnOpTensor);
  RangeList r;
  add_input(r, bDesc, B);
  add_forward(r, aDesc, A, beta, cDesc, C);
  return CALL(cudnnOpTensor, handle, r, opTensorDesc, alpha1, aDesc, A, alpha2, bDesc, B, beta, cDesc, C);
}

// y = alpha*x + beta*y, between two layouts of the same extents.
OVERSUB_EXPORT cudnnStatus_t cudnnTransformTensor(cudnnHandle_t handle, const void* alpha,
                                                  const cudnnTensorDescriptor_t xDesc, const void* x,
                                                  const void* beta, const cudnnTensorDescriptor_t yDesc, void* y) {
  NAME(cudnnTransformTensor);
  RangeList r;
  add_forward(r, xDesc, x, beta, yDesc, y);
  return CALL(cudnnTransformTensor, handle, r, alpha, xDesc, x, beta, yDesc, y);
}

// y[i] = *valuePtr: written only.
OVERSUB_EXPORT cudnnStatus_t cudnnSetTensor(cudnnHandle_t handle, const cudnnTensorDescriptor_t yDesc, void* y,
                                            const void* valuePtr) {
  NAME(cudnnSetTensor);
  RangeList r;
  add_extent(r, y, extent_of(yDesc), Access::write);
  return CALL(cudnnSetTensor, handle, r, yDesc, y, valuePtr);
}

// y[i] = *alpha * y[i]: read and written, whatever alpha is.
OVERSUB_EXPORT cudnnStatus_t cudnnScaleTensor(cudnnHandle_t handle, const cudnnTensorDescriptor_t yDesc, void* y,
                                              const void* alpha) {
  NAME(cudnnScaleTensor);
  RangeList r;
  add_extent(r, y, extent_of(yDesc), Access::read_write);
  return CALL(cudnnScaleTensor, handle, r, yDesc, y, alpha);
}

// ---- activation, pooling, softmax ----

OVERSUB_EXPORT cudnnStatus_t cudnnActivationForward(cudnnHandle_t handle, cudnnActivationDescriptor_t activationDesc,
                                                    const void* alpha, const cudnnTensorDescriptor_t xDesc,
                                                    const void* x, const void* beta,
                                                    const cudnnTensorDescriptor_t yDesc, void* y) {
  NAME(cudnnActivationForward);
  RangeList r;
  add_forward(r, xDesc, x, beta, yDesc, y);
  return CALL(cudnnActivationForward, handle, r, activationDesc, alpha, xDesc, x, beta, yDesc, y);
}

OVERSUB_EXPORT cudnnStatus_t cudnnActivationBackward(cudnnHandle_t handle, cudnnActivationDescriptor_t activationDesc,
                                                     const void* alpha, const cudnnTensorDescriptor_t yDesc,
                                                     const void* y, const cudnnTensorDescriptor_t dyDesc,
                                                     const void* dy, const cudnnTensorDescriptor_t xDesc,
                                                     const void* x, const void* beta,
                                                     const cudnnTensorDescriptor_t dxDesc, void* dx) {
  NAME(cudnnActivationBackward);
  RangeList r;
  add_backward(r, yDesc, y, dyDesc, dy, xDesc, x, beta, dxDesc, dx);
  return CALL(cudnnActivationBackward, handle, r, activationDesc, alpha, yDesc, y, dyDesc, dy, xDesc, x, beta,
              dxDesc, dx);
}

OVERSUB_EXPORT cudnnStatus_t cudnnPoolingForward(cudnnHandle_t handle, const cudnnPoolingDescriptor_t poolingDesc,
                                                 const void* alpha, const cudnnTensorDescriptor_t xDesc,
                                                 const void* x, const void* beta,
                                                 const cudnnTensorDescriptor_t yDesc, void* y) {
  NAME(cudnnPoolingForward);
  RangeList r;
  add_forward(r, xDesc, x, beta, yDesc, y);
  return CALL(cudnnPoolingForward, handle, r, poolingDesc, alpha, xDesc, x, beta, yDesc, y);
}

OVERSUB_EXPORT cudnnStatus_t cudnnPoolingBackward(cudnnHandle_t handle, const cudnnPoolingDescriptor_t poolingDesc,
                                                  const void* alpha, const cudnnTensorDescriptor_t yDesc,
                                                  const void* y, const cudnnTensorDescriptor_t dyDesc,
                                                  const void* dy, const cudnnTensorDescriptor_t xDesc,
                                                  const void* x, const void* beta,
                                                  const cudnnTensorDescriptor_t dxDesc, void* dx) {
  NAME(cudnnPoolingBackward);
  RangeList r;
  add_backward(r, yDesc, y, dyDesc, dy, xDesc, x, beta, dxDesc, dx);
  return CALL(cudnnPoolingBackward, handle, r, poolingDesc, alpha, yDesc, y, dyDesc, dy, xDesc, x, beta, dxDesc,
              dx);
}

OVERSUB_EXPORT cudnnStatus_t cudnnSoftmaxForward(cudnnHandle_t handle, cudnnSoftmaxAlgorithm_t algo,
                                                 cudnnSoftmaxMode_t mode, const void* alpha,
                                                 const cudnnTensorDescriptor_t xDesc, const void* x,
                                                 const void* beta, const cudnnTensorDescriptor_t yDesc, void* y) {
  NAME(cudnnSoftmaxForward);
  RangeList r;
  add_forward(r, xDesc, x, beta, yDesc, y);
  return CALL(cudnnSoftmaxForward, handle, r, algo, mode, alpha, xDesc, x, beta, yDesc, y);
}

// The softmax gradient needs the forward output y and dy, not x.
OVERSUB_EXPORT cudnnStatus_t cudnnSoftmaxBackward(cudnnHandle_t handle, cudnnSoftmaxAlgorithm_t algo,
                                                  cudnnSoftmaxMode_t mode, const void* alpha,
                                                  const cudnnTensorDescriptor_t yDesc, const void* y,
                                                  const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                                  const void* beta, const cudnnTensorDescriptor_t dxDesc, void* dx) {
  NAME(cudnnSoftmaxBackward);
  RangeList r;
  add_backward(r, yDesc, y, dyDesc, dy, nullptr, nullptr, beta, dxDesc, dx);
  return CALL(cudnnSoftmaxBackward, handle, r, algo, mode, alpha, yDesc, y, dyDesc, dy, beta, dxDesc, dx);
}

// ---- batch normalization ----
// One descriptor (bnScaleBiasMeanVarDesc / dBnScaleBiasDesc) sizes every
// per-channel parameter: scale, bias, running and saved statistics. The
// running and saved buffers are optional (null means "not requested").

OVERSUB_EXPORT cudnnStatus_t cudnnBatchNormalizationForwardTraining(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void* alpha, const void* beta,
    const cudnnTensorDescriptor_t xDesc, const void* x, const cudnnTensorDescriptor_t yDesc, void* y,
    const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc, const void* bnScale, const void* bnBias,
    double exponentialAverageFactor, void* resultRunningMean, void* resultRunningVariance, double epsilon,
    void* resultSaveMean, void* resultSaveInvVariance) {
  NAME(cudnnBatchNormalizationForwardTraining);
  RangeList r;
  add_forward(r, xDesc, x, beta, yDesc, y);
  const Extent params = extent_of(bnScaleBiasMeanVarDesc);
  add_extent(r, bnScale, params, Access::read);
  add_extent(r, bnBias, params, Access::read);
  // running = factor*batch + (1-factor)*running: read, then written.
  add_extent(r, resultRunningMean, params, Access::read_write);
  add_extent(r, resultRunningVariance, params, Access::read_write);
  // Saved for the backward pass: written only.
  add_extent(r, resultSaveMean, params, Access::write);
  add_extent(r, resultSaveInvVariance, params, Access::write);
  return CALL(cudnnBatchNormalizationForwardTraining, handle, r, mode, alpha, beta, xDesc, x, yDesc, y,
              bnScaleBiasMeanVarDesc, bnScale, bnBias, exponentialAverageFactor, resultRunningMean,
              resultRunningVariance, epsilon, resultSaveMean, resultSaveInvVariance);
}

OVERSUB_EXPORT cudnnStatus_t cudnnBatchNormalizationForwardInference(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void* alpha, const void* beta,
    const cudnnTensorDescriptor_t xDesc, const void* x, const cudnnTensorDescriptor_t yDesc, void* y,
    const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc, const void* bnScale, const void* bnBias,
    const void* estimatedMean, const void* estimatedVariance, double epsilon) {
  NAME(cudnnBatchNormalizationForwardInference);
  RangeList r;
  add_forward(r, xDesc, x, beta, yDesc, y);
  const Extent params = extent_of(bnScaleBiasMeanVarDesc);
  for (const void* p : {bnScale, bnBias, estimatedMean, estimatedVariance}) add_extent(r, p, params, Access::read);
  return CALL(cudnnBatchNormalizationForwardInference, handle, r, mode, alpha, beta, xDesc, x, yDesc, y,
              bnScaleBiasMeanVarDesc, bnScale, bnBias, estimatedMean, estimatedVariance, epsilon);
}

// cuDNN's legacy "backward training" pass. dx blends with betaDataDiff,
// dScale/dBias with betaParamDiff (Note [cuDNN blending]); the saved
// statistics from the forward pass are read when given.
OVERSUB_EXPORT cudnnStatus_t cudnnBatchNormalizationBackward(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void* alphaDataDiff, const void* betaDataDiff,
    const void* alphaParamDiff, const void* betaParamDiff, const cudnnTensorDescriptor_t xDesc, const void* x,
    const cudnnTensorDescriptor_t dyDesc, const void* dy, const cudnnTensorDescriptor_t dxDesc, void* dx,
    const cudnnTensorDescriptor_t dBnScaleBiasDesc, const void* bnScale, void* dBnScaleResult, void* dBnBiasResult,
    double epsilon, const void* savedMean, const void* savedInvVariance) {
  NAME(cudnnBatchNormalizationBackward);
  RangeList r;
  add_backward(r, nullptr, nullptr, dyDesc, dy, xDesc, x, betaDataDiff, dxDesc, dx);
  const Extent params = extent_of(dBnScaleBiasDesc);
  for (const void* p : {bnScale, savedMean, savedInvVariance}) add_extent(r, p, params, Access::read);
  const Access param_out = blend_access(params.type, betaParamDiff);
  add_extent(r, dBnScaleResult, params, param_out);
  add_extent(r, dBnBiasResult, params, param_out);
  return CALL(cudnnBatchNormalizationBackward, handle, r, mode, alphaDataDiff, betaDataDiff, alphaParamDiff,
              betaParamDiff, xDesc, x, dyDesc, dy, dxDesc, dx, dBnScaleBiasDesc, bnScale, dBnScaleResult,
              dBnBiasResult, epsilon, savedMean, savedInvVariance);
}

// ---- graph API ----

namespace {

// Note [Variant pack]
// cuDNN v9 graphs run through cudnnBackendExecute; the variant pack holds the
// device pointers of the graph's tensors (CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS)
// and the workspace, but not their sizes (those sit in the operation graph's
// tensor descriptors, several descriptors away). So each data pointer counts
// as its whole tracked allocation, read and written. The workspace size is on
// the plan (CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE), so that range is exact.
// cudnnBackendGetAttribute with requestedElementCount 0 reports the count.
void add_variant_pack(RangeList& r, cudnnBackendDescriptor_t plan, cudnnBackendDescriptor_t pack) {
  const auto get = real_cudnn().backend_get_attribute;
  if (get == nullptr) return;
  std::int64_t count = 0;
  if (get(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 0, &count, nullptr) ==
      CUDNN_STATUS_SUCCESS) {
    // More pointers than RangeList holds would overflow it anyway.
    void* pointers[RangeList::kCapacity] = {};
    const std::int64_t wanted = std::clamp<std::int64_t>(count, 0, std::int64_t(RangeList::kCapacity));
    if (wanted > 0 && get(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, wanted, &count,
                          pointers) == CUDNN_STATUS_SUCCESS) {
      for (std::int64_t i = 0; i < std::min(count, wanted); ++i)
        if (pointers[i] != nullptr)
          add_allocation_range(r, reinterpret_cast<std::uint64_t>(pointers[i]), Access::read_write);
    }
  }
  void* workspace = nullptr;
  if (get(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &count, &workspace) !=
          CUDNN_STATUS_SUCCESS ||
      workspace == nullptr)
    return;
  std::int64_t workspace_bytes = 0;
  if (get(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &count, &workspace_bytes) ==
      CUDNN_STATUS_SUCCESS)
    add_workspace(r, workspace, static_cast<std::size_t>(std::max<std::int64_t>(workspace_bytes, 0)));
  else
    add_allocation_range(r, reinterpret_cast<std::uint64_t>(workspace), Access::read_write);
}

}  // namespace

OVERSUB_EXPORT cudnnStatus_t cudnnBackendExecute(cudnnHandle_t handle, cudnnBackendDescriptor_t executionPlan,
                                                 cudnnBackendDescriptor_t variantPack) {
  NAME(cudnnBackendExecute);
  RangeList r;
  add_variant_pack(r, executionPlan, variantPack);
  return CALL(cudnnBackendExecute, handle, r, executionPlan, variantPack);
}
