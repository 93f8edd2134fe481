// conv.cpp — convolution entry points: algorithm queries, workspace sizes, forward, backward
// data, backward filter. Validation only; the math is queued (conv_kernels.cpp).
//
// Note [Simulated convolution algorithms]
// We report two algorithms per direction, the GEMM one first (it is "faster", with a workspace)
// so that programs taking perfResults[0] exercise a real workspace buffer:
//   forward:         FWD_ALGO_GEMM (im2col + sgemm, workspace) then FWD_ALGO_IMPLICIT_GEMM (none)
//   backward data:   BWD_DATA_ALGO_1 (sgemm + col2im, workspace) then BWD_DATA_ALGO_0 (none)
//   backward filter: BWD_FILTER_ALGO_1 (im2col + sgemm, workspace) then BWD_FILTER_ALGO_0 (none)
// Every other algorithm a program asks for runs the direct kernel and needs no workspace, except
// BWD_FILTER_ALGO_WINOGRAD, which cuDNN itself never implemented (NOT_SUPPORTED). All of ours are
// deterministic, so they report CUDNN_DETERMINISTIC.
#include <algorithm>

#include "conv.h"
#include "driver.h"
#include "simcudnn.h"

namespace simcudnn {
namespace {

void copy4(const int* from, int* to) { std::copy(from, from + 4, to); }

// Checks x (input), w, conv and y (output) against each other and describes them as a ConvShape.
cudnnStatus_t make_shape(const cudnnTensorStruct* x, const cudnnFilterStruct* w, const cudnnConvolutionStruct* conv,
                         const cudnnTensorStruct* y, ConvShape* out) {
  SIMCUDNN_REQUIRE(x && x->set && w && w->set && conv && conv->set && y && y->set, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_TRY(require_float(x));
  SIMCUDNN_TRY(require_float(y));
  SIMCUDNN_REQUIRE(w->type == CUDNN_DATA_FLOAT, CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE);
  // NOT_SUPPORTED: only 2-d convolutions have simulated kernels (3-d ones are rare in our workloads).
  SIMCUDNN_REQUIRE(x->nb_dims == 4 && conv->spatial_dims == 2, CUDNN_STATUS_NOT_SUPPORTED_SHAPE);
  // NOT_SUPPORTED: the kernels read the filter as packed K×C×R×S; NHWC filters have no kernel.
  SIMCUDNN_REQUIRE(w->format == CUDNN_TENSOR_NCHW, CUDNN_STATUS_NOT_SUPPORTED_LAYOUT);
  // NOT_SUPPORTED: fp32 data is computed in fp32 only (no fp16/bf16 accumulation, no double).
  SIMCUDNN_REQUIRE(conv->compute_type == CUDNN_DATA_FLOAT, CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE);
  SIMCUDNN_REQUIRE(w->dims[0] % conv->groups == 0, CUDNN_STATUS_BAD_PARAM);
  int dims[4];
  SIMCUDNN_TRY(conv_output_dims(conv, x, w, 4, dims));
  for (int i = 0; i < 4; ++i) SIMCUDNN_REQUIRE(y->dims[i] == dims[i], CUDNN_STATUS_BAD_PARAM);
  ConvShape& s = *out;
  s.n = x->dims[0];
  s.c = x->dims[1];
  s.h = x->dims[2];
  s.w = x->dims[3];
  s.k = w->dims[0];
  s.r = w->dims[2];
  s.s = w->dims[3];
  s.oh = dims[2];
  s.ow = dims[3];
  s.pad_h = conv->pad[0];
  s.pad_w = conv->pad[1];
  s.stride_h = conv->stride[0];
  s.stride_w = conv->stride[1];
  s.dil_h = conv->dilation[0];
  s.dil_w = conv->dilation[1];
  s.groups = conv->groups;
  s.flip = conv->mode == CUDNN_CONVOLUTION ? 1 : 0;
  copy4(x->strides, s.x_strides);
  copy4(y->strides, s.y_strides);
  return CUDNN_STATUS_SUCCESS;
}

enum class Direction { forward, backward_data, backward_filter };

// Whether `algo` uses the GEMM kernel (and so a workspace) for this direction.
bool uses_gemm(Direction d, int algo) {
  switch (d) {
    case Direction::forward: return algo == CUDNN_CONVOLUTION_FWD_ALGO_GEMM;
    case Direction::backward_data: return algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    case Direction::backward_filter: return algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
  }
  return false;
}

cudnnStatus_t check_algo(Direction d, int algo) {
  const int count = d == Direction::forward         ? int{CUDNN_CONVOLUTION_FWD_ALGO_COUNT}
                    : d == Direction::backward_data ? int{CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT}
                                                    : int{CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT};
  SIMCUDNN_REQUIRE(algo >= 0 && algo < count, CUDNN_STATUS_BAD_PARAM);
  // The real library rejects backward-filter Winograd with CUDNN_STATUS_NOT_SUPPORTED
  // (its documentation lists the algorithm as not implemented); we answer the same.
  SIMCUDNN_REQUIRE(!(d == Direction::backward_filter && algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD),
                   CUDNN_STATUS_NOT_SUPPORTED);
  return CUDNN_STATUS_SUCCESS;
}

std::size_t workspace_bytes(Direction d, int algo, const ConvShape& s) {
  if (!uses_gemm(d, algo)) return 0;
  switch (d) {
    case Direction::forward: return fwd_gemm_workspace_bytes(s);
    case Direction::backward_data: return bwd_data_gemm_workspace_bytes(s);
    case Direction::backward_filter: return bwd_filter_gemm_workspace_bytes(s);
  }
  return 0;
}

// Fills perf results for Get*_v7 and Find*: see Note [Simulated convolution algorithms].
template <class Perf>
cudnnStatus_t report(Direction d, const ConvShape& s, cudnnMathType_t math, int requested, int* returned,
                     Perf* perf) {
  SIMCUDNN_REQUIRE(requested > 0 && returned != nullptr && perf != nullptr, CUDNN_STATUS_BAD_PARAM);
  using Algo = decltype(perf->algo);
  const Algo algos[2] = {
      static_cast<Algo>(d == Direction::forward ? int{CUDNN_CONVOLUTION_FWD_ALGO_GEMM} : 1),
      static_cast<Algo>(d == Direction::forward ? int{CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM} : 0)};
  const float time_ms[2] = {0.5f, 1.0f};  // nominal: only the order matters
  const int n = std::min(requested, 2);
  for (int i = 0; i < n; ++i) {
    perf[i] = Perf{};
    perf[i].algo = algos[i];
    perf[i].status = CUDNN_STATUS_SUCCESS;
    perf[i].time = time_ms[i];
    perf[i].memory = workspace_bytes(d, algos[i], s);
    perf[i].determinism = CUDNN_DETERMINISTIC;
    perf[i].mathType = math;
  }
  *returned = n;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t check_workspace(Direction d, int algo, const ConvShape& s, const void* ws, std::size_t ws_bytes) {
  const std::size_t need = workspace_bytes(d, algo, s);
  SIMCUDNN_REQUIRE(ws_bytes >= need && (need == 0 || ws != nullptr), CUDNN_STATUS_BAD_PARAM);
  return CUDNN_STATUS_SUCCESS;
}

}  // namespace
}  // namespace simcudnn

using namespace simcudnn;

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetConvolutionForwardAlgorithmMaxCount(cudnnHandle_t handle, int* count) {
  SIMCUDNN_REQUIRE(handle != nullptr && count != nullptr, CUDNN_STATUS_BAD_PARAM);
  *count = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
  return CUDNN_STATUS_SUCCESS;
}
SIMCUDNN_EXPORT cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithmMaxCount(cudnnHandle_t handle, int* count) {
  SIMCUDNN_REQUIRE(handle != nullptr && count != nullptr, CUDNN_STATUS_BAD_PARAM);
  *count = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
  return CUDNN_STATUS_SUCCESS;
}
SIMCUDNN_EXPORT cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(cudnnHandle_t handle, int* count) {
  SIMCUDNN_REQUIRE(handle != nullptr && count != nullptr, CUDNN_STATUS_BAD_PARAM);
  *count = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t x, const cudnnFilterDescriptor_t w,
    const cudnnConvolutionDescriptor_t conv, const cudnnTensorDescriptor_t y, const int requested, int* returned,
    cudnnConvolutionFwdAlgoPerf_t* perf) {
  SIMCUDNN_REQUIRE(handle != nullptr, CUDNN_STATUS_BAD_PARAM);
  ConvShape s;
  SIMCUDNN_TRY(make_shape(x, w, conv, y, &s));
  return report(Direction::forward, s, conv->math_type, requested, returned, perf);
}

// Find* would time each algorithm on the device; ours have fixed nominal costs, so it agrees with
// the heuristic and, like the real one, leaves no work behind.
SIMCUDNN_EXPORT cudnnStatus_t cudnnFindConvolutionForwardAlgorithm(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t x, const cudnnFilterDescriptor_t w,
    const cudnnConvolutionDescriptor_t conv, const cudnnTensorDescriptor_t y, const int requested, int* returned,
    cudnnConvolutionFwdAlgoPerf_t* perf) {
  return cudnnGetConvolutionForwardAlgorithm_v7(handle, x, w, conv, y, requested, returned, perf);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t w, const cudnnTensorDescriptor_t dy,
    const cudnnConvolutionDescriptor_t conv, const cudnnTensorDescriptor_t dx, const int requested, int* returned,
    cudnnConvolutionBwdDataAlgoPerf_t* perf) {
  SIMCUDNN_REQUIRE(handle != nullptr, CUDNN_STATUS_BAD_PARAM);
  ConvShape s;
  SIMCUDNN_TRY(make_shape(dx, w, conv, dy, &s));
  return report(Direction::backward_data, s, conv->math_type, requested, returned, perf);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithm(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t w, const cudnnTensorDescriptor_t dy,
    const cudnnConvolutionDescriptor_t conv, const cudnnTensorDescriptor_t dx, const int requested, int* returned,
    cudnnConvolutionBwdDataAlgoPerf_t* perf) {
  return cudnnGetConvolutionBackwardDataAlgorithm_v7(handle, w, dy, conv, dx, requested, returned, perf);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t x, const cudnnTensorDescriptor_t dy,
    const cudnnConvolutionDescriptor_t conv, const cudnnFilterDescriptor_t dw, const int requested, int* returned,
    cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
  SIMCUDNN_REQUIRE(handle != nullptr, CUDNN_STATUS_BAD_PARAM);
  ConvShape s;
  SIMCUDNN_TRY(make_shape(x, dw, conv, dy, &s));
  return report(Direction::backward_filter, s, conv->math_type, requested, returned, perf);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithm(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t x, const cudnnTensorDescriptor_t dy,
    const cudnnConvolutionDescriptor_t conv, const cudnnFilterDescriptor_t dw, const int requested, int* returned,
    cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
  return cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle, x, dy, conv, dw, requested, returned, perf);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t handle,
                                                                     const cudnnTensorDescriptor_t x,
                                                                     const cudnnFilterDescriptor_t w,
                                                                     const cudnnConvolutionDescriptor_t conv,
                                                                     const cudnnTensorDescriptor_t y,
                                                                     cudnnConvolutionFwdAlgo_t algo, size_t* bytes) {
  SIMCUDNN_REQUIRE(handle != nullptr && bytes != nullptr, CUDNN_STATUS_BAD_PARAM);
  ConvShape s;
  SIMCUDNN_TRY(make_shape(x, w, conv, y, &s));
  SIMCUDNN_TRY(check_algo(Direction::forward, algo));
  *bytes = workspace_bytes(Direction::forward, algo, s);
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t w, const cudnnTensorDescriptor_t dy,
    const cudnnConvolutionDescriptor_t conv, const cudnnTensorDescriptor_t dx, cudnnConvolutionBwdDataAlgo_t algo,
    size_t* bytes) {
  SIMCUDNN_REQUIRE(handle != nullptr && bytes != nullptr, CUDNN_STATUS_BAD_PARAM);
  ConvShape s;
  SIMCUDNN_TRY(make_shape(dx, w, conv, dy, &s));
  SIMCUDNN_TRY(check_algo(Direction::backward_data, algo));
  *bytes = workspace_bytes(Direction::backward_data, algo, s);
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t x, const cudnnTensorDescriptor_t dy,
    const cudnnConvolutionDescriptor_t conv, const cudnnFilterDescriptor_t dw, cudnnConvolutionBwdFilterAlgo_t algo,
    size_t* bytes) {
  SIMCUDNN_REQUIRE(handle != nullptr && bytes != nullptr, CUDNN_STATUS_BAD_PARAM);
  ConvShape s;
  SIMCUDNN_TRY(make_shape(x, dw, conv, dy, &s));
  SIMCUDNN_TRY(check_algo(Direction::backward_filter, algo));
  *bytes = workspace_bytes(Direction::backward_filter, algo, s);
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void* alpha,
                                                      const cudnnTensorDescriptor_t x_desc, const void* x,
                                                      const cudnnFilterDescriptor_t w_desc, const void* w,
                                                      const cudnnConvolutionDescriptor_t conv,
                                                      cudnnConvolutionFwdAlgo_t algo, void* ws, size_t ws_bytes,
                                                      const void* beta, const cudnnTensorDescriptor_t y_desc,
                                                      void* y) {
  SIMCUDNN_REQUIRE(handle && alpha && beta && x && w && y, CUDNN_STATUS_BAD_PARAM);
  ConvFwdParams p{};
  SIMCUDNN_TRY(make_shape(x_desc, w_desc, conv, y_desc, &p.shape));
  SIMCUDNN_TRY(check_algo(Direction::forward, algo));
  SIMCUDNN_TRY(check_workspace(Direction::forward, algo, p.shape, ws, ws_bytes));
  p.x = static_cast<const float*>(x);
  p.w = static_cast<const float*>(w);
  p.y = static_cast<float*>(y);
  p.workspace = static_cast<float*>(ws);
  p.alpha = host_scalar(alpha);
  p.beta = host_scalar(beta);
  if (uses_gemm(Direction::forward, algo)) return launch<KernelId::conv_fwd_im2col>(handle, p);
  return launch<KernelId::conv_fwd_implicit>(handle, p);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void* alpha,
                                                           const cudnnFilterDescriptor_t w_desc, const void* w,
                                                           const cudnnTensorDescriptor_t dy_desc, const void* dy,
                                                           const cudnnConvolutionDescriptor_t conv,
                                                           cudnnConvolutionBwdDataAlgo_t algo, void* ws,
                                                           size_t ws_bytes, const void* beta,
                                                           const cudnnTensorDescriptor_t dx_desc, void* dx) {
  SIMCUDNN_REQUIRE(handle && alpha && beta && w && dy && dx, CUDNN_STATUS_BAD_PARAM);
  ConvBwdDataParams p{};
  SIMCUDNN_TRY(make_shape(dx_desc, w_desc, conv, dy_desc, &p.shape));
  SIMCUDNN_TRY(check_algo(Direction::backward_data, algo));
  SIMCUDNN_TRY(check_workspace(Direction::backward_data, algo, p.shape, ws, ws_bytes));
  p.w = static_cast<const float*>(w);
  p.dy = static_cast<const float*>(dy);
  p.dx = static_cast<float*>(dx);
  p.workspace = static_cast<float*>(ws);
  p.alpha = host_scalar(alpha);
  p.beta = host_scalar(beta);
  if (uses_gemm(Direction::backward_data, algo)) return launch<KernelId::conv_bwd_data_gemm>(handle, p);
  return launch<KernelId::conv_bwd_data_direct>(handle, p);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void* alpha,
                                                             const cudnnTensorDescriptor_t x_desc, const void* x,
                                                             const cudnnTensorDescriptor_t dy_desc, const void* dy,
                                                             const cudnnConvolutionDescriptor_t conv,
                                                             cudnnConvolutionBwdFilterAlgo_t algo, void* ws,
                                                             size_t ws_bytes, const void* beta,
                                                             const cudnnFilterDescriptor_t dw_desc, void* dw) {
  SIMCUDNN_REQUIRE(handle && alpha && beta && x && dy && dw, CUDNN_STATUS_BAD_PARAM);
  ConvBwdFilterParams p{};
  SIMCUDNN_TRY(make_shape(x_desc, dw_desc, conv, dy_desc, &p.shape));
  SIMCUDNN_TRY(check_algo(Direction::backward_filter, algo));
  SIMCUDNN_TRY(check_workspace(Direction::backward_filter, algo, p.shape, ws, ws_bytes));
  p.x = static_cast<const float*>(x);
  p.dy = static_cast<const float*>(dy);
  p.dw = static_cast<float*>(dw);
  p.workspace = static_cast<float*>(ws);
  p.alpha = host_scalar(alpha);
  p.beta = host_scalar(beta);
  if (uses_gemm(Direction::backward_filter, algo)) return launch<KernelId::conv_bwd_filter_gemm>(handle, p);
  return launch<KernelId::conv_bwd_filter_direct>(handle, p);
}

// y = act(alpha1 · conv(x) + alpha2 · z + bias), queued as the steps it is made of (each one a
// kernel on the handle's stream, so they run in order): z scaled into y, the convolution added
// on top, the bias added, the activation applied in place. Everything is validated first, so a
// rejected call queues nothing. z may be y itself (the residual-add-in-place idiom).
SIMCUDNN_EXPORT cudnnStatus_t cudnnConvolutionBiasActivationForward(
    cudnnHandle_t handle, const void* alpha1, const cudnnTensorDescriptor_t x_desc, const void* x,
    const cudnnFilterDescriptor_t w_desc, const void* w, const cudnnConvolutionDescriptor_t conv,
    cudnnConvolutionFwdAlgo_t algo, void* ws, size_t ws_bytes, const void* alpha2, const cudnnTensorDescriptor_t z_desc,
    const void* z, const cudnnTensorDescriptor_t bias_desc, const void* bias, const cudnnActivationDescriptor_t act,
    const cudnnTensorDescriptor_t y_desc, void* y) {
  SIMCUDNN_REQUIRE(handle && alpha1 && alpha2 && x && w && z && bias && y, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(act != nullptr && act->set, CUDNN_STATUS_BAD_PARAM);
  // cuDNN documents only RELU and IDENTITY (and CLIPPED_RELU) for the fused call.
  SIMCUDNN_REQUIRE(act->mode == CUDNN_ACTIVATION_RELU || act->mode == CUDNN_ACTIVATION_IDENTITY ||
                       act->mode == CUDNN_ACTIVATION_CLIPPED_RELU,
                   CUDNN_STATUS_NOT_SUPPORTED);
  ConvShape s;
  SIMCUDNN_TRY(make_shape(x_desc, w_desc, conv, y_desc, &s));
  SIMCUDNN_TRY(check_algo(Direction::forward, algo));
  SIMCUDNN_TRY(check_workspace(Direction::forward, algo, s, ws, ws_bytes));
  SIMCUDNN_TRY(require_float(z_desc));
  SIMCUDNN_TRY(require_float(bias_desc));
  SIMCUDNN_REQUIRE(same_dims(*z_desc, *y_desc), CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(bias_desc->nb_dims == 4 && bias_desc->dims[0] == 1 && bias_desc->dims[1] == s.k &&
                       bias_desc->dims[2] == 1 && bias_desc->dims[3] == 1,
                   CUDNN_STATUS_BAD_PARAM);
  const float one = 1.0f, zero = 0.0f;
  const bool add_z = host_scalar(alpha2) != 0.0f;
  // With z == y the convolution's own beta does the residual add; otherwise copy alpha2·z first.
  if (add_z && z != y) SIMCUDNN_TRY(cudnnTransformTensor(handle, alpha2, z_desc, z, &zero, y_desc, y));
  const void* conv_beta = !add_z ? &zero : z == y ? alpha2 : &one;
  SIMCUDNN_TRY(cudnnConvolutionForward(handle, alpha1, x_desc, x, w_desc, w, conv, algo, ws, ws_bytes, conv_beta,
                                       y_desc, y));
  SIMCUDNN_TRY(cudnnAddTensor(handle, &one, bias_desc, bias, &one, y_desc, y));
  if (act->mode == CUDNN_ACTIVATION_IDENTITY) return CUDNN_STATUS_SUCCESS;
  return cudnnActivationForward(handle, act, &one, y_desc, y, &zero, y_desc, y);
}
