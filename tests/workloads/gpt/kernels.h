// gpt/kernels.h — the nvcc kernels of gpt_train and their CPU twins.
//
// Note [One body, two callers]
// Most kernels' per-thread work is one `__host__ __device__` function (`*_at`). The
// __global__ kernel calls it for its own thread index; the CPU twin (simcuda/twin.h) calls
// it for every thread index of the launch, in order (GPT_KERNEL writes both). So the
// simulated GPU computes exactly what the real kernel computes, thread by thread. No thread
// reads what another thread of the same launch writes, and every float sum is a sequential
// loop inside one thread, so the result does not depend on scheduling. Kernels are kept
// simple rather than fast: row-wise work (layernorm, softmax, cross-entropy, bias + GELU,
// residual adds, head split/merge) uses one thread per row, column sums (bias and layernorm
// parameter gradients, embedding gradients) one thread per column. The column sums' twins
// are written out by hand (Note [Column-sum twins]); Adam's twin walks its 2-D grid.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "simcuda/twin.h"

namespace gpt {

#define GPT_HD __host__ __device__ inline
#define GPT_EXPAND(...) __VA_ARGS__

// Defines `__global__ void name PARAMS`, in which thread i < count runs name_at(i, ARGS...),
// and its CPU twin, which runs name_at for every i < min(count, threads in the launch).
#define GPT_KERNEL(name, count, PARAMS, ARGS)                                             \
  __global__ void name PARAMS {                                                           \
    const long gpt_i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;          \
    if (gpt_i < static_cast<long>(count)) name##_at(gpt_i, GPT_EXPAND ARGS);              \
  }                                                                                       \
  static void name##_cpu(const simcuda::Grid& gpt_grid, GPT_EXPAND PARAMS) {               \
    const long gpt_n = std::min(static_cast<long>(gpt_grid.total_threads()), static_cast<long>(count)); \
    for (long gpt_i = 0; gpt_i < gpt_n; ++gpt_i) name##_at(gpt_i, GPT_EXPAND ARGS);      \
  }                                                                                       \
  SIMCUDA_TWIN(name, name##_cpu)

constexpr int kThreadsPerBlock = 256;
inline unsigned blocks_for(long count) { return static_cast<unsigned>((count + kThreadsPerBlock - 1) / kThreadsPerBlock); }

// ---- embedding: x[n, c] = wte[token[n], c] + wpe[n % T, c] ----
GPT_HD void embed_fwd_at(long i, float* x, const int* tokens, const float* wte, const float* wpe, int /*n_tokens*/,
                         int seq, int hidden) {
  const long n = i / hidden, c = i % hidden;
  x[i] = wte[static_cast<long>(tokens[n]) * hidden + c] + wpe[(n % seq) * hidden + c];
}
GPT_KERNEL(embed_fwd, static_cast<long>(n_tokens) * hidden,
           (float* x, const int* tokens, const float* wte, const float* wpe, int n_tokens, int seq, int hidden),
           (x, tokens, wte, wpe, n_tokens, seq, hidden));

// dwte[token[n], c] += dx[n, c]: one thread per column walks the tokens in order, so repeated
// tokens accumulate in a fixed order and no two threads touch the same element.
GPT_HD void embed_bwd_tokens_at(long c, float* dwte, const float* dx, const int* tokens, int n_tokens, int hidden) {
  for (long n = 0; n < n_tokens; ++n) dwte[static_cast<long>(tokens[n]) * hidden + c] += dx[n * hidden + c];
}
GPT_KERNEL(embed_bwd_tokens, hidden, (float* dwte, const float* dx, const int* tokens, int n_tokens, int hidden),
           (dwte, dx, tokens, n_tokens, hidden));

// dwpe[t, c] = sum over sequences b of dx[b*T + t, c].
GPT_HD void embed_bwd_pos_at(long i, float* dwpe, const float* dx, int batch, int seq, int hidden) {
  float sum = 0.0f;
  for (long b = 0; b < batch; ++b) sum += dx[b * seq * hidden + i];
  dwpe[i] = sum;
}
GPT_KERNEL(embed_bwd_pos, static_cast<long>(seq) * hidden, (float* dwpe, const float* dx, int batch, int seq, int hidden),
           (dwpe, dx, batch, seq, hidden));

// ---- layernorm over rows of `hidden`, one thread per row ----
constexpr float kLayerNormEps = 1e-5f;

GPT_HD void layernorm_fwd_at(long n, float* out, float* mean, float* rstd, const float* x, const float* gamma,
                             const float* beta, int /*rows*/, int hidden) {
  const float* row = x + n * hidden;
  float sum = 0.0f;
  for (int c = 0; c < hidden; ++c) sum += row[c];
  const float m = sum / hidden;
  float var = 0.0f;
  for (int c = 0; c < hidden; ++c) var += (row[c] - m) * (row[c] - m);
  const float s = 1.0f / sqrtf(var / hidden + kLayerNormEps);
  for (int c = 0; c < hidden; ++c) out[n * hidden + c] = (row[c] - m) * s * gamma[c] + beta[c];
  mean[n] = m;
  rstd[n] = s;
}
GPT_KERNEL(layernorm_fwd, rows,
           (float* out, float* mean, float* rstd, const float* x, const float* gamma, const float* beta, int rows,
            int hidden),
           (out, mean, rstd, x, gamma, beta, rows, hidden));

// dx = residual + d(layernorm)/dx · dout. `residual` may be null (zero) or equal to dx
// (accumulate in place: each element is read before it is written, by the same thread).
GPT_HD void layernorm_bwd_at(long n, float* dx, const float* residual, const float* dout, const float* x,
                             const float* mean, const float* rstd, const float* gamma, int /*rows*/, int hidden) {
  const float m = mean[n], s = rstd[n];
  float sum_dxhat = 0.0f, sum_dxhat_xhat = 0.0f;
  for (int c = 0; c < hidden; ++c) {
    const float xhat = (x[n * hidden + c] - m) * s, dxhat = dout[n * hidden + c] * gamma[c];
    sum_dxhat += dxhat;
    sum_dxhat_xhat += dxhat * xhat;
  }
  const float mean_dxhat = sum_dxhat / hidden, mean_dxhat_xhat = sum_dxhat_xhat / hidden;
  for (int c = 0; c < hidden; ++c) {
    const long i = n * hidden + c;
    const float xhat = (x[i] - m) * s, dxhat = dout[i] * gamma[c];
    const float base = residual != nullptr ? residual[i] : 0.0f;
    dx[i] = base + s * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat);
  }
}
GPT_KERNEL(layernorm_bwd, rows,
           (float* dx, const float* residual, const float* dout, const float* x, const float* mean, const float* rstd,
            const float* gamma, int rows, int hidden),
           (dx, residual, dout, x, mean, rstd, gamma, rows, hidden));

