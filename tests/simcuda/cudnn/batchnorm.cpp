// batchnorm.cpp — cudnnBatchNormalizationForwardTraining/ForwardInference/Backward and
// cudnnDeriveBNTensorDescriptor, with their kernels.
//
// Statistics are reduced in double, in a fixed order (n, then d, h, w), two-pass (mean, then the
// squared deviations), and the variance is the biased one (÷M) for normalisation and the unbiased
// one (÷(M−1)) for the running estimate, as cuDNN documents.
#include <cmath>

#include "driver.h"
#include "views.h"

namespace simcudnn {
namespace {

// Calls group(g) for each set of elements sharing one scale/bias: per channel c in spatial mode,
// per (c, d, h, w) in per-activation mode. `g` is an index with n = 0.
template <class F>
void for_each_group(const int dims[5], int spatial, F&& group) {
  int g[5] = {0, 0, 0, 0, 0};
  for (g[1] = 0; g[1] < dims[1]; ++g[1]) {
    if (spatial) {
      group(static_cast<const int*>(g));
      continue;
    }
    for (g[2] = 0; g[2] < dims[2]; ++g[2])
      for (g[3] = 0; g[3] < dims[3]; ++g[3])
        for (g[4] = 0; g[4] < dims[4]; ++g[4]) group(static_cast<const int*>(g));
  }
}

// Calls f(index) for each member of group g, in a fixed order.
template <class F>
void for_each_member(const int dims[5], int spatial, const int* g, F&& f) {
  int i[5] = {0, g[1], g[2], g[3], g[4]};
  for (i[0] = 0; i[0] < dims[0]; ++i[0]) {
    if (!spatial) {
      f(static_cast<const int*>(i));
      continue;
    }
    for (i[2] = 0; i[2] < dims[2]; ++i[2])
      for (i[3] = 0; i[3] < dims[3]; ++i[3])
        for (i[4] = 0; i[4] < dims[4]; ++i[4]) f(static_cast<const int*>(i));
  }
}

std::int64_t group_size(const int dims[5], int spatial) {
  return spatial ? std::int64_t{dims[0]} * dims[2] * dims[3] * dims[4] : dims[0];
}

struct Stats {
  double mean, var;  // biased variance
};

Stats reduce(const TensorView& v, const float* x, const int dims[5], int spatial, const int* g) {
  const double m = static_cast<double>(group_size(dims, spatial));
  double sum = 0.0;
  for_each_member(dims, spatial, g, [&](const int* i) { sum += x[offset_of(v, i)]; });
  const double mean = sum / m;
  double sq = 0.0;
  for_each_member(dims, spatial, g, [&](const int* i) {
    const double d = x[offset_of(v, i)] - mean;
    sq += d * d;
  });
  return {mean, sq / m};
}

}  // namespace

void run_bn_fwd_train(const BnFwdTrainParams& p) {
  const int* dims = p.x_view.dims;
  const std::int64_t m = group_size(dims, p.spatial);
  for_each_group(dims, p.spatial, [&](const int* g) {
    const Stats st = reduce(p.x_view, p.x, dims, p.spatial, g);
    const double inv = 1.0 / std::sqrt(st.var + p.epsilon);
    const long long k = offset_of(p.param_view, g);
    const double scale = p.scale[k], bias = p.bias[k];
    for_each_member(dims, p.spatial, g, [&](const int* i) {
      const double xhat = (p.x[offset_of(p.x_view, i)] - st.mean) * inv;
      blend(&p.y[offset_of(p.y_view, i)], static_cast<float>(scale * xhat + bias), p.alpha, p.beta);
    });
    if (p.running_mean != nullptr && p.running_var != nullptr) {
      const double unbiased = m > 1 ? st.var * static_cast<double>(m) / static_cast<double>(m - 1) : st.var;
      p.running_mean[k] = static_cast<float>((1.0 - p.factor) * p.running_mean[k] + p.factor * st.mean);
      p.running_var[k] = static_cast<float>((1.0 - p.factor) * p.running_var[k] + p.factor * unbiased);
    }
    if (p.save_mean != nullptr && p.save_inv_var != nullptr) {
      p.save_mean[k] = static_cast<float>(st.mean);
      p.save_inv_var[k] = static_cast<float>(inv);
    }
  });
}

void run_bn_fwd_infer(const BnFwdInferParams& p) {
  for_each_index(p.x_view.dims, [&](const int* i) {
    const long long k = offset_of(p.param_view, i);
    const double inv = 1.0 / std::sqrt(double{p.var[k]} + p.epsilon);
    const double v = p.scale[k] * (p.x[offset_of(p.x_view, i)] - double{p.mean[k]}) * inv + p.bias[k];
    blend(&p.y[offset_of(p.y_view, i)], static_cast<float>(v), p.alpha, p.beta);
  });
}

void run_bn_bwd(const BnBwdParams& p) {
  const int* dims = p.x_view.dims;
  const double m = static_cast<double>(group_size(dims, p.spatial));
  for_each_group(dims, p.spatial, [&](const int* g) {
    const long long k = offset_of(p.param_view, g);
    double mean, inv;
    if (p.saved_mean != nullptr && p.saved_inv_var != nullptr) {
      mean = p.saved_mean[k];
      inv = p.saved_inv_var[k];
    } else {
      const Stats st = reduce(p.x_view, p.x, dims, p.spatial, g);
      mean = st.mean;
      inv = 1.0 / std::sqrt(st.var + p.epsilon);
    }
    double dbias = 0.0, dscale = 0.0;
    for_each_member(dims, p.spatial, g, [&](const int* i) {
      const double dy = p.dy[offset_of(p.dy_view, i)];
      dbias += dy;
      dscale += dy * (p.x[offset_of(p.x_view, i)] - mean) * inv;
    });
    const double coef = p.scale[k] * inv / m;
    for_each_member(dims, p.spatial, g, [&](const int* i) {
      const double xhat = (p.x[offset_of(p.x_view, i)] - mean) * inv;
      const double dx = coef * (m * p.dy[offset_of(p.dy_view, i)] - dbias - xhat * dscale);
      blend(&p.dx[offset_of(p.dx_view, i)], static_cast<float>(dx), p.alpha_data, p.beta_data);
    });
    blend(&p.dscale[k], static_cast<float>(dscale), p.alpha_param, p.beta_param);
    blend(&p.dbias[k], static_cast<float>(dbias), p.alpha_param, p.beta_param);
  });
}

}  // namespace simcudnn

