// How work is queued: every compute call returns before its kernel runs, on the handle's stream,
// and results are bit-identical from run to run (this file is also registered with
// SIMCUDA_JITTER=1, where worker timing is shaken).
#include <chrono>
#include <thread>

#include "cudnn_fixture.h"

namespace simcudnn::test {
namespace {

using QueueTest = CudnnTest;

void sleep_100ms(void*) { std::this_thread::sleep_for(std::chrono::milliseconds(100)); }

TEST_F(QueueTest, ComputeCallsReturnBeforeTheirWorkRuns) {
  const int n = 2, c = 3, h = 8, w = 8, k = 4;
  Tensor xd(n, c, h, w), yd(n, k, h, w);
  Filter fd(k, c, 3, 3);
  cudnnConvolutionDescriptor_t conv{};
  DNN_OK(cudnnCreateConvolutionDescriptor(&conv));
  DNN_OK(cudnnSetConvolution2dDescriptor(conv, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  std::size_t ws_bytes = 0;
  DNN_OK(cudnnGetConvolutionForwardWorkspaceSize(handle_, xd, fd, conv, yd, CUDNN_CONVOLUTION_FWD_ALGO_GEMM, &ws_bytes));
  const std::vector<float> x(std::size_t(n) * c * h * w, 1.0f), wt(std::size_t(k) * c * 9, 1.0f);
  const std::vector<float> sentinel(std::size_t(n) * k * h * w, -7.0f);
  DeviceFloats dx(x), dw(wt), dy(sentinel), ws(ws_bytes / 4);
  const float one = 1.0f, zero = 0.0f;

  // Stream `gate` sleeps 100 ms, then records `open`; the handle's stream waits for `open`.
  // Set up after the buffers: their uploads synchronise the context, which would wait out the gate.
  CUstream gate{}, work{};
  CU_OK(cuStreamCreate(&gate, CU_STREAM_NON_BLOCKING));
  CU_OK(cuStreamCreate(&work, CU_STREAM_NON_BLOCKING));
  CUevent open{};
  CU_OK(cuEventCreate(&open, CU_EVENT_DISABLE_TIMING));
  CU_OK(cuLaunchHostFunc(gate, sleep_100ms, nullptr));
  CU_OK(cuEventRecord(open, gate));
  CU_OK(cuStreamWaitEvent(work, open, 0));
  DNN_OK(cudnnSetStream(handle_, reinterpret_cast<cudaStream_t>(work)));


  const auto start = std::chrono::steady_clock::now();
  DNN_OK(cudnnConvolutionForward(handle_, &one, xd, dx.get(), fd, dw.get(), conv, CUDNN_CONVOLUTION_FWD_ALGO_GEMM,
                                 ws.get(), ws_bytes, &zero, yd, dy.get()));
  const auto call_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(call_ms, 50) << "the call waited for its work";

  // Still gated: y holds the sentinel (a synchronous copy on the legacy stream does not wait for
  // a non-blocking stream).
  std::vector<float> early(sentinel.size());
  CU_OK(cuMemcpyDtoH(early.data(), dy.address(), dy.bytes()));
  EXPECT_EQ(early[0], -7.0f) << "the convolution ran before its stream was released";

  CU_OK(cuStreamSynchronize(work));
  const auto y = dy.download();
  // All-ones input and filter: each output counts the in-bounds taps (9 inside, 6 on edges, 4 in corners) × C.
  EXPECT_EQ(y[0], 4.0f * c);
  EXPECT_EQ(y[1], 6.0f * c);
  EXPECT_EQ(y[w + 1], 9.0f * c);
  DNN_OK(cudnnSetStream(handle_, nullptr));
  DNN_OK(cudnnDestroyConvolutionDescriptor(conv));
  CU_OK(cuEventDestroy(open));
  CU_OK(cuStreamDestroy(gate));
  CU_OK(cuStreamDestroy(work));
}

// One small training step (conv → bn → relu → pool → softmax and back) on a non-blocking stream.
std::vector<std::vector<float>> training_step(cudnnHandle_t handle) {
  const int n = 2, c = 3, h = 8, w = 8, k = 4;
  Tensor xd(n, c, h, w), yd(n, k, h, w), pd(1, k, 1, 1), poold(n, k, 4, 4);
  Filter fd(k, c, 3, 3);
  cudnnConvolutionDescriptor_t conv{};
  cudnnActivationDescriptor_t act{};
  cudnnPoolingDescriptor_t pool{};
  cudnnCreateConvolutionDescriptor(&conv);
  cudnnSetConvolution2dDescriptor(conv, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT);
  cudnnCreateActivationDescriptor(&act);
  cudnnSetActivationDescriptor(act, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0);
  cudnnCreatePoolingDescriptor(&pool);
  cudnnSetPooling2dDescriptor(pool, CUDNN_POOLING_MAX, CUDNN_NOT_PROPAGATE_NAN, 2, 2, 0, 0, 2, 2);
  std::size_t fwd_ws = 0, bwd_ws = 0, wgrad_ws = 0;
  cudnnGetConvolutionForwardWorkspaceSize(handle, xd, fd, conv, yd, CUDNN_CONVOLUTION_FWD_ALGO_GEMM, &fwd_ws);
  cudnnGetConvolutionBackwardDataWorkspaceSize(handle, fd, yd, conv, xd, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, &bwd_ws);
  cudnnGetConvolutionBackwardFilterWorkspaceSize(handle, xd, yd, conv, fd, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1,
                                                 &wgrad_ws);
  const std::size_t xs = std::size_t(n) * c * h * w, ys = std::size_t(n) * k * h * w, ps = std::size_t(n) * k * 16;
  DeviceFloats x(random_floats(xs, 50)), wt(random_floats(std::size_t(k) * c * 9, 51)), y(ys), z(ys), a(ys), p(ps),
      s(ps), ds(random_floats(ps, 52)), dp(ps), da(ys), dz(ys), dyv(ys), dxv(xs), dwv(std::size_t(k) * c * 9),
      scale(std::vector<float>(k, 1.0f)), bias(std::vector<float>(k, 0.0f)), rm(std::vector<float>(k, 0.0f)),
      rv(std::vector<float>(k, 1.0f)), sm(k), si(k), dsc(k), dbi(k), ws(std::max({fwd_ws, bwd_ws, wgrad_ws}) / 4);
  const float one = 1.0f, zero = 0.0f;
  EXPECT_EQ(cudnnConvolutionForward(handle, &one, xd, x.get(), fd, wt.get(), conv, CUDNN_CONVOLUTION_FWD_ALGO_GEMM, ws.get(),
                            fwd_ws, &zero, yd, y.get()), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudnnBatchNormalizationForwardTraining(handle, CUDNN_BATCHNORM_SPATIAL, &one, &zero, yd, y.get(), yd, z.get(), pd,
                                           scale.get(), bias.get(), 0.1, rm.get(), rv.get(), 1e-5, sm.get(), si.get()), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudnnActivationForward(handle, act, &one, yd, z.get(), &zero, yd, a.get()), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudnnPoolingForward(handle, pool, &one, yd, a.get(), &zero, poold, p.get()), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudnnSoftmaxForward(handle, CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_CHANNEL, &one, poold, p.get(), &zero, poold,
                        s.get()), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudnnSoftmaxBackward(handle, CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_CHANNEL, &one, poold, s.get(), poold,
                         ds.get(), &zero, poold, dp.get()), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudnnPoolingBackward(handle, pool, &one, poold, p.get(), poold, dp.get(), yd, a.get(), &zero, yd, da.get()), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudnnActivationBackward(handle, act, &one, yd, a.get(), yd, da.get(), yd, z.get(), &zero, yd, dz.get()), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudnnBatchNormalizationBackward(handle, CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, yd, y.get(), yd, dz.get(),
                                    yd, dyv.get(), pd, scale.get(), dsc.get(), dbi.get(), 1e-5, sm.get(), si.get()), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudnnConvolutionBackwardData(handle, &one, fd, wt.get(), yd, dyv.get(), conv, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1,
                                 ws.get(), bwd_ws, &zero, xd, dxv.get()), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudnnConvolutionBackwardFilter(handle, &one, xd, x.get(), yd, dyv.get(), conv, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1,
                                   ws.get(), wgrad_ws, &zero, fd, dwv.get()), CUDNN_STATUS_SUCCESS);
  std::vector<std::vector<float>> out = {s.download(), dxv.download(), dwv.download(), rm.download(),
                                         rv.download(), dsc.download()};
  cudnnDestroyConvolutionDescriptor(conv);
  cudnnDestroyActivationDescriptor(act);
  cudnnDestroyPoolingDescriptor(pool);
  return out;
}

TEST_F(QueueTest, RepeatedRunsAreBitIdentical) {
  CUstream stream{};
  CU_OK(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  DNN_OK(cudnnSetStream(handle_, reinterpret_cast<cudaStream_t>(stream)));
  const auto first = training_step(handle_);
  for (int run = 0; run < 3; ++run) {
    const auto again = training_step(handle_);
    ASSERT_EQ(again.size(), first.size());
    for (std::size_t i = 0; i < first.size(); ++i) EXPECT_TRUE(same_bits(again[i], first[i])) << "output " << i;
  }
  // The gradients are not trivially zero (so the comparison means something).
  double norm = 0.0;
  for (float v : first[2]) norm += std::fabs(v);
  EXPECT_GT(norm, 0.0);
  DNN_OK(cudnnSetStream(handle_, nullptr));
  CU_OK(cuStreamDestroy(stream));
}

// A second handle on another thread, on its own stream, computes the same bits. That thread has
// no current context: cudnnCreate binds the primary one, as the real library's runtime does.
TEST_F(QueueTest, ConcurrentHandlesAgree) {
  const auto expected = training_step(handle_);
  std::vector<float> other;
  std::thread t([&] {
    cudnnHandle_t h2{};
    if (cudnnCreate(&h2) != CUDNN_STATUS_SUCCESS) return;
    CUstream s{};
    cuStreamCreate(&s, CU_STREAM_NON_BLOCKING);
    cudnnSetStream(h2, reinterpret_cast<cudaStream_t>(s));
    const auto result = training_step(h2);
    other = result[0];
    cuStreamDestroy(s);
    cudnnDestroy(h2);
  });
  t.join();
  ASSERT_EQ(other.size(), expected[0].size());
  EXPECT_TRUE(same_bits(other, expected[0]));
}

}  // namespace
}  // namespace simcudnn::test