// dgamma[c] = sum_n dout[n,c] * xhat[n,c]; dbeta[c] = sum_n dout[n,c]. One thread per column.
//
// Note [Column-sum twins]
// A column-sum thread walks down its column (stride `cols`), which on the CPU reads memory
// out of order. Its twin therefore runs all threads side by side, rows outer, columns inner:
// every column still adds rows 0, 1, 2, ... with the same operations as its GPU thread, one
// partial sum per thread, so the bits are the kernel's.
GPT_HD float layernorm_param_grad_term(const float* dout, const float* x, const float* mean, const float* rstd, long n,
                                       long c, int hidden) {
  return dout[n * hidden + c] * ((x[n * hidden + c] - mean[n]) * rstd[n]);
}
__global__ void layernorm_param_grad(float* dgamma, float* dbeta, const float* dout, const float* x, const float* mean,
                                     const float* rstd, int rows, int hidden) {
  const long c = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= hidden) return;
  float g = 0.0f, b = 0.0f;
  for (long n = 0; n < rows; ++n) {
    g += layernorm_param_grad_term(dout, x, mean, rstd, n, c, hidden);
    b += dout[n * hidden + c];
  }
  dgamma[c] = g;
  dbeta[c] = b;
}
static void layernorm_param_grad_cpu(const simcuda::Grid& grid, float* dgamma, float* dbeta, const float* dout,
                                     const float* x, const float* mean, const float* rstd, int rows, int hidden) {
  const long cols = std::min(static_cast<long>(grid.total_threads()), static_cast<long>(hidden));
  std::vector<float> g(cols, 0.0f), b(cols, 0.0f);  // thread c's registers
  for (long n = 0; n < rows; ++n)
    for (long c = 0; c < cols; ++c) {
      g[c] += layernorm_param_grad_term(dout, x, mean, rstd, n, c, hidden);
      b[c] += dout[n * hidden + c];
    }
  for (long c = 0; c < cols; ++c) {
    dgamma[c] = g[c];
    dbeta[c] = b[c];
  }
}
SIMCUDA_TWIN(layernorm_param_grad, layernorm_param_grad_cpu);

