// pool_softmax.cpp — cudnnPoolingForward/Backward and cudnnSoftmaxForward/Backward, with kernels.
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "driver.h"
#include "views.h"

namespace simcudnn {
namespace {

inline long long at(const int strides[4], int n, int c, int h, int w) {
  return (long long)n * strides[0] + (long long)c * strides[1] + (long long)h * strides[2] + (long long)w * strides[3];
}

// The in-bounds part of window (oh, ow): rows [h0, h1), columns [w0, w1).
struct Window {
  int h0, h1, w0, w1;
};
Window window_of(const PoolShape& s, int oh, int ow) {
  const int hs = oh * s.stride_h - s.pad_h, ws = ow * s.stride_w - s.pad_w;
  return {std::max(hs, 0), std::min(hs + s.win_h, s.h), std::max(ws, 0), std::min(ws + s.win_w, s.w)};
}

bool is_max(int mode) { return mode == CUDNN_POOLING_MAX || mode == CUDNN_POOLING_MAX_DETERMINISTIC; }

// Divisor of an average window: the whole window, or only its in-bounds part (EXCLUDE_PADDING).
float window_count(const PoolShape& s, const Window& win) {
  if (s.mode == CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING) return static_cast<float>(s.win_h * s.win_w);
  return static_cast<float>((win.h1 - win.h0) * (win.w1 - win.w0));
}

// The first (row-major) position holding the window's maximum: the one max pooling routes to.
void argmax(const PoolShape& s, const float* x, int n, int c, const Window& win, int* mh, int* mw) {
  float best = -std::numeric_limits<float>::infinity();
  *mh = win.h0;
  *mw = win.w0;
  for (int h = win.h0; h < win.h1; ++h)
    for (int w = win.w0; w < win.w1; ++w) {
      const float v = x[at(s.x_strides, n, c, h, w)];
      if (v > best) {
        best = v;
        *mh = h;
        *mw = w;
      }
    }
}

}  // namespace

void run_pooling_fwd(const PoolingParams& p) {
  const PoolShape& s = p.shape;
  for (int n = 0; n < s.n; ++n)
    for (int c = 0; c < s.c; ++c)
      for (int oh = 0; oh < s.oh; ++oh)
        for (int ow = 0; ow < s.ow; ++ow) {
          const Window win = window_of(s, oh, ow);
          float r = 0.0f;
          if (is_max(s.mode)) {
            int mh, mw;
            argmax(s, p.x, n, c, win, &mh, &mw);
            r = win.h1 > win.h0 && win.w1 > win.w0 ? p.x[at(s.x_strides, n, c, mh, mw)] : 0.0f;
          } else {
            float sum = 0.0f;
            for (int h = win.h0; h < win.h1; ++h)
              for (int w = win.w0; w < win.w1; ++w) sum += p.x[at(s.x_strides, n, c, h, w)];
            r = sum / window_count(s, win);
          }
          blend(&p.out[at(s.y_strides, n, c, oh, ow)], r, p.alpha, p.beta);
        }
}

// Gathers, for each input position, the gradient of every window that covers it (windows in
// row-major order): no scratch buffer and a fixed summation order.
void run_pooling_bwd(const PoolingParams& p) {
  const PoolShape& s = p.shape;
  for (int n = 0; n < s.n; ++n)
    for (int c = 0; c < s.c; ++c)
      for (int ih = 0; ih < s.h; ++ih)
        for (int iw = 0; iw < s.w; ++iw) {
          // Windows oh with oh·sh − ph ≤ ih < oh·sh − ph + win_h.
          const int oh_lo = std::max(0, (ih + s.pad_h - s.win_h + s.stride_h) / s.stride_h);
          const int oh_hi = std::min(s.oh - 1, (ih + s.pad_h) / s.stride_h);
          const int ow_lo = std::max(0, (iw + s.pad_w - s.win_w + s.stride_w) / s.stride_w);
          const int ow_hi = std::min(s.ow - 1, (iw + s.pad_w) / s.stride_w);
          float grad = 0.0f;
          for (int oh = oh_lo; oh <= oh_hi; ++oh)
            for (int ow = ow_lo; ow <= ow_hi; ++ow) {
              const Window win = window_of(s, oh, ow);
              if (ih < win.h0 || ih >= win.h1 || iw < win.w0 || iw >= win.w1) continue;
              const float dy = p.dy[at(s.dy_strides, n, c, oh, ow)];
              if (is_max(s.mode)) {
                int mh, mw;
                argmax(s, p.x, n, c, win, &mh, &mw);
                if (mh == ih && mw == iw) grad += dy;
              } else {
                grad += dy / window_count(s, win);
              }
            }
          blend(&p.out[at(s.dx_strides, n, c, ih, iw)], grad, p.alpha, p.beta);
        }
}

namespace {

// The index sets softmax normalises over, in a fixed order: for CHANNEL mode one set per
// (n, spatial position) over C; for INSTANCE mode one set per n over C and all spatial positions.
template <class F>
void for_each_softmax_set(const int dims[5], int mode, F&& f) {
  std::vector<std::array<int, 5>> set;
  for (int n = 0; n < dims[0]; ++n) {
    if (mode == CUDNN_SOFTMAX_MODE_INSTANCE) {
      set.clear();
      for (int c = 0; c < dims[1]; ++c)
        for (int d = 0; d < dims[2]; ++d)
          for (int h = 0; h < dims[3]; ++h)
            for (int w = 0; w < dims[4]; ++w) set.push_back({n, c, d, h, w});
      f(set);
      continue;
    }
    for (int d = 0; d < dims[2]; ++d)
      for (int h = 0; h < dims[3]; ++h)
        for (int w = 0; w < dims[4]; ++w) {
          set.clear();
          for (int c = 0; c < dims[1]; ++c) set.push_back({n, c, d, h, w});
          f(set);
        }
  }
}

}  // namespace

void run_softmax_fwd(const SoftmaxParams& p) {
  for_each_softmax_set(p.out_view.dims, p.mode, [&](const std::vector<std::array<int, 5>>& set) {
    float m = 0.0f;  // FAST does not shift by the maximum
    if (p.algo != CUDNN_SOFTMAX_FAST) {
      m = -std::numeric_limits<float>::infinity();
      for (const auto& i : set) m = std::fmax(m, p.in[offset_of(p.in_view, i.data())]);
    }
    double sum = 0.0;
    for (const auto& i : set) sum += std::exp(p.in[offset_of(p.in_view, i.data())] - m);
    const float log_sum = static_cast<float>(std::log(sum));
    for (const auto& i : set) {
      const float x = p.in[offset_of(p.in_view, i.data())];
      const float v = p.algo == CUDNN_SOFTMAX_LOG ? x - m - log_sum
                                                  : static_cast<float>(std::exp(x - m) / sum);
      blend(&p.out[offset_of(p.out_view, i.data())], v, p.alpha, p.beta);
    }
  });
}

void run_softmax_bwd(const SoftmaxParams& p) {
  for_each_softmax_set(p.out_view.dims, p.mode, [&](const std::vector<std::array<int, 5>>& set) {
    // ACCURATE/FAST: dx = y·(dy − Σ dy·y).  LOG (y = log softmax): dx = dy − exp(y)·Σ dy.
    double sum = 0.0;
    for (const auto& i : set) {
      const float dy = p.dy[offset_of(p.dy_view, i.data())];
      sum += p.algo == CUDNN_SOFTMAX_LOG ? dy : double{dy} * p.in[offset_of(p.in_view, i.data())];
    }
    const float s = static_cast<float>(sum);
    for (const auto& i : set) {
      const float y = p.in[offset_of(p.in_view, i.data())], dy = p.dy[offset_of(p.dy_view, i.data())];
      const float v = p.algo == CUDNN_SOFTMAX_LOG ? dy - std::exp(y) * s : y * (dy - s);
      blend(&p.out[offset_of(p.out_view, i.data())], v, p.alpha, p.beta);
    }
  });
}

}  // namespace simcudnn

