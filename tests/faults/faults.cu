// Programs for the fault tests (docs/reliability.md, "Faults"; tests/faults/check_faults.py).
//   faults swap BUFFERS PASSES   4 MiB buffers, stamped, then bumped and checked PASSES times;
//                                an op that fails is retried (stderr: "retry after ERROR"),
//                                stdout is the same with or without the shim and its faults
//   faults fork BUFFERS          forks after init; the child runs CUDA-free code and exits 0
//   faults exit-in-flight BUFFERS  stamps the buffers and returns from main at once
//   faults free-evicting BUFFERS [stop]  frees all but the newest buffer straight after stamping (their
//                                evictions in flight), allocates again and checks everything
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include "simcuda/twin.h"

constexpr size_t kBufferBytes = size_t{4} << 20;
constexpr size_t kWords = kBufferBytes / sizeof(unsigned);

static unsigned expected(unsigned tag, size_t i) { return tag * 2654435761u + static_cast<unsigned>(i); }

__global__ void stamp(unsigned* out, unsigned tag, size_t words) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < words; i += size_t{gridDim.x} * blockDim.x)
    out[i] = tag * 2654435761u + static_cast<unsigned>(i);
}
static void stamp_cpu(const simcuda::Grid&, unsigned* out, unsigned tag, size_t words) {
  for (size_t i = 0; i < words; ++i) out[i] = expected(tag, i);
}
SIMCUDA_TWIN(stamp, stamp_cpu);

__global__ void bump(unsigned* out, unsigned delta, size_t words) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < words; i += size_t{gridDim.x} * blockDim.x)
    out[i] += delta;
}
static void bump_cpu(const simcuda::Grid&, unsigned* out, unsigned delta, size_t words) {
  for (size_t i = 0; i < words; ++i) out[i] += delta;
}
SIMCUDA_TWIN(bump, bump_cpu);

static int g_retries = 0;

// An op the shim could not prepare was never submitted: doing it again is safe.
static bool retry(cudaError_t err) {
  if (err == cudaSuccess) return false;
  std::fprintf(stderr, "retry after %s\n", cudaGetErrorName(err));
  if (++g_retries > 3) {
    std::fprintf(stderr, "FAIL: too many errors\n");
    std::exit(1);
  }
  return true;
}
static void launch_stamp(unsigned* p, unsigned tag) {
  do stamp<<<64, 256>>>(p, tag, kWords);
  while (retry(cudaGetLastError()));
}
static void launch_bump(unsigned* p, unsigned delta) {
  do bump<<<64, 256>>>(p, delta, kWords);
  while (retry(cudaGetLastError()));
}
static unsigned* allocate() {
  unsigned* p = nullptr;
  while (retry(cudaMalloc(&p, kBufferBytes))) {
  }
  return p;
}
// Bad words in the buffer; adds its words to `sum`.
static size_t check(const unsigned* device, unsigned tag, unsigned delta, std::vector<unsigned>& host,
                    unsigned long long* sum) {
  while (retry(cudaMemcpy(host.data(), device, kBufferBytes, cudaMemcpyDeviceToHost))) {
  }
  size_t bad = 0;
  for (size_t i = 0; i < kWords; ++i) {
    bad += host[i] != expected(tag, i) + delta;
    *sum += host[i];
  }
  return bad;
}

static int swap(size_t count, unsigned passes) {
  std::vector<unsigned*> buffers;
  for (unsigned b = 0; b < count; ++b) {
    buffers.push_back(allocate());
    launch_stamp(buffers.back(), b + 1);
  }
  std::vector<unsigned> host(kWords);
  size_t bad = 0;
  for (unsigned pass = 1; pass <= passes; ++pass) {
    for (unsigned* p : buffers) launch_bump(p, pass);
    unsigned long long sum = 0;
    const unsigned delta = pass * (pass + 1) / 2;
    for (unsigned b = 0; b < count; ++b) bad += check(buffers[b], b + 1, delta, host, &sum);
    std::printf("pass %u: %zu buffers, checksum %llu, bad words %zu\n", pass, count, sum, bad);
  }
  for (unsigned* p : buffers) cudaFree(p);
  std::fprintf(stderr, "retries %d\n", g_retries);
  return bad == 0 ? 0 : 1;
}