// ---- biases and residuals ----
// dbias[c] = sum over rows of dout[n, c] (leading dimension `cols`). One thread per column;
// the twin runs the threads side by side (Note [Column-sum twins]).
__global__ void bias_grad(float* dbias, const float* dout, int rows, int cols) {
  const long c = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float sum = 0.0f;
  for (long n = 0; n < rows; ++n) sum += dout[n * cols + c];
  dbias[c] = sum;
}
static void bias_grad_cpu(const simcuda::Grid& grid, float* dbias, const float* dout, int rows, int cols) {
  const long threads = std::min(static_cast<long>(grid.total_threads()), static_cast<long>(cols));
  std::vector<float> sum(threads, 0.0f);  // thread c's register
  for (long n = 0; n < rows; ++n)
    for (long c = 0; c < threads; ++c) sum[c] += dout[n * cols + c];
  for (long c = 0; c < threads; ++c) dbias[c] = sum[c];
}
SIMCUDA_TWIN(bias_grad, bias_grad_cpu);

// out = x + y + bias (broadcast over rows): the residual connection after a projection.
// One thread per row.
GPT_HD void residual_bias_add_at(long n, float* out, const float* x, const float* y, const float* bias, int /*rows*/,
                                 int cols) {
  for (long i = n * cols, c = 0; c < cols; ++i, ++c) out[i] = x[i] + (y[i] + bias[c]);
}
GPT_KERNEL(residual_bias_add, rows,
           (float* out, const float* x, const float* y, const float* bias, int rows, int cols),
           (out, x, y, bias, rows, cols));

// ---- attention layout ----
// qkv is [N, 3H] (row n = b*T + t; q, k, v side by side). Splits it, adding the bias, into
// q, k, v of shape [B, heads, T, head_dim], contiguous per (b, head) for strided batched GEMM.
// One thread per (b, head, t): it moves that position's head_dim values of q, k and v.
GPT_HD void qkv_split_at(long r, float* q, float* k, float* v, const float* qkv, const float* bias, int /*batch*/,
                         int heads, int seq, int head_dim) {
  const long hidden = static_cast<long>(heads) * head_dim;
  const long t = r % seq, h = (r / seq) % heads, b = r / (static_cast<long>(seq) * heads);
  const float* src = qkv + (b * seq + t) * 3 * hidden + h * head_dim;
  const float* bsrc = bias + h * head_dim;
  for (long j = 0, dst = r * head_dim; j < head_dim; ++j, ++dst) {
    q[dst] = src[j] + bsrc[j];
    k[dst] = src[hidden + j] + bsrc[hidden + j];
    v[dst] = src[2 * hidden + j] + bsrc[2 * hidden + j];
  }
}
GPT_KERNEL(qkv_split, static_cast<long>(batch) * heads * seq,
           (float* q, float* k, float* v, const float* qkv, const float* bias, int batch, int heads, int seq,
            int head_dim),
           (q, k, v, qkv, bias, batch, heads, seq, head_dim));

