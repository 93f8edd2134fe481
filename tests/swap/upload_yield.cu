// Swap mode: evictions ahead of demand wait for the program's upload that is
// on the link (Note [Background evictions yield to uploads] in
// shim/engine/residency.cpp), and nothing is lost by it.
//   upload_yield ROUNDS
// Under OVERSUB_POLICY=lru and OVERSUB_DEVICE_BUDGET=128MiB: 40 buffers of
// 4 MiB are stamped, more than the budget, so chunks are evicted on demand
// and headroom is kept from then on. Then, ROUNDS times: the device is idle,
// 64 MiB are uploaded from pinned memory on one stream, and at once a kernel
// on another stream stamps a new buffer, whose chunks take the headroom: the
// headroom it then keeps evicts while the upload is still copying (a 64 MiB
// copy takes milliseconds on the simulated GPU; the kernel comes 1 ms after
// it, and its preparation takes less). check_upload_yield.py reads OVERSUB_STATS for the count of
// uploads waited for. Every buffer and every uploaded byte is checked.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "stamp.h"

constexpr size_t kBufferBytes = size_t{4} << 20;
constexpr size_t kWords = kBufferBytes / sizeof(unsigned);
constexpr size_t kUploadBytes = size_t{64} << 20;
constexpr size_t kUploadWords = kUploadBytes / sizeof(unsigned);
constexpr int kStamped = 40;

static bool verify(const unsigned* device, unsigned tag, size_t words, std::vector<unsigned>& host) {
  host.resize(words);
  if (cudaMemcpy(host.data(), device, words * sizeof(unsigned), cudaMemcpyDeviceToHost) != cudaSuccess) return false;
  for (size_t i = 0; i < words; ++i)
    if (host[i] != stamped(tag, i)) return false;
  return true;
}

#define CHECK(call)                                                               \
  do {                                                                            \
    if (cudaError_t e = (call); e != cudaSuccess) {                               \
      std::printf("%s failed: %s\nFAIL\n", #call, cudaGetErrorName(e));           \
      return 1;                                                                   \
    }                                                                             \
  } while (0)

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const int rounds = std::atoi(argv[1]);
  cudaStream_t upload_stream = nullptr, work_stream = nullptr;
  CHECK(cudaStreamCreateWithFlags(&upload_stream, cudaStreamNonBlocking));
  CHECK(cudaStreamCreateWithFlags(&work_stream, cudaStreamNonBlocking));
  std::vector<unsigned*> buffers;
  std::vector<unsigned> tags;
  for (int b = 0; b < kStamped; ++b) {
    unsigned* p = nullptr;
    CHECK(cudaMalloc(&p, kBufferBytes));
    stamp<<<64, 256, 0, work_stream>>>(p, 1 + b, kWords);
    buffers.push_back(p);
    tags.push_back(1 + b);
  }
  unsigned* upload = nullptr;
  unsigned* pinned = nullptr;
  CHECK(cudaMalloc(&upload, kUploadBytes));
  CHECK(cudaMallocHost(&pinned, kUploadBytes));
  for (int round = 0; round < rounds; ++round) {
    const unsigned tag = 1000 + round;
    for (size_t i = 0; i < kUploadWords; ++i) pinned[i] = stamped(tag, i);
    CHECK(cudaDeviceSynchronize());
    CHECK(cudaMemcpyAsync(upload, pinned, kUploadBytes, cudaMemcpyHostToDevice, upload_stream));
    usleep(1000);  // the point before the upload is reached (jitter delays it up to 200 us)
    unsigned* fresh = nullptr;
    CHECK(cudaMalloc(&fresh, kBufferBytes));
    stamp<<<64, 256, 0, work_stream>>>(fresh, 2000 + round, kWords);
    buffers.push_back(fresh);
    tags.push_back(2000 + round);
    CHECK(cudaStreamSynchronize(upload_stream));
    std::vector<unsigned> host;
    if (!verify(upload, tag, kUploadWords, host)) {
      std::printf("round %d: the upload does not hold what was sent\nFAIL\n", round);
      return 1;
    }
  }
  CHECK(cudaDeviceSynchronize());
  std::vector<unsigned> host;
  size_t bad = 0;
  for (size_t b = 0; b < buffers.size(); ++b) bad += !verify(buffers[b], tags[b], kWords, host);
  std::printf("%d rounds, %zu buffers of 4 MiB, bad buffers %zu\n", rounds, buffers.size(), bad);
  std::printf("%s\n", bad == 0 ? "PASS" : "FAIL");
  return bad == 0 ? 0 : 1;
}
