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
//    as framework caching allocators do. Results are the same bits either way.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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
      if (!pool_) cudaFree(p);
    for (Segment& s : segments_) cudaFree(s.base);
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
