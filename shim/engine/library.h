// Library ops (cuBLAS, cuDNN): the hook computes the exact ranges from the
// call's arguments, then the engine records the op and runs the real call
// inside a LibraryScope, so the library's own kernel launches are not
// recorded a second time.
#pragma once

#include <cstdint>

#include "ops.h"

namespace oversub {

// Bytes spanned by `count` elements `stride` elements apart: (count-1)*stride+1.
inline std::uint64_t strided_bytes(std::int64_t count, std::int64_t stride, std::uint64_t element_bytes) {
  if (count <= 0) return 0;
  const std::uint64_t s = static_cast<std::uint64_t>(stride < 0 ? -stride : stride);
  return ((static_cast<std::uint64_t>(count) - 1) * (s == 0 ? 1 : s) + 1) * element_bytes;
}

// Bytes of a column-major rows x cols matrix with leading dimension ld.
inline std::uint64_t matrix_bytes(std::int64_t rows, std::int64_t cols, std::int64_t ld, std::uint64_t element_bytes) {
  if (rows <= 0 || cols <= 0) return 0;
  return (static_cast<std::uint64_t>(ld) * static_cast<std::uint64_t>(cols - 1) + static_cast<std::uint64_t>(rows)) *
         element_bytes;
}

inline void add_range(RangeList& ranges, const void* pointer, std::uint64_t bytes, Access access) {
  if (pointer != nullptr) add_exact_range(ranges, reinterpret_cast<std::uint64_t>(pointer), bytes, access);
}

// The library's own kernel launches then happen inside a LibraryScope: they
// are not recorded again, but in swap mode they still make what they touch
// resident (a library's internal buffers are ours to move too).
template <typename Status, typename Forward>
Status library_call(OpKind kind, std::uint32_t name, CUstream stream, const RangeList& ranges, Status not_resident,
                    Forward&& forward) {
  if (thread_state().library_depth == 0) record_op(kind, name, stream, ranges);
  Residency* r = Residency::get();
  if (r == nullptr) {
    LibraryScope scope;
    return forward();
  }
  std::lock_guard lock(r->lock());
  r->learn_extents(ranges);
  if (r->prepare(ranges, stream) != CUDA_SUCCESS) return not_resident;
  LibraryScope scope;
  return forward();
}

}  // namespace oversub
