// An ordinary CUDA sample program: a pipeline of async copies and kernels over
// several streams, ordered with events, checked against a host computation.
// Under SIMCUDA_JITTER=1 a correctly synchronised program gives the same answer.
#include <cstdio>
#include <vector>

#include "simcuda/twin.h"

__global__ void axpb(float* y, const float* x, float a, float b, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + b;
}
static void axpb_cpu(const simcuda::Grid& g, float* y, const float* x, float a, float b, int n) {
  for (int i = 0; i < n && static_cast<std::uint64_t>(i) < g.total_threads(); ++i) y[i] = a * x[i] + b;
}
SIMCUDA_TWIN(axpb, axpb_cpu);

#define CHECK(x)                                                                      \
  do {                                                                                \
    cudaError_t e_ = (x);                                                             \
    if (e_ != cudaSuccess) {                                                          \
      std::printf("%s failed: %s\n", #x, cudaGetErrorString(e_));                     \
      return 1;                                                                       \
    }                                                                                 \
  } while (0)

int main() {
  constexpr int kStreams = 4, kChunk = 1 << 16, kRounds = 8;
  cudaStream_t streams[kStreams];
  cudaEvent_t done[kStreams];
  float *host_in = nullptr, *host_out = nullptr, *dev_in = nullptr, *dev_out = nullptr;
  CHECK(cudaMallocHost(&host_in, sizeof(float) * kChunk * kStreams));
  CHECK(cudaMallocHost(&host_out, sizeof(float) * kChunk * kStreams));
  CHECK(cudaMalloc(&dev_in, sizeof(float) * kChunk * kStreams));
  CHECK(cudaMalloc(&dev_out, sizeof(float) * kChunk * kStreams));
  for (int s = 0; s < kStreams; ++s) {
    CHECK(cudaStreamCreateWithFlags(&streams[s], cudaStreamNonBlocking));
    CHECK(cudaEventCreateWithFlags(&done[s], cudaEventDisableTiming));
  }
  double checksum = 0;
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 0; i < kChunk * kStreams; ++i) host_in[i] = static_cast<float>((i * 7 + round) % 1000);
    for (int s = 0; s < kStreams; ++s) {
      float* in = dev_in + s * kChunk;
      float* out = dev_out + s * kChunk;
      CHECK(cudaMemcpyAsync(in, host_in + s * kChunk, sizeof(float) * kChunk, cudaMemcpyHostToDevice, streams[s]));
      axpb<<<(kChunk + 255) / 256, 256, 0, streams[s]>>>(out, in, 2.0f, static_cast<float>(round), kChunk);
      CHECK(cudaGetLastError());
      CHECK(cudaEventRecord(done[s], streams[s]));
      // The next stream's consumer reads this chunk's output too: wait for it.
      int next = (s + 1) % kStreams;
      CHECK(cudaStreamWaitEvent(streams[next], done[s], 0));
      CHECK(cudaMemcpyAsync(host_out + s * kChunk, out, sizeof(float) * kChunk, cudaMemcpyDeviceToHost, streams[next]));
    }
    CHECK(cudaDeviceSynchronize());
    for (int i = 0; i < kChunk * kStreams; ++i) {
      float want = 2.0f * host_in[i] + static_cast<float>(round);
      if (host_out[i] != want) {
        std::printf("round %d element %d: got %f want %f\n", round, i, host_out[i], want);
        return 1;
      }
      checksum += host_out[i];
    }
  }
  std::printf("checksum %.1f\n", checksum);
  for (int s = 0; s < kStreams; ++s) {
    CHECK(cudaStreamDestroy(streams[s]));
    CHECK(cudaEventDestroy(done[s]));
  }
  CHECK(cudaFreeHost(host_in));
  CHECK(cudaFreeHost(host_out));
  CHECK(cudaFree(dev_in));
  CHECK(cudaFree(dev_out));
  return 0;
}
