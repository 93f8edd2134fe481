// gpt_train — a reference training program: a small decoder-only transformer (GPT-2 style:
// token + position embeddings, pre-layernorm blocks of causal multi-head attention and a
// GELU MLP, final layernorm, output head tied to the token embedding) trained with Adam on
// deterministic synthetic token sequences.
//
// Written only against the CUDA runtime and cuBLAS plus its own kernels, so it trains the
// same on a real GPU as on the simulated one (tests/simcuda). What it exercises:
//  - cublasSgemm for every projection and the output head;
//  - cublasSgemmStridedBatched for attention scores and their gradients, over batch × heads;
//  - cublasSgemmBatched with pointer arrays in device memory for probs · v and its
//    gradients (each head reads or writes its columns of an [N, H] activation in place);
//  - nvcc kernels for embeddings, layernorm, GELU, causal softmax, cross-entropy, and a
//    multi-tensor Adam whose tensor pointers travel inside a by-value struct;
//  - one compute stream for everything, tensors allocated per step and freed after their
//    last use (--allocator direct|pool), and one host synchronisation per step (the loss).
//
// Output: `step N loss X` per step, then `peak_device_bytes N` and `checksum HEX` over every
// parameter. The output is bit-identical for any allocator, and under SIMCUDA_JITTER.
// With WORKLOAD_MANIFEST=PATH it records every cudaMalloc and cudaFree, every cuBLAS call
// (cublasSgemm_v2, cublasSgemmStridedBatched, cublasSgemmBatched) and every adam_multi_tensor
// launch (Note [Workload manifest] in workload.h).
//
// The defaults (B=16, T=256, L=10, H=64, 2 heads, V=512) give peak_device_bytes of about
// 258 MiB (direct) or 272 MiB (pool). The largest single operation is the causal softmax
// backward of one layer: probs and dprobs, 8 MiB each (16 MiB, a sixteenth of the footprint);
// every GEMM touches at most 10 MiB.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "gpt/model.h"
#include "workload.h"

namespace {

// Deterministic synthetic data: each sequence starts with two random tokens and then follows
// next = (5·prev + prev2 / 4 + 7) mod V, a rule a transformer can learn from context.
void make_batch(const gpt::Config& cfg, long step, std::vector<int>& tokens, std::vector<int>& targets) {
  workload::Rng rng(0x9e3779b9ull * static_cast<std::uint64_t>(step + 1));
  tokens.assign(cfg.tokens(), 0);
  targets.assign(cfg.tokens(), 0);
  std::vector<int> sequence(cfg.seq + 1);
  for (int b = 0; b < cfg.batch; ++b) {
    sequence[0] = static_cast<int>(rng.next() % cfg.vocab);
    sequence[1] = static_cast<int>(rng.next() % cfg.vocab);
    for (int t = 2; t <= cfg.seq; ++t) sequence[t] = (5 * sequence[t - 1] + sequence[t - 2] / 4 + 7) % cfg.vocab;
    for (int t = 0; t < cfg.seq; ++t) {
      tokens[b * cfg.seq + t] = sequence[t];
      targets[b * cfg.seq + t] = sequence[t + 1];
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  workload::Args args(argc, argv,
                      "gpt_train [--steps N] [--batch B] [--seq T] [--layers L] [--hidden H] [--heads A] "
                      "[--vocab V] [--allocator direct|pool]",
                      {{"steps", "5"},
                       {"batch", "16"},
                       {"seq", "256"},
                       {"layers", "10"},
                       {"hidden", "64"},
                       {"heads", "2"},
                       {"vocab", "512"},
                       {"allocator", "direct"}});
  gpt::Config cfg{};
  const long steps = args.integer("steps", 1);
  cfg.batch = static_cast<int>(args.integer("batch", 1));
  cfg.seq = static_cast<int>(args.integer("seq", 1));
  cfg.layers = static_cast<int>(args.integer("layers", 1));
  cfg.hidden = static_cast<int>(args.integer("hidden", 1));
  cfg.heads = static_cast<int>(args.integer("heads", 1));
  cfg.vocab = static_cast<int>(args.integer("vocab", 2));
  if (cfg.hidden % cfg.heads != 0) args.fail("--heads " + std::to_string(cfg.heads) + " (must divide --hidden)");
  workload::DeviceAllocator allocator(args.choice("allocator", {"direct", "pool"}));

  cudaStream_t stream = nullptr;
  WL_CUDA(cudaStreamCreate(&stream));
  cublasHandle_t blas = nullptr;
  GPT_CUBLAS(cublasCreate(&blas));
  GPT_CUBLAS(cublasSetStream(blas, stream));

  {
    gpt::Model model(cfg, allocator, stream, blas);
    std::vector<int> tokens, targets;
    for (long step = 1; step <= steps; ++step) {
      make_batch(cfg, step, tokens, targets);
      workload::print_step(step, model.step(tokens, targets, step));
    }
    workload::Checksum checksum;
    for (const gpt::Param& p : model.params()) checksum.add_device(p.value, sizeof(float) * p.count);
    workload::print_footer(allocator, checksum);
  }
  GPT_CUBLAS(cublasDestroy(blas));
  WL_CUDA(cudaStreamDestroy(stream));
  return 0;
}
