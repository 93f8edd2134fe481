// cnn_train — a VGG-style convolutional network trained with SGD and momentum on synthetic images.
//
// Written only against the public CUDA runtime, cuBLAS (cublas_v2.h) and the legacy cuDNN API, so
// the same source trains on a real GPU; on the simulated GPU (tests/simcuda) it runs unmodified
// through LD_LIBRARY_PATH. It is the reference CNN workload for oversub: its allocation pattern is
// a framework's (every activation and gradient is allocated when produced and freed after its last
// use, each step anew; weights and momentum persist), and its output is bit-identical across runs,
// allocators and stream timings, so a run under the shim can be compared with one without it.
//
// Network (B = --batch, S = --image, C = --channels):
//   input B×3×S×S
//   5 stages of 2, 2, 4, 4, 4 × [conv3×3 (pad 1, no bias) → batch norm (spatial) → ReLU], widths
//   C, 2C, 4C, 8C, 8C, each stage ending in 2×2 max pooling (VGG-19's trunk)
//   flatten (8C·(S/32)²) → 11 × [fc 1280 → batch norm (per activation) → ReLU] → fc 10 + bias
//   log-softmax (cudnnSoftmaxForward, LOG) → negative log-likelihood (nll_loss kernel)
//   → gradient through cudnnSoftmaxBackward.
// Data: each image is its class's fixed 4×4-cell template (one sign per cell and channel) plus
// uniform noise, so the label is a learnable function of the image and the loss falls.
//
// Output: `step N loss X` for N = 0.., `peak_device_bytes N`, `checksum HEX` (workload.h).
// With WORKLOAD_MANIFEST=PATH it records every cudaMalloc and cudaFree, every
// cudnnConvolutionForward and every cublasSgemm_v2 (Note [Workload manifest] in workload.h).
// With CNN_TRAIN_OP_REPORT=1 in the environment it also writes, to stderr, the largest single
// operation's working set (inputs + outputs + workspace), which the defaults keep under a tenth
// of the footprint.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <vector>

#include "simcuda/twin.h"
#include "workload.h"

using workload::Args;
using workload::Checksum;
using workload::DeviceAllocator;
using workload::Rng;

#define WL_CUDNN(expr)                                                                              \
  do {                                                                                              \
    cudnnStatus_t wl_status_ = (expr);                                                              \
    if (wl_status_ != CUDNN_STATUS_SUCCESS) {                                                       \
      std::fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr,                     \
                   cudnnGetErrorString(wl_status_));                                                \
      std::exit(1);                                                                                 \
    }                                                                                               \
  } while (0)

#define WL_CUBLAS(expr)                                                                             \
  do {                                                                                              \
    cublasStatus_t wl_status_ = (expr);                                                             \
    if (wl_status_ != CUBLAS_STATUS_SUCCESS) {                                                      \
      std::fprintf(stderr, "%s:%d: %s failed: status %d\n", __FILE__, __LINE__, #expr,              \
                   static_cast<int>(wl_status_));                                                   \
      std::exit(1);                                                                                 \
    }                                                                                               \
  } while (0)

