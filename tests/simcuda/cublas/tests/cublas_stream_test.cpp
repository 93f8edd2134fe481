// The simulated cuBLAS's contract beyond the math: handle settings, argument errors, pointer modes,
// bit-for-bit determinism, and that every call only queues work on the handle's stream (it never
// touches device memory on the calling thread, so an interposer sees all of it in the launch).
#include <chrono>
#include <thread>

#include "cublas_test_util.h"

namespace simcublas::test {
namespace {

using Clock = std::chrono::steady_clock;

// A non-blocking stream held back for `sleep_ms`: a host function sleeps on a side stream and
// the stream waits on an event recorded after it, so anything queued here runs only afterwards.
class BlockedStream {
 public:
  explicit BlockedStream(int sleep_ms) : sleep_ms_(sleep_ms) {
    EXPECT_EQ(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), cudaSuccess);
    EXPECT_EQ(cudaStreamCreateWithFlags(&side_, cudaStreamNonBlocking), cudaSuccess);
    EXPECT_EQ(cudaEventCreate(&event_), cudaSuccess);
    EXPECT_EQ(cudaLaunchHostFunc(side_, &BlockedStream::sleep, &sleep_ms_), cudaSuccess);
    EXPECT_EQ(cudaEventRecord(event_, side_), cudaSuccess);
    EXPECT_EQ(cudaStreamWaitEvent(stream_, event_, 0), cudaSuccess);
  }
  ~BlockedStream() {
    cudaStreamSynchronize(stream_);
    cudaStreamSynchronize(side_);
    cudaEventDestroy(event_);
    cudaStreamDestroy(stream_);
    cudaStreamDestroy(side_);
  }
  BlockedStream(const BlockedStream&) = delete;
  BlockedStream& operator=(const BlockedStream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  static void sleep(void* ms) { std::this_thread::sleep_for(std::chrono::milliseconds(*static_cast<int*>(ms))); }
  int sleep_ms_;
  cudaStream_t stream_{}, side_{};
  cudaEvent_t event_{};
};

// Writes `value` to device memory on its own stream and waits for it (not for anything else).
template <typename T>
void write_now(T* device, const T& value) {
  cudaStream_t s;
  CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  CUDA_OK(cudaMemcpyAsync(device, &value, sizeof(T), cudaMemcpyHostToDevice, s));
  CUDA_OK(cudaStreamSynchronize(s));
  CUDA_OK(cudaStreamDestroy(s));
}

double elapsed_ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

using CublasHandle = CublasTest;

TEST_F(CublasHandle, SettingsRoundTrip) {
  cudaStream_t stream, got_stream = nullptr;
  CUDA_OK(cudaStreamCreate(&stream));
  BLAS_OK(cublasSetStream_v2(handle_, stream));
  BLAS_OK(cublasGetStream_v2(handle_, &got_stream));
  EXPECT_EQ(got_stream, stream);
  BLAS_OK(cublasSetStream_v2(handle_, nullptr));
  CUDA_OK(cudaStreamDestroy(stream));

  cublasPointerMode_t pm;
  BLAS_OK(cublasGetPointerMode_v2(handle_, &pm));
  EXPECT_EQ(pm, CUBLAS_POINTER_MODE_HOST);  // the documented default
  BLAS_OK(cublasSetPointerMode_v2(handle_, CUBLAS_POINTER_MODE_DEVICE));
  BLAS_OK(cublasGetPointerMode_v2(handle_, &pm));
  EXPECT_EQ(pm, CUBLAS_POINTER_MODE_DEVICE);
  EXPECT_EQ(cublasSetPointerMode_v2(handle_, static_cast<cublasPointerMode_t>(7)), CUBLAS_STATUS_INVALID_VALUE);

  cublasMath_t mm;
  BLAS_OK(cublasGetMathMode(handle_, &mm));
  EXPECT_EQ(mm, CUBLAS_DEFAULT_MATH);
  const auto tf32 =
      static_cast<cublasMath_t>(CUBLAS_TF32_TENSOR_OP_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
  BLAS_OK(cublasSetMathMode(handle_, tf32));
  BLAS_OK(cublasGetMathMode(handle_, &mm));
  EXPECT_EQ(mm, tf32);
  EXPECT_EQ(cublasSetMathMode(handle_, static_cast<cublasMath_t>(5)), CUBLAS_STATUS_INVALID_VALUE);

  DeviceBuffer<unsigned char> workspace(1 << 20);
  BLAS_OK(cublasSetWorkspace_v2(handle_, workspace.get(), workspace.bytes()));
  EXPECT_EQ(cublasSetWorkspace_v2(handle_, workspace.get() + 16, 1024),
            CUBLAS_STATUS_INVALID_VALUE);  // not 256-aligned
  BLAS_OK(cublasSetWorkspace_v2(handle_, nullptr, 0));

  int version = 0;
  BLAS_OK(cublasGetVersion_v2(handle_, &version));
  EXPECT_EQ(version, CUBLAS_VERSION);
  int major = 0;
  BLAS_OK(cublasGetProperty(MAJOR_VERSION, &major));
  EXPECT_EQ(major, 13);
  EXPECT_STREQ(cublasGetStatusName(CUBLAS_STATUS_INVALID_VALUE), "CUBLAS_STATUS_INVALID_VALUE");
  EXPECT_STREQ(cublasGetStatusString(CUBLAS_STATUS_SUCCESS), "success");
  EXPECT_STREQ(cublasGetStatusString(static_cast<cublasStatus_t>(999)), "unknown error");
}

TEST(CublasErrors, NullHandleIsNotInitialized) {
  const float one = 1.0f;
  float r;
  constexpr auto kNot = CUBLAS_STATUS_NOT_INITIALIZED;
  EXPECT_EQ(cublasCreate_v2(nullptr), CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(cublasDestroy_v2(nullptr), kNot);
  EXPECT_EQ(cublasSetStream_v2(nullptr, nullptr), kNot);
  EXPECT_EQ(cublasSetPointerMode_v2(nullptr, CUBLAS_POINTER_MODE_HOST), kNot);
  EXPECT_EQ(cublasSetMathMode(nullptr, CUBLAS_DEFAULT_MATH), kNot);
  EXPECT_EQ(cublasSetWorkspace_v2(nullptr, nullptr, 0), kNot);
  EXPECT_EQ(cublasSaxpy_v2(nullptr, 1, &one, nullptr, 1, nullptr, 1), kNot);
  EXPECT_EQ(cublasSscal_v2(nullptr, 1, &one, nullptr, 1), kNot);
  EXPECT_EQ(cublasSdot_v2(nullptr, 1, nullptr, 1, nullptr, 1, &r), kNot);
  EXPECT_EQ(cublasSnrm2_v2(nullptr, 1, nullptr, 1, &r), kNot);
  EXPECT_EQ(cublasSgemv_v2(nullptr, CUBLAS_OP_N, 1, 1, &one, nullptr, 1, nullptr, 1, &one, nullptr, 1), kNot);
  EXPECT_EQ(cublasSgeam(nullptr, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, &one, nullptr, 1, &one, nullptr, 1, nullptr, 1), kNot);
  EXPECT_EQ(cublasSgemm_v2(nullptr, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, nullptr, 1, nullptr, 1, &one, nullptr, 1),
            kNot);
  const double d = 1.0;
  EXPECT_EQ(cublasDgemm_v2(nullptr, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &d, nullptr, 1, nullptr, 1, &d, nullptr, 1),
            kNot);
  EXPECT_EQ(cublasSgemmStridedBatched(nullptr, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, nullptr, 1, 0, nullptr, 1, 0,
                                      &one, nullptr, 1, 0, 1),
            kNot);
  EXPECT_EQ(
      cublasSgemmBatched(nullptr, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, nullptr, 1, nullptr, 1, &one, nullptr, 1, 1),
      kNot);
  EXPECT_EQ(cublasGemmEx(nullptr, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, nullptr, CUDA_R_32F, 1, nullptr, CUDA_R_32F,
                         1, &one, nullptr, CUDA_R_32F, 1, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            kNot);
  EXPECT_EQ(cublasGemmStridedBatchedEx(nullptr, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, nullptr, CUDA_R_32F, 1, 0,
                                       nullptr, CUDA_R_32F, 1, 0, &one, nullptr, CUDA_R_32F, 1, 0, 1,
                                       CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            kNot);
}

using CublasArguments = CublasTest;

TEST_F(CublasArguments, BadArgumentsAreInvalidValue) {
  constexpr auto kBad = CUBLAS_STATUS_INVALID_VALUE;
  DeviceBuffer<float> buf(std::vector<float>(256, 1.0f));
  float* p = buf.get();
  const float one = 1.0f;
  EXPECT_EQ(cublasSgemm_v2(handle_, CUBLAS_OP_N, CUBLAS_OP_N, -1, 4, 4, &one, p, 4, p, 4, &one, p, 4), kBad);
  EXPECT_EQ(cublasSgemm_v2(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, p, 3, p, 4, &one, p, 4), kBad);  // lda < m
  EXPECT_EQ(cublasSgemm_v2(handle_, CUBLAS_OP_T, CUBLAS_OP_N, 4, 4, 8, &one, p, 4, p, 8, &one, p, 4), kBad);  // lda < k
  EXPECT_EQ(cublasSgemm_v2(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, p, 4, p, 4, &one, p, 2), kBad);  // ldc < m
  EXPECT_EQ(
      cublasSgemm_v2(handle_, static_cast<cublasOperation_t>(9), CUBLAS_OP_N, 4, 4, 4, &one, p, 4, p, 4, &one, p, 4),
      kBad);
  EXPECT_EQ(cublasSgemm_v2(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, nullptr, p, 4, p, 4, &one, p, 4), kBad);
  EXPECT_EQ(cublasSgemmStridedBatched(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, p, 4, 16, p, 4, 16, &one, p, 4,
                                      16, -1),
            kBad);
  EXPECT_EQ(cublasSgemv_v2(handle_, CUBLAS_OP_N, 4, 4, &one, p, 4, p, 0, &one, p, 1), kBad);  // incx == 0
  EXPECT_EQ(cublasSgemv_v2(handle_, CUBLAS_OP_N, 8, 4, &one, p, 4, p, 1, &one, p, 1), kBad);  // lda < m
  EXPECT_EQ(cublasSgeam(handle_, CUBLAS_OP_T, CUBLAS_OP_N, 4, 4, &one, p, 4, &one, p + 32, 4, p, 4),
            kBad);  // in place, A^T
  EXPECT_EQ(cublasSgeam(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 4, -2, &one, p, 4, &one, p, 4, p + 64, 4), kBad);
  float r;
  EXPECT_EQ(cublasSdot_v2(handle_, 4, p, 1, p, 1, nullptr), kBad);
  EXPECT_EQ(cublasSnrm2_v2(handle_, 4, p, 1, nullptr), kBad);
  (void)r;
  EXPECT_EQ(cublasGemmEx(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, p, CUDA_R_32F, 4, p, CUDA_R_32F, 4, &one, p,
                         CUDA_R_32F, 1, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            kBad);  // ldc < m
  // Type combinations cuBLAS has no fp32-compute kernel for, and fp16 compute, are not supported.
  EXPECT_EQ(cublasGemmEx(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, p, CUDA_R_32F, 4, p, CUDA_R_16F, 4, &one, p,
                         CUDA_R_32F, 4, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            CUBLAS_STATUS_NOT_SUPPORTED);
  EXPECT_EQ(cublasGemmEx(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, p, CUDA_R_16F, 4, p, CUDA_R_16F, 4, &one, p,
                         CUDA_R_16F, 4, CUBLAS_COMPUTE_16F, CUBLAS_GEMM_DEFAULT),
            CUBLAS_STATUS_NOT_SUPPORTED);
  // Host <-> device copies.
  std::vector<float> host(64);
  EXPECT_EQ(cublasSetVector(4, 4, host.data(), 0, p, 1), kBad);
  EXPECT_EQ(cublasSetVector(4, 0, host.data(), 1, p, 1), kBad);
  EXPECT_EQ(cublasGetVector(-1, 4, p, 1, host.data(), 1), kBad);
  EXPECT_EQ(cublasSetMatrix(4, 4, 4, host.data(), 3, p, 4), kBad);  // lda < rows
  EXPECT_EQ(cublasGetMatrix(4, 4, 4, p, 4, host.data(), 0), kBad);
  // A "device" pointer that is host memory: the driver copy fails, reported as a mapping error.
  std::vector<float> not_device(64);
  EXPECT_EQ(cublasSetVector(4, 4, host.data(), 1, not_device.data(), 1), CUBLAS_STATUS_MAPPING_ERROR);
  // The buffer was never written by any failed call.
  for (float v : buf.download()) ASSERT_EQ(v, 1.0f);
}

using CublasPointerMode = CublasTest;

TEST_F(CublasPointerMode, DeviceScalarsAndResults) {
  DeviceBuffer<float> scalars(std::vector<float>{2.0f, -0.5f, 0.0f, 0.0f});  // alpha, beta, dot, nrm2
  BLAS_OK(cublasSetPointerMode_v2(handle_, CUBLAS_POINTER_MODE_DEVICE));
  const auto x = random_floats(16, 80), y = random_floats(16, 81);
  DeviceBuffer<float> dx(x), dy(y);
  BLAS_OK(cublasSaxpy_v2(handle_, 16, scalars.get(), dx.get(), 1, dy.get(), 1));
  BLAS_OK(cublasSdot_v2(handle_, 16, dx.get(), 1, dy.get(), 1, scalars.get() + 2));
  BLAS_OK(cublasSnrm2_v2(handle_, 16, dx.get(), 1, scalars.get() + 3));
  BLAS_OK(cublasSscal_v2(handle_, 16, scalars.get() + 1, dx.get(), 1));
  std::vector<float> want_y(16), want_x(16);
  double dot = 0, sq = 0;
  for (int i = 0; i < 16; ++i) {
    want_y[i] = std::fma(2.0f, x[i], y[i]);
    dot += static_cast<double>(x[i]) * want_y[i];
    sq += static_cast<double>(x[i]) * x[i];
    want_x[i] = -0.5f * x[i];
  }
  const auto got_scalars = scalars.download();
  EXPECT_EQ(got_scalars[2], static_cast<float>(dot));
  EXPECT_EQ(got_scalars[3], static_cast<float>(std::sqrt(sq)));
  EXPECT_TRUE(same_bits(dy.download().data(), want_y.data(), 64));
  EXPECT_TRUE(same_bits(dx.download().data(), want_x.data(), 64));

  // GEMM with alpha/beta on the device: same bits as the host-mode call with the same values.
  const int m = 10, n = 9, k = 8;
  const auto a = random_floats(m * k, 82), b = random_floats(k * n, 83), c = random_floats(m * n, 84);
  DeviceBuffer<float> da(a), db(b), dc_device(c), dc_host(c);
  BLAS_OK(cublasSgemm_v2(handle_, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, scalars.get(), da.get(), m, db.get(), k,
                         scalars.get() + 1, dc_device.get(), m));
  BLAS_OK(cublasSetPointerMode_v2(handle_, CUBLAS_POINTER_MODE_HOST));
  const float alpha = 2.0f, beta = -0.5f;
  BLAS_OK(cublasSgemm_v2(handle_, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, da.get(), m, db.get(), k, &beta,
                         dc_host.get(), m));
  EXPECT_TRUE(same_bits(dc_device.download().data(), dc_host.download().data(), m * n * sizeof(float)));
}

// Note [Calls only queue work]: a call behind a blocked stream returns at once; its effect is
// visible only after the stream runs. Anything the call read or wrote on the calling thread would
// show up here as a wrong result or a slow return.
using CublasQueueing = CublasTest;

TEST_F(CublasQueueing, SaxpyReturnsBeforeTheStreamRuns) {
  const auto x = random_floats(64, 90), y = random_floats(64, 91);
  DeviceBuffer<float> dx(x), dy(y);
  BlockedStream blocked(100);
  BLAS_OK(cublasSetStream_v2(handle_, blocked.get()));
  float alpha = 3.0f;
  const auto start = Clock::now();
  BLAS_OK(cublasSaxpy_v2(handle_, 64, &alpha, dx.get(), 1, dy.get(), 1));
  EXPECT_LT(elapsed_ms(start), 50.0);
  EXPECT_EQ(cudaStreamQuery(blocked.get()), cudaErrorNotReady);
  alpha = 100.0f;  // host mode: the value was taken at the call
  CUDA_OK(cudaStreamSynchronize(blocked.get()));
  std::vector<float> want(64);
  for (int i = 0; i < 64; ++i) want[i] = std::fma(3.0f, x[i], y[i]);
  EXPECT_TRUE(same_bits(dy.download().data(), want.data(), 64 * sizeof(float)));
}

TEST_F(CublasQueueing, DeviceAlphaIsReadWhenTheKernelRuns) {
  const auto x = random_floats(32, 92), y = random_floats(32, 93);
  DeviceBuffer<float> dx(x), dy(y), alpha(std::vector<float>{1.0f});
  BlockedStream blocked(100);
  BLAS_OK(cublasSetStream_v2(handle_, blocked.get()));
  BLAS_OK(cublasSetPointerMode_v2(handle_, CUBLAS_POINTER_MODE_DEVICE));
  BLAS_OK(cublasSaxpy_v2(handle_, 32, alpha.get(), dx.get(), 1, dy.get(), 1));
  write_now(alpha.get(), 4.0f);  // lands while the saxpy still waits
  CUDA_OK(cudaStreamSynchronize(blocked.get()));
  std::vector<float> want(32);
  for (int i = 0; i < 32; ++i) want[i] = std::fma(4.0f, x[i], y[i]);
  EXPECT_TRUE(same_bits(dy.download().data(), want.data(), 32 * sizeof(float)));
}

TEST_F(CublasQueueing, BatchedPointerArrayIsReadWhenTheKernelRuns) {
  const int m = 4, n = 5, k = 6;
  const auto a = random_floats(m * k, 94), b = random_floats(k * n, 95);
  DeviceBuffer<float> da(a), db(b), dc(std::vector<float>(m * n, 0.0f));
  // The arrays hold null pointers at call time; the real ones arrive before the stream runs.
  DeviceBuffer<const float*> a_array(std::vector<const float*>{nullptr}), b_array(std::vector<const float*>{nullptr});
  DeviceBuffer<float*> c_array(std::vector<float*>{nullptr});
  BlockedStream blocked(100);
  BLAS_OK(cublasSetStream_v2(handle_, blocked.get()));
  const float alpha = 1.0f, beta = 0.0f;
  const auto start = Clock::now();
  BLAS_OK(cublasSgemmBatched(handle_, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, a_array.get(), m, b_array.get(), k,
                             &beta, c_array.get(), m, 1));
  EXPECT_LT(elapsed_ms(start), 50.0);
  write_now(a_array.get(), static_cast<const float*>(da.get()));
  write_now(b_array.get(), static_cast<const float*>(db.get()));
  write_now(c_array.get(), dc.get());
  CUDA_OK(cudaStreamSynchronize(blocked.get()));
  std::vector<double> bound;
  const auto want = reference_gemm(CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, 1.0, a, m, b, k, 0.0,
                                   std::vector<float>(m * n, 0.0f), m, &bound);
  expect_within(dc.download(), want, bound);
}

TEST_F(CublasQueueing, HostModeDotWaitsForItsResult) {
  const auto x = random_floats(50, 96);
  DeviceBuffer<float> dx(x);
  BlockedStream blocked(100);
  BLAS_OK(cublasSetStream_v2(handle_, blocked.get()));
  float result = -1.0f;
  const auto start = Clock::now();
  BLAS_OK(cublasSdot_v2(handle_, 50, dx.get(), 1, dx.get(), 1, &result));
  EXPECT_GE(elapsed_ms(start), 50.0);  // it had to wait out the blocked stream
  double want = 0;
  for (float v : x) want += static_cast<double>(v) * v;
  EXPECT_EQ(result, static_cast<float>(want));
}

TEST_F(CublasQueueing, ThreadWithoutContextUsesTheHandles) {
  const auto x = random_floats(8, 97), y = random_floats(8, 98);
  DeviceBuffer<float> dx(x), dy(y);
  cublasStatus_t status = CUBLAS_STATUS_INTERNAL_ERROR;
  std::thread([&] {
    const float alpha = 0.5f;
    status = cublasSaxpy_v2(handle_, 8, &alpha, dx.get(), 1, dy.get(), 1);
  }).join();
  ASSERT_EQ(status, CUBLAS_STATUS_SUCCESS);
  std::vector<float> want(8);
  for (int i = 0; i < 8; ++i) want[i] = std::fma(0.5f, x[i], y[i]);
  EXPECT_TRUE(same_bits(dy.download().data(), want.data(), 8 * sizeof(float)));
}

// Same call, same inputs, twice: the same bits (also run under SIMCUDA_JITTER=1).
using CublasDeterminism = CublasTest;

TEST_F(CublasDeterminism, RepeatedCallsGiveIdenticalBits) {
  const int m = 96, n = 80, k = 300;
  const auto a = random_floats(static_cast<std::size_t>(m) * k, 100),
             b = random_floats(static_cast<std::size_t>(k) * n, 101);
  const auto c = random_floats(static_cast<std::size_t>(m) * n, 102);
  cudaStream_t s1, s2;
  CUDA_OK(cudaStreamCreate(&s1));
  CUDA_OK(cudaStreamCreate(&s2));
  DeviceBuffer<float> da(a), db(b), c1(c), c2(c);
  const float alpha = 0.3f, beta = 0.7f;
  // Two streams: the two GEMMs may run at the same time on different worker threads.
  BLAS_OK(cublasSetStream_v2(handle_, s1));
  BLAS_OK(
      cublasSgemm_v2(handle_, CUBLAS_OP_N, CUBLAS_OP_T, m, n, k, &alpha, da.get(), m, db.get(), n, &beta, c1.get(), m));
  BLAS_OK(cublasSetStream_v2(handle_, s2));
  BLAS_OK(
      cublasSgemm_v2(handle_, CUBLAS_OP_N, CUBLAS_OP_T, m, n, k, &alpha, da.get(), m, db.get(), n, &beta, c2.get(), m));
  EXPECT_TRUE(same_bits(c1.download().data(), c2.download().data(), c.size() * sizeof(float)));

  std::vector<std::uint16_t> a16, b16;
  for (float v : a) a16.push_back(to_half_bits(v));
  for (float v : b) b16.push_back(to_half_bits(v));
  DeviceBuffer<std::uint16_t> ha(a16), hb(b16), h1(static_cast<std::size_t>(m) * n),
      h2(static_cast<std::size_t>(m) * n);
  for (auto* out : {&h1, &h2})
    BLAS_OK(cublasGemmEx(handle_, CUBLAS_OP_N, CUBLAS_OP_T, m, n, k, &alpha, ha.get(), CUDA_R_16F, m, hb.get(),
                         CUDA_R_16F, n, &beta, out->get(), CUDA_R_16F, m, CUBLAS_COMPUTE_32F_FAST_TF32,
                         CUBLAS_GEMM_DEFAULT));
  EXPECT_TRUE(same_bits(h1.download().data(), h2.download().data(), h1.bytes()));

  DeviceBuffer<float> y1(c), y2(c);
  for (auto* y : {&y1, &y2})
    BLAS_OK(cublasSgemv_v2(handle_, CUBLAS_OP_T, m, n, &alpha, da.get(), m, c1.get(), 1, &beta, y->get(), 1));
  EXPECT_TRUE(same_bits(y1.download().data(), y2.download().data(), y1.bytes()));
  float d1 = 0, d2 = 1;
  BLAS_OK(cublasSdot_v2(handle_, m * n, c1.get(), 1, c2.get(), 1, &d1));
  BLAS_OK(cublasSdot_v2(handle_, m * n, c1.get(), 1, c2.get(), 1, &d2));
  EXPECT_TRUE(same_bits(&d1, &d2, sizeof(float)));
  BLAS_OK(cublasSetStream_v2(handle_, nullptr));
  CUDA_OK(cudaStreamDestroy(s1));
  CUDA_OK(cudaStreamDestroy(s2));
}

}  // namespace
}  // namespace simcublas::test
