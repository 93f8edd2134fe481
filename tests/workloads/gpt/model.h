// gpt/model.h — a decoder-only transformer (GPT-2 style, pre-layernorm, tied embeddings)
// trained with Adam, written against the CUDA runtime and cuBLAS only.
//
// Note [Tensor lifetimes]
// As in PyTorch eager mode, weights and Adam state live for the whole run; activations and
// gradients are allocated during the step and freed right after their last use (the
// allocator's free is stream-ordered: every kernel runs on the one compute stream). The
// forward pass keeps, per layer, what the backward pass needs (Saved); the backward pass
// frees each saved tensor as soon as the last gradient that reads it has been enqueued.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cmath>
#include <vector>

#include "blas.h"
#include "kernels.h"
#include "workload.h"

namespace gpt {

struct Config {
  int batch, seq, layers, hidden, heads, vocab;
  int head_dim() const { return hidden / heads; }
  int tokens() const { return batch * seq; }
  long long attention_elements() const { return 1LL * batch * heads * seq * seq; }  // one [B*heads, T, T]
};

// One trainable tensor: value, Adam moments (persistent) and this step's gradient.
struct Param {
  float* value = nullptr;
  float* m = nullptr;
  float* v = nullptr;
  float* grad = nullptr;
  long count = 0;
};

// Per-layer parameters, in checksum and optimizer order.
enum LayerParam { kLn1Gamma, kLn1Beta, kWqkv, kBqkv, kWo, kBo, kLn2Gamma, kLn2Beta, kWfc, kBfc, kWproj, kBproj, kLayerParams };

// What the forward pass of one layer keeps for the backward pass.
struct Saved {
  float *x_in, *ln1, *mean1, *rstd1, *q, *k, *v, *probs, *att;
  float *x_mid, *ln2, *mean2, *rstd2, *h, *g;
};

class Model {
 public:
  Model(const Config& cfg, workload::DeviceAllocator& mem, cudaStream_t stream, cublasHandle_t blas)
      : cfg_(cfg), mem_(mem), stream_(stream), blas_(blas) {
    const long H = cfg.hidden;
    workload::Rng rng(0x6770745f747261ull);  // "gpt_tra"
    const float scale = 0.02f, proj_scale = 0.02f / std::sqrt(2.0f * cfg.layers);
    add_param(1L * cfg.vocab * H, rng, scale, 0.0f);  // wte (tied with the output head)
    add_param(1L * cfg.seq * H, rng, scale, 0.0f);    // wpe
    for (int l = 0; l < cfg.layers; ++l) {
      add_param(H, rng, 0.0f, 1.0f);               // ln1 gamma
      add_param(H, rng, 0.0f, 0.0f);               // ln1 beta
      add_param(H * 3 * H, rng, scale, 0.0f);      // w_qkv [H, 3H]
      add_param(3 * H, rng, 0.0f, 0.0f);           // b_qkv
      add_param(H * H, rng, proj_scale, 0.0f);     // w_o [H, H]
      add_param(H, rng, 0.0f, 0.0f);               // b_o
      add_param(H, rng, 0.0f, 1.0f);               // ln2 gamma
      add_param(H, rng, 0.0f, 0.0f);               // ln2 beta
      add_param(H * 4 * H, rng, scale, 0.0f);      // w_fc [H, 4H]
      add_param(4 * H, rng, 0.0f, 0.0f);           // b_fc
      add_param(4 * H * H, rng, proj_scale, 0.0f); // w_proj [4H, H]
      add_param(H, rng, 0.0f, 0.0f);               // b_proj
    }
    add_param(H, rng, 0.0f, 1.0f);  // lnf gamma
    add_param(H, rng, 0.0f, 0.0f);  // lnf beta
  }

  const std::vector<Param>& params() const { return params_; }

