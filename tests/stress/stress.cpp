// Differential stress test (issue 9, item 1).
//
// A seeded generator writes random, correctly synchronised CUDA programs and
// runs them: allocations of 4 KiB to 8 MiB (packed small ones and multi-chunk
// ones), sync and stream-ordered frees, host writes from pinned and pageable
// memory, device reads, device-to-device copies, memsets, two kernels of our
// own and cuBLAS saxpy/sgemm, on several streams per host thread, from several
// host threads at once. A shadow copy of every buffer lives on the host and is
// updated as each op is issued; every read from the device is compared with
// it, and at the end every live buffer is read back and compared.
//
// The program calls the driver API and cuBLAS directly and knows nothing of
// oversub: under LD_PRELOAD=liboversub.so the shim intercepts all of it, so a
// run under the shim at a small budget must give the same bytes as a run
// without it.
//
// Note [Synchronisation rules]
// The generated programs are correct CUDA programs, so any difference is the
// shim's fault (or the simulator's). Each buffer belongs to one host thread
// (plus a few shared buffers that are written once before the threads start
// and only read afterwards). Per buffer we track the stream and sequence
// number of its last write and, per stream, of the reads since. Before an op
// on stream S reads a buffer, S waits (cuStreamWaitEvent on a freshly
// recorded event) for the last writer's stream; before it writes (or frees
// with cuMemFreeAsync), S waits for the last writer and every reader. The
// event is recorded at the time of the wait, so it covers at least the op
// waited for. Pinned host buffers are reused only after the event recorded
// behind their last copy has completed.
//
// Note [Exact arithmetic]
// Float buffers hold small integers only, and saxpy/sgemm are issued only when
// every partial sum stays below 2^24 in magnitude, so the result is exact in
// any summation order and the shadow (computed on the host) matches bit for
// bit. Integer buffers are transformed by our kernels with wrap-around uint32
// arithmetic. Kernels and D2D copies never turn integer bits into float
// buffers, so float buffers never hold NaNs.
#include <cublas_v2.h>
#include <cuda.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "simcuda/image.h"

namespace {

constexpr std::uint64_t KiB = 1024, MiB = 1024 * KiB;
constexpr std::uint64_t kChunk = 2 * MiB;          // oversub's residency granularity
constexpr std::uint64_t kSmall = 1 * MiB;          // below: packed into shared chunks
constexpr int kStreams = 3;                        // per host thread
constexpr int kSlots = 4;                          // pinned staging buffers per host thread
constexpr int kEvents = 32;                        // per host thread, for cross-stream waits
constexpr int kSharedBuffers = 4;

enum class AsyncFree { all, large, none };

struct Options {
  std::uint64_t seed = 1;
  std::uint64_t ops = 10000;  // in total, over all threads
  int threads = 3;
  std::uint64_t footprint = 64 * MiB;
  std::uint64_t max_alloc = 0;  // 0: min(8 MiB, op limit)
  std::uint64_t op_limit = 0;   // bytes of chunks one op may touch; 0: max(footprint / 16, 2 MiB)
  AsyncFree async_free = AsyncFree::all;  // which allocations use cuMemAllocAsync/cuMemFreeAsync
  bool verbose = false;
};
Options g_opt;

// ---- the kernels (simulated GPU image) ----

// transform_u32(uint32_t* x, uint64_t count): x = x * 3 + 1
void transform_body(const simcuda_launch*, const unsigned char* p) {
  std::uint32_t* x;
  std::uint64_t n;
  std::memcpy(&x, p + 0, 8);
  std::memcpy(&n, p + 8, 8);
  for (std::uint64_t i = 0; i < n; ++i) x[i] = x[i] * 3u + 1u;
}
constexpr simcuda_param kTransformParams[] = {{0, 8}, {8, 8}};

std::uint32_t combine_word(std::uint32_t a, std::uint32_t b) { return (a ^ (b * 7u)) + 0x9e3779b9u; }

// combine_u32(uint32_t* out, const uint32_t* a, const uint32_t* b, uint64_t count)
void combine_body(const simcuda_launch*, const unsigned char* p) {
  std::uint32_t* out;
  const std::uint32_t *a, *b;
  std::uint64_t n;
  std::memcpy(&out, p + 0, 8);
  std::memcpy(&a, p + 8, 8);
  std::memcpy(&b, p + 16, 8);
  std::memcpy(&n, p + 24, 8);
  for (std::uint64_t i = 0; i < n; ++i) out[i] = combine_word(a[i], b[i]);
}
constexpr simcuda_param kCombineParams[] = {{0, 8}, {8, 8}, {16, 8}, {24, 8}};

constexpr simcuda_kernel_desc kKernels[] = {
    {"stress_transform_u32", transform_body, 2, kTransformParams},
    {"stress_combine_u32", combine_body, 4, kCombineParams},
};
constexpr simcuda_image kImage{SIMCUDA_IMAGE_MAGIC, SIMCUDA_IMAGE_VERSION, 2, kKernels};

CUcontext g_ctx = nullptr;
CUmodule g_module = nullptr;
CUfunction g_transform = nullptr, g_combine = nullptr;

// ---- failure reporting ----

std::mutex g_fail_mutex;
std::atomic<bool> g_failed{false};

struct Buf;
struct Worker;
std::vector<Worker*> g_workers;

[[noreturn]] void fail(Worker* w, int buf_id, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

// A signal (a device fault in strict mode kills the program with SIGSEGV from a
// stream worker) still names the seed and the last ops of every thread.
constexpr int kRecent = 16;
constexpr int kRecentChars = 200;
struct Recent {
  char lines[kRecent][kRecentChars]{};
  std::atomic<std::uint64_t> count{0};
  void add(const std::string& line) {
    const std::uint64_t n = count.load(std::memory_order_relaxed);
    std::snprintf(lines[n % kRecent], kRecentChars, "%s", line.c_str());
    count.store(n + 1, std::memory_order_release);
  }
};

struct Rng {
  std::mt19937_64 gen;
  explicit Rng(std::uint64_t seed) : gen(seed) {}
  std::uint64_t next() { return gen(); }
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : next() % n; }
  bool chance(double p) { return double(next() >> 11) * 0x1.0p-53 < p; }
  // log-uniform in [lo, hi]
  std::uint64_t log_uniform(std::uint64_t lo, std::uint64_t hi) {
    if (hi <= lo) return lo;
    const double l = std::log(double(lo)), h = std::log(double(hi) + 1);
    const double x = std::exp(l + (h - l) * (double(next() >> 11) * 0x1.0p-53));
    return std::clamp<std::uint64_t>(std::uint64_t(x), lo, hi);
  }
};

float as_float(std::uint32_t w) {
  float f;
  std::memcpy(&f, &w, 4);
  return f;
}
std::uint32_t as_word(float f) {
  std::uint32_t w;
  std::memcpy(&w, &f, 4);
  return w;
}

struct Buf {
  int id = 0;
  CUdeviceptr ptr = 0;
  std::uint64_t words = 0;
  bool fl = false;            // holds small integer floats (Note [Exact arithmetic])
  bool async_alloc = false;   // cuMemAllocAsync / cuMemFreeAsync
  bool shared = false;        // read-only after start
  std::vector<std::uint32_t> shadow;
  // Note [Synchronisation rules]
  int w_stream = -1;
  std::uint64_t w_seq = 0;
  std::array<std::uint64_t, kStreams> r_seq{};
  std::uint64_t bytes() const { return words * 4; }
  std::uint64_t chunks() const { return bytes() < kSmall ? 1 : (bytes() + kChunk - 1) / kChunk; }
};

std::vector<std::unique_ptr<Buf>> g_shared;

struct Slot {
  std::uint32_t* host = nullptr;
  CUevent done = nullptr;
  bool busy = false;
  bool check = false;
  int buf_id = 0;
  std::uint64_t op = 0;
  std::uint64_t offset = 0;  // words
  std::vector<std::uint32_t> expect;
};

struct Worker {
  int t = 0;
  Rng rng;
  std::uint64_t ops = 0;
  std::uint64_t target = 0;  // live bytes to hover around
  std::array<CUstream, kStreams> s{};
  std::array<std::uint64_t, kStreams> seq{};
  std::array<std::array<std::uint64_t, kStreams>, kStreams> waited{};
  std::array<CUevent, kEvents> events{};
  int next_event = 0;
  cublasHandle_t blas = nullptr;
  std::array<Slot, kSlots> slots;
  int next_slot = 0;
  std::vector<std::unique_ptr<Buf>> bufs;
  std::uint64_t live_bytes = 0;
  std::vector<std::string> log;  // one line per op, for the replay
  std::vector<std::vector<int>> log_bufs;
  std::string line;              // the op being built
  std::vector<int> line_bufs;
  std::uint64_t op_index = 0;
  int next_id = 0;
  std::uint64_t checks = 0, checked_bytes = 0;
  std::array<std::uint64_t, 16> op_counts{};
  std::vector<std::uint32_t> pageable;
  Recent recent;