using namespace simcudnn;

namespace {

cudnnStatus_t check_mode(cudnnBatchNormMode_t mode) {
  SIMCUDNN_REQUIRE(mode == CUDNN_BATCHNORM_PER_ACTIVATION || mode == CUDNN_BATCHNORM_SPATIAL ||
                       mode == CUDNN_BATCHNORM_SPATIAL_PERSISTENT,
                   CUDNN_STATUS_BAD_PARAM);
  return CUDNN_STATUS_SUCCESS;
}

// The shape bnScaleBiasMeanVarDesc must have: 1×C×1×1 (spatial) or 1×C×H×W (per activation).
bool param_shape_ok(const cudnnTensorStruct& x, const cudnnTensorStruct& param, cudnnBatchNormMode_t mode) {
  if (param.nb_dims != x.nb_dims || param.dims[0] != 1 || param.dims[1] != x.dims[1]) return false;
  for (int i = 2; i < x.nb_dims; ++i)
    if (param.dims[i] != (mode == CUDNN_BATCHNORM_PER_ACTIVATION ? x.dims[i] : 1)) return false;
  return true;
}

// Validates x, y (same extents) and the parameter descriptor; fills the three views.
cudnnStatus_t bn_views(cudnnBatchNormMode_t mode, const cudnnTensorStruct* x, const cudnnTensorStruct* y,
                       const cudnnTensorStruct* param, TensorView* xv, TensorView* yv, TensorView* pv) {
  SIMCUDNN_TRY(check_mode(mode));
  SIMCUDNN_TRY(require_float(x));
  SIMCUDNN_TRY(require_float(y));
  // The parameters are float for float data (cuDNN: double only when x is double).
  SIMCUDNN_TRY(require_float(param));
  SIMCUDNN_REQUIRE(x->nb_dims >= 4 && same_dims(*x, *y) && param_shape_ok(*x, *param, mode), CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_TRY(view_of(x, xv));
  SIMCUDNN_TRY(view_of(y, yv));
  SIMCUDNN_TRY(broadcast_view(param, x, pv));
  return CUDNN_STATUS_SUCCESS;
}

}  // namespace

SIMCUDNN_EXPORT cudnnStatus_t cudnnDeriveBNTensorDescriptor(cudnnTensorDescriptor_t derived,
                                                            const cudnnTensorDescriptor_t x,
                                                            cudnnBatchNormMode_t mode) {
  SIMCUDNN_REQUIRE(derived != nullptr && x != nullptr && x->set, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_TRY(check_mode(mode));
  int dims[kMaxDims];
  dims[0] = 1;
  dims[1] = x->dims[1];
  for (int i = 2; i < x->nb_dims; ++i) dims[i] = mode == CUDNN_BATCHNORM_PER_ACTIVATION ? x->dims[i] : 1;
  // Half and bfloat16 data keep float parameters; double data keeps double ones.
  const cudnnDataType_t type = x->type == CUDNN_DATA_DOUBLE ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  return cudnnSetTensorNdDescriptorEx(derived, CUDNN_TENSOR_NCHW, type, x->nb_dims, dims);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnBatchNormalizationForwardTraining(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void* alpha, const void* beta,
    const cudnnTensorDescriptor_t x_desc, const void* x, const cudnnTensorDescriptor_t y_desc, void* y,
    const cudnnTensorDescriptor_t param_desc, const void* scale, const void* bias, double factor,
    void* running_mean, void* running_var, double epsilon, void* save_mean, void* save_inv_var) {
  SIMCUDNN_REQUIRE(handle && alpha && beta && x && y && scale && bias, CUDNN_STATUS_BAD_PARAM);
  // Running and saved statistics are optional, but each pair goes together.
  SIMCUDNN_REQUIRE((running_mean == nullptr) == (running_var == nullptr), CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE((save_mean == nullptr) == (save_inv_var == nullptr), CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(epsilon >= CUDNN_BN_MIN_EPSILON, CUDNN_STATUS_BAD_PARAM);
  BnFwdTrainParams p{};
  SIMCUDNN_TRY(bn_views(mode, x_desc, y_desc, param_desc, &p.x_view, &p.y_view, &p.param_view));
  p.spatial = mode != CUDNN_BATCHNORM_PER_ACTIVATION;
  p.x = static_cast<const float*>(x);
  p.y = static_cast<float*>(y);
  p.scale = static_cast<const float*>(scale);
  p.bias = static_cast<const float*>(bias);
  p.running_mean = static_cast<float*>(running_mean);
  p.running_var = static_cast<float*>(running_var);
  p.save_mean = static_cast<float*>(save_mean);
  p.save_inv_var = static_cast<float*>(save_inv_var);
  p.factor = factor;
  p.epsilon = epsilon;
  p.alpha = host_scalar(alpha);
  p.beta = host_scalar(beta);
  return launch<KernelId::bn_fwd_train>(handle, p);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnBatchNormalizationForwardInference(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void* alpha, const void* beta,
    const cudnnTensorDescriptor_t x_desc, const void* x, const cudnnTensorDescriptor_t y_desc, void* y,
    const cudnnTensorDescriptor_t param_desc, const void* scale, const void* bias, const void* mean,
    const void* var, double epsilon) {
  SIMCUDNN_REQUIRE(handle && alpha && beta && x && y && scale && bias && mean && var, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(epsilon >= CUDNN_BN_MIN_EPSILON, CUDNN_STATUS_BAD_PARAM);
  BnFwdInferParams p{};
  SIMCUDNN_TRY(bn_views(mode, x_desc, y_desc, param_desc, &p.x_view, &p.y_view, &p.param_view));
  p.x = static_cast<const float*>(x);
  p.y = static_cast<float*>(y);
  p.scale = static_cast<const float*>(scale);
  p.bias = static_cast<const float*>(bias);
  p.mean = static_cast<const float*>(mean);
  p.var = static_cast<const float*>(var);
  p.epsilon = epsilon;
  p.alpha = host_scalar(alpha);
  p.beta = host_scalar(beta);
  return launch<KernelId::bn_fwd_infer>(handle, p);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnBatchNormalizationBackward(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void* alpha_data, const void* beta_data,
    const void* alpha_param, const void* beta_param, const cudnnTensorDescriptor_t x_desc, const void* x,
    const cudnnTensorDescriptor_t dy_desc, const void* dy, const cudnnTensorDescriptor_t dx_desc, void* dx,
    const cudnnTensorDescriptor_t param_desc, const void* scale, void* dscale, void* dbias, double epsilon,
    const void* saved_mean, const void* saved_inv_var) {
  SIMCUDNN_REQUIRE(handle && alpha_data && beta_data && alpha_param && beta_param, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(x && dy && dx && scale && dscale && dbias, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE((saved_mean == nullptr) == (saved_inv_var == nullptr), CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(epsilon >= CUDNN_BN_MIN_EPSILON, CUDNN_STATUS_BAD_PARAM);
  BnBwdParams p{};
  SIMCUDNN_TRY(bn_views(mode, x_desc, dx_desc, param_desc, &p.x_view, &p.dx_view, &p.param_view));
  SIMCUDNN_TRY(require_float(dy_desc));
  SIMCUDNN_REQUIRE(same_dims(*dy_desc, *x_desc), CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_TRY(view_of(dy_desc, &p.dy_view));
  p.spatial = mode != CUDNN_BATCHNORM_PER_ACTIVATION;
  p.x = static_cast<const float*>(x);
  p.dy = static_cast<const float*>(dy);
  p.dx = static_cast<float*>(dx);
  p.scale = static_cast<const float*>(scale);
  p.dscale = static_cast<float*>(dscale);
  p.dbias = static_cast<float*>(dbias);
  p.saved_mean = static_cast<const float*>(saved_mean);
  p.saved_inv_var = static_cast<const float*>(saved_inv_var);
  p.epsilon = epsilon;
  p.alpha_data = host_scalar(alpha_data);
  p.beta_data = host_scalar(beta_data);
  p.alpha_param = host_scalar(alpha_param);
  p.beta_param = host_scalar(beta_param);
  return launch<KernelId::bn_bwd>(handle, p);
}
