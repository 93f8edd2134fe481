// gpt/model_impl.h — forward, backward and optimizer of gpt::Model (included by model.h).
//
// Shapes: N = B*T token rows; H hidden; heads × head_dim = H; V vocabulary. Activations are
// row-major [N, cols]; q, k, v are [B*heads, T, head_dim]; attention probabilities are
// [B*heads, T, T]. Weights are row-major [in, out], so y = x · W.
#pragma once

#include <algorithm>
#include <cmath>

namespace gpt {

inline float* Model::forward() {
  const int N = cfg_.tokens(), H = cfg_.hidden, V = cfg_.vocab;
  float* x = alloc(1L * N * H);
  embed_fwd<<<blocks_for(1L * N * H), kThreadsPerBlock, 0, stream_>>>(x, tokens_, wte().value, wpe().value, N,
                                                                        cfg_.seq, H);
  WL_CUDA(cudaGetLastError());
  saved_.assign(cfg_.layers, Saved{});
  for (int l = 0; l < cfg_.layers; ++l) forward_layer(l, x);

  x_final_ = x;
  lnf_ = alloc(1L * N * H);
  meanf_ = alloc(N);
  rstdf_ = alloc(N);
  layernorm_fwd<<<blocks_for(N), kThreadsPerBlock, 0, stream_>>>(lnf_, meanf_, rstdf_, x, lnf_gamma().value,
                                                                  lnf_beta().value, N, H);
  // Tied output head: logits = lnf · wteᵀ, [N, V].
  logits_ = alloc(1L * N * V);
  gemm(blas_, Op::N, Op::T, N, V, H, 1.0f, lnf_, H, wte().value, H, 0.0f, logits_, V);
  // Loss and dlogits in one pass (the logits buffer becomes dlogits).
  float* losses = alloc(N);
  cross_entropy<<<blocks_for(N), kThreadsPerBlock, 0, stream_>>>(logits_, losses, targets_, N, V, 1.0f / N);
  float* loss = alloc(1);
  mean<<<1, 1, 0, stream_>>>(loss, losses, N);
  WL_CUDA(cudaGetLastError());
  free(losses);
  return loss;
}

inline void Model::forward_layer(int l, float*& x) {
  const int N = cfg_.tokens(), H = cfg_.hidden, T = cfg_.seq, D = cfg_.head_dim(), BH = cfg_.batch * cfg_.heads;
  Saved& s = saved_[l];
  s.x_in = x;
  s.ln1 = alloc(1L * N * H);
  s.mean1 = alloc(N);
  s.rstd1 = alloc(N);
  layernorm_fwd<<<blocks_for(N), kThreadsPerBlock, 0, stream_>>>(s.ln1, s.mean1, s.rstd1, x,
                                                                  layer_param(l, kLn1Gamma).value,
                                                                  layer_param(l, kLn1Beta).value, N, H);
  // qkv = ln1 · Wqkv, then split per head (adding the bias).
  float* qkv = alloc(3L * N * H);
  gemm(blas_, Op::N, Op::N, N, 3 * H, H, 1.0f, s.ln1, H, layer_param(l, kWqkv).value, 3 * H, 0.0f, qkv, 3 * H);
  s.q = alloc(1L * N * H);
  s.k = alloc(1L * N * H);
  s.v = alloc(1L * N * H);
  qkv_split<<<blocks_for(1L * BH * T), kThreadsPerBlock, 0, stream_>>>(s.q, s.k, s.v, qkv, layer_param(l, kBqkv).value,
                                                                       cfg_.batch, cfg_.heads, T, D);
  free(qkv);
  // scores = q · kᵀ / sqrt(D) for every (b, head), then the causal softmax in place.
  s.probs = alloc(cfg_.attention_elements());
  gemm_strided(blas_, Op::N, Op::T, T, T, D, 1.0f / std::sqrt(static_cast<float>(D)), s.q, D, 1LL * T * D, s.k, D,
               1LL * T * D, 0.0f, s.probs, T, 1LL * T * T, BH);
  softmax_causal_fwd<<<blocks_for(1L * BH * T), kThreadsPerBlock, 0, stream_>>>(s.probs, BH * T, T);
  WL_CUDA(cudaGetLastError());
  // att[b*T + t, head*D + j] = probs · v: a pointer-array batched GEMM writing each head
  // straight into its columns of the [N, H] output (Note [Pointers in device memory]).
  s.att = alloc(1L * N * H);
  {
    const long bh = BH;
    const std::vector<const float*> pointers =
        concat(strided_blocks(s.probs, 1L * T * T), strided_blocks(s.v, 1L * T * D), head_blocks(s.att));
    const float** arrays = device_pointer_array(pointers);
    const float* const* host = pointers.data();
    gemm_batched(blas_, Op::N, Op::N, T, D, T, 1.0f, arrays, T, arrays + bh, D, 0.0f,
                 const_cast<float* const*>(arrays + 2 * bh), H, BH, host, host + bh, host + 2 * bh);
    mem_.free(arrays);
  }
  // x_mid = x + att · Wo + bo
  float* proj = alloc(1L * N * H);
  gemm(blas_, Op::N, Op::N, N, H, H, 1.0f, s.att, H, layer_param(l, kWo).value, H, 0.0f, proj, H);
  s.x_mid = alloc(1L * N * H);
  residual_bias_add<<<blocks_for(N), kThreadsPerBlock, 0, stream_>>>(s.x_mid, x, proj,
                                                                               layer_param(l, kBo).value, N, H);
  free(proj);
  // MLP: g = gelu(ln2 · Wfc + bfc); x_out = x_mid + g · Wproj + bproj
  s.ln2 = alloc(1L * N * H);
  s.mean2 = alloc(N);
  s.rstd2 = alloc(N);
  layernorm_fwd<<<blocks_for(N), kThreadsPerBlock, 0, stream_>>>(s.ln2, s.mean2, s.rstd2, s.x_mid,
                                                                  layer_param(l, kLn2Gamma).value,
                                                                  layer_param(l, kLn2Beta).value, N, H);
  s.h = alloc(4L * N * H);
  gemm(blas_, Op::N, Op::N, N, 4 * H, H, 1.0f, s.ln2, H, layer_param(l, kWfc).value, 4 * H, 0.0f, s.h, 4 * H);
  s.g = alloc(4L * N * H);
  bias_gelu_fwd<<<blocks_for(N), kThreadsPerBlock, 0, stream_>>>(s.g, s.h, layer_param(l, kBfc).value, N,
                                                                           4 * H);
  float* mlp = alloc(1L * N * H);
  gemm(blas_, Op::N, Op::N, N, H, 4 * H, 1.0f, s.g, 4 * H, layer_param(l, kWproj).value, H, 0.0f, mlp, H);
  x = alloc(1L * N * H);
  residual_bias_add<<<blocks_for(N), kThreadsPerBlock, 0, stream_>>>(x, s.x_mid, mlp,
                                                                               layer_param(l, kBproj).value, N, H);
  WL_CUDA(cudaGetLastError());
  free(mlp);
}

inline void Model::backward() {
  const int N = cfg_.tokens(), H = cfg_.hidden, V = cfg_.vocab;
  // Output head (logits_ holds dlogits): dwte = dlogitsᵀ · lnf, dlnf = dlogits · wte.
  gemm(blas_, Op::T, Op::N, V, H, N, 1.0f, logits_, V, lnf_, H, 0.0f, alloc_grad(wte()), H);
  float* dlnf = alloc(1L * N * H);
  gemm(blas_, Op::N, Op::N, N, H, V, 1.0f, logits_, V, wte().value, H, 0.0f, dlnf, H);
  free(logits_);
  float* dx = alloc(1L * N * H);
  layernorm_bwd<<<blocks_for(N), kThreadsPerBlock, 0, stream_>>>(dx, nullptr, dlnf, x_final_, meanf_, rstdf_,
                                                                  lnf_gamma().value, N, H);
  layernorm_param_grad<<<blocks_for(H), kThreadsPerBlock, 0, stream_>>>(
      alloc_grad(lnf_gamma()), alloc_grad(lnf_beta()), dlnf, x_final_, meanf_, rstdf_, N, H);
  WL_CUDA(cudaGetLastError());
  free(dlnf);
  free(lnf_);
  free(meanf_);
  free(rstdf_);
  free(x_final_);

  for (int l = cfg_.layers - 1; l >= 0; --l) backward_layer(l, dx);

  // Embeddings: dwte (already holding the output head's share) += scattered dx; dwpe.
  embed_bwd_tokens<<<blocks_for(H), kThreadsPerBlock, 0, stream_>>>(wte().grad, dx, tokens_, N, H);
  embed_bwd_pos<<<blocks_for(1L * cfg_.seq * H), kThreadsPerBlock, 0, stream_>>>(alloc_grad(wpe()), dx, cfg_.batch,
                                                                                  cfg_.seq, H);
  WL_CUDA(cudaGetLastError());
  free(dx);
  mem_.free(tokens_);
  mem_.free(targets_);
  tokens_ = targets_ = nullptr;
}

// dx: gradient of the layer's output on entry, of its input on return (updated in place).
inline void Model::backward_layer(int l, float* dx) {
  const int N = cfg_.tokens(), H = cfg_.hidden;
  Saved& s = saved_[l];
  // MLP.
  gemm(blas_, Op::T, Op::N, 4 * H, H, N, 1.0f, s.g, 4 * H, dx, H, 0.0f, alloc_grad(layer_param(l, kWproj)), H);
  bias_grad<<<blocks_for(H), kThreadsPerBlock, 0, stream_>>>(alloc_grad(layer_param(l, kBproj)), dx, N, H);
  float* dh = alloc(4L * N * H);
  gemm(blas_, Op::N, Op::T, N, 4 * H, H, 1.0f, dx, H, layer_param(l, kWproj).value, H, 0.0f, dh, 4 * H);
  free(s.g);
  gelu_bwd<<<blocks_for(4L * N * H), kThreadsPerBlock, 0, stream_>>>(dh, s.h, 4L * N * H);
  free(s.h);
  gemm(blas_, Op::T, Op::N, H, 4 * H, N, 1.0f, s.ln2, H, dh, 4 * H, 0.0f, alloc_grad(layer_param(l, kWfc)), 4 * H);
  bias_grad<<<blocks_for(4L * H), kThreadsPerBlock, 0, stream_>>>(alloc_grad(layer_param(l, kBfc)), dh, N, 4 * H);
  float* dln2 = alloc(1L * N * H);
  gemm(blas_, Op::N, Op::T, N, H, 4 * H, 1.0f, dh, 4 * H, layer_param(l, kWfc).value, 4 * H, 0.0f, dln2, H);
  free(dh);
  free(s.ln2);
  layernorm_param_grad<<<blocks_for(H), kThreadsPerBlock, 0, stream_>>>(
      alloc_grad(layer_param(l, kLn2Gamma)), alloc_grad(layer_param(l, kLn2Beta)), dln2, s.x_mid, s.mean2, s.rstd2, N, H);
  layernorm_bwd<<<blocks_for(N), kThreadsPerBlock, 0, stream_>>>(dx, dx, dln2, s.x_mid, s.mean2, s.rstd2,
                                                                  layer_param(l, kLn2Gamma).value, N, H);
  WL_CUDA(cudaGetLastError());
  free(dln2);
  free(s.x_mid);
  free(s.mean2);
  free(s.rstd2);

  // Attention output projection.
  gemm(blas_, Op::T, Op::N, H, H, N, 1.0f, s.att, H, dx, H, 0.0f, alloc_grad(layer_param(l, kWo)), H);
  bias_grad<<<blocks_for(H), kThreadsPerBlock, 0, stream_>>>(alloc_grad(layer_param(l, kBo)), dx, N, H);
  free(s.att);
  float* datt = alloc(1L * N * H);
  gemm(blas_, Op::N, Op::T, N, H, H, 1.0f, dx, H, layer_param(l, kWo).value, H, 0.0f, datt, H);
  float* dqkv = alloc(3L * N * H);
  backward_attention(l, datt, dqkv);  // frees datt

  // QKV projection and the first layernorm.
  bias_grad<<<blocks_for(3L * H), kThreadsPerBlock, 0, stream_>>>(alloc_grad(layer_param(l, kBqkv)), dqkv, N, 3 * H);
  gemm(blas_, Op::T, Op::N, H, 3 * H, N, 1.0f, s.ln1, H, dqkv, 3 * H, 0.0f, alloc_grad(layer_param(l, kWqkv)), 3 * H);
  free(s.ln1);
  float* dln1 = alloc(1L * N * H);
  gemm(blas_, Op::N, Op::T, N, H, 3 * H, 1.0f, dqkv, 3 * H, layer_param(l, kWqkv).value, 3 * H, 0.0f, dln1, H);
  free(dqkv);
  layernorm_param_grad<<<blocks_for(H), kThreadsPerBlock, 0, stream_>>>(
      alloc_grad(layer_param(l, kLn1Gamma)), alloc_grad(layer_param(l, kLn1Beta)), dln1, s.x_in, s.mean1, s.rstd1, N, H);
  layernorm_bwd<<<blocks_for(N), kThreadsPerBlock, 0, stream_>>>(dx, dx, dln1, s.x_in, s.mean1, s.rstd1,
                                                                  layer_param(l, kLn1Gamma).value, N, H);
  WL_CUDA(cudaGetLastError());
  free(dln1);
  free(s.x_in);
  free(s.mean1);
  free(s.rstd1);
}

// From datt [N, H] (freed here) to dqkv [N, 3H]; frees q, k, v and probs of layer l.
inline void Model::backward_attention(int l, float* datt, float* dqkv) {
  const int N = cfg_.tokens(), H = cfg_.hidden, T = cfg_.seq, D = cfg_.head_dim(), BH = cfg_.batch * cfg_.heads;
  Saved& s = saved_[l];
  float* dprobs = alloc(cfg_.attention_elements());
  float* dv = alloc(1L * N * H);
  {
    // dprobs = datt_head · vᵀ and dv = probsᵀ · datt_head, reading datt's heads in place
    // through device pointer arrays. Layout: [datt heads | v | dprobs | probs | dv].
    const long bh = BH;
    std::vector<const float*> pointers = concat(head_blocks(datt), strided_blocks(s.v, 1L * T * D),
                                                strided_blocks(dprobs, 1L * T * T));
    pointers = concat(pointers, strided_blocks(s.probs, 1L * T * T), strided_blocks(dv, 1L * T * D));
    const float** arrays = device_pointer_array(pointers);
    const float* const* host = pointers.data();
    gemm_batched(blas_, Op::N, Op::T, T, T, D, 1.0f, arrays, H, arrays + bh, D, 0.0f,
                 const_cast<float* const*>(arrays + 2 * bh), T, BH, host, host + bh, host + 2 * bh);
    gemm_batched(blas_, Op::T, Op::N, T, D, T, 1.0f, arrays + 3 * bh, T, arrays, H, 0.0f,
                 const_cast<float* const*>(arrays + 4 * bh), D, BH, host + 3 * bh, host, host + 4 * bh);
    mem_.free(arrays);
  }
  free(datt);
  free(s.v);
  softmax_causal_bwd<<<blocks_for(1L * BH * T), kThreadsPerBlock, 0, stream_>>>(dprobs, s.probs, BH * T, T);
  WL_CUDA(cudaGetLastError());
  free(s.probs);
  // dq = dscores · k / sqrt(D); dk = dscoresᵀ · q / sqrt(D).
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  float* dq = alloc(1L * N * H);
  gemm_strided(blas_, Op::N, Op::N, T, D, T, scale, dprobs, T, 1LL * T * T, s.k, D, 1LL * T * D, 0.0f, dq, D,
               1LL * T * D, BH);
  float* dk = alloc(1L * N * H);
  gemm_strided(blas_, Op::T, Op::N, T, D, T, scale, dprobs, T, 1LL * T * T, s.q, D, 1LL * T * D, 0.0f, dk, D,
               1LL * T * D, BH);
  free(dprobs);
  free(s.q);
  free(s.k);
  qkv_merge<<<blocks_for(1L * BH * T), kThreadsPerBlock, 0, stream_>>>(dqkv, dq, dk, dv, cfg_.batch, cfg_.heads, T, D);
  WL_CUDA(cudaGetLastError());
  free(dq);
  free(dk);
  free(dv);
}

// Adam on every parameter, up to kAdamMaxTensors per launch (Note [Pointers in a by-value
// struct]); then the gradients are freed.
inline void Model::adam(long step_number) {
  AdamConfig cfg{};
  cfg.lr = 3e-3f;
  cfg.beta1 = 0.9f;
  cfg.beta2 = 0.95f;
  cfg.eps = 1e-8f;
  cfg.weight_decay = 0.0f;
  cfg.bias_correction1 = 1.0f - static_cast<float>(std::pow(0.9, static_cast<double>(step_number)));
  cfg.bias_correction2 = 1.0f - static_cast<float>(std::pow(0.95, static_cast<double>(step_number)));
  for (std::size_t first = 0; first < params_.size(); first += kAdamMaxTensors) {
    TensorList list{};
    long largest = 0;
    for (std::size_t i = first; i < std::min(params_.size(), first + kAdamMaxTensors); ++i) {
      const Param& p = params_[i];
      const int t = list.count++;
      list.param[t] = p.value;
      list.grad[t] = p.grad;
      list.m[t] = p.m;
      list.v[t] = p.v;
      list.sizes[t] = static_cast<int>(p.count);
      largest = std::max(largest, p.count);
    }
    const dim3 grid(std::min(blocks_for(largest), 64u), static_cast<unsigned>(list.count));
    adam_multi_tensor<<<grid, kThreadsPerBlock, 0, stream_>>>(list, cfg);
    WL_CUDA(cudaGetLastError());
    if (workload::manifest().enabled()) {
      std::vector<workload::Range> ranges;
      for (int t = 0; t < list.count; ++t) {
        const std::size_t bytes = sizeof(float) * static_cast<std::size_t>(list.sizes[t]);
        ranges.push_back({list.param[t], bytes, workload::Access::rw});
        ranges.push_back({list.grad[t], bytes, workload::Access::r});
        ranges.push_back({list.m[t], bytes, workload::Access::rw});
        ranges.push_back({list.v[t], bytes, workload::Access::rw});
      }
      workload::manifest().op("adam_multi_tensor", ranges);
    }
  }
  for (Param& p : params_) free(p.grad);
}

}  // namespace gpt
