// Swap mode, out of memory: with the device budget and the host limit both
// used up, the next cudaMalloc fails with cudaErrorMemoryAllocation. Nothing
// in use is lost: the program frees half, allocates again, and every buffer
// still holds exactly what was written into it.
//   host_pool_exhausted EXPECTED_BUFFERS
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "stamp.h"

constexpr size_t kBufferBytes = size_t{4} << 20;
constexpr size_t kWords = kBufferBytes / sizeof(unsigned);

static bool verify(const unsigned* device, unsigned tag, std::vector<unsigned>& host) {
  if (cudaMemcpy(host.data(), device, kBufferBytes, cudaMemcpyDeviceToHost) != cudaSuccess) return false;
  for (size_t i = 0; i < kWords; ++i)
    if (host[i] != stamped(tag, i)) return false;
  return true;
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const long expected = std::strtol(argv[1], nullptr, 10);
  std::vector<unsigned*> buffers;
  std::vector<unsigned> tags;
  cudaError_t err = cudaSuccess;
  for (unsigned tag = 1;; ++tag) {
    unsigned* p = nullptr;
    err = cudaMalloc(&p, kBufferBytes);
    if (err != cudaSuccess || buffers.size() > 1000) break;
    stamp<<<64, 256>>>(p, tag, kWords);
    buffers.push_back(p);
    tags.push_back(tag);
  }
  (void)cudaGetLastError();
  std::printf("allocated %zu buffers of 4 MiB, then: %s\n", buffers.size(), cudaGetErrorName(err));
  std::vector<unsigned> host(kWords);
  size_t bad = 0;
  for (size_t b = 0; b < buffers.size(); ++b) bad += !verify(buffers[b], tags[b], host);
  std::printf("verified before freeing: %zu bad\n", bad);
  // Free every other buffer, allocate into the room, and check everything.
  size_t freed = 0;
  for (size_t b = 0; b < buffers.size(); b += 2, ++freed) cudaFree(buffers[b]);
  size_t reallocated = 0;
  for (size_t b = 0; b < buffers.size(); b += 2) {
    unsigned* p = nullptr;
    if (cudaMalloc(&p, kBufferBytes) != cudaSuccess) break;
    tags[b] = 1000 + static_cast<unsigned>(b);
    stamp<<<64, 256>>>(p, tags[b], kWords);
    buffers[b] = p;
    ++reallocated;
  }
  for (size_t b = 0; b < buffers.size(); ++b) bad += !verify(buffers[b], tags[b], host);
  std::printf("freed %zu, allocated %zu again, bad buffers %zu\n", freed, reallocated, bad);
  const bool ok = err == cudaErrorMemoryAllocation && bad == 0 && reallocated == freed &&
                  static_cast<long>(buffers.size()) == expected;
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
