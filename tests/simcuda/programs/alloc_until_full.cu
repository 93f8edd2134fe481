// Acceptance program: cudaMalloc 2 MiB buffers until the device is full.
// Every buffer must be usable (a kernel writes it, a copy reads it back) and
// the allocation after the last must fail with cudaErrorMemoryAllocation.
// Built by nvcc against the toolkit's real libcudart.so.13; the same source
// runs on a real GPU.
//   alloc_until_full EXPECTED_COUNT
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "simcuda/twin.h"

constexpr size_t kBufferBytes = size_t{2} << 20;
constexpr size_t kWords = kBufferBytes / sizeof(unsigned);

__global__ void stamp(unsigned* out, unsigned tag, size_t words) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < words; i += size_t{gridDim.x} * blockDim.x)
    out[i] = tag ^ static_cast<unsigned>(i);
}
static void stamp_cpu(const simcuda::Grid&, unsigned* out, unsigned tag, size_t words) {
  for (size_t i = 0; i < words; ++i) out[i] = tag ^ static_cast<unsigned>(i);
}
SIMCUDA_TWIN(stamp, stamp_cpu);

static unsigned tag_of(size_t buffer) { return 0x9E3779B9u * static_cast<unsigned>(buffer + 1); }

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: alloc_until_full EXPECTED_COUNT\n");
    return 2;
  }
  const long expected = std::strtol(argv[1], nullptr, 10);
  std::vector<unsigned*> buffers;
  cudaError_t err;
  for (;;) {
    unsigned* p = nullptr;
    err = cudaMalloc(&p, kBufferBytes);
    if (err != cudaSuccess) break;
    buffers.push_back(p);
    if (buffers.size() > 100000) break;
  }
  std::printf("allocated %zu buffers of 2 MiB; next cudaMalloc: %s\n", buffers.size(), cudaGetErrorName(err));
  (void)cudaGetLastError();
  for (size_t b = 0; b < buffers.size(); ++b) stamp<<<64, 256>>>(buffers[b], tag_of(b), kWords);
  if (cudaDeviceSynchronize() != cudaSuccess) {
    std::printf("kernels failed: %s\n", cudaGetErrorString(cudaGetLastError()));
    return 1;
  }
  std::vector<unsigned> host(kWords);
  size_t bad = 0;
  for (size_t b = 0; b < buffers.size(); ++b) {
    cudaMemcpy(host.data(), buffers[b], kBufferBytes, cudaMemcpyDeviceToHost);
    for (size_t i = 0; i < kWords; ++i)
      if (host[i] != (tag_of(b) ^ static_cast<unsigned>(i))) { ++bad; break; }
  }
  std::printf("buffers verified: %zu of %zu\n", buffers.size() - bad, buffers.size());
  for (unsigned* p : buffers) cudaFree(p);
  const bool ok = err == cudaErrorMemoryAllocation && bad == 0 && static_cast<long>(buffers.size()) == expected;
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
