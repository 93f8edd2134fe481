// activation.cpp — cudnnActivationForward/Backward and their kernels.
// Formulas (cuDNN's): sigmoid, relu, tanh, clipped relu (ceiling = coef), elu (alpha = coef),
// identity, swish (x·sigmoid(β·x), β = swish beta). Computed in fp32 with the C library's
// expf/tanhf, element by element, so the result does not depend on the order of elements.
#include <cmath>

#include "driver.h"
#include "views.h"

namespace simcudnn {
namespace {

float sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }

float activate(const ActivationParams& p, float x) {
  const float coef = static_cast<float>(p.coef);
  switch (p.mode) {
    case CUDNN_ACTIVATION_SIGMOID: return sigmoid(x);
    case CUDNN_ACTIVATION_RELU: return x > 0.0f ? x : 0.0f;
    case CUDNN_ACTIVATION_TANH: return std::tanh(x);
    case CUDNN_ACTIVATION_CLIPPED_RELU: return std::fmin(x > 0.0f ? x : 0.0f, coef);
    case CUDNN_ACTIVATION_ELU: return x > 0.0f ? x : coef * (std::exp(x) - 1.0f);
    case CUDNN_ACTIVATION_SWISH: return x * sigmoid(static_cast<float>(p.swish_beta) * x);
    default: return x;  // identity
  }
}

// dL/dx from dy, using y where the derivative is a function of the output (as cuDNN does).
float derivative(const ActivationParams& p, float x, float y, float dy) {
  const float coef = static_cast<float>(p.coef);
  switch (p.mode) {
    case CUDNN_ACTIVATION_SIGMOID: return dy * y * (1.0f - y);
    case CUDNN_ACTIVATION_RELU: return x > 0.0f ? dy : 0.0f;
    case CUDNN_ACTIVATION_TANH: return dy * (1.0f - y * y);
    case CUDNN_ACTIVATION_CLIPPED_RELU: return x > 0.0f && x < coef ? dy : 0.0f;
    case CUDNN_ACTIVATION_ELU: return x > 0.0f ? dy : dy * (y + coef);
    case CUDNN_ACTIVATION_SWISH: {
      const float b = static_cast<float>(p.swish_beta), s = sigmoid(b * x);
      return dy * (s + b * x * s * (1.0f - s));
    }
    default: return dy;  // identity
  }
}

cudnnStatus_t check_mode(const cudnnActivationStruct* d) {
  SIMCUDNN_REQUIRE(d != nullptr && d->set, CUDNN_STATUS_BAD_PARAM);
  return CUDNN_STATUS_SUCCESS;
}

}  // namespace

void run_activation_fwd(const ActivationParams& p) {
  for_each_index(p.out_view.dims, [&](const int* i) {
    blend(p.out + offset_of(p.out_view, i), activate(p, p.x[offset_of(p.x_view, i)]), p.alpha, p.beta);
  });
}

void run_activation_bwd(const ActivationParams& p) {
  for_each_index(p.out_view.dims, [&](const int* i) {
    const float d = derivative(p, p.x[offset_of(p.x_view, i)], p.y[offset_of(p.y_view, i)], p.dy[offset_of(p.dy_view, i)]);
    blend(p.out + offset_of(p.out_view, i), d, p.alpha, p.beta);
  });
}

}  // namespace simcudnn

using namespace simcudnn;

// y = alpha * act(x) + beta * y; x and y may alias (in place), element by element.
SIMCUDNN_EXPORT cudnnStatus_t cudnnActivationForward(cudnnHandle_t handle, cudnnActivationDescriptor_t act,
                                                     const void* alpha, const cudnnTensorDescriptor_t x_desc,
                                                     const void* x, const void* beta,
                                                     const cudnnTensorDescriptor_t y_desc, void* y) {
  SIMCUDNN_REQUIRE(handle && alpha && beta && x && y, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_TRY(check_mode(act));
  SIMCUDNN_TRY(require_float(x_desc));
  SIMCUDNN_TRY(require_float(y_desc));
  SIMCUDNN_REQUIRE(same_dims(*x_desc, *y_desc), CUDNN_STATUS_BAD_PARAM);
  ActivationParams p{};
  p.mode = act->mode;
  p.coef = act->coef;
  p.swish_beta = act->swish_beta;
  SIMCUDNN_TRY(view_of(x_desc, &p.x_view));
  SIMCUDNN_TRY(view_of(y_desc, &p.y_view));
  SIMCUDNN_TRY(view_of(y_desc, &p.out_view));
  p.dy_view = p.out_view;
  p.x = static_cast<const float*>(x);
  p.out = static_cast<float*>(y);
  p.alpha = host_scalar(alpha);
  p.beta = host_scalar(beta);
  return launch<KernelId::activation_fwd>(handle, p);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnActivationBackward(cudnnHandle_t handle, cudnnActivationDescriptor_t act,
                                                      const void* alpha, const cudnnTensorDescriptor_t y_desc,
                                                      const void* y, const cudnnTensorDescriptor_t dy_desc,
                                                      const void* dy, const cudnnTensorDescriptor_t x_desc,
                                                      const void* x, const void* beta,
                                                      const cudnnTensorDescriptor_t dx_desc, void* dx) {
  SIMCUDNN_REQUIRE(handle && alpha && beta && y && dy && x && dx, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_TRY(check_mode(act));
  for (const cudnnTensorStruct* t : {y_desc, dy_desc, x_desc, dx_desc}) SIMCUDNN_TRY(require_float(t));
  SIMCUDNN_REQUIRE(same_dims(*y_desc, *dy_desc) && same_dims(*y_desc, *x_desc) && same_dims(*y_desc, *dx_desc),
                   CUDNN_STATUS_BAD_PARAM);
  ActivationParams p{};
  p.mode = act->mode;
  p.coef = act->coef;
  p.swish_beta = act->swish_beta;
  SIMCUDNN_TRY(view_of(x_desc, &p.x_view));
  SIMCUDNN_TRY(view_of(y_desc, &p.y_view));
  SIMCUDNN_TRY(view_of(dy_desc, &p.dy_view));
  SIMCUDNN_TRY(view_of(dx_desc, &p.out_view));
  p.x = static_cast<const float*>(x);
  p.y = static_cast<const float*>(y);
  p.dy = static_cast<const float*>(dy);
  p.out = static_cast<float*>(dx);
  p.alpha = host_scalar(alpha);
  p.beta = host_scalar(beta);
  return launch<KernelId::activation_bwd>(handle, p);
}
