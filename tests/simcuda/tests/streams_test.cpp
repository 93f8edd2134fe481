// Simulated driver: stream order, events, cross-stream waits, async copies and
// the legacy default stream. Registered twice in meson.build: once plain and
// once with SIMCUDA_JITTER=1, where every result must be the same.
#include <atomic>
#include <vector>

#include "driver_fixture.h"

namespace simcuda::test {
namespace {

using StreamTest = DriverTest;

TEST_F(StreamTest, WorkOnOneStreamRunsInOrder) {
  CUstream s{};
  CU_OK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  CUdeviceptr cell = 0;
  CU_OK(cuMemAlloc(&cell, 4));
  CU_OK(cuMemsetD32Async(cell, 0, 1, s));
  // Each increment reads, sleeps and writes: any overlap would lose one.
  for (int i = 0; i < 20; ++i) CU_OK(slow_increment(cell, 100, s));
  std::uint32_t v = 0;
  CU_OK(cuMemcpyDtoHAsync(&v, cell, 4, s));  // pageable destination: synchronous
  EXPECT_EQ(v, 20u);
  CU_OK(cuStreamSynchronize(s));
  CU_OK(cuStreamDestroy(s));
  CU_OK(cuMemFree(cell));
}

TEST_F(StreamTest, StreamsRunConcurrently) {
  // Two non-blocking streams with a slow kernel each finish in about the time of one.
  CUstream a{}, b{};
  CU_OK(cuStreamCreate(&a, CU_STREAM_NON_BLOCKING));
  CU_OK(cuStreamCreate(&b, CU_STREAM_NON_BLOCKING));
  CUdeviceptr cells = 0;
  CU_OK(cuMemAlloc(&cells, 8));
  CU_OK(cuMemsetD32(cells, 0, 2));
  CU_OK(cuCtxSynchronize());
  auto start = std::chrono::steady_clock::now();
  CU_OK(slow_increment(cells, 300000, a));
  CU_OK(slow_increment(cells + 4, 300000, b));
  CU_OK(cuCtxSynchronize());
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(ms, 550) << "streams did not overlap";
  CU_OK(cuStreamDestroy(a));
  CU_OK(cuStreamDestroy(b));
  CU_OK(cuMemFree(cells));
}

TEST_F(StreamTest, EventOrdersWorkAcrossStreams) {
  CUstream producer{}, consumer{};
  CU_OK(cuStreamCreate(&producer, CU_STREAM_NON_BLOCKING));
  CU_OK(cuStreamCreate(&consumer, CU_STREAM_NON_BLOCKING));
  CUevent ready{};
  CU_OK(cuEventCreate(&ready, CU_EVENT_DISABLE_TIMING));
  constexpr std::uint64_t n = 1 << 16;
  CUdeviceptr a = 0, b = 0, out = 0;
  CU_OK(cuMemAlloc(&a, n * 4));
  CU_OK(cuMemAlloc(&b, n * 4));
  CU_OK(cuMemAlloc(&out, n * 4));
  for (int round = 0; round < 10; ++round) {
    CU_OK(slow_increment(a, 2000, producer));  // delay the producer
    CU_OK(fill(a, 100 + round, n, producer));
    CU_OK(fill(b, 1000, n, producer));
    CU_OK(cuEventRecord(ready, producer));
    CU_OK(cuStreamWaitEvent(consumer, ready, 0));
    CU_OK(add(out, a, b, n, consumer));
    std::vector<std::uint32_t> host(n);
    CU_OK(cuMemcpyDtoHAsync(host.data(), out, n * 4, consumer));
    CU_OK(cuStreamSynchronize(consumer));
    for (std::uint64_t i = 0; i < n; i += 997) ASSERT_EQ(host[i], 1100u + round) << "round " << round;
  }
  EXPECT_EQ(cuEventQuery(ready), CUDA_SUCCESS);
  CU_OK(cuEventDestroy(ready));
  CU_OK(cuStreamDestroy(producer));
  CU_OK(cuStreamDestroy(consumer));
  CU_OK(cuMemFree(a));
  CU_OK(cuMemFree(b));
  CU_OK(cuMemFree(out));
}

TEST_F(StreamTest, EventQueryAndElapsedTime) {
  CUstream s{};
  CU_OK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  CUevent start{}, stop{};
  CU_OK(cuEventCreate(&start, 0));
  CU_OK(cuEventCreate(&stop, 0));
  EXPECT_EQ(cuEventQuery(stop), CUDA_SUCCESS) << "never recorded counts as complete";
  CUdeviceptr cell = 0;
  CU_OK(cuMemAlloc(&cell, 4));
  CU_OK(cuEventRecord(start, s));
  CU_OK(slow_increment(cell, 100000, s));
  CU_OK(cuEventRecord(stop, s));
  EXPECT_EQ(cuEventQuery(stop), CUDA_ERROR_NOT_READY);
  float ms = 0;
  EXPECT_EQ(cuEventElapsedTime(&ms, start, stop), CUDA_ERROR_NOT_READY);
  CU_OK(cuEventSynchronize(stop));
  CU_OK(cuEventElapsedTime(&ms, start, stop));
  EXPECT_GE(ms, 99.0f);
  CU_OK(cuEventDestroy(start));
  CU_OK(cuEventDestroy(stop));
  CU_OK(cuStreamDestroy(s));
  CU_OK(cuMemFree(cell));
}

TEST_F(StreamTest, AsyncCopiesRoundTripThroughPinnedMemory) {
  CUstream up{}, down{};
  CU_OK(cuStreamCreate(&up, CU_STREAM_NON_BLOCKING));
  CU_OK(cuStreamCreate(&down, CU_STREAM_NON_BLOCKING));
  constexpr std::uint64_t n = 1 << 18;
  std::uint32_t *src = nullptr, *dst = nullptr;
  CU_OK(cuMemHostAlloc(reinterpret_cast<void**>(&src), n * 4, 0));
  CU_OK(cuMemHostAlloc(reinterpret_cast<void**>(&dst), n * 4, 0));
  for (std::uint64_t i = 0; i < n; ++i) src[i] = static_cast<std::uint32_t>(i * 2654435761u);
  CUdeviceptr d = 0;
  CU_OK(cuMemAlloc(&d, n * 4));
  CUevent copied{};
  CU_OK(cuEventCreate(&copied, CU_EVENT_DISABLE_TIMING));
  CU_OK(cuMemcpyHtoDAsync(d, src, n * 4, up));
  CU_OK(cuEventRecord(copied, up));
  CU_OK(cuStreamWaitEvent(down, copied, 0));
  CU_OK(cuMemcpyDtoHAsync(dst, d, n * 4, down));
  CU_OK(cuStreamSynchronize(down));
  EXPECT_EQ(std::memcmp(src, dst, n * 4), 0);
  CU_OK(cuEventDestroy(copied));
  CU_OK(cuMemFreeHost(src));
  CU_OK(cuMemFreeHost(dst));
  CU_OK(cuMemFree(d));
  CU_OK(cuStreamDestroy(up));
  CU_OK(cuStreamDestroy(down));
}

TEST_F(StreamTest, PageableSourceIsStagedAtTheCall) {
  // The caller may overwrite a pageable source as soon as the async copy returns.
  CUstream s{};
  CU_OK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  CUdeviceptr d = 0;
  CU_OK(cuMemAlloc(&d, 4));
  CU_OK(slow_increment(d, 50000, s));  // keep the stream busy
  std::uint32_t value = 41;
  CU_OK(cuMemcpyHtoDAsync(d, &value, 4, s));
  value = 99;
  std::uint32_t back = 0;
  CU_OK(cuMemcpyDtoHAsync(&back, d, 4, s));
  EXPECT_EQ(back, 41u);
  CU_OK(cuStreamDestroy(s));
  CU_OK(cuMemFree(d));
}

TEST_F(StreamTest, LegacyStreamSynchronisesWithBlockingStreams) {
  CUstream blocking{};
  CU_OK(cuStreamCreate(&blocking, CU_STREAM_DEFAULT));
  CUdeviceptr cell = 0;
  CU_OK(cuMemAlloc(&cell, 4));
  CU_OK(cuMemsetD32(cell, 5, 1));
  // The legacy-stream increment must wait for the slow one on the blocking stream.
  CU_OK(slow_increment(cell, 100000, blocking));
  CU_OK(slow_increment(cell, 0, nullptr));
  std::uint32_t v = 0;
  CU_OK(cuMemcpyDtoH(&v, cell, 4));
  EXPECT_EQ(v, 7u);
  CU_OK(cuStreamDestroy(blocking));
  CU_OK(cuMemFree(cell));
}

TEST_F(StreamTest, HostFunctionsRunInStreamOrder) {
  CUstream s{};
  CU_OK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  static std::vector<int> order;
  order.clear();
  CUdeviceptr cell = 0;
  CU_OK(cuMemAlloc(&cell, 4));
  CU_OK(slow_increment(cell, 20000, s));
  CU_OK(cuLaunchHostFunc(s, [](void*) { order.push_back(1); }, nullptr));
  CU_OK(cuLaunchHostFunc(s, [](void*) { order.push_back(2); }, nullptr));
  EXPECT_EQ(cuStreamQuery(s), CUDA_ERROR_NOT_READY);
  CU_OK(cuStreamSynchronize(s));
  EXPECT_EQ(cuStreamQuery(s), CUDA_SUCCESS);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  CU_OK(cuStreamDestroy(s));
  CU_OK(cuMemFree(cell));
}

TEST_F(StreamTest, DestroyedStreamFinishesItsWork) {
  CUstream s{};
  CU_OK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  CUdeviceptr cell = 0;
  CU_OK(cuMemAlloc(&cell, 4));
  CU_OK(cuMemsetD32Async(cell, 0, 1, s));
  CU_OK(slow_increment(cell, 50000, s));
  CU_OK(cuStreamDestroy(s));
  EXPECT_EQ(cuStreamQuery(s), CUDA_ERROR_INVALID_HANDLE);
  CU_OK(cuCtxSynchronize());
  std::uint32_t v = 0;
  CU_OK(cuMemcpyDtoH(&v, cell, 4));
  EXPECT_EQ(v, 1u);
  CU_OK(cuMemFree(cell));
}

TEST_F(StreamTest, LaunchWithExtraParameterBuffer) {
  CUdeviceptr out = 0;
  CU_OK(cuMemAlloc(&out, 64));
  struct {
    CUdeviceptr out;
    std::uint32_t value;
    std::uint32_t pad;
    std::uint64_t count;
  } block{out, 0xABCD, 0, 16};
  size_t size = sizeof block;
  void* extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, &block, CU_LAUNCH_PARAM_BUFFER_SIZE, &size, CU_LAUNCH_PARAM_END};
  CU_OK(cuLaunchKernel(fill_, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, extra));
  std::uint32_t host[16] = {};
  CU_OK(cuMemcpyDtoH(host, out, sizeof host));
  for (std::uint32_t v : host) EXPECT_EQ(v, 0xABCDu);
  EXPECT_EQ(cuLaunchKernel(fill_, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, nullptr), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuLaunchKernel(fill_, 1, 1, 1, 2048, 1, 1, 0, nullptr, nullptr, extra), CUDA_ERROR_INVALID_VALUE);
  CU_OK(cuMemFree(out));
}

TEST_F(StreamTest, ParamInfoReportsTheRealLayout) {
  size_t offset = 0, size = 0, count = 0;
  while (cuFuncGetParamInfo(add_, count, &offset, &size) == CUDA_SUCCESS) {
    EXPECT_EQ(offset, kAddParams[count].offset_bytes);
    EXPECT_EQ(size, kAddParams[count].size_bytes);
    ++count;
  }
  EXPECT_EQ(count, 4u);
  EXPECT_EQ(cuFuncGetParamInfo(add_, 4, &offset, &size), CUDA_ERROR_INVALID_VALUE);
  CUmodule m{};
  const char not_an_image[64] = "\x7f" "ELF";
  EXPECT_EQ(cuModuleLoadData(&m, not_an_image), CUDA_ERROR_INVALID_IMAGE);
}

TEST_F(StreamTest, ManyThreadsOnTheirOwnStreams) {
  constexpr int kThreads = 8;
  constexpr std::uint64_t n = 4096;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      if (cuCtxSetCurrent(ctx_) != CUDA_SUCCESS) { ++failures; return; }
      CUstream s{};
      CUdeviceptr d = 0;
      if (cuStreamCreate(&s, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS || cuMemAlloc(&d, n * 4) != CUDA_SUCCESS) {
        ++failures;
        return;
      }
      for (int round = 0; round < 20; ++round) {
        std::vector<std::uint32_t> host(n);
        fill(d, t * 1000 + round, n, s);
        cuMemcpyDtoHAsync(host.data(), d, n * 4, s);
        for (std::uint32_t v : host)
          if (v != static_cast<std::uint32_t>(t * 1000 + round)) { ++failures; break; }
      }
      cuStreamDestroy(s);
      cuMemFree(d);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace simcuda::test