  Worker(int thread, std::uint64_t seed) : t(thread), rng(seed) {}
};

std::uint64_t g_read_op = ~std::uint64_t{0};  // the op whose read failed, when known

void print_replay(Worker* w, int buf_id) {
  std::fprintf(stderr, "replay: stress --seed %" PRIu64 " --ops %" PRIu64 " --threads %d --footprint %" PRIu64, g_opt.seed,
               g_opt.ops, g_opt.threads, g_opt.footprint);
  if (g_opt.max_alloc) std::fprintf(stderr, " --max-alloc %" PRIu64, g_opt.max_alloc);
  if (g_opt.op_limit) std::fprintf(stderr, " --op-limit %" PRIu64, g_opt.op_limit);
  if (g_opt.async_free != AsyncFree::all)
    std::fprintf(stderr, " --async-free %s", g_opt.async_free == AsyncFree::large ? "large" : "none");
  std::fprintf(stderr, "\n");
  if (w == nullptr) return;
  // The minimal replay: a backward data-flow slice from the buffer, i.e. the
  // ops that wrote it, the ops that wrote the buffers those read, and so on,
  // plus the reads of the buffer; everything else the thread did is noise for
  // the value read (though not for the timing: the full program is the seed).
  std::vector<int> relevant{buf_id};
  std::vector<char> keep(w->log.size(), 0);
  const std::size_t upto = std::min<std::size_t>(w->log.size(), g_read_op == ~std::uint64_t{0} ? w->log.size() : g_read_op + 1);
  for (std::size_t i = upto; i-- > 0;) {
    const auto& ids = w->log_bufs[i];
    bool writes_relevant = false, touches = false;
    for (int id : ids) {
      const bool rel = std::find(relevant.begin(), relevant.end(), id < 0 ? -id : id) != relevant.end();
      if (rel) touches = true;
      if (rel && id < 0) writes_relevant = true;
    }
    if (writes_relevant) {
      for (int id : ids)
        if (id > 0 && std::find(relevant.begin(), relevant.end(), id) == relevant.end()) relevant.push_back(id);
    }
    keep[i] = writes_relevant || touches;
  }
  std::fprintf(stderr, "replay slice of thread %d for b%d (ops that wrote b%d or what flowed into it; %zu ops issued):\n",
               w->t, buf_id, buf_id, w->log.size());
  std::size_t shown = 0;
  for (std::size_t i = 0; i < w->log.size(); ++i)
    if (keep[i]) {
      std::fprintf(stderr, "  %s\n", w->log[i].c_str());
      ++shown;
    }
  if (shown == 0) std::fprintf(stderr, "  (none)\n");
  if (!w->line.empty()) std::fprintf(stderr, "  %" PRIu64 ": %s   <- the failing op\n", w->op_index, w->line.c_str());
  const std::size_t from = w->log.size() > 40 ? w->log.size() - 40 : 0;
  std::fprintf(stderr, "last %zu ops of thread %d:\n", w->log.size() - from, w->t);
  for (std::size_t i = from; i < w->log.size(); ++i) std::fprintf(stderr, "  %s\n", w->log[i].c_str());
}

void fail(Worker* w, int buf_id, const char* fmt, ...) {
  std::lock_guard lock(g_fail_mutex);
  g_failed.store(true);
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "STRESS FAILURE seed %" PRIu64 ", thread %d, op %" PRIu64 ": %s\n", g_opt.seed, w ? w->t : -1,
               w ? w->op_index : 0, msg);
  print_replay(w, buf_id);
  std::fflush(stderr);
  std::fflush(stdout);
  std::_Exit(1);
}

