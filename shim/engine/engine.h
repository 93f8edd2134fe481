// The engine: everything the hooks forward to (CONVENTIONS 1).
//
// A hook does three things: enter the shim (ShimScope), call the engine
// function for its family with a callable that performs the real call, and
// return. In passthrough mode the engine watches: it resolves the device
// ranges an op touches, records allocations, ops and sync points, and calls
// the real function unchanged. The residency engine (swap mode) will act on
// the same information through the same functions.
#pragma once

#include <cuda.h>

#include <cstdint>
#include <string_view>

#include "address_map.h"
#include "tracer/format.h"

// cuda.h maps cuGetProcAddress onto cuGetProcAddress_v2; the shim intercepts
// both exported symbols, so it needs the old name as itself.
#undef cuGetProcAddress
// The pre-12.0 signature of cuGetProcAddress (no symbolStatus).
using OversubGetProcAddressV1 = CUresult(const char*, void**, int, cuuint64_t);

namespace oversub {

using trace::Access;
using trace::OpKind;
using trace::Range;

// ---- the real driver (generated from hooks/driver_api.def) ----
namespace driver_types {
#define OVERSUB_DRIVER(symbol, type, need) using symbol##_fn = type;
#include "../hooks/driver_api.def"
#undef OVERSUB_DRIVER
using FuncGetParamInfo_fn = decltype(::cuFuncGetParamInfo);
using KernelGetParamInfo_fn = decltype(::cuKernelGetParamInfo);
using FuncGetName_fn = decltype(::cuFuncGetName);
using StreamIsCapturing_fn = decltype(::cuStreamIsCapturing);
using DeviceGetName_fn = decltype(::cuDeviceGetName);
using DeviceTotalMem_fn = decltype(::cuDeviceTotalMem_v2);
using DeviceGetAttribute_fn = decltype(::cuDeviceGetAttribute);
using CtxGetDevice_fn = decltype(::cuCtxGetDevice);
}  // namespace driver_types

struct RealDriver {
#define OVERSUB_DRIVER(symbol, type, need) driver_types::symbol##_fn* symbol = nullptr;
#include "../hooks/driver_api.def"
#undef OVERSUB_DRIVER
  // Used by the engine itself, never intercepted.
  driver_types::FuncGetParamInfo_fn* cuFuncGetParamInfo = nullptr;
  driver_types::KernelGetParamInfo_fn* cuKernelGetParamInfo = nullptr;
  driver_types::FuncGetName_fn* cuFuncGetName = nullptr;
  driver_types::StreamIsCapturing_fn* cuStreamIsCapturing = nullptr;
  driver_types::DeviceGetName_fn* cuDeviceGetName = nullptr;
  driver_types::DeviceTotalMem_fn* cuDeviceTotalMem_v2 = nullptr;
  driver_types::DeviceGetAttribute_fn* cuDeviceGetAttribute = nullptr;
  driver_types::CtxGetDevice_fn* cuCtxGetDevice = nullptr;
};
// Resolves on first use (thread-safe). Never null; members may be.
const RealDriver& real_driver();
// For cuGetProcAddress and dlsym: our wrapper for a real driver function, or nullptr.
void* driver_wrapper_for_real(void* real_function);
void* driver_wrapper_by_name(const char* symbol);

// ---- per-thread state ----

// Set while a thread runs inside an intercepted library call (cuBLAS, cuDNN):
// the library's own launches are then not recorded again, because the library
// hook already recorded the op with its exact ranges.
struct ThreadState {
  int library_depth = 0;
};
ThreadState& thread_state();

class LibraryScope {
 public:
  LibraryScope() { ++thread_state().library_depth; }
  ~LibraryScope() { --thread_state().library_depth; }
  LibraryScope(const LibraryScope&) = delete;
  LibraryScope& operator=(const LibraryScope&) = delete;
};

// First intercepted call: validates OVERSUB_* and opens the trace. Cheap after.
void ensure_started();

// ---- recording ----

// Ranges of one op: fixed capacity on the stack, so recording never allocates.
class RangeList {
 public:
  static constexpr std::size_t kCapacity = 128;
  // Adds a range. Cost: a few instructions. It merges only with the range
  // added just before (a pointer and its views tend to be neighbours in a
  // parameter list); a duplicate further back is harmless, since every
  // consumer treats the ranges as a set.
  void add(std::uint64_t address, std::uint64_t bytes, Access access) {
    if (count_ > 0) {
      Range& last = ranges_[count_ - 1];
      if (last.address == address && last.bytes == bytes) {
        last.access = static_cast<Access>(static_cast<std::uint8_t>(last.access) | static_cast<std::uint8_t>(access));
        return;
      }
    }
    if (count_ == kCapacity) {
      overflowed_ = true;
      return;
    }
    ranges_[count_++] = Range{address, bytes, access};
  }
  const Range* data() const { return ranges_; }
  std::size_t size() const { return count_; }
  bool overflowed() const { return overflowed_; }