  // One training step on tokens [B, T] predicting targets [B, T]; returns the mean loss
  // (the one host synchronisation of the step).
  float step(const std::vector<int>& tokens, const std::vector<int>& targets, long step_number) {
    const int N = cfg_.tokens();
    tokens_ = mem_.alloc_array<int>(N);
    targets_ = mem_.alloc_array<int>(N);
    WL_CUDA(cudaMemcpyAsync(tokens_, tokens.data(), sizeof(int) * N, cudaMemcpyHostToDevice, stream_));
    WL_CUDA(cudaMemcpyAsync(targets_, targets.data(), sizeof(int) * N, cudaMemcpyHostToDevice, stream_));
    float* loss_device = forward();
    backward();
    adam(step_number);
    float loss = 0.0f;
    WL_CUDA(cudaMemcpyAsync(&loss, loss_device, sizeof(float), cudaMemcpyDeviceToHost, stream_));
    WL_CUDA(cudaStreamSynchronize(stream_));
    mem_.free(loss_device);
    return loss;
  }

 private:
  Param& layer_param(int l, LayerParam p) { return params_[2 + l * kLayerParams + p]; }
  Param& wte() { return params_[0]; }
  Param& wpe() { return params_[1]; }
  Param& lnf_gamma() { return params_[params_.size() - 2]; }
  Param& lnf_beta() { return params_[params_.size() - 1]; }

  void add_param(long count, workload::Rng& rng, float scale, float constant) {
    Param p;
    p.count = count;
    std::vector<float> host(count);
    for (float& x : host) x = scale != 0.0f ? rng.symmetric(scale) : constant;
    p.value = mem_.alloc_array<float>(count);
    p.m = mem_.alloc_array<float>(count);
    p.v = mem_.alloc_array<float>(count);
    WL_CUDA(cudaMemcpy(p.value, host.data(), sizeof(float) * count, cudaMemcpyHostToDevice));
    WL_CUDA(cudaMemsetAsync(p.m, 0, sizeof(float) * count, stream_));
    WL_CUDA(cudaMemsetAsync(p.v, 0, sizeof(float) * count, stream_));
    params_.push_back(p);
  }
  float* alloc(long count) { return mem_.alloc_array<float>(count); }
  float* alloc_grad(Param& p) { return p.grad = alloc(p.count); }
  void free(float*& p) {
    mem_.free(p);
    p = nullptr;
  }

  // Copies `pointers` into a fresh device array, stream-ordered (Note [Tensor lifetimes]).
  const float** device_pointer_array(const std::vector<const float*>& pointers) {
    auto* array = static_cast<const float**>(mem_.alloc(sizeof(float*) * pointers.size()));
    WL_CUDA(cudaMemcpyAsync(array, pointers.data(), sizeof(float*) * pointers.size(), cudaMemcpyHostToDevice, stream_));
    return array;
  }
  // For each (b, head): base + b*T*H + head*head_dim, the head's [T, head_dim] block of an
  // [N, H] activation (row stride H).
  std::vector<const float*> head_blocks(const float* base) const {
    std::vector<const float*> out;
    for (int b = 0; b < cfg_.batch; ++b)
      for (int h = 0; h < cfg_.heads; ++h) out.push_back(base + (1L * b * cfg_.seq * cfg_.hidden + 1L * h * cfg_.head_dim()));
    return out;
  }
  // For each (b, head) in order: base + index * stride.
  std::vector<const float*> strided_blocks(const float* base, long stride) const {
    std::vector<const float*> out;
    for (long i = 0; i < 1L * cfg_.batch * cfg_.heads; ++i) out.push_back(base + i * stride);
    return out;
  }
  static std::vector<const float*> concat(std::vector<const float*> a, const std::vector<const float*>& b,
                                          const std::vector<const float*>& c) {
    a.insert(a.end(), b.begin(), b.end());
    a.insert(a.end(), c.begin(), c.end());
    return a;
  }

  float* forward();
  void forward_layer(int l, float*& x);
  void backward();
  void backward_layer(int l, float* dx);
  void backward_attention(int l, float* datt, float* dqkv);
  void adam(long step_number);

  Config cfg_;
  workload::DeviceAllocator& mem_;
  cudaStream_t stream_;
  cublasHandle_t blas_;
  std::vector<Param> params_;
  std::vector<Saved> saved_;
  // Step state shared between forward and backward.
  int* tokens_ = nullptr;
  int* targets_ = nullptr;
  float *x_final_ = nullptr, *lnf_ = nullptr, *meanf_ = nullptr, *rstdf_ = nullptr, *logits_ = nullptr;
};

}  // namespace gpt

#include "model_impl.h"
