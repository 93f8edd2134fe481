// Residency: swap mode's engine. Serves intercepted allocations from oversub's
// own VMM address space and moves 2 MiB chunks between device and pinned host
// memory, so that a pointer never changes while its data moves.
//
// Note [Chunk states]
//   unbacked  allocated, never touched: no memory behind it (contents undefined)
//   device    backed by a device chunk, mapped read-write
//   host      evicted: the data is in a host slot; the address is mapped to
//             that host memory (an unpredicted access is slow, not fatal) or,
//             with OVERSUB_STRICT=1, left unmapped so that it faults
// Every op makes the chunks it touches `device` before it is submitted. A
// chunk brought back from the host is copied on our host-to-device stream,
// and the op's stream waits on that copy's event; the host thread does not.
//
// Note [Ordering an eviction after the last use]
// No event is recorded per op (the hot path makes no driver call). When a
// chunk is chosen for eviction, we record an event *then* on every stream that
// used it since it was last moved: that event follows all work already
// queued there, which includes the last use. The device-to-host copy waits on
// it, and the chunk's memory is reused only after the copy has completed.
// cuMemUnmap does not wait for in-flight work, so this ordering is what makes
// the remap safe.
//
// Note [Engine lock]
// One lock (EngineLock) is held from the residency check until the op has been
// submitted, so an eviction on another thread cannot slip between them. It is
// re-entrant because a library call (cuBLAS) launches kernels from inside our
// hook. Uncontended it costs one compare-and-swap and one store; a program that
// submits from many threads at once serialises its submissions (not its GPU
// work). A per-thread hazard scheme can replace it later without changing the
// interface.
#pragma once

#include <cuda.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "arena.h"
#include "engine.h"

namespace oversub {

// A mutex that the thread holding it may take again (a library call launches
// kernels from inside our hook). Cheaper than std::recursive_mutex: the
// re-entry check is a thread-local comparison, and the first entry is a plain
// mutex's uncontended compare-and-swap.
class EngineLock {
 public:
  void lock() {
    if (owner_.load(std::memory_order_relaxed) == &t_marker) {
      ++depth_;
      return;
    }
    mutex_.lock();
    owner_.store(&t_marker, std::memory_order_relaxed);
    depth_ = 1;
  }
  void unlock() {
    if (--depth_ > 0) return;
    owner_.store(nullptr, std::memory_order_relaxed);
    mutex_.unlock();
  }

 private:
  static inline thread_local char t_marker __attribute__((tls_model("initial-exec"))) = 0;
  std::mutex mutex_;
  std::atomic<const char*> owner_{nullptr};
  int depth_ = 0;  // guarded by mutex_
};

struct ResidencyStats {
  std::uint64_t budget_bytes = 0;
  std::uint64_t host_limit_bytes = 0;
  std::uint64_t peak_device_bytes = 0;
  std::uint64_t peak_host_bytes = 0;
  std::uint64_t bytes_evicted = 0;
  std::uint64_t bytes_prefetched = 0;
  std::uint64_t evictions = 0;
  std::uint64_t prefetches = 0;
  std::uint64_t host_wait_ns = 0;
  std::uint64_t ops = 0;
  std::uint64_t peak_allocated_bytes = 0;
};

class Residency {
 public:
  // The engine in swap mode, or nullptr in passthrough mode (or when the
  // device could not be set up; then everything passes through).
  static Residency* get() { return instance_.load(std::memory_order_acquire); }
  static void start_if_enabled();  // called once the first CUDA call has a context

  EngineLock& lock() { return mutex_; }

  CUresult allocate(CUdeviceptr* out, std::uint64_t bytes, AllocKind kind, CUstream stream);
  // false when `pointer` is not ours (the caller passes it through).
  bool release(CUdeviceptr pointer, CUstream stream, bool stream_ordered, CUresult* result);
  bool owns(std::uint64_t address) const { return address - base_ < bytes_; }

  // Makes every chunk of `ranges` that lies in the arena resident for an op on
  // `stream`. Call with lock() held, and keep it until the op is submitted.
  // Cost when all chunks are resident: one load and one store per chunk.
  CUresult prepare(const RangeList& ranges, CUstream stream);

  // What the application is told: the oversubscribed capacity.
  void memory_info(std::size_t* free_bytes, std::size_t* total_bytes);
  // Kernel ranges inside large pooled segments (Note [Ranges inside a segment]).
  void narrow_kernel_range(std::uint64_t pointer, const Allocation& allocation, std::uint64_t* start,
                           std::uint64_t* bytes);
  void learn_extent(std::uint64_t address, std::uint64_t bytes);