 private:
  Range ranges_[kCapacity];
  std::size_t count_ = 0;
  bool overflowed_ = false;
};

AddressMap& address_map();
std::uint32_t intern_name(std::string_view name);
void record_op(OpKind kind, std::uint32_t name, CUstream stream, const RangeList& ranges,
               trace::CopyDirection direction = trace::CopyDirection::none);
void record_alloc(std::uint64_t base, std::uint64_t bytes, AllocKind kind, CUstream stream);
void record_free(std::uint64_t base, CUstream stream, bool completed);
void record_sync(trace::SyncKind kind, std::uint64_t handle);

// Adds the tracked allocation holding `address` (all of it) with `access`; false if untracked.
bool add_allocation_range(RangeList& ranges, std::uint64_t address, Access access);
// Adds [address, address+bytes) when it lies in tracked memory (clipped to the allocation).
void add_exact_range(RangeList& ranges, std::uint64_t address, std::uint64_t bytes, Access access);

// ---- families: each observes, then calls `forward` for the real work ----

// Launch family: scans the parameter block (Note [Parameter scanning] in launch.cpp).
void observe_launch(CUfunction f, CUstream stream, void** params, void** extra);
template <typename Forward>
CUresult launch(CUfunction f, CUstream stream, void** params, void** extra, Forward&& forward) {
  ensure_started();
  if (thread_state().library_depth == 0) observe_launch(f, stream, params, extra);
  return forward();
}

// Allocation family.
template <typename Forward>
CUresult allocate(CUdeviceptr* out, std::size_t bytes, AllocKind kind, CUstream stream, Forward&& forward) {
  ensure_started();
  CUresult r = forward();
  if (r == CUDA_SUCCESS && out != nullptr) record_alloc(*out, bytes, kind, stream);
  return r;
}
template <typename Forward>
CUresult release(CUdeviceptr pointer, CUstream stream, Forward&& forward) {
  ensure_started();
  if (pointer != 0) record_free(pointer, stream, false);
  CUresult r = forward();
  if (r == CUDA_SUCCESS && pointer != 0) record_free(pointer, stream, true);
  return r;
}

// Copy and memset family. `dst`/`src` are addresses in the unified space.
void observe_copy(std::uint64_t dst, std::uint64_t src, std::uint64_t bytes, CUstream stream);
void observe_copy_2d(const CUDA_MEMCPY2D* copy, CUstream stream);
void observe_memset(std::uint64_t dst, std::uint64_t pitch_bytes, std::uint64_t width_bytes, std::uint64_t height,
                    CUstream stream);
template <typename Forward>
CUresult copy(std::uint64_t dst, std::uint64_t src, std::uint64_t bytes, CUstream stream, Forward&& forward) {
  ensure_started();
  observe_copy(dst, src, bytes, stream);
  return forward();
}
template <typename Forward>
CUresult copy_2d(const CUDA_MEMCPY2D* p, CUstream stream, Forward&& forward) {
  ensure_started();
  observe_copy_2d(p, stream);
  return forward();
}
template <typename Forward>
CUresult set_memory(std::uint64_t dst, std::uint64_t pitch_bytes, std::uint64_t width_bytes, std::uint64_t height,
                CUstream stream, Forward&& forward) {
  ensure_started();
  observe_memset(dst, pitch_bytes, width_bytes, height, stream);
  return forward();
}

// Sync points are recorded after the wait, when they have happened.
template <typename Forward>
CUresult sync(trace::SyncKind kind, std::uint64_t handle, Forward&& forward) {
  ensure_started();
  CUresult r = forward();
  if (r == CUDA_SUCCESS) record_sync(kind, handle);
  return r;
}

}  // namespace oversub