namespace {

constexpr int kInputChannels = 3;
constexpr int kClasses = 10;
// VGG-19's layout, narrower: stages of 2, 2, 4, 4, 4 convolutions of width C, 2C, 4C, 8C, 8C, each
// stage ending in a 2×2 max pool (so --image must be a multiple of 32), then an MLP classifier.
struct Stage {
  int convs, width_multiplier;
};
const std::vector<Stage> kStages = {{2, 1}, {2, 2}, {4, 4}, {4, 8}, {4, 8}};
// The classifier's hidden layers: many moderate ones (6.25 MiB of weights each, so no SGD update
// touches more than a tenth of the footprint) rather than VGG's few huge ones. They hold most of
// the footprint, cheaply: on the simulated GPU every activation byte costs far more time.
const std::vector<int> kHiddenUnits(11, 1280);
constexpr int kTemplateCells = 4;   // class templates are kTemplateCells × kTemplateCells cells
constexpr float kLearningRate = 0.003f;
constexpr float kMomentum = 0.9f;
constexpr float kWeightDecay = 5e-4f;
constexpr double kBnMomentum = 0.1;  // cuDNN's exponentialAverageFactor
constexpr double kBnEpsilon = 1e-5;
// Most workspace one convolution may use, as frameworks cap cuDNN's workspace (bytes).
constexpr std::size_t kWorkspaceLimitBytes = std::size_t{16} << 20;
constexpr int kThreadsPerBlock = 256;
constexpr int kMaxBlocks = 1024;

// ---- kernels (each with its CPU twin for the simulated GPU) ----

// Note [Twin arithmetic]
// The kernels round every multiply and add on its own (__fmul_rn/__fadd_rn stop nvcc from
// contracting them into FMAs), and the host compiler does the same plain fp32 operations, so a
// kernel and its twin give the same bits. Each kernel is a 1-D grid-stride loop whose element i
// depends only on i; the twin visits every i < n once, which is what the threads do together.
__host__ __device__ inline float mul_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
__host__ __device__ inline float add_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

// SGD with momentum and L2 decay (PyTorch's form): v = momentum·v + (g + decay·w); w -= lr·v.
__host__ __device__ inline void sgd_element(float* w, float* v, const float* g, float lr, float momentum,
                                            float decay, int i) {
  const float grad = add_rn(g[i], mul_rn(decay, w[i]));
  const float velocity = add_rn(mul_rn(momentum, v[i]), grad);
  v[i] = velocity;
  w[i] = add_rn(w[i], mul_rn(-lr, velocity));
}
__global__ void sgd_momentum(float* w, float* v, const float* g, float lr, float momentum, float decay, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    sgd_element(w, v, g, lr, momentum, decay, i);
}
void sgd_momentum_cpu(const simcuda::Grid& grid, float* w, float* v, const float* g, float lr, float momentum,
                      float decay, int n) {
  if (grid.total_threads() == 0) return;
  for (int i = 0; i < n; ++i) sgd_element(w, v, g, lr, momentum, decay, i);
}
SIMCUDA_TWIN(sgd_momentum, sgd_momentum_cpu);

// Negative log-likelihood over log-probabilities logp (batch × classes): loss[b] = −logp[b, label[b]]
// and its gradient dlogp = −1/batch at the label, 0 elsewhere (the loss is the batch mean).
__host__ __device__ inline void nll_element(const float* logp, const int* labels, float* dlogp, float* loss,
                                            int classes, float inv_batch, int i) {
  const int b = i / classes, j = i % classes;
  const bool hit = j == labels[b];
  dlogp[i] = hit ? -inv_batch : 0.0f;
  if (hit) loss[b] = -logp[i];
}
__global__ void nll_loss(const float* logp, const int* labels, float* dlogp, float* loss, int classes,
                         float inv_batch, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    nll_element(logp, labels, dlogp, loss, classes, inv_batch, i);
}
void nll_loss_cpu(const simcuda::Grid& grid, const float* logp, const int* labels, float* dlogp, float* loss,
                  int classes, float inv_batch, int n) {
  if (grid.total_threads() == 0) return;
  for (int i = 0; i < n; ++i) nll_element(logp, labels, dlogp, loss, classes, inv_batch, i);
}
SIMCUDA_TWIN(nll_loss, nll_loss_cpu);

int grid_blocks(std::size_t n) {
  return static_cast<int>(std::min<std::size_t>(kMaxBlocks, (n + kThreadsPerBlock - 1) / kThreadsPerBlock));
}

// ---- bookkeeping ----

// The largest working set of a single operation, for CNN_TRAIN_OP_REPORT.
struct OpMeter {
  std::size_t largest_bytes = 0;
  std::string largest_name;
  void note(const char* name, std::initializer_list<std::size_t> bytes) {
    std::size_t total = 0;
    for (std::size_t b : bytes) total += b;
    if (total > largest_bytes) largest_bytes = total, largest_name = name;
  }
};

struct Context {
  Context(DeviceAllocator& allocator_, cudaStream_t stream_, cudnnHandle_t cudnn_, cublasHandle_t cublas_)
      : allocator(allocator_), stream(stream_), cudnn(cudnn_), cublas(cublas_) {}
  DeviceAllocator& allocator;
  cudaStream_t stream;
  cudnnHandle_t cudnn;
  cublasHandle_t cublas;
  OpMeter meter;
  const float one = 1.0f, zero = 0.0f;
  float* alloc(std::size_t count) { return allocator.alloc_array<float>(count); }
  void free(void* p) { allocator.free(p); }
};

// A trained tensor: its value and momentum persist; the gradient lives from backward to the update.
struct Param {
  std::size_t count = 0;
  float decay = 0.0f;
  float* value = nullptr;
  float* velocity = nullptr;
  float* grad = nullptr;
};

cudnnTensorDescriptor_t make_tensor(int n, int c, int h, int w) {
  cudnnTensorDescriptor_t d;
  WL_CUDNN(cudnnCreateTensorDescriptor(&d));
  WL_CUDNN(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w));
  return d;
}

// Uploads host values into a new persistent parameter with a zeroed momentum buffer.
void init_param(Context& ctx, Param& p, const std::vector<float>& values, float decay) {
  p.count = values.size();
  p.decay = decay;
  p.value = ctx.alloc(p.count);
  p.velocity = ctx.alloc(p.count);
  WL_CUDA(cudaMemcpyAsync(p.value, values.data(), p.count * sizeof(float), cudaMemcpyHostToDevice, ctx.stream));
  WL_CUDA(cudaMemsetAsync(p.velocity, 0, p.count * sizeof(float), ctx.stream));
  // The host vector dies when we return: wait for the copy (setup only, never in a step).
  WL_CUDA(cudaStreamSynchronize(ctx.stream));
}

// Uniform initial weights in ±sqrt(gain / fan_in): gain 6 is He (convolutions, followed by batch
// norm), gain 1 is PyTorch's default for nn.Linear (keeps the first logits small).
std::vector<float> uniform_init(Rng& rng, std::size_t count, int fan_in, float gain) {
  std::vector<float> v(count);
  const float bound = std::sqrt(gain / static_cast<float>(fan_in));
  for (float& x : v) x = rng.symmetric(bound);
  return v;
}