  ResidencyStats stats();
  void report_at_exit();

 private:
  enum State : std::uint8_t { kFree, kUnbacked, kDevice, kHost };
  static constexpr int kMaxStreams = 2;
  struct Chunk {
    std::atomic<std::uint8_t> state{kFree};
    std::atomic<std::uint64_t> last_use{0};
    CUstream streams[kMaxStreams] = {};  // streams that used it since it last moved
    bool many_streams = false;
    CUmemGenericAllocationHandle device = 0;
    std::int64_t host_slot = -1;
    CUevent ready = nullptr;   // prefetch copy; streams not yet ordered after it wait on it
    CUstream ready_waited = nullptr;
    std::uint32_t users = 0;   // allocations that overlap it
    bool small = false;
  };
  struct PendingRelease {      // a freed chunk, reusable once `fence` completes
    std::uint64_t chunk;
    CUevent fence;
  };
  struct HostSlotRelease {     // a host slot, reusable once `done` completes
    std::int64_t slot;
    CUevent done;
  };
  struct Block {               // one application allocation
    std::uint64_t base;
    std::uint64_t bytes;
    std::uint64_t first_chunk;
    std::uint64_t chunk_count;
    bool small;
  };

  Residency() = default;
  bool initialise();
  std::uint64_t address_of(std::uint64_t chunk) const { return base_ + chunk * kChunkBytes; }
  // Note [Capacity]: the application may hold budget + host limit, less one
  // chunk: bringing a chunk in while device and host are both full needs one
  // free host slot for the chunk it displaces.
  std::uint64_t capacity_chunks() const { return budget_chunks_ + host_chunks_ - (host_chunks_ > 0 ? 1 : 0); }

  CUresult make_device(std::uint64_t chunk, CUstream stream, std::uint64_t op_tick);
  CUresult obtain_device_memory(std::uint64_t op_tick, CUmemGenericAllocationHandle* handle);
  CUresult evict(std::uint64_t chunk, CUmemGenericAllocationHandle* freed);
  CUresult obtain_host_slot(std::int64_t* slot);
  CUresult map_device(std::uint64_t chunk, CUmemGenericAllocationHandle handle);
  void map_host_or_leave_unmapped(std::uint64_t chunk);
  CUevent fence_after_uses(Chunk& c);
  void note_stream(Chunk& c, CUstream stream);
  void release_chunk(std::uint64_t chunk, CUstream stream, bool stream_ordered);
  void reclaim(bool wait);
  CUevent new_event();
  void recycle_event(CUevent e);
  void wait_host(CUevent e);
  void update_peaks();

  static std::atomic<Residency*> instance_;

  EngineLock mutex_;
  std::uint64_t base_ = 0, bytes_ = 0;  // the arena's address range
  std::unique_ptr<Chunk[]> chunks_;
  std::unique_ptr<Arena> arena_;
  std::vector<Block> blocks_by_base_;   // sorted by base
  std::uint64_t op_tick_ = 0;  // guarded by mutex_

  std::uint64_t budget_chunks_ = 0, host_chunks_ = 0;
  std::uint64_t device_in_use_ = 0;     // device chunks mapped to application chunks
  std::uint64_t allocated_chunks_ = 0;  // chunks holding application data (any state)
  std::vector<CUmemGenericAllocationHandle> free_device_;
  std::uint64_t device_created_ = 0;

  std::uint64_t host_base_ = 0;         // host slots: each mapped here for our copies
  std::vector<CUmemGenericAllocationHandle> host_handles_;
  std::vector<std::int64_t> free_slots_;
  std::uint64_t host_in_use_ = 0;

  std::vector<PendingRelease> pending_;
  std::vector<HostSlotRelease> pending_slots_;
  std::vector<CUevent> spare_events_;
  std::vector<CUstream> known_streams_;

  CUstream d2h_ = nullptr, h2d_ = nullptr;
  CUdevice device_ = 0;
  bool strict_ = false;
  std::uint32_t evict_reason_ = 0, prefetch_reason_ = 0;

  ResidencyStats stats_;
  std::map<std::uint64_t, std::uint64_t> extents_;  // learned tensor extents: start -> bytes
};

}  // namespace oversub
