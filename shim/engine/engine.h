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

#include <atomic>
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
using CtxGetCurrent_fn = decltype(::cuCtxGetCurrent);
using CtxSetCurrent_fn = decltype(::cuCtxSetCurrent);
using StreamCreate_fn = decltype(::cuStreamCreate);
using EventCreate_fn = decltype(::cuEventCreate);
using EventRecord_fn = decltype(::cuEventRecord);
using EventQuery_fn = decltype(::cuEventQuery);
using EventDestroy_fn = decltype(::cuEventDestroy_v2);
using MemAddressReserve_fn = decltype(::cuMemAddressReserve);
using MemCreate_fn = decltype(::cuMemCreate);
using MemSetAccess_fn = decltype(::cuMemSetAccess);
using MemRelease_fn = decltype(::cuMemRelease);
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
  driver_types::CtxGetCurrent_fn* cuCtxGetCurrent = nullptr;
  driver_types::CtxSetCurrent_fn* cuCtxSetCurrent = nullptr;
  driver_types::StreamCreate_fn* cuStreamCreate = nullptr;
  driver_types::EventCreate_fn* cuEventCreate = nullptr;
  driver_types::EventRecord_fn* cuEventRecord = nullptr;
  driver_types::EventQuery_fn* cuEventQuery = nullptr;
  driver_types::EventDestroy_fn* cuEventDestroy_v2 = nullptr;
  driver_types::MemAddressReserve_fn* cuMemAddressReserve = nullptr;
  driver_types::MemCreate_fn* cuMemCreate = nullptr;
  driver_types::MemSetAccess_fn* cuMemSetAccess = nullptr;
  driver_types::MemRelease_fn* cuMemRelease = nullptr;
};
// Resolves on first use (thread-safe). Never null; members may be.
// Cost after the first call: one load.
extern std::atomic<const RealDriver*> g_real_driver;
const RealDriver& resolve_real_driver();
inline const RealDriver& real_driver() {
  const RealDriver* r = g_real_driver.load(std::memory_order_acquire);
  return __builtin_expect(r != nullptr, 1) ? *r : resolve_real_driver();
}
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
// initial-exec: the shim is preloaded, so its TLS is static and reached
// without a call to __tls_get_addr on every intercepted op.
extern thread_local ThreadState t_thread_state __attribute__((tls_model("initial-exec")));
inline ThreadState& thread_state() { return t_thread_state; }

class LibraryScope {
 public:
  LibraryScope() { ++thread_state().library_depth; }
  ~LibraryScope() { --thread_state().library_depth; }
  LibraryScope(const LibraryScope&) = delete;
  LibraryScope& operator=(const LibraryScope&) = delete;
};

// First intercepted call: validates OVERSUB_* and opens the trace.
// Cost after the first call: one load.
extern std::atomic<bool> g_started;
void start();
inline void ensure_started() {
  if (__builtin_expect(!g_started.load(std::memory_order_acquire), 0)) start();
}

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
  // For a producer that checks capacity itself (a launch knows its word count).
  Range* raw() { return ranges_; }
  void set_size(std::size_t n) { count_ = n; }
  std::size_t size() const { return count_; }
  bool overflowed() const { return overflowed_; }

 private:
  Range ranges_[kCapacity];
  std::size_t count_ = 0;
  bool overflowed_ = false;
};

extern AddressMap* const g_address_map;
inline AddressMap& address_map() { return *g_address_map; }
std::uint32_t intern_name(std::string_view name);
// Whether a trace is being written (OVERSUB_TRACE).
bool tracing();
void record_op(OpKind kind, std::uint32_t name, CUstream stream, const RangeList& ranges,
               trace::CopyDirection direction = trace::CopyDirection::none);
void record_alloc(std::uint64_t base, std::uint64_t bytes, AllocKind kind, CUstream stream);
void record_free(std::uint64_t base, CUstream stream, bool completed);
void record_sync(trace::SyncKind kind, std::uint64_t handle);

// Adds the tracked allocation holding `address` (all of it) with `access`; false if untracked.
bool add_allocation_range(RangeList& ranges, std::uint64_t address, Access access);
// Adds [address, address+bytes) when it lies in tracked memory (clipped to the allocation).
void add_exact_range(RangeList& ranges, std::uint64_t address, std::uint64_t bytes, Access access);

// ---- observation (recording); the swap-aware families are in ops.h ----

// Fills `ranges` with what a launch can touch (Note [Parameter scanning] in
// launch.cpp) and records the op when `record` is set.
void observe_launch(CUfunction f, CUstream stream, void** params, void** extra, RangeList& ranges, bool record);
// The copy family returns the copy's direction (none when it moves nothing).
trace::CopyDirection observe_copy(std::uint64_t dst, std::uint64_t src, std::uint64_t bytes, CUstream stream,
                                  RangeList& ranges);
trace::CopyDirection observe_copy_2d(const CUDA_MEMCPY2D* copy, CUstream stream, RangeList& ranges);
void observe_memset(std::uint64_t dst, std::uint64_t pitch_bytes, std::uint64_t width_bytes, std::uint64_t height,
                    CUstream stream, RangeList& ranges);

}  // namespace oversub