// ---- batch norm → ReLU: after a convolution (spatial) or a fully connected layer (per activation) ----

struct BnRelu {
  cudnnBatchNormMode_t mode = CUDNN_BATCHNORM_SPATIAL;
  int channels = 0;
  std::size_t count = 0;  // elements of x
  cudnnTensorDescriptor_t desc = nullptr, param_desc = nullptr;
  Param scale, bias;
  float *running_mean = nullptr, *running_var = nullptr;
  // Per step: x belongs to the layer before (freed here in backward, its last reader).
  float *x = nullptr, *normed = nullptr, *out = nullptr, *save_mean = nullptr, *save_inv_var = nullptr;
};

void setup_bn_relu(Context& ctx, BnRelu& B, cudnnTensorDescriptor_t desc, std::size_t count, int channels,
                   cudnnBatchNormMode_t mode) {
  B.mode = mode;
  B.channels = channels;
  B.count = count;
  B.desc = desc;
  WL_CUDNN(cudnnCreateTensorDescriptor(&B.param_desc));
  WL_CUDNN(cudnnDeriveBNTensorDescriptor(B.param_desc, desc, mode));
  init_param(ctx, B.scale, std::vector<float>(channels, 1.0f), 0.0f);
  init_param(ctx, B.bias, std::vector<float>(channels, 0.0f), 0.0f);
  B.running_mean = ctx.alloc(channels);
  B.running_var = ctx.alloc(channels);
  std::vector<float> ones(channels, 1.0f);
  WL_CUDA(cudaMemsetAsync(B.running_mean, 0, channels * sizeof(float), ctx.stream));
  WL_CUDA(cudaMemcpyAsync(B.running_var, ones.data(), channels * sizeof(float), cudaMemcpyHostToDevice, ctx.stream));
  WL_CUDA(cudaStreamSynchronize(ctx.stream));
}

void bn_relu_forward(Context& ctx, BnRelu& B, float* x, cudnnActivationDescriptor_t relu) {
  const std::size_t bytes = B.count * 4;
  B.x = x;
  B.normed = ctx.alloc(B.count);
  B.save_mean = ctx.alloc(B.channels);
  B.save_inv_var = ctx.alloc(B.channels);
  WL_CUDNN(cudnnBatchNormalizationForwardTraining(ctx.cudnn, B.mode, &ctx.one, &ctx.zero, B.desc, x, B.desc,
                                                  B.normed, B.param_desc, B.scale.value, B.bias.value, kBnMomentum,
                                                  B.running_mean, B.running_var, kBnEpsilon, B.save_mean,
                                                  B.save_inv_var));
  ctx.meter.note("batch norm forward", {bytes, bytes});
  B.out = ctx.alloc(B.count);
  WL_CUDNN(cudnnActivationForward(ctx.cudnn, relu, &ctx.one, B.desc, B.normed, &ctx.zero, B.desc, B.out));
  ctx.meter.note("relu forward", {bytes, bytes});
}

// Takes the gradient of B.out (freed here) and returns the gradient of B.x.
float* bn_relu_backward(Context& ctx, BnRelu& B, float* dout, cudnnActivationDescriptor_t relu) {
  const std::size_t bytes = B.count * 4;
  float* dnormed = ctx.alloc(B.count);
  WL_CUDNN(cudnnActivationBackward(ctx.cudnn, relu, &ctx.one, B.desc, B.out, B.desc, dout, B.desc, B.normed,
                                   &ctx.zero, B.desc, dnormed));
  ctx.meter.note("relu backward", {bytes, bytes, bytes, bytes});
  ctx.free(dout);
  ctx.free(B.out);
  ctx.free(B.normed);
  float* dx = ctx.alloc(B.count);
  B.scale.grad = ctx.alloc(B.channels);
  B.bias.grad = ctx.alloc(B.channels);
  WL_CUDNN(cudnnBatchNormalizationBackward(ctx.cudnn, B.mode, &ctx.one, &ctx.zero, &ctx.one, &ctx.zero, B.desc, B.x,
                                           B.desc, dnormed, B.desc, dx, B.param_desc, B.scale.value, B.scale.grad,
                                           B.bias.grad, kBnEpsilon, B.save_mean, B.save_inv_var));
  ctx.meter.note("batch norm backward", {bytes, bytes, bytes});
  ctx.free(dnormed);
  ctx.free(B.x);
  ctx.free(B.save_mean);
  ctx.free(B.save_inv_var);
  return dx;
}

// ---- convolution block: conv3×3 (pad 1, no bias) → batch norm → ReLU [→ 2×2 max pool] ----

