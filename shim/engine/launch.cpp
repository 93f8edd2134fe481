// Launch family: which device memory a kernel launch can touch.
//
// Note [Parameter scanning]
// A kernel's parameters arrive as `kernelParams` (one pointer per parameter)
// or as one packed buffer in `extra` (CU_LAUNCH_PARAM_BUFFER_POINTER). The
// driver tells us each parameter's offset and size (cuFuncGetParamInfo, CUDA
// 12.4+; there is no count, so we ask until it fails). We then read every
// 8-byte-aligned word of every parameter of 8 bytes or more and look it up in
// the AddressMap. That catches plain pointers and pointers inside structs
// passed by value (PyTorch's multi-tensor-apply lists, TensorIterator
// offsets). A word that happens to equal a device address is a false
// positive: it costs a needless residency check, never correctness.
// Pointers stored in device memory are invisible here; library hooks cover
// the known cases (batched GEMM pointer arrays).
// A kernel may use any byte of an allocation it has a pointer into, so the
// op's range is the whole allocation, read-write: we cannot tell reads from
// writes inside a kernel.
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "../log.h"
#include "engine.h"
#include "residency.h"

namespace oversub {
namespace {

// Where a pointer can sit in the parameter block: one entry per 8-byte-aligned
// word of every parameter of 8 bytes or more, precomputed once per kernel so
// that a launch only walks this list.
struct PointerWord {
  std::uint16_t param;        // index into kernelParams
  std::uint16_t offset;       // byte offset of the word inside that parameter
  std::uint32_t block_offset; // byte offset of the word in the packed block (extra)
};

struct KernelInfo {
  std::vector<std::pair<std::uint32_t, std::uint32_t>> params;  // offset, size in bytes
  std::vector<PointerWord> words;
  std::uint32_t param_bytes = 0;
  std::uint32_t name = trace::no_name;
  bool layout_known = false;
};

struct KernelCatalog {
  std::mutex mutex;
  std::unordered_map<CUfunction, KernelInfo*> kernels;  // entries live for the process
};

KernelCatalog& catalog() {
  static KernelCatalog* c = new KernelCatalog;
  return *c;
}

KernelInfo* describe(CUfunction f) {
  const RealDriver& r = real_driver();
  auto* info = new KernelInfo;
  auto ask = [&](std::size_t i, std::size_t* offset, std::size_t* size) {
    if (r.cuFuncGetParamInfo && r.cuFuncGetParamInfo(f, i, offset, size) == CUDA_SUCCESS) return true;
    // The runtime may hand us a CUkernel cast to CUfunction (CUDA 12+).
    return r.cuKernelGetParamInfo &&
           r.cuKernelGetParamInfo(reinterpret_cast<CUkernel>(f), i, offset, size) == CUDA_SUCCESS;
  };
  std::size_t offset = 0, size = 0;
  for (std::size_t i = 0; i < 4096 && ask(i, &offset, &size); ++i) {
    info->params.emplace_back(static_cast<std::uint32_t>(offset), static_cast<std::uint32_t>(size));
    info->param_bytes = std::max(info->param_bytes, static_cast<std::uint32_t>(offset + size));
  }
  info->layout_known = !info->params.empty() || (r.cuFuncGetParamInfo != nullptr);
  for (std::size_t i = 0; i < info->params.size() && i < 65536; ++i) {
    auto [param_offset, param_size] = info->params[i];
    if (param_size < 8) continue;
    // Absolute offsets that are multiples of 8: pointers in a struct are
    // 8-aligned, and so is a struct that holds one.
    for (std::uint32_t at = (param_offset + 7) & ~7u; at + 8 <= param_offset + param_size && at - param_offset < 65536;
         at += 8)
      info->words.push_back(PointerWord{static_cast<std::uint16_t>(i), static_cast<std::uint16_t>(at - param_offset), at});
  }
  const char* name = nullptr;
  if (r.cuFuncGetName && r.cuFuncGetName(&name, f) == CUDA_SUCCESS && name != nullptr) info->name = intern_name(name);
  else info->name = intern_name("kernel");
  return info;
}

// Cost: a direct-mapped per-thread cache hit is one compare; a miss takes the
// catalog mutex once per (thread, function) and asks the driver on first sight.
const KernelInfo* kernel_info(CUfunction f) {
  struct CacheEntry {
    CUfunction function = nullptr;
    const KernelInfo* info = nullptr;
  };
  thread_local CacheEntry cache[64] __attribute__((tls_model("initial-exec")));
  CacheEntry& e = cache[(reinterpret_cast<std::uintptr_t>(f) >> 4) & 63];
  if (e.function == f) return e.info;
  KernelCatalog& c = catalog();
  std::lock_guard lock(c.mutex);
  KernelInfo*& info = c.kernels[f];
  if (info == nullptr) info = describe(f);
  e = CacheEntry{f, info};
  return info;
}


// Appends the range for each word that points into a tracked allocation.
// Cost: per word, a load of the word, a range check and the page-table walk
// (Note [Address lookup on the hot path]), and a compare against the record
// appended last; no lock, no allocation, no driver call. Consecutive words
// naming the same allocation (a tensor passed twice, a struct of pointers into
// one buffer) add one range.
template <typename WordAt>
void scan(const KernelInfo* info, const AddressMap& map, Residency* residency, RangeList& ranges, WordAt&& word_at,
          std::size_t limit_bytes) {
  const AddressMap::View view = map.view();
  Range* out = ranges.raw();
  std::size_t n = ranges.size();
  const Allocation* last = nullptr;  // the record whose whole range was appended last
  for (const PointerWord& w : info->words) {
    if (w.block_offset + 8 > limit_bytes) break;
    const std::uint64_t word = word_at(w);
    const Allocation* a = map.lookup_in(view, word);
    if (a == nullptr || a == last) continue;
    if (n == RangeList::kCapacity) break;
    if (residency != nullptr && a->bytes > kSegmentBytes) [[unlikely]] {
      // Inside a large pooled segment, swap mode narrows the range (Note
      // [Ranges inside a segment] in residency.cpp).
      const Residency::Span s = residency->narrow_kernel_range(word, *a);
      last = nullptr;
      if (n > 0 && out[n - 1].address == s.start && out[n - 1].bytes == s.bytes) continue;
      out[n++] = Range{s.start, s.bytes, Access::read_write};
      continue;
    }
    out[n++] = Range{a->base, a->bytes, Access::read_write};
    last = a;
  }
  ranges.set_size(n);
}

}  // namespace

void observe_launch(CUfunction f, CUstream stream, void** params, void** extra, RangeList& ranges, bool record) {
  const KernelInfo* info = kernel_info(f);
  const AddressMap& map = address_map();
  Residency* residency = Residency::get();
  if (params != nullptr) {
    scan(info, map, residency, ranges,
         [params](const PointerWord& w) {
           std::uint64_t word;
           __builtin_memcpy(&word, static_cast<const unsigned char*>(params[w.param]) + w.offset, 8);
           return word;
         },
         SIZE_MAX);
  } else if (extra != nullptr) {
    const unsigned char* buffer = nullptr;
    std::size_t buffer_bytes = 0;
    for (void** e = extra; *e != CU_LAUNCH_PARAM_END; e += 2) {
      if (*e == CU_LAUNCH_PARAM_BUFFER_POINTER) buffer = static_cast<const unsigned char*>(e[1]);
      else if (*e == CU_LAUNCH_PARAM_BUFFER_SIZE) buffer_bytes = *static_cast<std::size_t*>(e[1]);
      else break;  // malformed: let the driver reject it
    }
    if (buffer != nullptr) {
      const KernelInfo* layout = info;
      KernelInfo every_word;  // no layout: every aligned word of the buffer (cold path)
      if (!info->layout_known || info->params.empty()) {
        for (std::uint32_t at = 0; at + 8 <= buffer_bytes; at += 8) every_word.words.push_back(PointerWord{0, 0, at});
        layout = &every_word;
      }
      scan(layout, map, residency, ranges,
           [buffer](const PointerWord& w) {
             std::uint64_t word;
             __builtin_memcpy(&word, buffer + w.block_offset, 8);
             return word;
           },
           buffer_bytes);
    }
  }
  if (record) record_op(OpKind::kernel, info->name, stream, ranges);
}

}  // namespace oversub