// The inverse: dqkv[N, 3H] from dq, dk, dv [B, heads, T, head_dim]; one thread per
// (b, head, t), writing that position's three head_dim segments of dqkv.
GPT_HD void qkv_merge_at(long r, float* dqkv, const float* dq, const float* dk, const float* dv, int /*batch*/,
                         int heads, int seq, int head_dim) {
  const long hidden = static_cast<long>(heads) * head_dim;
  const long t = r % seq, h = (r / seq) % heads, b = r / (static_cast<long>(seq) * heads);
  float* dst = dqkv + (b * seq + t) * 3 * hidden + h * head_dim;
  for (long j = 0, src = r * head_dim; j < head_dim; ++j, ++src) {
    dst[j] = dq[src];
    dst[hidden + j] = dk[src];
    dst[2 * hidden + j] = dv[src];
  }
}
GPT_KERNEL(qkv_merge, static_cast<long>(batch) * heads * seq,
           (float* dqkv, const float* dq, const float* dk, const float* dv, int batch, int heads, int seq,
            int head_dim),
           (dqkv, dq, dk, dv, batch, heads, seq, head_dim));

// max without a libm call on the host (fmaxf is one on x86-64); no NaNs reach it here.
GPT_HD float max_of(float a, float b) { return b > a ? b : a; }

// ---- causal softmax over rows of [B*heads, T, T], in place, one thread per row ----
// Row r is query position i = r % T; keys j > i are masked (probability 0).
GPT_HD void softmax_causal_fwd_at(long r, float* scores, int /*rows*/, int seq) {
  float* row = scores + r * seq;
  const int last = static_cast<int>(r % seq);
  float m = row[0];
  for (int j = 1; j <= last; ++j) m = max_of(m, row[j]);
  float sum = 0.0f;
  for (int j = 0; j <= last; ++j) {
    row[j] = expf(row[j] - m);
    sum += row[j];
  }
  const float inv = 1.0f / sum;
  for (int j = 0; j <= last; ++j) row[j] *= inv;
  for (int j = last + 1; j < seq; ++j) row[j] = 0.0f;
}
GPT_KERNEL(softmax_causal_fwd, rows, (float* scores, int rows, int seq), (scores, rows, seq));

// dscores = p * (dp - sum_j p_j dp_j), written over dp.
GPT_HD void softmax_causal_bwd_at(long r, float* dp, const float* p, int /*rows*/, int seq) {
  float* drow = dp + r * seq;
  const float* prow = p + r * seq;
  const int last = static_cast<int>(r % seq);
  float dot = 0.0f;
  for (int j = 0; j <= last; ++j) dot += prow[j] * drow[j];
  for (int j = 0; j <= last; ++j) drow[j] = prow[j] * (drow[j] - dot);
  for (int j = last + 1; j < seq; ++j) drow[j] = 0.0f;
}
GPT_KERNEL(softmax_causal_bwd, rows, (float* dp, const float* p, int rows, int seq), (dp, p, rows, seq));

// ---- GELU (tanh approximation) ----
// tanh(u) = 1 - 2 / (exp(2u) + 1): exact at both tails (exp overflows to inf, or underflows
// to 0), and one expf is much cheaper than tanhf in the CPU twin.
GPT_HD float tanh_via_exp(float u) { return 1.0f - 2.0f / (expf(2.0f * u) + 1.0f); }
GPT_HD float gelu(float x) {
  const float k = 0.7978845608f;  // sqrt(2/pi)
  return 0.5f * x * (1.0f + tanh_via_exp(k * (x + 0.044715f * x * x * x)));
}
GPT_HD float gelu_grad(float x) {
  const float k = 0.7978845608f;
  const float u = k * (x + 0.044715f * x * x * x), th = tanh_via_exp(u);
  return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * k * (1.0f + 3.0f * 0.044715f * x * x);
}
// h += bias (h keeps the pre-activation for backward); out = gelu(h). One thread per row.
GPT_HD void bias_gelu_fwd_at(long n, float* out, float* h, const float* bias, int /*rows*/, int cols) {
  for (long i = n * cols, c = 0; c < cols; ++i, ++c) {
    const float pre = h[i] + bias[c];
    h[i] = pre;
    out[i] = gelu(pre);
  }
}
GPT_KERNEL(bias_gelu_fwd, rows, (float* out, float* h, const float* bias, int rows, int cols),
           (out, h, bias, rows, cols));

// d *= gelu'(h), in place.
GPT_HD void gelu_bwd_at(long i, float* d, const float* h, long /*count*/) { d[i] = d[i] * gelu_grad(h[i]); }
GPT_KERNEL(gelu_bwd, count, (float* d, const float* h, long count), (d, h, count));