struct ConvBlock {
  ConvBlock(int batch_, int cin_, int cout_, int size_, bool pool_)
      : batch(batch_), cin(cin_), cout(cout_), size(size_), pool(pool_) {}
  int batch, cin, cout, size;  // the block keeps size × size until its pooling
  bool pool;
  Param weight;
  BnRelu norm;
  cudnnTensorDescriptor_t x_desc = nullptr, y_desc = nullptr, pooled_desc = nullptr;
  cudnnFilterDescriptor_t w_desc = nullptr;
  cudnnConvolutionDescriptor_t conv_desc = nullptr;
  cudnnConvolutionFwdAlgo_t fwd_algo{};
  cudnnConvolutionBwdDataAlgo_t bwd_data_algo{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter_algo{};
  std::size_t fwd_ws_bytes = 0, bwd_data_ws_bytes = 0, bwd_filter_ws_bytes = 0;
  // Per step: x is the previous block's output (not owned); pooled is freed in backward.
  float *x = nullptr, *pooled = nullptr;

  std::size_t in_count() const { return std::size_t(batch) * cin * size * size; }
  std::size_t out_count() const { return std::size_t(batch) * cout * size * size; }
  float* output() const { return pool ? pooled : norm.out; }
};

// The first result cuDNN's heuristics rank that works, is deterministic (bit-identical output is
// this program's contract) and fits the workspace cap.
template <typename Perf>
const Perf& pick_algo(const Perf* perf, int count, const char* what) {
  for (int i = 0; i < count; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].determinism == CUDNN_DETERMINISTIC &&
        perf[i].memory <= kWorkspaceLimitBytes)
      return perf[i];
  std::fprintf(stderr, "cnn_train: no deterministic %s algorithm within %zu workspace bytes\n", what,
               kWorkspaceLimitBytes);
  std::exit(1);
}

void setup_conv(Context& ctx, ConvBlock& L, Rng& rng) {
  L.x_desc = make_tensor(L.batch, L.cin, L.size, L.size);
  L.y_desc = make_tensor(L.batch, L.cout, L.size, L.size);
  if (L.pool) L.pooled_desc = make_tensor(L.batch, L.cout, L.size / 2, L.size / 2);
  WL_CUDNN(cudnnCreateFilterDescriptor(&L.w_desc));
  WL_CUDNN(cudnnSetFilter4dDescriptor(L.w_desc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, L.cout, L.cin, 3, 3));
  WL_CUDNN(cudnnCreateConvolutionDescriptor(&L.conv_desc));
  WL_CUDNN(cudnnSetConvolution2dDescriptor(L.conv_desc, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                           CUDNN_DATA_FLOAT));

  constexpr int kRequested = 8;
  int returned = 0;
  cudnnConvolutionFwdAlgoPerf_t fwd[kRequested];
  WL_CUDNN(cudnnGetConvolutionForwardAlgorithm_v7(ctx.cudnn, L.x_desc, L.w_desc, L.conv_desc, L.y_desc, kRequested,
                                                  &returned, fwd));
  L.fwd_algo = pick_algo(fwd, returned, "forward").algo;
  WL_CUDNN(cudnnGetConvolutionForwardWorkspaceSize(ctx.cudnn, L.x_desc, L.w_desc, L.conv_desc, L.y_desc, L.fwd_algo,
                                                   &L.fwd_ws_bytes));
  cudnnConvolutionBwdDataAlgoPerf_t bwd_data[kRequested];
  WL_CUDNN(cudnnGetConvolutionBackwardDataAlgorithm_v7(ctx.cudnn, L.w_desc, L.y_desc, L.conv_desc, L.x_desc,
                                                       kRequested, &returned, bwd_data));
  L.bwd_data_algo = pick_algo(bwd_data, returned, "backward-data").algo;
  WL_CUDNN(cudnnGetConvolutionBackwardDataWorkspaceSize(ctx.cudnn, L.w_desc, L.y_desc, L.conv_desc, L.x_desc,
                                                        L.bwd_data_algo, &L.bwd_data_ws_bytes));
  cudnnConvolutionBwdFilterAlgoPerf_t bwd_filter[kRequested];
  WL_CUDNN(cudnnGetConvolutionBackwardFilterAlgorithm_v7(ctx.cudnn, L.x_desc, L.y_desc, L.conv_desc, L.w_desc,
                                                         kRequested, &returned, bwd_filter));
  L.bwd_filter_algo = pick_algo(bwd_filter, returned, "backward-filter").algo;
  WL_CUDNN(cudnnGetConvolutionBackwardFilterWorkspaceSize(ctx.cudnn, L.x_desc, L.y_desc, L.conv_desc, L.w_desc,
                                                          L.bwd_filter_algo, &L.bwd_filter_ws_bytes));

  init_param(ctx, L.weight, uniform_init(rng, std::size_t(L.cout) * L.cin * 9, L.cin * 9, 6.0f), kWeightDecay);
  setup_bn_relu(ctx, L.norm, L.y_desc, L.out_count(), L.cout, CUDNN_BATCHNORM_SPATIAL);
}

void* alloc_workspace(Context& ctx, std::size_t bytes) { return bytes ? ctx.allocator.alloc(bytes) : nullptr; }

