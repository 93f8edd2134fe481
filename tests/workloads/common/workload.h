// Shared pieces of the reference training programs (cnn_train, gpt_train).
// Written only against the public CUDA runtime API, so the programs train on a
// real GPU exactly as on the simulated one.
//
// Conventions both programs follow (issue "Simulated cuBLAS and cuDNN, and two
// reference training programs"):
//  - one line `step N loss X` per step, then `peak_device_bytes N`, then
//    `checksum HEX` (FNV-1a over every parameter's bytes);
//  - `--allocator direct|pool`: one cudaMalloc per tensor, or tensors
//    sub-allocated inside 2 MiB segments (small) and >= 20 MiB segments (rest),
//    as framework caching allocators do. Results are the same bits either way;
//  - with WORKLOAD_MANIFEST=PATH in the environment, a manifest of the memory the program
//    knows it used (Note [Workload manifest]). stdout does not change.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <map>
#include <string>
#include <vector>

namespace workload {

#define WL_CUDA(expr)                                                                         \
  do {                                                                                        \
    cudaError_t wl_err_ = (expr);                                                             \
    if (wl_err_ != cudaSuccess) {                                                             \
      std::fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr,               \
                   cudaGetErrorString(wl_err_));                                              \
      std::exit(1);                                                                           \
    }                                                                                         \
  } while (0)

// ---- command line ----

// Flags are `--name value`. Unknown flags, missing values and non-numbers get
// the usage line and exit status 2.
class Args {
 public:
  Args(int argc, char** argv, std::string usage, std::map<std::string, std::string> defaults)
      : usage_(std::move(usage)), values_(std::move(defaults)) {
    for (int i = 1; i < argc; ++i) {
      std::string flag = argv[i];
      if (flag == "--help" || flag == "-h") {
        std::printf("usage: %s\n", usage_.c_str());
        std::exit(0);
      }
      if (flag.rfind("--", 0) != 0 || values_.count(flag.substr(2)) == 0 || i + 1 >= argc) fail(flag);
      values_[flag.substr(2)] = argv[++i];
    }
  }
  long integer(const std::string& name, long min_value) const {
    const std::string& text = values_.at(name);
    char* end = nullptr;
    long v = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || v < min_value) fail("--" + name + " " + text);
    return v;
  }
  std::string text(const std::string& name) const { return values_.at(name); }
  // The value of `name`, which must be one of `accepted`.
  std::string choice(const std::string& name, std::initializer_list<const char*> accepted) const {
    const std::string& value = values_.at(name);
    for (const char* a : accepted)
      if (value == a) return value;
    fail("--" + name + " " + value);
  }
  [[noreturn]] void fail(const std::string& what) const {
    std::fprintf(stderr, "invalid argument '%s'\nusage: %s\n", what.c_str(), usage_.c_str());
    std::exit(2);
  }

 private:
  std::string usage_;
  std::map<std::string, std::string> values_;
};

// ---- deterministic data ----

struct Rng {
  std::uint64_t state;
  explicit Rng(std::uint64_t seed) : state(seed) {}
  std::uint64_t next() {  // splitmix64
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform() { return static_cast<float>(next() >> 40) / static_cast<float>(1 << 24); }  // [0, 1)
  float symmetric(float scale) { return (uniform() * 2.0f - 1.0f) * scale; }
};

// ---- manifest ----

// Note [Workload manifest]
// With WORKLOAD_MANIFEST=PATH set, a workload writes to PATH what it knows about its own use
// of device memory, so a test can hold an interposer's trace (docs/trace-format.md) against
// the truth. One line per event, in program order, numbers in lowercase hex without 0x:
//   alloc ADDRESS BYTES        a cudaMalloc the program made (the bytes it asked for)
//   free ADDRESS               a cudaFree the program made
//   op NAME RANGE...           a library call or kernel launch, each RANGE being
//                              ADDRESS:BYTES:ACCESS (ACCESS r, w or rw), exactly the memory
//                              the call reads and writes
// NAME is the exported symbol for a library call (cublasSgemm_v2, cudnnConvolutionForward)
// and the kernel's unmangled name for a launch (adam_multi_tensor). Only a selection of
// calls is recorded: each program says which; within it, every call of a recorded name is.
// Unset, the manifest costs one well-predicted branch per event: callers that would build
// a range list first ask enabled().
enum class Access { r, w, rw };
struct Range {
  const void* address;
  std::size_t bytes;
  Access access;
};

class Manifest {
 public:
  Manifest() {
    const char* path = std::getenv("WORKLOAD_MANIFEST");
    if (path == nullptr || path[0] == '\0') return;
    file_ = std::fopen(path, "w");
    if (file_ == nullptr) {
      std::fprintf(stderr, "WORKLOAD_MANIFEST: cannot open '%s' for writing\n", path);
      std::exit(1);
    }
  }
  ~Manifest() {
    if (file_ != nullptr) std::fclose(file_);
  }
  Manifest(const Manifest&) = delete;
  Manifest& operator=(const Manifest&) = delete;

