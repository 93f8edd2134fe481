// tensor_ops.cpp — cudnnAddTensor, cudnnOpTensor, cudnnSetTensor, cudnnScaleTensor,
// cudnnTransformTensor and cudnnConvolutionBackwardBias, with their kernels.
#include <cmath>

#include "driver.h"
#include "views.h"

namespace simcudnn {

cudnnStatus_t view_of(const cudnnTensorStruct* t, TensorView* v) {
  SIMCUDNN_REQUIRE(t != nullptr && t->set, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(t->nb_dims <= 5, CUDNN_STATUS_NOT_SUPPORTED_SHAPE);
  for (int i = 0; i < 5; ++i) {
    v->dims[i] = i < t->nb_dims ? t->dims[i] : 1;
    v->strides[i] = i < t->nb_dims ? t->strides[i] : 0;
  }
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t broadcast_view(const cudnnTensorStruct* operand, const cudnnTensorStruct* target, TensorView* v) {
  SIMCUDNN_TRY(view_of(operand, v));
  SIMCUDNN_REQUIRE(target != nullptr && target->set && operand->nb_dims == target->nb_dims, CUDNN_STATUS_BAD_PARAM);
  for (int i = 0; i < operand->nb_dims; ++i) {
    if (operand->dims[i] == target->dims[i]) continue;
    SIMCUDNN_REQUIRE(operand->dims[i] == 1, CUDNN_STATUS_BAD_PARAM);
    v->dims[i] = target->dims[i];
    v->strides[i] = 0;
  }
  return CUDNN_STATUS_SUCCESS;
}

void run_pointwise(const PointwiseParams& p) {
  for_each_index(p.y_view.dims, [&](const int* i) {
    float* y = p.y + offset_of(p.y_view, i);
    switch (p.op) {
      case kOpSet: *y = p.alpha1; return;
      case kOpScale: *y = p.alpha1 * *y; return;
      case kOpCopy: blend(y, p.a[offset_of(p.a_view, i)], p.alpha1, p.beta); return;
      default: break;
    }
    const float a = p.alpha1 * p.a[offset_of(p.a_view, i)];
    float r = 0.0f;
    switch (p.op) {
      case kOpAdd: r = a + p.alpha2 * p.b[offset_of(p.b_view, i)]; break;
      case kOpMul: r = a * (p.alpha2 * p.b[offset_of(p.b_view, i)]); break;
      case kOpMin: r = std::fmin(a, p.alpha2 * p.b[offset_of(p.b_view, i)]); break;
      case kOpMax: r = std::fmax(a, p.alpha2 * p.b[offset_of(p.b_view, i)]); break;
      case kOpSqrt: r = std::sqrt(a); break;
      case kOpNot: r = 1.0f - a; break;
      default: break;
    }
    blend(y, r, 1.0f, p.beta);
  });
}

void run_conv_bwd_bias(const ConvBwdBiasParams& p) {
  const TensorView& v = p.dy_view;
  for (int c = 0; c < v.dims[1]; ++c) {
    // Sum over n, then the spatial dimensions, in order; double keeps long sums accurate.
    double sum = 0.0;
    int i[5];
    i[1] = c;
    for (i[0] = 0; i[0] < v.dims[0]; ++i[0])
      for (i[2] = 0; i[2] < v.dims[2]; ++i[2])
        for (i[3] = 0; i[3] < v.dims[3]; ++i[3])
          for (i[4] = 0; i[4] < v.dims[4]; ++i[4]) sum += p.dy[offset_of(v, i)];
    blend(&p.db[(long long)c * p.db_view.strides[1]], static_cast<float>(sum), p.alpha, p.beta);
  }
}

}  // namespace simcudnn

using namespace simcudnn;

namespace {

cudnnStatus_t queue_pointwise(cudnnHandle_t handle, PointwiseParams& p) {
  SIMCUDNN_REQUIRE(handle != nullptr, CUDNN_STATUS_BAD_PARAM);
  return launch<KernelId::pointwise>(handle, p);
}

}  // namespace

// C = alpha * A + beta * C, A broadcast over C where its extents are 1 (e.g. a 1×C×1×1 bias).
SIMCUDNN_EXPORT cudnnStatus_t cudnnAddTensor(cudnnHandle_t handle, const void* alpha,
                                             const cudnnTensorDescriptor_t a_desc, const void* a, const void* beta,
                                             const cudnnTensorDescriptor_t c_desc, void* c) {
  SIMCUDNN_REQUIRE(alpha && beta && a && c, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_TRY(require_float(a_desc));
  SIMCUDNN_TRY(require_float(c_desc));
  PointwiseParams p{};
  p.op = kOpCopy;
  SIMCUDNN_TRY(view_of(c_desc, &p.y_view));
  SIMCUDNN_TRY(broadcast_view(a_desc, c_desc, &p.a_view));
  p.b_view = p.a_view;
  p.a = static_cast<const float*>(a);
  p.y = static_cast<float*>(c);
  p.alpha1 = host_scalar(alpha);
  p.beta = host_scalar(beta);
  return queue_pointwise(handle, p);
}

// y = alpha * x + beta * y between two layouts of the same extents.
SIMCUDNN_EXPORT cudnnStatus_t cudnnTransformTensor(cudnnHandle_t handle, const void* alpha,
                                                   const cudnnTensorDescriptor_t x_desc, const void* x,
                                                   const void* beta, const cudnnTensorDescriptor_t y_desc, void* y) {
  SIMCUDNN_REQUIRE(alpha && beta && x && y, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_TRY(require_float(x_desc));
  SIMCUDNN_TRY(require_float(y_desc));
  SIMCUDNN_REQUIRE(same_dims(*x_desc, *y_desc), CUDNN_STATUS_BAD_PARAM);
  PointwiseParams p{};
  p.op = kOpCopy;
  SIMCUDNN_TRY(view_of(y_desc, &p.y_view));
  SIMCUDNN_TRY(view_of(x_desc, &p.a_view));
  p.b_view = p.a_view;
  p.a = static_cast<const float*>(x);
  p.y = static_cast<float*>(y);
  p.alpha1 = host_scalar(alpha);
  p.beta = host_scalar(beta);
  return queue_pointwise(handle, p);
}

// C = op(alpha1 * A, alpha2 * B) + beta * C. A must match C; B matches C or is 1 where broadcast.
SIMCUDNN_EXPORT cudnnStatus_t cudnnOpTensor(cudnnHandle_t handle, const cudnnOpTensorDescriptor_t op_desc,
                                            const void* alpha1, const cudnnTensorDescriptor_t a_desc, const void* a,
                                            const void* alpha2, const cudnnTensorDescriptor_t b_desc, const void* b,
                                            const void* beta, const cudnnTensorDescriptor_t c_desc, void* c) {
  SIMCUDNN_REQUIRE(op_desc != nullptr && op_desc->set && alpha1 && alpha2 && beta && a && c, CUDNN_STATUS_BAD_PARAM);
  const bool unary = op_desc->op == CUDNN_OP_TENSOR_SQRT || op_desc->op == CUDNN_OP_TENSOR_NOT;
  SIMCUDNN_TRY(require_float(a_desc));
  SIMCUDNN_TRY(require_float(c_desc));
  // NOT_SUPPORTED: float tensors are combined in float only (no double compute type).
  SIMCUDNN_REQUIRE(op_desc->compute_type == CUDNN_DATA_FLOAT, CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE);
  SIMCUDNN_REQUIRE(same_dims(*a_desc, *c_desc), CUDNN_STATUS_BAD_PARAM);
  PointwiseParams p{};
  p.op = op_desc->op;
  SIMCUDNN_TRY(view_of(c_desc, &p.y_view));
  SIMCUDNN_TRY(view_of(a_desc, &p.a_view));
  if (unary) {
    p.b_view = p.a_view;  // B is ignored by SQRT and NOT
  } else {
    SIMCUDNN_REQUIRE(b != nullptr, CUDNN_STATUS_BAD_PARAM);
    SIMCUDNN_TRY(require_float(b_desc));
    SIMCUDNN_TRY(broadcast_view(b_desc, c_desc, &p.b_view));
  }
  p.a = static_cast<const float*>(a);
  p.b = static_cast<const float*>(b);
  p.y = static_cast<float*>(c);
  p.alpha1 = host_scalar(alpha1);
  p.alpha2 = host_scalar(alpha2);
  p.beta = host_scalar(beta);
  return queue_pointwise(handle, p);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnSetTensor(cudnnHandle_t handle, const cudnnTensorDescriptor_t y_desc, void* y,
                                             const void* value) {
  SIMCUDNN_REQUIRE(y && value, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_TRY(require_float(y_desc));
  PointwiseParams p{};
  p.op = kOpSet;
  SIMCUDNN_TRY(view_of(y_desc, &p.y_view));
  p.a_view = p.b_view = p.y_view;
  p.y = static_cast<float*>(y);
  p.alpha1 = host_scalar(value);
  return queue_pointwise(handle, p);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnScaleTensor(cudnnHandle_t handle, const cudnnTensorDescriptor_t y_desc, void* y,
                                               const void* alpha) {
  SIMCUDNN_REQUIRE(y && alpha, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_TRY(require_float(y_desc));
  PointwiseParams p{};
  p.op = kOpScale;
  SIMCUDNN_TRY(view_of(y_desc, &p.y_view));
  p.a_view = p.b_view = p.y_view;
  p.y = static_cast<float*>(y);
  p.alpha1 = host_scalar(alpha);
  return queue_pointwise(handle, p);
}

// db = alpha * Σ_{n, spatial} dy + beta * db, db being 1×C×1×1.
SIMCUDNN_EXPORT cudnnStatus_t cudnnConvolutionBackwardBias(cudnnHandle_t handle, const void* alpha,
                                                           const cudnnTensorDescriptor_t dy_desc, const void* dy,
                                                           const void* beta, const cudnnTensorDescriptor_t db_desc,
                                                           void* db) {
  SIMCUDNN_REQUIRE(handle && alpha && beta && dy && db, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_TRY(require_float(dy_desc));
  SIMCUDNN_TRY(require_float(db_desc));
  SIMCUDNN_REQUIRE(db_desc->nb_dims == dy_desc->nb_dims && db_desc->dims[1] == dy_desc->dims[1], CUDNN_STATUS_BAD_PARAM);
  for (int i = 0; i < db_desc->nb_dims; ++i) SIMCUDNN_REQUIRE(i == 1 || db_desc->dims[i] == 1, CUDNN_STATUS_BAD_PARAM);
  ConvBwdBiasParams p{};
  SIMCUDNN_TRY(view_of(dy_desc, &p.dy_view));
  SIMCUDNN_TRY(view_of(db_desc, &p.db_view));
  p.dy = static_cast<const float*>(dy);
  p.db = static_cast<float*>(db);
  p.alpha = host_scalar(alpha);
  p.beta = host_scalar(beta);
  return launch<KernelId::conv_bwd_bias>(handle, p);
}