void conv_forward(Context& ctx, ConvBlock& L, float* x, cudnnActivationDescriptor_t relu,
                  cudnnPoolingDescriptor_t pool) {
  const std::size_t in_bytes = L.in_count() * 4, out_bytes = L.out_count() * 4, w_bytes = L.weight.count * 4;
  L.x = x;
  float* conv_out = ctx.alloc(L.out_count());
  void* ws = alloc_workspace(ctx, L.fwd_ws_bytes);
  WL_CUDNN(cudnnConvolutionForward(ctx.cudnn, &ctx.one, L.x_desc, x, L.w_desc, L.weight.value, L.conv_desc,
                                   L.fwd_algo, ws, L.fwd_ws_bytes, &ctx.zero, L.y_desc, conv_out));
  if (workload::manifest().enabled()) {  // beta is 0: y is only written
    std::vector<workload::Range> ranges = {{x, in_bytes, workload::Access::r},
                                           {L.weight.value, w_bytes, workload::Access::r},
                                           {conv_out, out_bytes, workload::Access::w}};
    if (ws != nullptr) ranges.push_back({ws, L.fwd_ws_bytes, workload::Access::rw});
    workload::manifest().op("cudnnConvolutionForward", ranges);
  }
  ctx.free(ws);
  ctx.meter.note("conv forward", {in_bytes, w_bytes, out_bytes, L.fwd_ws_bytes});
  bn_relu_forward(ctx, L.norm, conv_out, relu);
  if (L.pool) {
    L.pooled = ctx.alloc(L.out_count() / 4);
    WL_CUDNN(cudnnPoolingForward(ctx.cudnn, pool, &ctx.one, L.y_desc, L.norm.out, &ctx.zero, L.pooled_desc,
                                 L.pooled));
    ctx.meter.note("max pool forward", {out_bytes, out_bytes / 4});
  }
}

// Takes the gradient of the block's output (freed here); returns the gradient of its input, or
// nullptr when need_dx is false (the first block, whose input is the data).
float* conv_backward(Context& ctx, ConvBlock& L, float* dout, bool need_dx, cudnnActivationDescriptor_t relu,
                     cudnnPoolingDescriptor_t pool) {
  const std::size_t in_bytes = L.in_count() * 4, out_bytes = L.out_count() * 4, w_bytes = L.weight.count * 4;
  if (L.pool) {
    float* drelu = ctx.alloc(L.out_count());
    WL_CUDNN(cudnnPoolingBackward(ctx.cudnn, pool, &ctx.one, L.pooled_desc, L.pooled, L.pooled_desc, dout, L.y_desc,
                                  L.norm.out, &ctx.zero, L.y_desc, drelu));
    ctx.meter.note("max pool backward", {out_bytes / 4, out_bytes / 4, out_bytes, out_bytes});
    ctx.free(dout);
    ctx.free(L.pooled);
    dout = drelu;
  }
  float* dconv = bn_relu_backward(ctx, L.norm, dout, relu);

  L.weight.grad = ctx.alloc(L.weight.count);
  void* ws = alloc_workspace(ctx, L.bwd_filter_ws_bytes);
  WL_CUDNN(cudnnConvolutionBackwardFilter(ctx.cudnn, &ctx.one, L.x_desc, L.x, L.y_desc, dconv, L.conv_desc,
                                          L.bwd_filter_algo, ws, L.bwd_filter_ws_bytes, &ctx.zero, L.w_desc,
                                          L.weight.grad));
  ctx.free(ws);
  ctx.meter.note("conv backward filter", {in_bytes, out_bytes, w_bytes, L.bwd_filter_ws_bytes});
  float* dx = nullptr;
  if (need_dx) {
    dx = ctx.alloc(L.in_count());
    ws = alloc_workspace(ctx, L.bwd_data_ws_bytes);
    WL_CUDNN(cudnnConvolutionBackwardData(ctx.cudnn, &ctx.one, L.w_desc, L.weight.value, L.y_desc, dconv,
                                          L.conv_desc, L.bwd_data_algo, ws, L.bwd_data_ws_bytes, &ctx.zero,
                                          L.x_desc, dx));
    ctx.free(ws);
    ctx.meter.note("conv backward data", {w_bytes, out_bytes, in_bytes, L.bwd_data_ws_bytes});
  }
  ctx.free(dconv);
  return dx;
}

// cublasSgemm (column-major, no transpose flags other than N and T), recorded in the manifest.
void sgemm(Context& ctx, cublasOperation_t trans_a, cublasOperation_t trans_b, int m, int n, int k, const float* a,
           int lda, const float* b, int ldb, const float* beta, float* c, int ldc) {
  WL_CUBLAS(cublasSgemm(ctx.cublas, trans_a, trans_b, m, n, k, &ctx.one, a, lda, b, ldb, beta, c, ldc));
  if (workload::manifest().enabled()) {
    std::vector<workload::Range> ranges;
    workload::add_gemm_ranges(ranges, trans_a == CUBLAS_OP_T, trans_b == CUBLAS_OP_T, m, n, k, a, lda, b, ldb, *beta,
                              c, ldc);
    workload::manifest().op("cublasSgemm_v2", ranges);
  }
}