  bool enabled() const { return file_ != nullptr; }
  void alloc(const void* address, std::size_t bytes) {
    if (file_ != nullptr) std::fprintf(file_, "alloc %" PRIxPTR " %zx\n", as_int(address), bytes);
  }
  void free(const void* address) {
    if (file_ != nullptr) std::fprintf(file_, "free %" PRIxPTR "\n", as_int(address));
  }
  void op(const char* name, const std::vector<Range>& ranges) {
    if (file_ == nullptr) return;
    std::fprintf(file_, "op %s", name);
    for (const Range& r : ranges)
      std::fprintf(file_, " %" PRIxPTR ":%zx:%s", as_int(r.address), r.bytes,
                   r.access == Access::r ? "r" : r.access == Access::w ? "w" : "rw");
    std::fputc('\n', file_);
  }

 private:
  static std::uintptr_t as_int(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }
  std::FILE* file_ = nullptr;
};

// The process's manifest, opened on first use and closed at exit (after main's locals,
// such as the DeviceAllocator, have recorded their last frees).
inline Manifest& manifest() {
  static Manifest instance;
  return instance;
}

// The bytes a column-major fp32 matrix of rows × cols with leading dimension ld spans:
// ld·(cols − 1) + rows elements from its first one, as BLAS reads or writes them.
inline Range matrix_range(const float* first, long rows, long cols, long ld, Access access) {
  return Range{first, static_cast<std::size_t>(ld * (cols - 1) + rows) * sizeof(float), access};
}

// Appends to `out` the three ranges of a column-major SGEMM C = alpha·op(A)·op(B) + beta·C
// (C is m × n, the inner dimension k): A and B are read; C is written, and read too unless
// beta is 0 (BLAS does not read C then).
inline void add_gemm_ranges(std::vector<Range>& out, bool trans_a, bool trans_b, long m, long n, long k,
                            const float* a, long lda, const float* b, long ldb, float beta, const float* c, long ldc) {
  out.push_back(matrix_range(a, trans_a ? k : m, trans_a ? m : k, lda, Access::r));
  out.push_back(matrix_range(b, trans_b ? n : k, trans_b ? k : n, ldb, Access::r));
  out.push_back(matrix_range(c, m, n, ldc, beta == 0.0f ? Access::w : Access::rw));
}

// ---- device memory ----

// Note [Workload allocators]
// `direct` is PyTorch with PYTORCH_NO_CUDA_MEMORY_CACHING=1: one cudaMalloc per
// tensor, freed with cudaFree. `pool` is a caching allocator: tensors of at most
// 1 MiB share 2 MiB segments, larger ones are carved from segments of at least
// 20 MiB; freed blocks are reused (first fit, coalescing) and segments are
// never returned. Every block is 512-byte aligned either way, so kernels see
// the same alignment and compute the same bits.
class DeviceAllocator {
 public:
  explicit DeviceAllocator(const std::string& mode) : pool_(mode == "pool") {
    if (mode != "pool" && mode != "direct") {
      std::fprintf(stderr, "invalid --allocator '%s': expected direct or pool\n", mode.c_str());
      std::exit(2);
    }
  }
  DeviceAllocator(const DeviceAllocator&) = delete;
  DeviceAllocator& operator=(const DeviceAllocator&) = delete;

  void* alloc(std::size_t bytes) {
    bytes = round_up(bytes == 0 ? 1 : bytes, 512);
    void* p = pool_ ? pool_alloc(bytes) : direct_alloc(bytes);
    live_[p] = bytes;
    return p;
  }
  template <typename T>
  T* alloc_array(std::size_t count) { return static_cast<T*>(alloc(count * sizeof(T))); }