// ---- loss ----
// Softmax cross-entropy per row, fused with its gradient: logits [N, V] become
// dlogits = (softmax - onehot(target)) * grad_scale; losses[n] = -log softmax[target].
GPT_HD void cross_entropy_at(long n, float* logits, float* losses, const int* targets, int /*rows*/, int vocab,
                             float grad_scale) {
  float* row = logits + n * vocab;
  float m = row[0];
  for (int j = 1; j < vocab; ++j) m = max_of(m, row[j]);
  const int target = targets[n];
  const float target_logit = row[target];
  float sum = 0.0f;
  for (int j = 0; j < vocab; ++j) {
    row[j] = expf(row[j] - m);
    sum += row[j];
  }
  losses[n] = logf(sum) - (target_logit - m);
  const float inv = 1.0f / sum;
  for (int j = 0; j < vocab; ++j) row[j] = (row[j] * inv - (j == target ? 1.0f : 0.0f)) * grad_scale;
}
GPT_KERNEL(cross_entropy, rows, (float* logits, float* losses, const int* targets, int rows, int vocab, float grad_scale),
           (logits, losses, targets, rows, vocab, grad_scale));

// out[0] = mean of losses[0..count), summed in index order by one thread.
GPT_HD void mean_at(long, float* out, const float* values, int count) {
  float sum = 0.0f;
  for (int n = 0; n < count; ++n) sum += values[n];
  out[0] = sum / count;
}
GPT_KERNEL(mean, 1, (float* out, const float* values, int count), (out, values, count));

// ---- multi-tensor Adam ----
// Note [Pointers in a by-value struct]
// Like PyTorch's multi_tensor_apply, the tensor pointers travel inside a struct passed by
// value in the kernel's parameter block, not as separate parameters: an interposer that
// wants to know which buffers the launch touches has to scan the block's words.
constexpr int kAdamMaxTensors = 8;
struct TensorList {
  float* param[kAdamMaxTensors];
  float* grad[kAdamMaxTensors];
  float* m[kAdamMaxTensors];
  float* v[kAdamMaxTensors];
  int sizes[kAdamMaxTensors];
  int count;
};
struct AdamConfig {
  float lr, beta1, beta2, eps, weight_decay;
  float bias_correction1, bias_correction2;  // 1 - beta^step, computed by the host
};

// Element i of tensor t; grid-stride over the tensor in steps of `stride`.
GPT_HD void adam_at(const TensorList& list, const AdamConfig& cfg, int t, long i, long stride) {
  for (long e = i; e < list.sizes[t]; e += stride) {
    const float g = list.grad[t][e];
    const float m = cfg.beta1 * list.m[t][e] + (1.0f - cfg.beta1) * g;
    const float v = cfg.beta2 * list.v[t][e] + (1.0f - cfg.beta2) * g * g;
    list.m[t][e] = m;
    list.v[t][e] = v;
    const float m_hat = m / cfg.bias_correction1, v_hat = v / cfg.bias_correction2;
    float* p = list.param[t] + e;
    *p = *p - cfg.lr * (m_hat / (sqrtf(v_hat) + cfg.eps) + cfg.weight_decay * *p);
  }
}
// grid.y = tensor index (< list.count); grid.x * block.x threads stride over each tensor.
__global__ void adam_multi_tensor(TensorList list, AdamConfig cfg) {
  if (static_cast<int>(blockIdx.y) >= list.count) return;
  adam_at(list, cfg, static_cast<int>(blockIdx.y), static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x,
          static_cast<long>(gridDim.x) * blockDim.x);
}
static void adam_multi_tensor_cpu(const simcuda::Grid& grid, TensorList list, AdamConfig cfg) {
  const long stride = static_cast<long>(grid.launch->grid[0]) * grid.launch->block[0];
  const int tensors = std::min(static_cast<int>(grid.launch->grid[1]), list.count);
  for (int t = 0; t < tensors; ++t)
    for (long i = 0; i < stride; ++i) adam_at(list, cfg, t, i, stride);
}
SIMCUDA_TWIN(adam_multi_tensor, adam_multi_tensor_cpu);

}  // namespace gpt