// ---- fully connected layer: y = x·Wᵀ, then batch norm → ReLU (hidden) or + bias (classifier) ----
// x is batch × in and W is out × in, both row-major. Row-major batch × in is column-major
// in × batch, so cuBLAS (column-major) computes y (out × batch) = Wᵀ · x, reading W as the
// column-major in × out matrix.

struct DenseLayer {
  DenseLayer(int batch_, int in_, int out_, bool hidden_) : batch(batch_), in(in_), out(out_), hidden(hidden_) {}
  int batch, in, out;
  bool hidden;
  Param weight, bias;  // bias: classifier only (a hidden layer's batch norm has its own)
  BnRelu norm;         // hidden layers only
  cudnnTensorDescriptor_t y_desc = nullptr, bias_desc = nullptr;  // batch×out×1×1 and 1×out×1×1
  float *x = nullptr, *y = nullptr;  // per step; x not owned; y is the GEMM's output
  float* output() const { return hidden ? norm.out : y; }
};

void setup_dense(Context& ctx, DenseLayer& L, Rng& rng) {
  L.y_desc = make_tensor(L.batch, L.out, 1, 1);
  init_param(ctx, L.weight, uniform_init(rng, std::size_t(L.out) * L.in, L.in, L.hidden ? 6.0f : 1.0f),
             kWeightDecay);
  if (L.hidden) {
    setup_bn_relu(ctx, L.norm, L.y_desc, std::size_t(L.batch) * L.out, L.out, CUDNN_BATCHNORM_PER_ACTIVATION);
  } else {
    L.bias_desc = make_tensor(1, L.out, 1, 1);
    init_param(ctx, L.bias, std::vector<float>(L.out, 0.0f), 0.0f);
  }
}

void dense_forward(Context& ctx, DenseLayer& L, float* x, cudnnActivationDescriptor_t relu) {
  const std::size_t x_bytes = std::size_t(L.batch) * L.in * 4, y_bytes = std::size_t(L.batch) * L.out * 4;
  L.x = x;
  L.y = ctx.alloc(std::size_t(L.batch) * L.out);
  sgemm(ctx, CUBLAS_OP_T, CUBLAS_OP_N, L.out, L.batch, L.in, L.weight.value, L.in, x, L.in, &ctx.zero, L.y, L.out);
  ctx.meter.note("fc forward", {x_bytes, L.weight.count * 4, y_bytes});
  if (L.hidden) {
    bn_relu_forward(ctx, L.norm, L.y, relu);
  } else {
    WL_CUDNN(cudnnAddTensor(ctx.cudnn, &ctx.one, L.bias_desc, L.bias.value, &ctx.one, L.y_desc, L.y));
  }
}

// Takes the gradient of the layer's output (freed here) and returns the gradient of its input.
float* dense_backward(Context& ctx, DenseLayer& L, float* dout, cudnnActivationDescriptor_t relu) {
  const std::size_t x_bytes = std::size_t(L.batch) * L.in * 4, y_bytes = std::size_t(L.batch) * L.out * 4;
  float* dy = dout;
  if (L.hidden) {
    dy = bn_relu_backward(ctx, L.norm, dout, relu);  // frees L.y
  } else {
    L.bias.grad = ctx.alloc(L.bias.count);
    WL_CUDNN(cudnnConvolutionBackwardBias(ctx.cudnn, &ctx.one, L.y_desc, dy, &ctx.zero, L.bias_desc, L.bias.grad));
    ctx.free(L.y);
  }
  // dW (column-major in × out) = x (in × batch) · dyᵀ (batch × out)
  L.weight.grad = ctx.alloc(L.weight.count);
  sgemm(ctx, CUBLAS_OP_N, CUBLAS_OP_T, L.in, L.out, L.batch, L.x, L.in, dy, L.out, &ctx.zero, L.weight.grad, L.in);
  ctx.meter.note("fc backward weight", {x_bytes, y_bytes, L.weight.count * 4});
  // dx (column-major in × batch) = W (in × out) · dy (out × batch)
  float* dx = ctx.alloc(std::size_t(L.batch) * L.in);
  sgemm(ctx, CUBLAS_OP_N, CUBLAS_OP_N, L.in, L.batch, L.out, L.weight.value, L.in, dy, L.out, &ctx.zero, dx, L.in);
  ctx.meter.note("fc backward data", {L.weight.count * 4, y_bytes, x_bytes});
  ctx.free(dy);
  return dx;
}

// ---- synthetic data ----

struct DataSource {
  int batch, size;
  Rng rng{0x5EED0DA7Aull};
  std::vector<float> templates;  // class × channel × cell × cell, each ±1