using namespace simcudnn;

namespace {

void copy4(const int* from, int* to) { std::copy(from, from + 4, to); }

cudnnStatus_t pool_shape(cudnnPoolingDescriptor_t pool, cudnnTensorDescriptor_t x, cudnnTensorDescriptor_t y,
                         PoolShape* s) {
  SIMCUDNN_REQUIRE(pool != nullptr && pool->set, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_TRY(require_float(x));
  SIMCUDNN_TRY(require_float(y));
  // NOT_SUPPORTED: only 2-d pooling has a simulated kernel.
  SIMCUDNN_REQUIRE(x->nb_dims == 4 && pool->spatial_dims == 2, CUDNN_STATUS_NOT_SUPPORTED_SHAPE);
  int dims[4];
  SIMCUDNN_TRY(cudnnGetPooling2dForwardOutputDim(pool, x, &dims[0], &dims[1], &dims[2], &dims[3]));
  for (int i = 0; i < 4; ++i) SIMCUDNN_REQUIRE(y->dims[i] == dims[i], CUDNN_STATUS_BAD_PARAM);
  *s = PoolShape{};
  s->mode = pool->mode;
  s->n = x->dims[0];
  s->c = x->dims[1];
  s->h = x->dims[2];
  s->w = x->dims[3];
  s->oh = dims[2];
  s->ow = dims[3];
  s->win_h = pool->window[0];
  s->win_w = pool->window[1];
  s->pad_h = pool->pad[0];
  s->pad_w = pool->pad[1];
  s->stride_h = pool->stride[0];
  s->stride_w = pool->stride[1];
  copy4(x->strides, s->x_strides);
  copy4(y->strides, s->y_strides);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t check_softmax(cudnnSoftmaxAlgorithm_t algo, cudnnSoftmaxMode_t mode) {
  SIMCUDNN_REQUIRE(algo == CUDNN_SOFTMAX_FAST || algo == CUDNN_SOFTMAX_ACCURATE || algo == CUDNN_SOFTMAX_LOG,
                   CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(mode == CUDNN_SOFTMAX_MODE_INSTANCE || mode == CUDNN_SOFTMAX_MODE_CHANNEL, CUDNN_STATUS_BAD_PARAM);
  return CUDNN_STATUS_SUCCESS;
}

}  // namespace

SIMCUDNN_EXPORT cudnnStatus_t cudnnPoolingForward(cudnnHandle_t handle, const cudnnPoolingDescriptor_t pool,
                                                  const void* alpha, const cudnnTensorDescriptor_t x_desc,
                                                  const void* x, const void* beta,
                                                  const cudnnTensorDescriptor_t y_desc, void* y) {
  SIMCUDNN_REQUIRE(handle && alpha && beta && x && y, CUDNN_STATUS_BAD_PARAM);
  PoolingParams p{};
  SIMCUDNN_TRY(pool_shape(pool, x_desc, y_desc, &p.shape));
  p.x = static_cast<const float*>(x);
  p.out = static_cast<float*>(y);
  p.alpha = host_scalar(alpha);
  p.beta = host_scalar(beta);
  return launch<KernelId::pooling_fwd>(handle, p);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnPoolingBackward(cudnnHandle_t handle, const cudnnPoolingDescriptor_t pool,
                                                   const void* alpha, const cudnnTensorDescriptor_t y_desc,
                                                   const void* y, const cudnnTensorDescriptor_t dy_desc,
                                                   const void* dy, const cudnnTensorDescriptor_t x_desc,
                                                   const void* x, const void* beta,
                                                   const cudnnTensorDescriptor_t dx_desc, void* dx) {
  SIMCUDNN_REQUIRE(handle && alpha && beta && y && dy && x && dx, CUDNN_STATUS_BAD_PARAM);
  PoolingParams p{};
  SIMCUDNN_TRY(pool_shape(pool, x_desc, y_desc, &p.shape));
  SIMCUDNN_TRY(require_float(dy_desc));
  SIMCUDNN_TRY(require_float(dx_desc));
  SIMCUDNN_REQUIRE(same_dims(*dy_desc, *y_desc) && same_dims(*dx_desc, *x_desc), CUDNN_STATUS_BAD_PARAM);
  copy4(dy_desc->strides, p.shape.dy_strides);
  copy4(dx_desc->strides, p.shape.dx_strides);
  p.x = static_cast<const float*>(x);
  p.y = static_cast<const float*>(y);
  p.dy = static_cast<const float*>(dy);
  p.out = static_cast<float*>(dx);
  p.alpha = host_scalar(alpha);
  p.beta = host_scalar(beta);
  return launch<KernelId::pooling_bwd>(handle, p);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnSoftmaxForward(cudnnHandle_t handle, cudnnSoftmaxAlgorithm_t algo,
                                                  cudnnSoftmaxMode_t mode, const void* alpha,
                                                  const cudnnTensorDescriptor_t x_desc, const void* x,
                                                  const void* beta, const cudnnTensorDescriptor_t y_desc, void* y) {
  SIMCUDNN_REQUIRE(handle && alpha && beta && x && y, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_TRY(check_softmax(algo, mode));
  SIMCUDNN_TRY(require_float(x_desc));
  SIMCUDNN_TRY(require_float(y_desc));
  SIMCUDNN_REQUIRE(same_dims(*x_desc, *y_desc), CUDNN_STATUS_BAD_PARAM);
  SoftmaxParams p{};
  p.algo = algo;
  p.mode = mode;
  SIMCUDNN_TRY(view_of(x_desc, &p.in_view));
  SIMCUDNN_TRY(view_of(y_desc, &p.out_view));
  p.dy_view = p.in_view;
  p.in = static_cast<const float*>(x);
  p.out = static_cast<float*>(y);
  p.alpha = host_scalar(alpha);
  p.beta = host_scalar(beta);
  return launch<KernelId::softmax_fwd>(handle, p);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnSoftmaxBackward(cudnnHandle_t handle, cudnnSoftmaxAlgorithm_t algo,
                                                   cudnnSoftmaxMode_t mode, const void* alpha,
                                                   const cudnnTensorDescriptor_t y_desc, const void* y,
                                                   const cudnnTensorDescriptor_t dy_desc, const void* dy,
                                                   const void* beta, const cudnnTensorDescriptor_t dx_desc,
                                                   void* dx) {
  SIMCUDNN_REQUIRE(handle && alpha && beta && y && dy && dx, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_TRY(check_softmax(algo, mode));
  for (const cudnnTensorStruct* t : {y_desc, dy_desc, dx_desc}) SIMCUDNN_TRY(require_float(t));
  SIMCUDNN_REQUIRE(same_dims(*y_desc, *dy_desc) && same_dims(*y_desc, *dx_desc), CUDNN_STATUS_BAD_PARAM);
  SoftmaxParams p{};
  p.algo = algo;
  p.mode = mode;
  SIMCUDNN_TRY(view_of(y_desc, &p.in_view));
  SIMCUDNN_TRY(view_of(dy_desc, &p.dy_view));
  SIMCUDNN_TRY(view_of(dx_desc, &p.out_view));
  p.in = static_cast<const float*>(y);
  p.dy = static_cast<const float*>(dy);
  p.out = static_cast<float*>(dx);
  p.alpha = host_scalar(alpha);
  p.beta = host_scalar(beta);
  return launch<KernelId::softmax_bwd>(handle, p);
}
