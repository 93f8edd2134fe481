// kernels.h — every kernel of the simulated libcudnn, its parameter block and its CPU body.
//
// Note [Kernel parameter blocks]
// A real cuDNN kernel takes its pointers and shapes as kernel parameters, laid out in C order with
// each parameter at its natural alignment; cuFuncGetParamInfo reports that layout. We declare each
// kernel's parameters once, with SIMCUDNN_PARAMS: the macro defines a C struct with those members
// (so offsetof gives the exact C layout), the simcuda_param table built from offsetof/sizeof that
// goes into the module image, and kernel_args(), the kernelParams array cuLaunchKernel reads.
// The three cannot drift apart because they come from one list. Shapes travel as structs passed
// by value (TensorView, ConvShape, PoolShape), as they do in real kernels.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <cudnn.h>

#include "simcuda/image.h"

namespace simcudnn {

// A tensor as kernels see it: 5 extents and element strides. Lower-rank tensors are padded with
// trailing extents of 1; a broadcast operand has stride 0 where it is broadcast.
struct TensorView {
  int dims[5];
  int strides[5];
};

// A 2-d convolution: x is N×C×H×W (any strides), w is K×(C/groups)×R×S packed, y is N×K×OH×OW.
struct ConvShape {
  int n, c, h, w;
  int k, r, s;
  int oh, ow;
  int pad_h, pad_w, stride_h, stride_w, dil_h, dil_w;
  int groups;
  int flip;  // 1 for CUDNN_CONVOLUTION (filter flipped), 0 for cross-correlation
  int x_strides[4];
  int y_strides[4];
};

// A 2-d pooling window over N×C×H×W, with the strides of x, y, dy and dx.
struct PoolShape {
  int mode;  // cudnnPoolingMode_t
  int n, c, h, w, oh, ow;
  int win_h, win_w, pad_h, pad_w, stride_h, stride_w;
  int x_strides[4], y_strides[4], dy_strides[4], dx_strides[4];
};

template <class P>
struct ParamLayout;

#define SIMCUDNN_FIELD(type, name) type name;
#define SIMCUDNN_LAYOUT(type, name) \
  simcuda_param{static_cast<std::uint32_t>(offsetof(Self, name)), static_cast<std::uint32_t>(sizeof(type))},
#define SIMCUDNN_ARG(type, name) static_cast<void*>(&p.name),
#define SIMCUDNN_PARAMS(Name, FIELDS)                                        \
  struct Name {                                                              \
    FIELDS(SIMCUDNN_FIELD)                                                   \
  };                                                                         \
  template <>                                                                \
  struct ParamLayout<Name> {                                                 \
    using Self = Name;                                                       \
    static constexpr simcuda_param entries[] = {FIELDS(SIMCUDNN_LAYOUT)};    \
  };                                                                         \
  inline auto kernel_args(Name& p) { return std::array{FIELDS(SIMCUDNN_ARG)}; }

// conv_fwd(ConvShape, const float* x, const float* w, float* y, float* workspace, float alpha, float beta)
#define SIMCUDNN_CONV_FWD(X) \
  X(ConvShape, shape) X(const float*, x) X(const float*, w) X(float*, y) X(float*, workspace) X(float, alpha) X(float, beta)
SIMCUDNN_PARAMS(ConvFwdParams, SIMCUDNN_CONV_FWD)

#define SIMCUDNN_CONV_BWD_DATA(X) \
  X(ConvShape, shape) X(const float*, w) X(const float*, dy) X(float*, dx) X(float*, workspace) X(float, alpha) X(float, beta)
SIMCUDNN_PARAMS(ConvBwdDataParams, SIMCUDNN_CONV_BWD_DATA)

#define SIMCUDNN_CONV_BWD_FILTER(X) \
  X(ConvShape, shape) X(const float*, x) X(const float*, dy) X(float*, dw) X(float*, workspace) X(float, alpha) X(float, beta)
SIMCUDNN_PARAMS(ConvBwdFilterParams, SIMCUDNN_CONV_BWD_FILTER)

// Reduces dy over every dimension but 1 into db (bias gradient).
#define SIMCUDNN_CONV_BWD_BIAS(X) \
  X(TensorView, dy_view) X(TensorView, db_view) X(const float*, dy) X(float*, db) X(float, alpha) X(float, beta)
SIMCUDNN_PARAMS(ConvBwdBiasParams, SIMCUDNN_CONV_BWD_BIAS)

// y = alpha * op(alpha1 * a, alpha2 * b) + beta * y over y's extents; op is one of PointwiseOp.
#define SIMCUDNN_POINTWISE(X)                                                                       \
  X(int, op) X(TensorView, a_view) X(TensorView, b_view) X(TensorView, y_view) X(const float*, a) \
      X(const float*, b) X(float*, y) X(float, alpha1) X(float, alpha2) X(float, beta)
SIMCUDNN_PARAMS(PointwiseParams, SIMCUDNN_POINTWISE)

// The activation forward/backward kernels: mode is cudnnActivationMode_t; `out` is y forward, dx backward.
#define SIMCUDNN_ACTIVATION(X)                                                                   \
  X(int, mode) X(double, coef) X(double, swish_beta) X(TensorView, x_view) X(TensorView, y_view) \
      X(TensorView, dy_view) X(TensorView, out_view) X(const float*, x) X(const float*, y)       \
      X(const float*, dy) X(float*, out) X(float, alpha) X(float, beta)
SIMCUDNN_PARAMS(ActivationParams, SIMCUDNN_ACTIVATION)

#define SIMCUDNN_POOLING(X)                                                                          \
  X(PoolShape, shape) X(const float*, x) X(const float*, y) X(const float*, dy) X(float*, out) \
      X(float, alpha) X(float, beta)
SIMCUDNN_PARAMS(PoolingParams, SIMCUDNN_POOLING)

#define SIMCUDNN_SOFTMAX(X)                                                                        \
  X(int, algo) X(int, mode) X(TensorView, in_view) X(TensorView, dy_view) X(TensorView, out_view) \
      X(const float*, in) X(const float*, dy) X(float*, out) X(float, alpha) X(float, beta)
SIMCUDNN_PARAMS(SoftmaxParams, SIMCUDNN_SOFTMAX)

// Batch normalization. param_view indexes scale/bias/mean/var: stride 0 in the dimensions a
// parameter is shared across (N always; the spatial ones too in spatial mode).
#define SIMCUDNN_BN_FWD_TRAIN(X)                                                                      \
  X(int, spatial) X(TensorView, x_view) X(TensorView, y_view) X(TensorView, param_view)              \
      X(const float*, x) X(float*, y) X(const float*, scale) X(const float*, bias) X(float*, running_mean) \
      X(float*, running_var) X(float*, save_mean) X(float*, save_inv_var) X(double, factor)        \
      X(double, epsilon) X(float, alpha) X(float, beta)
SIMCUDNN_PARAMS(BnFwdTrainParams, SIMCUDNN_BN_FWD_TRAIN)

#define SIMCUDNN_BN_FWD_INFER(X)                                                                      \
  X(TensorView, x_view) X(TensorView, y_view) X(TensorView, param_view) X(const float*, x) X(float*, y) \
      X(const float*, scale) X(const float*, bias) X(const float*, mean) X(const float*, var)        \
      X(double, epsilon) X(float, alpha) X(float, beta)
SIMCUDNN_PARAMS(BnFwdInferParams, SIMCUDNN_BN_FWD_INFER)

#define SIMCUDNN_BN_BWD(X)                                                                           \
  X(int, spatial) X(TensorView, x_view) X(TensorView, dy_view) X(TensorView, dx_view)                \
      X(TensorView, param_view) X(const float*, x) X(const float*, dy) X(float*, dx)                 \
      X(const float*, scale) X(float*, dscale) X(float*, dbias) X(const float*, saved_mean)          \
      X(const float*, saved_inv_var) X(double, epsilon) X(float, alpha_data) X(float, beta_data) \
      X(float, alpha_param) X(float, beta_param)
SIMCUDNN_PARAMS(BnBwdParams, SIMCUDNN_BN_BWD)

enum PointwiseOp : int {
  kOpAdd = CUDNN_OP_TENSOR_ADD,
  kOpMul = CUDNN_OP_TENSOR_MUL,
  kOpMin = CUDNN_OP_TENSOR_MIN,
  kOpMax = CUDNN_OP_TENSOR_MAX,
  kOpSqrt = CUDNN_OP_TENSOR_SQRT,
  kOpNot = CUDNN_OP_TENSOR_NOT,
  kOpSet = 100,    // y = alpha1 (cudnnSetTensor: every element, y not read)
  kOpScale = 101,  // y = alpha1 * y (cudnnScaleTensor)
  kOpCopy = 102,   // y = alpha1 * a + beta * y (cudnnAddTensor, cudnnTransformTensor)
};

// X(id, device name, params type, body). Names follow cuDNN's own kernel naming style.
#define SIMCUDNN_KERNELS(X)                                                              \
  X(conv_fwd_implicit, "simcudnn_conv2d_fwd_implicit_gemm", ConvFwdParams, run_conv_fwd_implicit) \
  X(conv_fwd_im2col, "simcudnn_conv2d_fwd_im2col_gemm", ConvFwdParams, run_conv_fwd_im2col)       \
  X(conv_bwd_data_direct, "simcudnn_conv2d_dgrad_direct", ConvBwdDataParams, run_conv_bwd_data_direct) \
  X(conv_bwd_data_gemm, "simcudnn_conv2d_dgrad_gemm_col2im", ConvBwdDataParams, run_conv_bwd_data_gemm) \
  X(conv_bwd_filter_direct, "simcudnn_conv2d_wgrad_direct", ConvBwdFilterParams, run_conv_bwd_filter_direct) \
  X(conv_bwd_filter_gemm, "simcudnn_conv2d_wgrad_im2col_gemm", ConvBwdFilterParams, run_conv_bwd_filter_gemm) \
  X(conv_bwd_bias, "simcudnn_bgrad_reduce", ConvBwdBiasParams, run_conv_bwd_bias)                 \
  X(pointwise, "simcudnn_op_tensor", PointwiseParams, run_pointwise)                            \
  X(activation_fwd, "simcudnn_activation_fwd", ActivationParams, run_activation_fwd)            \
  X(activation_bwd, "simcudnn_activation_bwd", ActivationParams, run_activation_bwd)            \
  X(pooling_fwd, "simcudnn_pooling2d_fwd", PoolingParams, run_pooling_fwd)                      \
  X(pooling_bwd, "simcudnn_pooling2d_bwd", PoolingParams, run_pooling_bwd)                      \
  X(softmax_fwd, "simcudnn_softmax_fwd", SoftmaxParams, run_softmax_fwd)                        \
  X(softmax_bwd, "simcudnn_softmax_bwd", SoftmaxParams, run_softmax_bwd)                        \
  X(bn_fwd_train, "simcudnn_bn_fwd_training", BnFwdTrainParams, run_bn_fwd_train)               \
  X(bn_fwd_infer, "simcudnn_bn_fwd_inference", BnFwdInferParams, run_bn_fwd_infer)              \
  X(bn_bwd, "simcudnn_bn_bwd", BnBwdParams, run_bn_bwd)

enum class KernelId : int {
#define SIMCUDNN_KERNEL_ID(id, name, P, body) id,
  SIMCUDNN_KERNELS(SIMCUDNN_KERNEL_ID)
#undef SIMCUDNN_KERNEL_ID
      count
};

// The bodies (each defined in the file of its API family); they run on the stream's worker.
#define SIMCUDNN_KERNEL_BODY(id, name, P, body) void body(const P& p);
SIMCUDNN_KERNELS(SIMCUDNN_KERNEL_BODY)
#undef SIMCUDNN_KERNEL_BODY

template <KernelId>
struct KernelParams;
#define SIMCUDNN_KERNEL_PARAMS(id, name, P, body) \
  template <>                                     \
  struct KernelParams<KernelId::id> {             \
    using type = P;                               \
  };
SIMCUDNN_KERNELS(SIMCUDNN_KERNEL_PARAMS)
#undef SIMCUDNN_KERNEL_PARAMS

// Rebuilds the params struct from a packed parameter buffer (same offsets, by construction).
template <class P>
P unpack_params(const unsigned char* bytes) {
  P p;
  for (const simcuda_param& e : ParamLayout<P>::entries)
    std::memcpy(reinterpret_cast<unsigned char*>(&p) + e.offset_bytes, bytes + e.offset_bytes, e.size_bytes);
  return p;
}

// The image holding every kernel above (image.cpp).
const simcuda_image& kernel_image();
const char* kernel_name(KernelId id);

}  // namespace simcudnn