  DataSource(int batch_, int size_) : batch(batch_), size(size_) {
    Rng template_rng(0x7E3A1A7Eull);
    templates.resize(std::size_t(kClasses) * kInputChannels * kTemplateCells * kTemplateCells);
    for (float& t : templates) t = (template_rng.next() & 1) ? 1.0f : -1.0f;
  }
  // Fills images (batch × 3 × size × size) and labels (batch) for the next step.
  void next_batch(float* images, int* labels) {
    const int cell = size / kTemplateCells;
    for (int b = 0; b < batch; ++b) {
      const int label = static_cast<int>(rng.next() % kClasses);
      labels[b] = label;
      for (int c = 0; c < kInputChannels; ++c) {
        const float* tmpl = &templates[(std::size_t(label) * kInputChannels + c) * kTemplateCells * kTemplateCells];
        float* plane = images + (std::size_t(b) * kInputChannels + c) * size * size;
        for (int y = 0; y < size; ++y)
          for (int x = 0; x < size; ++x)
            plane[y * size + x] = tmpl[(y / cell) * kTemplateCells + x / cell] + rng.symmetric(0.5f);
      }
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  Args args(argc, argv,
            "cnn_train [--steps N] [--batch B] [--image S (multiple of 32)] [--channels C] "
            "[--allocator direct|pool]",
            {{"steps", "5"}, {"batch", "8"}, {"image", "64"}, {"channels", "16"}, {"allocator", "direct"}});
  const long steps = args.integer("steps", 1);
  const int batch = static_cast<int>(args.integer("batch", 1));
  const int image = static_cast<int>(args.integer("image", 32));
  const int channels = static_cast<int>(args.integer("channels", 1));
  if (image % 32 != 0) args.fail("--image " + args.text("image"));
  DeviceAllocator allocator(args.choice("allocator", {"direct", "pool"}));

  cudaStream_t stream;
  WL_CUDA(cudaStreamCreate(&stream));
  cudnnHandle_t cudnn;
  WL_CUDNN(cudnnCreate(&cudnn));
  WL_CUDNN(cudnnSetStream(cudnn, stream));
  cublasHandle_t cublas;
  WL_CUBLAS(cublasCreate(&cublas));
  WL_CUBLAS(cublasSetStream(cublas, stream));
  Context ctx{allocator, stream, cudnn, cublas};

  cudnnActivationDescriptor_t relu;
  WL_CUDNN(cudnnCreateActivationDescriptor(&relu));
  WL_CUDNN(cudnnSetActivationDescriptor(relu, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
  cudnnPoolingDescriptor_t pool;
  WL_CUDNN(cudnnCreatePoolingDescriptor(&pool));
  WL_CUDNN(cudnnSetPooling2dDescriptor(pool, CUDNN_POOLING_MAX, CUDNN_NOT_PROPAGATE_NAN, 2, 2, 0, 0, 2, 2));

  // Build the model; parameters are drawn in layer order from one generator.
  Rng init_rng(0xC0FFEEull);
  std::vector<ConvBlock> blocks;
  int cin = kInputChannels, size = image;
  for (const Stage& stage : kStages)
    for (int i = 0; i < stage.convs; ++i) {
      const int cout = channels * stage.width_multiplier;
      blocks.emplace_back(batch, cin, cout, size, i == stage.convs - 1);
      cin = cout;
      if (blocks.back().pool) size /= 2;
    }
  for (ConvBlock& L : blocks) setup_conv(ctx, L, init_rng);
  std::vector<DenseLayer> dense;
  int features = cin * size * size;
  for (int units : kHiddenUnits) {
    dense.emplace_back(batch, features, units, true);
    features = units;
  }
  dense.emplace_back(batch, features, kClasses, false);
  for (DenseLayer& L : dense) setup_dense(ctx, L, init_rng);
  DenseLayer& classifier = dense.back();
  cudnnTensorDescriptor_t logits_desc = classifier.y_desc;

  // Every trained tensor and every batch-norm running statistic, in layer order.
  std::vector<Param*> params;
  std::vector<std::pair<float*, int>> running_stats;
  for (ConvBlock& L : blocks) {
    params.insert(params.end(), {&L.weight, &L.norm.scale, &L.norm.bias});
    running_stats.insert(running_stats.end(), {{L.norm.running_mean, L.cout}, {L.norm.running_var, L.cout}});
  }
  for (DenseLayer& L : dense) {
    params.push_back(&L.weight);
    if (L.hidden) {
      params.insert(params.end(), {&L.norm.scale, &L.norm.bias});
      running_stats.insert(running_stats.end(), {{L.norm.running_mean, L.out}, {L.norm.running_var, L.out}});
    } else {
      params.push_back(&L.bias);
    }
  }

  // Pinned staging buffers, refilled only after the step that read them has been synchronised.
  DataSource data(batch, image);
  const std::size_t image_count = std::size_t(batch) * kInputChannels * image * image;
  float* host_images = nullptr;
  int* host_labels = nullptr;
  float* host_losses = nullptr;
  WL_CUDA(cudaMallocHost(&host_images, image_count * sizeof(float)));
  WL_CUDA(cudaMallocHost(&host_labels, batch * sizeof(int)));
  WL_CUDA(cudaMallocHost(&host_losses, batch * sizeof(float)));
  const std::size_t logits_count = std::size_t(batch) * kClasses;

  for (long step = 0; step < steps; ++step) {
    data.next_batch(host_images, host_labels);
    float* images = ctx.alloc(image_count);
    int* labels = allocator.alloc_array<int>(batch);
    WL_CUDA(cudaMemcpyAsync(images, host_images, image_count * sizeof(float), cudaMemcpyHostToDevice, stream));
    WL_CUDA(cudaMemcpyAsync(labels, host_labels, batch * sizeof(int), cudaMemcpyHostToDevice, stream));

    // Forward.
    float* x = images;
    for (ConvBlock& L : blocks) {
      conv_forward(ctx, L, x, relu, pool);
      x = L.output();
    }
    for (DenseLayer& L : dense) {
      dense_forward(ctx, L, x, relu);
      x = L.output();
    }

    // Loss: log-softmax, NLL and its gradient, back through the softmax.
    float* logp = ctx.alloc(logits_count);
    WL_CUDNN(cudnnSoftmaxForward(cudnn, CUDNN_SOFTMAX_LOG, CUDNN_SOFTMAX_MODE_INSTANCE, &ctx.one, logits_desc,
                                 classifier.y, &ctx.zero, logits_desc, logp));
    float* dlogp = ctx.alloc(logits_count);
    float* losses = ctx.alloc(batch);
    nll_loss<<<grid_blocks(logits_count), kThreadsPerBlock, 0, stream>>>(logp, labels, dlogp, losses, kClasses,
                                                                        1.0f / static_cast<float>(batch),
                                                                        static_cast<int>(logits_count));
    WL_CUDA(cudaGetLastError());
    ctx.free(labels);
    WL_CUDA(cudaMemcpyAsync(host_losses, losses, batch * sizeof(float), cudaMemcpyDeviceToHost, stream));
    ctx.free(losses);
    float* dlogits = ctx.alloc(logits_count);
    WL_CUDNN(cudnnSoftmaxBackward(cudnn, CUDNN_SOFTMAX_LOG, CUDNN_SOFTMAX_MODE_INSTANCE, &ctx.one, logits_desc, logp,
                                  logits_desc, dlogp, &ctx.zero, logits_desc, dlogits));
    ctx.free(logp);
    ctx.free(dlogp);

    // Backward.
    float* dout = dlogits;
    for (std::size_t i = dense.size(); i-- > 0;) dout = dense_backward(ctx, dense[i], dout, relu);
    for (std::size_t i = blocks.size(); i-- > 0;) dout = conv_backward(ctx, blocks[i], dout, i > 0, relu, pool);
    ctx.free(images);

    // SGD with momentum; gradients are dropped after the update (set_to_none).
    for (Param* p : params) {
      sgd_momentum<<<grid_blocks(p->count), kThreadsPerBlock, 0, stream>>>(
          p->value, p->velocity, p->grad, kLearningRate, kMomentum, p->decay, static_cast<int>(p->count));
      WL_CUDA(cudaGetLastError());
      ctx.meter.note("sgd update", {p->count * 12});
      ctx.free(p->grad);
      p->grad = nullptr;
    }

    // loss.item(): the one synchronisation per step.
    WL_CUDA(cudaStreamSynchronize(stream));
    double total = 0.0;
    for (int b = 0; b < batch; ++b) total += host_losses[b];
    workload::print_step(step, static_cast<float>(total / batch));
  }

  Checksum checksum;
  for (const Param* p : params) checksum.add_device(p->value, p->count * sizeof(float));
  for (auto [stat, count] : running_stats) checksum.add_device(stat, count * sizeof(float));
  workload::print_footer(allocator, checksum);

  if (const char* report = std::getenv("CNN_TRAIN_OP_REPORT"); report != nullptr && report[0] == '1')
    std::fprintf(stderr, "largest op: %s, %zu bytes (%.1f%% of peak device bytes)\n",
                 ctx.meter.largest_name.c_str(), ctx.meter.largest_bytes,
                 100.0 * ctx.meter.largest_bytes / allocator.peak_device_bytes());

  // Every descriptor goes back, as a tidy program's do: LeakSanitizer checks this program in the
  // asan setup (Note [Sanitizer builds] in meson.build). A batch norm borrows its layer's desc.
  for (ConvBlock& L : blocks) {
    for (cudnnTensorDescriptor_t d : {L.x_desc, L.y_desc, L.pooled_desc, L.norm.param_desc})
      if (d != nullptr) WL_CUDNN(cudnnDestroyTensorDescriptor(d));
    WL_CUDNN(cudnnDestroyFilterDescriptor(L.w_desc));
    WL_CUDNN(cudnnDestroyConvolutionDescriptor(L.conv_desc));
  }
  for (DenseLayer& L : dense)
    for (cudnnTensorDescriptor_t d : {L.y_desc, L.bias_desc, L.norm.param_desc})
      if (d != nullptr) WL_CUDNN(cudnnDestroyTensorDescriptor(d));
  WL_CUDNN(cudnnDestroyPoolingDescriptor(pool));
  WL_CUDNN(cudnnDestroyActivationDescriptor(relu));
  WL_CUBLAS(cublasDestroy(cublas));
  WL_CUDNN(cudnnDestroy(cudnn));
  WL_CUDA(cudaStreamDestroy(stream));
  return 0;
}
