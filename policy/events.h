// The policy's input: a stream of events with caller-supplied timestamps.
//
// policy/ never reads a clock and never sees a CUDA type (CONVENTIONS.md 8). The live
// shim fills these records from its interception hot path (through a ring buffer, with
// durations measured by events), and `oversub-trace replay` fills them from a trace
// (with durations from the device cost model). Both then drive the same code.
//
// Note [Cheap events]
// ~~~~~~~~~~~~~~~~~~~
// Every record here is trivially copyable and of fixed size, so a producer can build one
// on the stack and copy it into a preallocated ring without touching the heap. An op's
// accesses live in an inline array of `AccessList::inline_capacity` entries. An op that
// touches more ranges (a multi-tensor-apply optimizer kernel can touch hundreds) is sent
// as one OpEvent followed by as many MoreAccessesEvent records as needed; consumers
// attribute those to the op just before them. Only if a producer cannot do even that (its
// ring is full) does it set `overflowed`, which says "some accesses of this op are
// missing": a planner must then treat the op's footprint as unknown.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <variant>

namespace oversub::policy {

// Chunks are the unit of residency: 2 MiB, the granularity of cuMemCreate on every GPU
// we target. An access names chunks of one allocation: chunk k covers bytes
// [k * chunk_bytes, (k + 1) * chunk_bytes) of that allocation.
inline constexpr uint64_t chunk_bytes = uint64_t{2} << 20;

// Chunks needed to hold `bytes` (a zero-byte allocation still occupies no chunk).
constexpr uint32_t chunks_for_bytes(uint64_t bytes)
{
  return static_cast<uint32_t>((bytes + chunk_bytes - 1) / chunk_bytes);
}

using AllocId = uint64_t;   // unique per allocation for the whole run; never reused
using SiteId = uint64_t;    // call-site id of an allocation; 0 when unknown
using StreamId = uint64_t;  // the stream handle's value; 0 is the legacy default stream
using NameId = uint32_t;    // interned op name (kernel symbol, library call); 0 when unknown

inline constexpr SiteId no_site = 0;
inline constexpr NameId no_name = 0;

// Same words as the trace format's enums (tracer/format.h), kept separate because the
// tracer depends on policy/, not the other way round.
enum class OpKind : uint8_t { kernel, cublas, cudnn, copy, memset, host_func, graph, other };
enum class AccessMode : uint8_t { read = 1, write = 2, read_write = 3 };
enum class SyncKind : uint8_t { device, stream, event };

// One contiguous run of chunks of one allocation that an op reads and/or writes.
struct Access {
  AllocId alloc_id = 0;
  uint32_t chunk_first = 0;
  uint32_t chunk_count = 0;
  AccessMode mode = AccessMode::read;
};

// A fixed-capacity list of accesses (Note [Cheap events]). 16 covers every cuBLAS and
// cuDNN call and ordinary kernels; bigger ops continue in MoreAccessesEvent records.
class AccessList {
public:
  static constexpr size_t inline_capacity = 16;

  // Cost: one store. Returns false (and remembers the loss) when the list is full.
  bool add(const Access& access) noexcept
  {
    if (count_ == inline_capacity) {
      overflowed_ = true;
      return false;
    }
    items_[count_++] = access;
    return true;
  }
  std::span<const Access> items() const noexcept { return {items_.data(), count_}; }
  size_t size() const noexcept { return count_; }
  bool full() const noexcept { return count_ == inline_capacity; }
  // Some accesses were dropped; the op's footprint is not fully known.
  bool overflowed() const noexcept { return overflowed_; }
  void mark_overflowed() noexcept { overflowed_ = true; }

private:
  std::array<Access, inline_capacity> items_{};
  uint8_t count_ = 0;
  bool overflowed_ = false;
};

struct AllocEvent {
  AllocId alloc_id = 0;
  uint64_t bytes = 0;
  SiteId site = no_site;
  StreamId stream = 0;
};

struct FreeEvent {
  AllocId alloc_id = 0;
};

struct OpEvent {
  OpKind kind = OpKind::kernel;
  NameId name = no_name;
  StreamId stream = 0;
  // Measured (live) or modelled (replay) execution time; 0 when unknown.
  int64_t duration_ns = 0;
  AccessList accesses;
};

// More accesses of the OpEvent immediately before it in the stream (Note [Cheap events]).
struct MoreAccessesEvent {
  AccessList accesses;
};

// The host waited for the device: cudaDeviceSynchronize, cudaStreamSynchronize,
// cudaEventSynchronize, or a synchronous copy.
struct SyncEvent {
  SyncKind kind = SyncKind::device;
  StreamId stream = 0;
};

using EventBody = std::variant<AllocEvent, FreeEvent, OpEvent, MoreAccessesEvent, SyncEvent>;

struct Event {
  int64_t time_ns = 0;  // caller's clock (monotonic live, simulated in replay)
  EventBody body;
};

}  // namespace oversub::policy