void on_signal(int sig) {
  char buf[512];
  int n = std::snprintf(buf, sizeof buf, "STRESS FAILURE seed %" PRIu64 ": signal %d (a device fault?); last ops per thread:\n",
                        g_opt.seed, sig);
  (void)!write(2, buf, std::size_t(n));
  for (Worker* w : g_workers) {
    if (w == nullptr) continue;
    const std::uint64_t count = w->recent.count.load(std::memory_order_acquire);
    const std::uint64_t from = count > kRecent ? count - kRecent : 0;
    for (std::uint64_t i = from; i < count; ++i) {
      n = std::snprintf(buf, sizeof buf, "  t%d %s\n", w->t, w->recent.lines[i % kRecent]);
      (void)!write(2, buf, std::size_t(n));
    }
  }
  n = std::snprintf(buf, sizeof buf,
                    "replay: stress --seed %" PRIu64 " --ops %" PRIu64 " --threads %d --footprint %" PRIu64 "\n",
                    g_opt.seed, g_opt.ops, g_opt.threads, g_opt.footprint);
  (void)!write(2, buf, std::size_t(n));
  signal(sig, SIG_DFL);
  raise(sig);
}

#define CK(w, expr)                                                                       \
  do {                                                                                    \
    const CUresult ck_r_ = (expr);                                                        \
    if (ck_r_ != CUDA_SUCCESS) fail((w), 0, "%s returned %d", #expr, int(ck_r_));         \
  } while (0)
#define CKB(w, expr)                                                                      \
  do {                                                                                    \
    const cublasStatus_t ck_s_ = (expr);                                                  \
    if (ck_s_ != CUBLAS_STATUS_SUCCESS) fail((w), 0, "%s returned %d", #expr, int(ck_s_)); \
  } while (0)

void note(Worker& w, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void note(Worker& w, const char* fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  w.line += tmp;
}

// The buffers an op reads (positive ids) and writes (negative ids), for the
// replay's data-flow slice.
void touch(Worker& w, const Buf& b) { w.line_bufs.push_back(b.id); }
void touch_w(Worker& w, const Buf& b) { w.line_bufs.push_back(-b.id); }

std::string range(const Buf& b, std::uint64_t off, std::uint64_t len) {
  char tmp[96];
  if (off == 0 && len == b.words) std::snprintf(tmp, sizeof tmp, "b%d", b.id);
  else std::snprintf(tmp, sizeof tmp, "b%d[%" PRIu64 "+%" PRIu64 "]", b.id, off, len);
  return tmp;
}

// ---- synchronisation (Note [Synchronisation rules]) ----

void order_after(Worker& w, int S, int X, std::uint64_t q) {
  if (X < 0 || X == S || q == 0) return;
  if (w.waited[S][X] >= q) return;
  CUevent e = w.events[std::size_t(w.next_event)];
  w.next_event = (w.next_event + 1) % kEvents;
  CK(&w, cuEventRecord(e, w.s[std::size_t(X)]));
  CK(&w, cuStreamWaitEvent(w.s[std::size_t(S)], e, 0));
  w.waited[S][X] = w.seq[std::size_t(X)];
  note(w, "wait(s%d<-s%d) ", S, X);
}
void before_read(Worker& w, int S, const Buf& b) {
  if (!b.shared) order_after(w, S, b.w_stream, b.w_seq);
}
void before_write(Worker& w, int S, const Buf& b) {
  order_after(w, S, b.w_stream, b.w_seq);
  for (int X = 0; X < kStreams; ++X) order_after(w, S, X, b.r_seq[std::size_t(X)]);
}
std::uint64_t issued(Worker& w, int S) { return ++w.seq[std::size_t(S)]; }
void after_read(int S, Buf& b, std::uint64_t q) {
  if (!b.shared) b.r_seq[std::size_t(S)] = q;
}
void after_write(int S, Buf& b, std::uint64_t q) {
  b.w_stream = S;
  b.w_seq = q;
  b.r_seq.fill(0);
}

// ---- checks ----

void compare(Worker& w, int buf_id, std::uint64_t op, const char* what, std::uint64_t offset,
             const std::uint32_t* got, const std::uint32_t* expect, std::uint64_t words) {
  ++w.checks;
  w.checked_bytes += words * 4;
  if (std::memcmp(got, expect, words * 4) == 0) return;
  std::uint64_t first = 0, differ = 0;
  bool seen = false;
  for (std::uint64_t i = 0; i < words; ++i)
    if (got[i] != expect[i]) {
      if (!seen) first = i;
      seen = true;
      ++differ;
    }
  // Which 2 MiB chunks of the buffer differ tells lost-chunk bugs from others.
  std::string chunks;
  std::uint64_t last_chunk = ~std::uint64_t{0};
  for (std::uint64_t i = 0; i < words; ++i)
    if (got[i] != expect[i]) {
      const std::uint64_t c = ((offset + i) * 4) / kChunk;
      if (c != last_chunk && chunks.size() < 200) chunks += (chunks.empty() ? "" : ",") + std::to_string(c);
      last_chunk = c;
    }
  // Where the bytes read came from, if they are another buffer's (a chunk
  // mapped at the wrong place, a copy that landed in the wrong chunk).
  std::string origin = "not found in any live buffer of this thread or the shared ones";
  const std::uint64_t probe = std::min<std::uint64_t>(4, words - first);
  auto search = [&](const Buf& b) {
    if (b.words < probe) return false;
    for (std::uint64_t i = 0; i + probe <= b.words; ++i)
      if (std::memcmp(&b.shadow[i], got + first, probe * 4) == 0) {
        char tmp[160];
        std::snprintf(tmp, sizeof tmp, "matches b%d (%s) at word %" PRIu64 " (address 0x%llx)", b.id,
                      b.id == buf_id ? "this buffer" : b.shared ? "shared" : "another buffer", i,
                      static_cast<unsigned long long>(b.ptr + i * 4));
        origin = tmp;
        return true;
      }
    return false;
  };
  bool found = false;
  if (probe >= 2) {
    for (auto& b : w.bufs)
      if (!found && b->id != buf_id) found = search(*b);
    for (auto& b : g_shared)
      if (!found) found = search(*b);
  }
  CUdeviceptr address = 0;
  for (auto& b : w.bufs)
    if (b->id == buf_id) address = b->ptr + (offset + first) * 4;
  g_read_op = op;
  fail(&w, buf_id,
       "%s of b%d (read by op %" PRIu64 "): %" PRIu64 " of %" PRIu64 " words differ; first at word %" PRIu64
       " of the buffer (byte %" PRIu64 ", address 0x%llx): expected 0x%08x, got 0x%08x; buffer-relative 2 MiB chunks "
       "differing: %s; the bytes read %s",
       what, buf_id, op, differ, words, offset + first, (offset + first) * 4, static_cast<unsigned long long>(address),
       expect[first], got[first], chunks.c_str(), origin.c_str());
}

void finish_slot(Worker& w, Slot& sl) {
  if (!sl.busy) return;
  CK(&w, cuEventSynchronize(sl.done));
  sl.busy = false;
  if (sl.check) {
    compare(w, sl.buf_id, sl.op, "device read (pinned)", sl.offset, sl.host, sl.expect.data(), sl.expect.size());
    sl.check = false;
    sl.expect.clear();  // keeps its capacity: the next read of the slot reuses it
  }
}

Slot& take_slot(Worker& w) {
  Slot& sl = w.slots[std::size_t(w.next_slot)];
  w.next_slot = (w.next_slot + 1) % kSlots;
  finish_slot(w, sl);
  return sl;
}

// ---- value generation ----

std::uint32_t random_value(Worker& w, bool fl) {
  if (fl) return as_word(float(std::int64_t(w.rng.below(33)) - 16));
  return std::uint32_t(w.rng.next());
}

// Cheap and position-dependent: a base and a stride from the RNG, so that
// filling megabytes costs a few operations per word rather than an RNG draw.
void fill_random(Worker& w, std::uint32_t* dst, std::uint64_t words, bool fl) {
  std::uint32_t x = std::uint32_t(w.rng.next()), step = std::uint32_t(w.rng.next()) | 1u;
  if (fl) {
    // Small integers from -16 to 16 (Note [Exact arithmetic]), from a hash of
    // the position so that neighbours differ.
    static const auto kWords = [] {
      std::array<std::uint32_t, 33> t{};
      for (int v = 0; v < 33; ++v) t[std::size_t(v)] = as_word(float(v - 16));
      return t;
    }();
    for (std::uint64_t i = 0; i < words; ++i) {
      const std::uint32_t h = (x ^ (x >> 15)) * 0x2c1b3c6du;
      dst[i] = kWords[(h >> 16) % 33];
      x += step;
    }
  } else {
    for (std::uint64_t i = 0; i < words; ++i) {
      dst[i] = x ^ (x >> 15);
      x += step;
    }
  }
}

// A sub-range of the buffer in words: often all of it.
void pick_range(Worker& w, const Buf& b, std::uint64_t* off, std::uint64_t* len) {
  if (w.rng.chance(0.35)) {
    *off = 0;
    *len = b.words;
    return;
  }
  *len = w.rng.log_uniform(1, b.words);
  *off = w.rng.below(b.words - *len + 1);
}

// ---- the ops ----

enum Op : int { kAlloc, kFree, kH2D, kD2H, kD2D, kMemset, kTransform, kCombine, kSaxpy, kGemm, kSync, kOpCount };
const char* const kOpNames[] = {"alloc", "free", "h2d", "d2h", "d2d", "memset", "transform", "combine", "saxpy", "gemm", "sync"};

std::uint64_t op_limit_chunks() {
  const std::uint64_t bytes = g_opt.op_limit ? g_opt.op_limit : std::max<std::uint64_t>(g_opt.footprint / 16, kChunk);
  return std::max<std::uint64_t>(bytes / kChunk, 1);
}
std::uint64_t max_alloc() {
  if (g_opt.max_alloc) return g_opt.max_alloc;
  return std::min<std::uint64_t>(8 * MiB, op_limit_chunks() * kChunk);
}

// Writes `words` of the buffer from pinned or pageable host memory on stream S.
void write_from_host(Worker& w, int S, Buf& b, std::uint64_t off, std::uint64_t len, bool pinned) {
  before_write(w, S, b);
  std::uint32_t* src;
  Slot* sl = nullptr;
  if (pinned) {
    sl = &take_slot(w);
    src = sl->host;
  } else {
    if (w.pageable.size() < len) w.pageable.resize(len);
    src = w.pageable.data();
  }
  fill_random(w, src, len, b.fl);
  CK(&w, cuMemcpyHtoDAsync_v2(b.ptr + off * 4, src, len * 4, w.s[std::size_t(S)]));
  if (sl) {
    CK(&w, cuEventRecord(sl->done, w.s[std::size_t(S)]));
    sl->busy = true;
  }
  // Pageable: the copy staged the source at the call, so it may be reused now.
  after_write(S, b, issued(w, S));
  std::memcpy(b.shadow.data() + off, src, len * 4);
  note(w, "s%d h2d-%s %s", S, pinned ? "pinned" : "pageable", range(b, off, len).c_str());
  touch_w(w, b);
}

void read_to_host(Worker& w, int S, Buf& b, std::uint64_t off, std::uint64_t len, bool pinned) {
  before_read(w, S, b);
  CUstream st = w.s[std::size_t(S)];
  note(w, "s%d d2h-%s %s", S, pinned ? "pinned" : "pageable", range(b, off, len).c_str());
  touch(w, b);
  if (pinned) {
    Slot& sl = take_slot(w);
    CK(&w, cuMemcpyDtoHAsync_v2(sl.host, b.ptr + off * 4, len * 4, st));
    CK(&w, cuEventRecord(sl.done, st));
    sl.busy = true;
    sl.check = true;
    sl.buf_id = b.id;
    sl.op = w.op_index;
    sl.offset = off;
    sl.expect.assign(b.shadow.begin() + std::ptrdiff_t(off), b.shadow.begin() + std::ptrdiff_t(off + len));
    after_read(S, b, issued(w, S));
    if (w.rng.chance(0.25)) finish_slot(w, sl);  // sometimes at once, mostly later
  } else {
    if (w.pageable.size() < len) w.pageable.resize(len);
    // Into pageable memory the copy is synchronous; synchronise anyway, as a
    // program would before it looks at the bytes.
    CK(&w, cuMemcpyDtoHAsync_v2(w.pageable.data(), b.ptr + off * 4, len * 4, st));
    CK(&w, cuStreamSynchronize(st));
    after_read(S, b, issued(w, S));
    compare(w, b.id, w.op_index, "device read (pageable)", off, w.pageable.data(), b.shadow.data() + off, len);
  }
}

void initialise(Worker& w, int S, Buf& b) {
  note(w, " init:");
  if (w.rng.chance(0.5)) {
    const std::uint32_t v = random_value(w, b.fl);
    before_write(w, S, b);
    CK(&w, cuMemsetD32Async(b.ptr, v, b.words, w.s[std::size_t(S)]));
    after_write(S, b, issued(w, S));
    std::fill(b.shadow.begin(), b.shadow.end(), v);
    note(w, "memset32(0x%x)", v);
  } else {
    write_from_host(w, S, b, 0, b.words, w.rng.chance(0.5));
  }
}

Buf* pick(Worker& w, bool want_float, bool any_type, bool include_shared, const Buf* not_this = nullptr) {
  std::vector<Buf*> c;
  for (auto& b : w.bufs)
    if ((any_type || b->fl == want_float) && b.get() != not_this) c.push_back(b.get());
  if (include_shared)
    for (auto& b : g_shared)
      if ((any_type || b->fl == want_float) && b.get() != not_this) c.push_back(b.get());
  if (c.empty()) return nullptr;
  return c[w.rng.below(c.size())];
}

bool do_alloc(Worker& w, int S) {
  const std::uint64_t bytes = w.rng.chance(0.1) ? kChunk * (1 + w.rng.below(std::max<std::uint64_t>(max_alloc() / kChunk, 1)))
                                                : w.rng.log_uniform(4 * KiB, max_alloc());
  auto b = std::make_unique<Buf>();
  b->id = 1 + kSharedBuffers + w.t + g_opt.threads * w.next_id++;  // the same in every run of a seed
  b->words = std::max<std::uint64_t>(std::min(bytes, max_alloc()) / 4, 1);
  b->fl = w.rng.chance(0.3);
  b->async_alloc = g_opt.async_free != AsyncFree::none && w.rng.chance(0.4) &&
                   !(g_opt.async_free == AsyncFree::large && b->bytes() < kSmall);
  b->shadow.assign(b->words, 0);
  if (b->async_alloc) {
    CK(&w, cuMemAllocAsync(&b->ptr, b->bytes(), w.s[std::size_t(S)]));
    after_write(S, *b, issued(w, S));
  } else {
    CK(&w, cuMemAlloc_v2(&b->ptr, b->bytes()));
  }
  note(w, "s%d alloc%s b%d %" PRIu64 "B %s @0x%llx", S, b->async_alloc ? "-async" : "", b->id, b->bytes(),
       b->fl ? "f32" : "u32", static_cast<unsigned long long>(b->ptr));
  touch_w(w, *b);
  w.live_bytes += b->bytes();
  initialise(w, S, *b);
  w.bufs.push_back(std::move(b));
  return true;
}

void free_buf(Worker& w, int S, std::size_t index) {
  Buf& b = *w.bufs[index];
  touch_w(w, b);
  if (b.async_alloc) {
    before_write(w, S, b);
    CK(&w, cuMemFreeAsync(b.ptr, w.s[std::size_t(S)]));
    issued(w, S);
    note(w, "s%d free-async b%d", S, b.id);
  } else {
    CK(&w, cuMemFree_v2(b.ptr));
    note(w, "free b%d", b.id);
  }
  w.live_bytes -= b.bytes();
  w.bufs.erase(w.bufs.begin() + std::ptrdiff_t(index));
}

bool do_free(Worker& w, int S) {
  if (w.bufs.empty()) return false;
  free_buf(w, S, w.rng.below(w.bufs.size()));
  return true;
}

bool do_h2d(Worker& w, int S) {
  Buf* b = pick(w, false, true, false);
  if (!b) return false;
  std::uint64_t off, len;
  pick_range(w, *b, &off, &len);
  write_from_host(w, S, *b, off, len, w.rng.chance(0.6));
  return true;
}

bool do_d2h(Worker& w, int S) {
  Buf* b = pick(w, false, true, true);
  if (!b) return false;
  std::uint64_t off, len;
  pick_range(w, *b, &off, &len);
  read_to_host(w, S, *b, off, len, w.rng.chance(0.6));
  return true;
}

bool do_d2d(Worker& w, int S) {
  Buf* dst = pick(w, false, true, false);
  if (!dst) return false;
  // Integer bits never go into a float buffer (Note [Exact arithmetic]).
  Buf* src = dst->fl ? pick(w, true, false, true, dst) : pick(w, false, true, true, dst);
  if (!src || src->chunks() + dst->chunks() > op_limit_chunks()) return false;
  std::uint64_t len = w.rng.chance(0.3) ? std::min(src->words, dst->words) : w.rng.log_uniform(1, std::min(src->words, dst->words));
  const std::uint64_t soff = w.rng.below(src->words - len + 1), doff = w.rng.below(dst->words - len + 1);
  before_read(w, S, *src);
  before_write(w, S, *dst);
  CK(&w, cuMemcpyDtoDAsync_v2(dst->ptr + doff * 4, src->ptr + soff * 4, len * 4, w.s[std::size_t(S)]));
  const std::uint64_t q = issued(w, S);
  after_read(S, *src, q);
  after_write(S, *dst, q);
  std::memcpy(dst->shadow.data() + doff, src->shadow.data() + soff, len * 4);
  note(w, "s%d d2d %s <- %s", S, range(*dst, doff, len).c_str(), range(*src, soff, len).c_str());
  touch_w(w, *dst);
  touch(w, *src);
  return true;
}

bool do_memset(Worker& w, int S) {
  Buf* b = pick(w, false, true, false);
  if (!b) return false;
  std::uint64_t off, len;
  pick_range(w, *b, &off, &len);
  before_write(w, S, *b);
  if (!b->fl && w.rng.chance(0.3)) {
    const unsigned char v = static_cast<unsigned char>(w.rng.next());
    CK(&w, cuMemsetD8Async(b->ptr + off * 4, v, len * 4, w.s[std::size_t(S)]));
    std::fill_n(b->shadow.begin() + std::ptrdiff_t(off), len, std::uint32_t(v) * 0x01010101u);
    note(w, "s%d memset8(0x%x) %s", S, v, range(*b, off, len).c_str());
  } else {
    const std::uint32_t v = random_value(w, b->fl);
    CK(&w, cuMemsetD32Async(b->ptr + off * 4, v, len, w.s[std::size_t(S)]));
    std::fill_n(b->shadow.begin() + std::ptrdiff_t(off), len, v);
    note(w, "s%d memset32(0x%x) %s", S, v, range(*b, off, len).c_str());
  }
  after_write(S, *b, issued(w, S));
  touch_w(w, *b);
  return true;
}

bool do_transform(Worker& w, int S) {
  Buf* b = pick(w, false, false, false);
  if (!b || b->chunks() > op_limit_chunks()) return false;
  // From the start, or from a pointer inside the buffer to its end (a kernel
  // does not reach below its pointer; the shim must still see the range).
  std::uint64_t off = w.rng.chance(0.7) ? 0 : w.rng.below(b->words);
  std::uint64_t n = b->words - off;
  before_write(w, S, *b);
  CUdeviceptr p = b->ptr + off * 4;
  void* params[] = {&p, &n};
  CK(&w, cuLaunchKernel(g_transform, 1, 1, 1, 1, 1, 1, 0, w.s[std::size_t(S)], params, nullptr));
  after_write(S, *b, issued(w, S));
  for (std::uint64_t i = off; i < b->words; ++i) b->shadow[i] = b->shadow[i] * 3u + 1u;
  note(w, "s%d transform %s", S, range(*b, off, n).c_str());
  touch_w(w, *b);
  return true;
}

bool do_combine(Worker& w, int S) {
  Buf* out = pick(w, false, false, false);
  if (!out) return false;
  Buf* a = w.rng.chance(0.2) ? out : pick(w, false, true, true);
  Buf* b = pick(w, false, true, true);
  if (!a || !b) return false;
  std::uint64_t chunks = out->chunks() + (a != out ? a->chunks() : 0) + (b != out && b != a ? b->chunks() : 0);
  if (chunks > op_limit_chunks()) return false;
  std::uint64_t n = std::min({out->words, a->words, b->words});
  before_read(w, S, *a);
  before_read(w, S, *b);
  before_write(w, S, *out);
  CUdeviceptr po = out->ptr, pa = a->ptr, pb = b->ptr;
  void* params[] = {&po, &pa, &pb, &n};
  CK(&w, cuLaunchKernel(g_combine, 1, 1, 1, 1, 1, 1, 0, w.s[std::size_t(S)], params, nullptr));
  const std::uint64_t q = issued(w, S);
  after_read(S, *a, q);
  after_read(S, *b, q);
  after_write(S, *out, q);
  for (std::uint64_t i = 0; i < n; ++i) out->shadow[i] = combine_word(a->shadow[i], b->shadow[i]);
  note(w, "s%d combine %s = f(b%d, b%d)", S, range(*out, 0, n).c_str(), a->id, b->id);
  touch_w(w, *out);
  touch(w, *a);
  touch(w, *b);
  return true;
}

constexpr double kExactLimit = 16777216.0;  // 2^24

bool do_saxpy(Worker& w, int S) {
  Buf* y = pick(w, true, false, false);
  if (!y) return false;
  Buf* x = pick(w, true, false, true, y);
  if (!x || x->chunks() + y->chunks() + 1 > op_limit_chunks() + 1) return false;
  const std::uint64_t maxn = std::min(x->words, y->words);
  const std::uint64_t n = w.rng.chance(0.5) ? maxn : w.rng.log_uniform(1, maxn);
  const std::uint64_t xo = w.rng.below(x->words - n + 1), yo = w.rng.below(y->words - n + 1);
  static constexpr float kAlphas[] = {1.0f, -1.0f, 2.0f, -3.0f};
  const float alpha = kAlphas[w.rng.below(4)];
  std::vector<std::uint32_t> result(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    const double v = double(alpha) * as_float(x->shadow[xo + i]) + as_float(y->shadow[yo + i]);
    if (std::fabs(v) >= kExactLimit / 4) return false;  // keep values small (Note [Exact arithmetic])
    result[i] = as_word(float(v));
  }
  before_read(w, S, *x);
  before_write(w, S, *y);
  CKB(&w, cublasSetStream_v2(w.blas, w.s[std::size_t(S)]));
  CKB(&w, cublasSaxpy_v2(w.blas, int(n), &alpha, reinterpret_cast<const float*>(x->ptr + xo * 4), 1,
                         reinterpret_cast<float*>(y->ptr + yo * 4), 1));
  const std::uint64_t q = issued(w, S);
  after_read(S, *x, q);
  after_write(S, *y, q);
  std::memcpy(y->shadow.data() + yo, result.data(), n * 4);
  note(w, "s%d saxpy %s += %g * %s", S, range(*y, yo, n).c_str(), double(alpha), range(*x, xo, n).c_str());
  touch_w(w, *y);
  touch(w, *x);
  return true;
}

bool do_gemm(Worker& w, int S) {
  Buf* c = pick(w, true, false, false);
  if (!c) return false;
  Buf* a = pick(w, true, false, true, c);
  Buf* b = w.rng.chance(0.2) ? a : pick(w, true, false, true, c);
  if (!a || !b) return false;
  const std::uint64_t chunks = c->chunks() + a->chunks() + (b != a ? b->chunks() : 0);
  if (chunks > op_limit_chunks()) return false;
  std::uint64_t m = 1 + w.rng.below(48), n = 1 + w.rng.below(48), k = 1 + w.rng.below(48);
  while (m * n > c->words) (m > n ? m : n) /= 2;
  while (m * k > a->words) (k > 1 ? k : m) /= 2;
  while (k * n > b->words) (k > 1 ? k : n) /= 2;
  m = std::max<std::uint64_t>(m, 1);
  n = std::max<std::uint64_t>(n, 1);
  k = std::max<std::uint64_t>(k, 1);
  if (m * n > c->words || m * k > a->words || k * n > b->words) return false;
  const float alpha = w.rng.chance(0.5) ? 1.0f : -1.0f;
  const float beta = w.rng.chance(0.5) ? 1.0f : 0.0f;
  std::vector<std::uint32_t> result(m * n);
  for (std::uint64_t j = 0; j < n; ++j)
    for (std::uint64_t i = 0; i < m; ++i) {
      double sum = 0, bound = 0;
      for (std::uint64_t l = 0; l < k; ++l) {
        const double p = double(as_float(a->shadow[i + l * m])) * double(as_float(b->shadow[l + j * k]));
        sum += p;
        bound += std::fabs(p);
      }
      double v = double(alpha) * sum;
      if (beta != 0.0f) {
        const double cv = as_float(c->shadow[i + j * m]);
        v += cv;
        bound += std::fabs(cv);
      }
      if (bound >= kExactLimit / 4) return false;
      result[i + j * m] = as_word(float(v));
    }
  before_read(w, S, *a);
  before_read(w, S, *b);
  before_write(w, S, *c);
  CKB(&w, cublasSetStream_v2(w.blas, w.s[std::size_t(S)]));
  CKB(&w, cublasSgemm_v2(w.blas, CUBLAS_OP_N, CUBLAS_OP_N, int(m), int(n), int(k), &alpha,
                         reinterpret_cast<const float*>(a->ptr), int(m), reinterpret_cast<const float*>(b->ptr), int(k),
                         &beta, reinterpret_cast<float*>(c->ptr), int(m)));
  const std::uint64_t q = issued(w, S);
  after_read(S, *a, q);
  after_read(S, *b, q);
  after_write(S, *c, q);
  std::memcpy(c->shadow.data(), result.data(), m * n * 4);
  note(w, "s%d gemm b%d[%" PRIu64 "x%" PRIu64 "] = %g * b%d x b%d (k %" PRIu64 ") + %g * C", S, c->id, m, n,
       double(alpha), a->id, b->id, k, double(beta));
  touch_w(w, *c);
  touch(w, *a);
  touch(w, *b);
  return true;
}

bool do_sync(Worker& w, int S) {
  if (w.rng.chance(0.5)) {
    CK(&w, cuStreamSynchronize(w.s[std::size_t(S)]));
    note(w, "s%d stream-sync", S);
  } else {
    const int slot = int(w.rng.below(kSlots));
    finish_slot(w, w.slots[std::size_t(slot)]);
    note(w, "slot-sync %d", slot);
  }
  return true;
}

int choose_op(Worker& w) {
  const double fill = double(w.live_bytes) / double(std::max<std::uint64_t>(w.target, 1));
  double weight[kOpCount] = {};
  weight[kAlloc] = fill < 0.5 ? 40 : fill < 1.0 ? 8 : 0;
  weight[kFree] = w.bufs.empty() ? 0 : fill > 1.0 ? 30 : fill > 0.6 ? 6 : 1;
  weight[kH2D] = 12;
  weight[kD2H] = 12;
  weight[kD2D] = 10;
  weight[kMemset] = 8;
  weight[kTransform] = 10;
  weight[kCombine] = 8;
  weight[kSaxpy] = 6;
  weight[kGemm] = 4;
  weight[kSync] = 2;
  double total = 0;
  for (double x : weight) total += x;
  double r = double(w.rng.next() >> 11) * 0x1.0p-53 * total;
  for (int i = 0; i < kOpCount; ++i) {
    if (r < weight[i]) return i;
    r -= weight[i];
  }
  return kSync;
}

bool run_op(Worker& w, int op, int S) {
  switch (op) {
    case kAlloc: return do_alloc(w, S);
    case kFree: return do_free(w, S);
    case kH2D: return do_h2d(w, S);
    case kD2H: return do_d2h(w, S);
    case kD2D: return do_d2d(w, S);
    case kMemset: return do_memset(w, S);
    case kTransform: return do_transform(w, S);
    case kCombine: return do_combine(w, S);
    case kSaxpy: return do_saxpy(w, S);
    case kGemm: return do_gemm(w, S);
    default: return do_sync(w, S);
  }
}

void commit_line(Worker& w) {
  char prefix[32];
  std::snprintf(prefix, sizeof prefix, "%" PRIu64 ": ", w.op_index);
  std::string full = prefix + w.line;
  w.recent.add(full);
  if (g_opt.verbose) std::fprintf(stderr, "t%d %s\n", w.t, full.c_str());
  w.log.push_back(std::move(full));
  w.log_bufs.push_back(std::move(w.line_bufs));
  w.line.clear();
  w.line_bufs.clear();
}

void worker_main(Worker& w) {
  CK(&w, cuCtxSetCurrent(g_ctx));
  for (auto& st : w.s) CK(&w, cuStreamCreate(&st, CU_STREAM_NON_BLOCKING));
  for (auto& e : w.events) CK(&w, cuEventCreate(&e, CU_EVENT_DISABLE_TIMING));
  for (auto& sl : w.slots) {
    void* p = nullptr;
    CK(&w, cuMemHostAlloc(&p, max_alloc(), 0));
    sl.host = static_cast<std::uint32_t*>(p);
    CK(&w, cuEventCreate(&sl.done, CU_EVENT_DISABLE_TIMING));
  }
  CKB(&w, cublasCreate_v2(&w.blas));

  for (w.op_index = 0; w.op_index < w.ops && !g_failed.load(std::memory_order_relaxed); ++w.op_index) {
    const int S = int(w.rng.below(kStreams));
    int op = choose_op(w);
    // An op that does not fit (no buffer of the right type, too many chunks,
    // values that would stop being exact) is replaced by a read.
    bool done = false;
    for (int attempt = 0; attempt < 4 && !done; ++attempt) {
      w.line.clear();
      w.line_bufs.clear();
      done = run_op(w, op, S);
      if (!done) op = attempt < 2 ? choose_op(w) : (w.bufs.empty() ? kAlloc : kD2H);
    }
    if (!done) {
      w.line.clear();
      note(w, "skip");
    }
    ++w.op_counts[std::size_t(op)];
    commit_line(w);
  }

  // Drain: every pending read, then every live buffer read back and checked.
  for (auto& sl : w.slots) finish_slot(w, sl);
  for (auto& st : w.s) CK(&w, cuStreamSynchronize(st));
  for (auto& bp : w.bufs) {
    Buf& b = *bp;
    w.line.clear();
    w.line_bufs.clear();
    read_to_host(w, 0, b, 0, b.words, false);
    commit_line(w);
    ++w.op_index;
  }
  while (!w.bufs.empty()) {
    w.line.clear();
    w.line_bufs.clear();
    free_buf(w, int(w.rng.below(kStreams)), w.bufs.size() - 1);
    commit_line(w);
    ++w.op_index;
  }
  for (auto& st : w.s) CK(&w, cuStreamSynchronize(st));
  CKB(&w, cublasDestroy_v2(w.blas));
  for (auto& sl : w.slots) {
    CK(&w, cuMemFreeHost(sl.host));
    CK(&w, cuEventDestroy_v2(sl.done));
  }
  for (auto& e : w.events) CK(&w, cuEventDestroy_v2(e));
  for (auto& st : w.s) CK(&w, cuStreamDestroy_v2(st));
}

std::uint64_t parse_u64(const char* flag, const char* s) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 0);
  std::uint64_t mult = 1;
  if (end && *end) {
    const std::string suffix = end;
    if (suffix == "KiB" || suffix == "K") mult = KiB;
    else if (suffix == "MiB" || suffix == "M") mult = MiB;
    else if (suffix == "GiB" || suffix == "G") mult = 1024 * MiB;
    else end = nullptr;
  }
  if (end == nullptr || end == s || errno != 0) {
    std::fprintf(stderr, "stress: %s takes a number (bytes may end in KiB, MiB or GiB), not '%s'\n", flag, s);
    std::exit(2);
  }
  return std::uint64_t(v) * mult;
}

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: stress [--seed N] [--ops N] [--threads N] [--footprint BYTES] [--max-alloc BYTES] "
               "[--op-limit BYTES] [--async-free all|large|none] [--verbose]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--seed") g_opt.seed = parse_u64("--seed", value());
    else if (a == "--ops") g_opt.ops = parse_u64("--ops", value());
    else if (a == "--threads") g_opt.threads = int(parse_u64("--threads", value()));
    else if (a == "--footprint") g_opt.footprint = parse_u64("--footprint", value());
    else if (a == "--max-alloc") g_opt.max_alloc = parse_u64("--max-alloc", value());
    else if (a == "--op-limit") g_opt.op_limit = parse_u64("--op-limit", value());
    else if (a == "--async-free") {
      const std::string m = value();
      if (m == "all") g_opt.async_free = AsyncFree::all;
      else if (m == "large") g_opt.async_free = AsyncFree::large;
      else if (m == "none") g_opt.async_free = AsyncFree::none;
      else usage();
    } else if (a == "--verbose") g_opt.verbose = true;
    else usage();
  }
  if (g_opt.threads < 1 || g_opt.threads > 64 || g_opt.footprint < 4 * MiB || (g_opt.max_alloc && g_opt.max_alloc < 4 * KiB))
    usage();
  signal(SIGSEGV, on_signal);
  signal(SIGBUS, on_signal);
  signal(SIGABRT, on_signal);
  const auto start = std::chrono::steady_clock::now();

  CK(nullptr, cuInit(0));
  CUdevice dev = 0;
  CK(nullptr, cuDeviceGet(&dev, 0));
  CK(nullptr, cuDevicePrimaryCtxRetain(&g_ctx, dev));
  CK(nullptr, cuCtxSetCurrent(g_ctx));
  CK(nullptr, cuModuleLoadData(&g_module, &kImage));
  CK(nullptr, cuModuleGetFunction(&g_transform, g_module, "stress_transform_u32"));
  CK(nullptr, cuModuleGetFunction(&g_combine, g_module, "stress_combine_u32"));

  // Shared read-only buffers: written once, synchronised, then only read.
  Rng shared_rng(g_opt.seed * 0x9e3779b97f4a7c15ull + 0x5eed);
  const std::uint64_t shared_total = g_opt.footprint / 16;
  for (int i = 0; i < kSharedBuffers; ++i) {
    auto b = std::make_unique<Buf>();
    b->id = i + 1;
    b->shared = true;
    b->fl = i % 2 == 1;
    b->words = std::max<std::uint64_t>(std::min(shared_rng.log_uniform(4 * KiB, shared_total / kSharedBuffers), max_alloc()) / 4, 1);
    b->shadow.resize(b->words);
    for (auto& x : b->shadow)
      x = b->fl ? as_word(float(std::int64_t(shared_rng.below(9)) - 4)) : std::uint32_t(shared_rng.next());
    CK(nullptr, cuMemAlloc_v2(&b->ptr, b->bytes()));
    CK(nullptr, cuMemcpyHtoD_v2(b->ptr, b->shadow.data(), b->bytes()));
    g_shared.push_back(std::move(b));
  }
  CK(nullptr, cuCtxSynchronize());

  std::vector<std::unique_ptr<Worker>> workers;
  const std::uint64_t per_thread_target = (g_opt.footprint - shared_total) / std::uint64_t(g_opt.threads);
  for (int t = 0; t < g_opt.threads; ++t) {
    auto w = std::make_unique<Worker>(t, g_opt.seed * 1000003ull + std::uint64_t(t) * 7919ull + 1);
    w->ops = g_opt.ops / std::uint64_t(g_opt.threads) + (std::uint64_t(t) < g_opt.ops % std::uint64_t(g_opt.threads) ? 1 : 0);
    w->target = per_thread_target;
    workers.push_back(std::move(w));
  }
  for (auto& w : workers) g_workers.push_back(w.get());
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { worker_main(*w); });
  for (auto& th : threads) th.join();

  CK(nullptr, cuCtxSynchronize());
  std::vector<std::uint32_t> got;
  for (auto& b : g_shared) {
    got.resize(b->words);
    CK(nullptr, cuMemcpyDtoH_v2(got.data(), b->ptr, b->bytes()));
    for (std::uint64_t i = 0; i < b->words; ++i)
      if (got[i] != b->shadow[i])
        fail(nullptr, b->id, "shared buffer b%d differs at word %" PRIu64 ": expected 0x%08x, got 0x%08x", b->id, i,
             b->shadow[i], got[i]);
    CK(nullptr, cuMemFree_v2(b->ptr));
  }

  std::uint64_t checks = 0, bytes = 0;
  std::array<std::uint64_t, 16> counts{};
  for (auto& w : workers) {
    checks += w->checks;
    bytes += w->checked_bytes;
    for (std::size_t i = 0; i < counts.size(); ++i) counts[i] += w->op_counts[i];
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string mix;
  for (int i = 0; i < kOpCount; ++i) mix += std::string(i ? " " : "") + kOpNames[i] + "=" + std::to_string(counts[std::size_t(i)]);
  std::printf("PASS seed %" PRIu64 ": %" PRIu64 " ops on %d threads, footprint %" PRIu64 " MiB, %" PRIu64
              " reads checked (%.1f MiB), %.2f s\n  %s\n",
              g_opt.seed, g_opt.ops, g_opt.threads, g_opt.footprint >> 20, checks, double(bytes) / double(MiB), secs,
              mix.c_str());
  return 0;
}