static int fork_after_init(size_t count) {
  std::vector<unsigned*> buffers;
  for (unsigned b = 0; b < count; ++b) {
    buffers.push_back(allocate());
    launch_stamp(buffers.back(), b + 1);
  }
  std::fflush(stdout);
  const pid_t child = fork();
  if (child < 0) return 1;
  if (child == 0) {  // CUDA-free work, then an ordinary exit (atexit handlers run)
    unsigned long long x = 1;
    for (int i = 0; i < 1000000; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
    std::printf("child: computed %llx\n", x & 0xff);
    std::exit(0);
  }
  int status = 0;
  pid_t done = 0;
  for (int waited_ms = 0; (done = waitpid(child, &status, WNOHANG)) == 0 && waited_ms < 20000; waited_ms += 10)
    usleep(10000);
  if (done == 0) {
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    std::printf("FAIL: the child did not exit within 20 s\n");
    return 1;
  }
  const bool child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  std::printf("child exited: %s (status 0x%x)\n", child_ok ? "0" : "abnormally", status);
  std::vector<unsigned> host(kWords);
  size_t bad = 0;
  unsigned long long sum = 0;
  for (unsigned b = 0; b < count; ++b) bad += check(buffers[b], b + 1, 0, host, &sum);
  std::printf("parent: %zu buffers, checksum %llu, bad words %zu\n", count, sum, bad);
  return child_ok && bad == 0 ? 0 : 1;
}

static int exit_in_flight(size_t count) {
  for (unsigned b = 0; b < count; ++b) launch_stamp(allocate(), b + 1);
  std::printf("returning from main with work in flight\n");
  return 0;  // no synchronisation, no free
}

static int free_evicting(size_t count, bool stop) {
  std::vector<unsigned*> buffers;
  std::vector<unsigned> tags;
  for (unsigned b = 0; b < count; ++b) {
    buffers.push_back(allocate());
    tags.push_back(b + 1);
    launch_stamp(buffers.back(), b + 1);
  }
  // At once, while the evictions that stamping the newest started are in
  // flight: all but the newest, wherever they are (device, evicting, host).
  const size_t freed = count - 1;
  for (size_t b = 0; b < freed; ++b) cudaFree(buffers[b]);
  if (stop) {
    cudaDeviceSynchronize();
    std::printf("freed %zu\n", freed);
    return 0;
  }
  for (size_t b = 0; b < freed; ++b) {
    buffers[b] = allocate();
    tags[b] = 1000 + static_cast<unsigned>(b);
    launch_stamp(buffers[b], tags[b]);
  }
  std::vector<unsigned> host(kWords);
  size_t bad = 0;
  unsigned long long sum = 0;
  for (size_t b = 0; b < count; ++b) bad += check(buffers[b], tags[b], 0, host, &sum);
  std::printf("freed %zu, allocated %zu again: %zu buffers, checksum %llu, bad words %zu\n", freed, freed, count, sum,
              bad);
  return bad == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const size_t count = std::strtoul(argv[2], nullptr, 10);
  if (std::strcmp(argv[1], "swap") == 0 && argc == 4) return swap(count, std::strtoul(argv[3], nullptr, 10));
  if (std::strcmp(argv[1], "fork") == 0) return fork_after_init(count);
  if (std::strcmp(argv[1], "exit-in-flight") == 0) return exit_in_flight(count);
  if (std::strcmp(argv[1], "free-evicting") == 0) return free_evicting(count, argc == 4 && std::strcmp(argv[3], "stop") == 0);
  return 2;
}
