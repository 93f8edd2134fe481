// conv_desc.cpp — convolution and pooling descriptors and their output-shape queries.
#include <algorithm>

#include "simcudnn.h"

namespace {

cudnnStatus_t set_conv(cudnnConvolutionDescriptor_t d, int spatial, const int* pad, const int* stride,
                       const int* dilation, cudnnConvolutionMode_t mode, cudnnDataType_t compute_type) {
  SIMCUDNN_REQUIRE(d != nullptr && pad != nullptr && stride != nullptr && dilation != nullptr, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(spatial >= 1 && spatial <= kMaxDims - 2, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(mode == CUDNN_CONVOLUTION || mode == CUDNN_CROSS_CORRELATION, CUDNN_STATUS_BAD_PARAM);
  for (int i = 0; i < spatial; ++i)
    SIMCUDNN_REQUIRE(pad[i] >= 0 && stride[i] > 0 && dilation[i] > 0, CUDNN_STATUS_BAD_PARAM);
  d->spatial_dims = spatial;
  std::copy(pad, pad + spatial, d->pad);
  std::copy(stride, stride + spatial, d->stride);
  std::copy(dilation, dilation + spatial, d->dilation);
  d->mode = mode;
  d->compute_type = compute_type;
  d->set = true;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t set_pooling(cudnnPoolingDescriptor_t d, cudnnPoolingMode_t mode, cudnnNanPropagation_t nan, int spatial,
                          const int* window, const int* pad, const int* stride) {
  SIMCUDNN_REQUIRE(d != nullptr && window != nullptr && pad != nullptr && stride != nullptr, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(spatial >= 1 && spatial <= kMaxDims - 2, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(mode >= CUDNN_POOLING_MAX && mode <= CUDNN_POOLING_MAX_DETERMINISTIC, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(nan == CUDNN_NOT_PROPAGATE_NAN || nan == CUDNN_PROPAGATE_NAN, CUDNN_STATUS_BAD_PARAM);
  for (int i = 0; i < spatial; ++i)
    SIMCUDNN_REQUIRE(window[i] > 0 && pad[i] >= 0 && stride[i] > 0, CUDNN_STATUS_BAD_PARAM);
  d->mode = mode;
  d->nan = nan;
  d->spatial_dims = spatial;
  std::copy(window, window + spatial, d->window);
  std::copy(pad, pad + spatial, d->pad);
  std::copy(stride, stride + spatial, d->stride);
  d->set = true;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t pooling_output_dims(const cudnnPoolingStruct* p, const cudnnTensorStruct* x, int nb_dims, int* out) {
  SIMCUDNN_REQUIRE(p && p->set && x && x->set && out, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(x->nb_dims == p->spatial_dims + 2 && nb_dims >= x->nb_dims, CUDNN_STATUS_BAD_PARAM);
  out[0] = x->dims[0];
  out[1] = x->dims[1];
  for (int i = 0; i < p->spatial_dims; ++i) {
    const int span = x->dims[i + 2] + 2 * p->pad[i] - p->window[i];
    SIMCUDNN_REQUIRE(span >= 0, CUDNN_STATUS_BAD_PARAM);
    out[i + 2] = 1 + span / p->stride[i];
  }
  return CUDNN_STATUS_SUCCESS;
}

}  // namespace

namespace simcudnn {

// The output extents of x convolved by w (N, K, then one per spatial dimension).
cudnnStatus_t conv_output_dims(const cudnnConvolutionStruct* conv, const cudnnTensorStruct* x,
                               const cudnnFilterStruct* w, int nb_dims, int* out) {
  SIMCUDNN_REQUIRE(conv && conv->set && x && x->set && w && w->set && out, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(x->nb_dims == w->nb_dims && x->nb_dims == conv->spatial_dims + 2, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(nb_dims >= x->nb_dims, CUDNN_STATUS_BAD_PARAM);
  // The filter's channel count is C / groups whatever its format: dims are always K, C, spatial.
  SIMCUDNN_REQUIRE(x->dims[1] == w->dims[1] * conv->groups, CUDNN_STATUS_BAD_PARAM);
  out[0] = x->dims[0];
  out[1] = w->dims[0];
  for (int i = 0; i < conv->spatial_dims; ++i) {
    const int extent = (w->dims[i + 2] - 1) * conv->dilation[i] + 1;
    const int span = x->dims[i + 2] + 2 * conv->pad[i] - extent;
    SIMCUDNN_REQUIRE(span >= 0, CUDNN_STATUS_BAD_PARAM);  // the filter does not fit the padded input
    out[i + 2] = 1 + span / conv->stride[i];
  }
  return CUDNN_STATUS_SUCCESS;
}

}  // namespace simcudnn

using namespace simcudnn;

SIMCUDNN_EXPORT cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* d) {
  SIMCUDNN_REQUIRE(d != nullptr, CUDNN_STATUS_BAD_PARAM);
  *d = new cudnnConvolutionStruct;
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) {
  delete d;
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t math) {
  SIMCUDNN_REQUIRE(d != nullptr && math >= CUDNN_DEFAULT_MATH && math <= CUDNN_FMA_MATH, CUDNN_STATUS_BAD_PARAM);
  d->math_type = math;  // recorded only: every simulated kernel computes in plain fp32
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t* math) {
  SIMCUDNN_REQUIRE(d != nullptr && math != nullptr, CUDNN_STATUS_BAD_PARAM);
  *math = d->math_type;
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int groups) {
  SIMCUDNN_REQUIRE(d != nullptr && groups >= 1, CUDNN_STATUS_BAD_PARAM);
  d->groups = groups;
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int* groups) {
  SIMCUDNN_REQUIRE(d != nullptr && groups != nullptr, CUDNN_STATUS_BAD_PARAM);
  *groups = d->groups;
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnSetConvolutionReorderType(cudnnConvolutionDescriptor_t d, cudnnReorderType_t r) {
  SIMCUDNN_REQUIRE(d != nullptr && (r == CUDNN_DEFAULT_REORDER || r == CUDNN_NO_REORDER), CUDNN_STATUS_BAD_PARAM);
  d->reorder = r;
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetConvolutionReorderType(cudnnConvolutionDescriptor_t d, cudnnReorderType_t* r) {
  SIMCUDNN_REQUIRE(d != nullptr && r != nullptr, CUDNN_STATUS_BAD_PARAM);
  *r = d->reorder;
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w,
                                                              int u, int v, int dilation_h, int dilation_w,
                                                              cudnnConvolutionMode_t mode,
                                                              cudnnDataType_t compute_type) {
  const int pad[2] = {pad_h, pad_w}, stride[2] = {u, v}, dilation[2] = {dilation_h, dilation_w};
  return set_conv(d, 2, pad, stride, dilation, mode, compute_type);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetConvolution2dDescriptor(const cudnnConvolutionDescriptor_t d, int* pad_h,
                                                              int* pad_w, int* u, int* v, int* dilation_h,
                                                              int* dilation_w, cudnnConvolutionMode_t* mode,
                                                              cudnnDataType_t* compute_type) {
  SIMCUDNN_REQUIRE(d != nullptr && d->set && d->spatial_dims == 2, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(pad_h && pad_w && u && v && dilation_h && dilation_w && mode && compute_type,
                   CUDNN_STATUS_BAD_PARAM);
  *pad_h = d->pad[0];
  *pad_w = d->pad[1];
  *u = d->stride[0];
  *v = d->stride[1];
  *dilation_h = d->dilation[0];
  *dilation_w = d->dilation[1];
  *mode = d->mode;
  *compute_type = d->compute_type;
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnSetConvolutionNdDescriptor(cudnnConvolutionDescriptor_t d, int length,
                                                              const int pad[], const int stride[],
                                                              const int dilation[], cudnnConvolutionMode_t mode,
                                                              cudnnDataType_t compute_type) {
  return set_conv(d, length, pad, stride, dilation, mode, compute_type);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetConvolutionNdDescriptor(const cudnnConvolutionDescriptor_t d, int requested,
                                                              int* length, int pad[], int stride[], int dilation[],
                                                              cudnnConvolutionMode_t* mode,
                                                              cudnnDataType_t* compute_type) {
  SIMCUDNN_REQUIRE(d != nullptr && d->set && requested >= 0 && length && mode && compute_type, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(requested == 0 || (pad && stride && dilation), CUDNN_STATUS_BAD_PARAM);
  *length = d->spatial_dims;
  for (int i = 0; i < std::min(requested, d->spatial_dims); ++i) {
    pad[i] = d->pad[i];
    stride[i] = d->stride[i];
    dilation[i] = d->dilation[i];
  }
  *mode = d->mode;
  *compute_type = d->compute_type;
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t conv,
                                                                    const cudnnTensorDescriptor_t x,
                                                                    const cudnnFilterDescriptor_t w, int* n, int* c,
                                                                    int* h, int* wo) {
  SIMCUDNN_REQUIRE(n && c && h && wo, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(conv != nullptr && conv->spatial_dims == 2, CUDNN_STATUS_BAD_PARAM);
  int out[4];
  SIMCUDNN_TRY(conv_output_dims(conv, x, w, 4, out));
  *n = out[0];
  *c = out[1];
  *h = out[2];
  *wo = out[3];
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetConvolutionNdForwardOutputDim(const cudnnConvolutionDescriptor_t conv,
                                                                    const cudnnTensorDescriptor_t x,
                                                                    const cudnnFilterDescriptor_t w, int nb_dims,
                                                                    int out[]) {
  return conv_output_dims(conv, x, w, nb_dims, out);
}

// ---- pooling ----

SIMCUDNN_EXPORT cudnnStatus_t cudnnCreatePoolingDescriptor(cudnnPoolingDescriptor_t* d) {
  SIMCUDNN_REQUIRE(d != nullptr, CUDNN_STATUS_BAD_PARAM);
  *d = new cudnnPoolingStruct;
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnDestroyPoolingDescriptor(cudnnPoolingDescriptor_t d) {
  delete d;
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnSetPooling2dDescriptor(cudnnPoolingDescriptor_t d, cudnnPoolingMode_t mode,
                                                          cudnnNanPropagation_t nan, int window_h, int window_w,
                                                          int pad_h, int pad_w, int stride_h, int stride_w) {
  const int window[2] = {window_h, window_w}, pad[2] = {pad_h, pad_w}, stride[2] = {stride_h, stride_w};
  return set_pooling(d, mode, nan, 2, window, pad, stride);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetPooling2dDescriptor(const cudnnPoolingDescriptor_t d, cudnnPoolingMode_t* mode,
                                                          cudnnNanPropagation_t* nan, int* window_h, int* window_w,
                                                          int* pad_h, int* pad_w, int* stride_h, int* stride_w) {
  SIMCUDNN_REQUIRE(d != nullptr && d->set && d->spatial_dims == 2, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(mode && nan && window_h && window_w && pad_h && pad_w && stride_h && stride_w,
                   CUDNN_STATUS_BAD_PARAM);
  *mode = d->mode;
  *nan = d->nan;
  *window_h = d->window[0];
  *window_w = d->window[1];
  *pad_h = d->pad[0];
  *pad_w = d->pad[1];
  *stride_h = d->stride[0];
  *stride_w = d->stride[1];
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnSetPoolingNdDescriptor(cudnnPoolingDescriptor_t d, const cudnnPoolingMode_t mode,
                                                          const cudnnNanPropagation_t nan, int nb_dims,
                                                          const int window[], const int pad[], const int stride[]) {
  return set_pooling(d, mode, nan, nb_dims, window, pad, stride);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetPoolingNdDescriptor(const cudnnPoolingDescriptor_t d, int requested,
                                                          cudnnPoolingMode_t* mode, cudnnNanPropagation_t* nan,
                                                          int* nb_dims, int window[], int pad[], int stride[]) {
  SIMCUDNN_REQUIRE(d != nullptr && d->set && requested >= 0 && mode && nan && nb_dims, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(requested == 0 || (window && pad && stride), CUDNN_STATUS_BAD_PARAM);
  *mode = d->mode;
  *nan = d->nan;
  *nb_dims = d->spatial_dims;
  for (int i = 0; i < std::min(requested, d->spatial_dims); ++i) {
    window[i] = d->window[i];
    pad[i] = d->pad[i];
    stride[i] = d->stride[i];
  }
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetPoolingNdForwardOutputDim(const cudnnPoolingDescriptor_t d,
                                                                const cudnnTensorDescriptor_t x, int nb_dims,
                                                                int out[]) {
  return pooling_output_dims(d, x, nb_dims, out);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetPooling2dForwardOutputDim(const cudnnPoolingDescriptor_t d,
                                                                const cudnnTensorDescriptor_t x, int* n, int* c,
                                                                int* h, int* w) {
  SIMCUDNN_REQUIRE(n && c && h && w && d != nullptr && d->spatial_dims == 2, CUDNN_STATUS_BAD_PARAM);
  int out[4];
  SIMCUDNN_TRY(pooling_output_dims(d, x, 4, out));
  *n = out[0];
  *c = out[1];
  *h = out[2];
  *w = out[3];
  return CUDNN_STATUS_SUCCESS;
}