  void free(void* p) {
    if (p == nullptr) return;
    auto it = live_.find(p);
    if (it == live_.end()) {
      std::fprintf(stderr, "DeviceAllocator: free of unknown pointer %p\n", p);
      std::exit(1);
    }
    std::size_t bytes = it->second;
    live_.erase(it);
    if (!pool_) {
      WL_CUDA(cudaFree(p));
      manifest().free(p);
      device_bytes_ -= bytes;
      return;
    }
    for (Segment& s : segments_) {
      auto base = reinterpret_cast<std::uintptr_t>(s.base), at = reinterpret_cast<std::uintptr_t>(p);
      if (at < base || at >= base + s.bytes) continue;
      release_block(s, at - base, bytes);
      return;
    }
  }
  // Bytes this program holds from cudaMalloc right now, and at most so far.
  std::size_t device_bytes() const { return device_bytes_; }
  std::size_t peak_device_bytes() const { return peak_bytes_; }

  ~DeviceAllocator() {
    for (auto& [p, bytes] : live_)
      if (!pool_ && cudaFree(p) == cudaSuccess) manifest().free(p);
    for (Segment& s : segments_)
      if (cudaFree(s.base) == cudaSuccess) manifest().free(s.base);
  }

 private:
  struct Segment {
    void* base;
    std::size_t bytes;
    std::map<std::size_t, std::size_t> free_blocks;  // offset -> bytes
  };
  static std::size_t round_up(std::size_t v, std::size_t a) { return (v + a - 1) / a * a; }

  void* cuda_malloc(std::size_t bytes) {
    void* p = nullptr;
    WL_CUDA(cudaMalloc(&p, bytes));
    manifest().alloc(p, bytes);
    device_bytes_ += bytes;
    if (device_bytes_ > peak_bytes_) peak_bytes_ = device_bytes_;
    return p;
  }
  void* direct_alloc(std::size_t bytes) { return cuda_malloc(bytes); }

  void* pool_alloc(std::size_t bytes) {
    const bool small = bytes <= (std::size_t{1} << 20);
    for (Segment& s : segments_) {
      if ((s.bytes == kSmallSegment) != small) continue;
      if (void* p = take_block(s, bytes)) return p;
    }
    std::size_t seg_bytes = small ? kSmallSegment : std::max(kLargeSegment, round_up(bytes, std::size_t{2} << 20));
    segments_.push_back(Segment{cuda_malloc(seg_bytes), seg_bytes, {{0, seg_bytes}}});
    return take_block(segments_.back(), bytes);
  }
  static void* take_block(Segment& s, std::size_t bytes) {
    for (auto it = s.free_blocks.begin(); it != s.free_blocks.end(); ++it) {
      if (it->second < bytes) continue;
      std::size_t offset = it->first, left = it->second - bytes;
      s.free_blocks.erase(it);
      if (left > 0) s.free_blocks[offset + bytes] = left;
      return static_cast<char*>(s.base) + offset;
    }
    return nullptr;
  }
  static void release_block(Segment& s, std::size_t offset, std::size_t bytes) {
    auto it = s.free_blocks.emplace(offset, bytes).first;
    auto next = std::next(it);
    if (next != s.free_blocks.end() && offset + bytes == next->first) {
      it->second += next->second;
      s.free_blocks.erase(next);
    }
    if (it != s.free_blocks.begin()) {
      auto prev = std::prev(it);
      if (prev->first + prev->second == it->first) {
        prev->second += it->second;
        s.free_blocks.erase(it);
      }
    }
  }

  static constexpr std::size_t kSmallSegment = std::size_t{2} << 20;
  static constexpr std::size_t kLargeSegment = std::size_t{20} << 20;
  bool pool_;
  std::vector<Segment> segments_;
  std::map<void*, std::size_t> live_;
  std::size_t device_bytes_ = 0;
  std::size_t peak_bytes_ = 0;
};

// ---- output ----

// FNV-1a over the bytes of each parameter tensor, in the order given.
class Checksum {
 public:
  void add_device(const void* device, std::size_t bytes) {
    std::vector<unsigned char> host(bytes);
    WL_CUDA(cudaMemcpy(host.data(), device, bytes, cudaMemcpyDeviceToHost));
    for (unsigned char b : host) hash_ = (hash_ ^ b) * 0x100000001B3ull;
  }
  std::uint64_t value() const { return hash_; }

 private:
  std::uint64_t hash_ = 0xCBF29CE484222325ull;
};

inline void print_step(long step, float loss) { std::printf("step %ld loss %.6f\n", step, static_cast<double>(loss)); }
inline void print_footer(const DeviceAllocator& allocator, const Checksum& checksum) {
  std::printf("peak_device_bytes %zu\n", allocator.peak_device_bytes());
  std::printf("checksum %016" PRIx64 "\n", checksum.value());
}

}  // namespace workload
