// Residency: swap mode's engine. Serves intercepted allocations from oversub's
// own VMM address space and moves 2 MiB chunks between device and pinned host
// memory, so that a pointer never changes while its data moves.
//
// Note [Chunk states]
//   unbacked  allocated, never touched: no memory behind it (contents undefined)
//   device    backed by a device chunk, mapped read-write
//   evicting  still device-backed; its copy to the host is in flight
//             (Note [Evictions in flight] in residency.cpp)
//   host      evicted: the data is in a host slot; the address is mapped to
//             that host memory (an unpredicted access is slow, not fatal) or,
//             with OVERSUB_STRICT=1, left unmapped so that it faults
// Every op makes the chunks it touches `device` before it is submitted. A
// chunk brought back from the host is copied on our host-to-device stream,
// and the op's stream waits on that copy's event; the host thread does not.
//
// Note [Ordering an eviction after the last use]
// No event is recorded per op (the hot path makes no driver call). When a
// chunk is chosen for eviction, we record an event *then* on every stream the
// program has used (or reuse such a set recorded since the chunk's last use:
// Note [Epoch fences] in residency.cpp): that event follows all work already
// queued there, which includes the chunk's last use. (Training uses a handful of streams, so
// fencing on all of them costs a few event records per eviction and spares
// the hot path any per-chunk stream bookkeeping.) The device-to-host copy waits on
// it, and the chunk's memory is reused only after the copy has completed.
// cuMemUnmap does not wait for in-flight work, so this ordering is what makes
// the remap safe.
//
// Note [Driver failures]
// A driver call that fails under the engine never loses data and never
// reports success for an op it could not prepare (docs/reliability.md,
// "Faults"; tests/faults):
//   cuMemCreate (device)  the card has less than the budget: the budget
//                         becomes what was created (obtain_device_memory)
//   cuMemCreate/cuMemMap  a host slot cannot be set up: the eviction that
//     (host slot)         needed it fails; the op gets CUDA_ERROR_OUT_OF_MEMORY
//   eviction copy         the chunk stays on the device, its host slot is
//                         free again; an op that needed the memory tries
//                         other victims, then gets CUDA_ERROR_OUT_OF_MEMORY
//   bring-back copy       the chunk stays on the host with its data; the op
//                         that needed it gets the driver's error (a retry
//                         brings it back); a plan simply skips it
//   cuMemMap (device)     the op gets the driver's error; the chunk keeps its
//                         state and its data
//   host remap            the evicted chunk is left unmapped, as in strict
//                         mode (map_host_or_leave_unmapped)
//
// Note [Engine lock]
// One lock (EngineLock) is held from the residency check until the op has been
// submitted, so an eviction on another thread cannot slip between them. It is
// re-entrant because a library call (cuBLAS) launches kernels from inside our
// hook. Uncontended it costs one compare-and-swap and one exchange; a program
// that submits from many threads at once serialises its submissions (not its
// GPU work), and its waiters sleep (Note [Waiting for the engine lock]). A
// per-thread hazard scheme can replace it later without changing the interface.
#pragma once

#include <cuda.h>
#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "arena.h"
#include "engine.h"
#include "planner.h"
#include "policy/residency_policy.h"

namespace oversub {

// A lock that the thread holding it may take again (a library call launches
// kernels from inside our hook). The re-entry check is a thread-local
// comparison. Uncontended, taking it is one compare-and-swap and releasing it
// one exchange, as for a mutex.
//
// Note [Waiting for the engine lock]
// A holder may keep the lock for milliseconds: an on-demand eviction waits
// for its copy, which waits for everything queued before it. A waiter spins
// briefly (the common case is a holder that submits one op and leaves) and
// then sleeps in the kernel (a futex, through std::atomic::wait) until the
// holder wakes it. It must not keep polling: a waiter that yielded in a loop
// took most of the CPU of a two-core machine in the 3-thread stress test,
// away from the simulated device's stream workers that the holder waited
// for. The lock word is 0 (free), 1 (held) or 2 (held, and someone may be
// asleep): only a release from 2 pays for a wake-up call.
class EngineLock {
 public:
  void lock() {
    if (owner_.load(std::memory_order_relaxed) == &t_marker) {
      ++depth_;
      return;
    }
    std::uint32_t expected = kFree;
    if (!state_.compare_exchange_strong(expected, kHeld, std::memory_order_acquire, std::memory_order_relaxed))
      lock_contended();
    owner_.store(&t_marker, std::memory_order_relaxed);
    depth_ = 1;
  }
  // How many times the holder has taken it (1: the outermost op).
  int depth() const { return depth_; }
  void unlock() {
    if (--depth_ > 0) return;
    owner_.store(nullptr, std::memory_order_relaxed);
    if (state_.exchange(kFree, std::memory_order_release) == kSleepers) state_.notify_one();
  }

 private:
  static constexpr std::uint32_t kFree = 0, kHeld = 1, kSleepers = 2;
  static constexpr int kSpins = 100;
  void lock_contended() {
    for (int i = 0; i < kSpins; ++i) {
      std::uint32_t expected = kFree;
      if (state_.load(std::memory_order_relaxed) == kFree &&
          state_.compare_exchange_weak(expected, kHeld, std::memory_order_acquire, std::memory_order_relaxed))
        return;
    }
    // Whoever takes it from here on marks it kSleepers: it cannot know
    // whether another waiter is asleep, so its release wakes one (at worst
    // for nothing).
    while (state_.exchange(kSleepers, std::memory_order_acquire) != kFree)
      state_.wait(kSleepers, std::memory_order_relaxed);
  }
  static inline thread_local char t_marker __attribute__((tls_model("initial-exec"))) = 0;
  std::atomic<std::uint32_t> state_{kFree};
  std::atomic<const char*> owner_{nullptr};
  int depth_ = 0;  // guarded by the lock
};

// Above this size an allocation is taken for a framework's pooled segment,
// whose kernel ranges are narrowed (Note [Ranges inside a segment]); below it,
// for one tensor. Both the narrowing and the learning of extents use it.
constexpr std::uint64_t kSegmentBytes = std::uint64_t{16} << 20;

struct ResidencyStats {
  std::uint64_t budget_bytes = 0;
  std::uint64_t host_limit_bytes = 0;
  std::uint64_t peak_device_bytes = 0;
  std::uint64_t peak_host_bytes = 0;
  std::uint64_t bytes_evicted = 0;
  std::uint64_t bytes_prefetched = 0;
  std::uint64_t evictions = 0;
  std::uint64_t evictions_cancelled = 0;
  std::uint64_t prefetches = 0;
  std::uint64_t prefetches_ahead = 0;  // of prefetches: started by a plan, not by the op that needed it
  std::uint64_t uploads_yielded_to = 0;  // program uploads our background evictions waited for
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
  // Kernel ranges inside large pooled segments (Note [Ranges inside a segment]);
  // only for allocations over kSegmentBytes.
  // Returned by value, so that the launch scan keeps it in registers.
  struct Span {
    std::uint64_t start, bytes;
  };
  Span narrow_kernel_range(std::uint64_t pointer, const Allocation& allocation);
  // Records the exact ranges of an op (library call, copy, memset) that lie in
  // a pooled segment. Call with lock() held.
  void learn_extents(const RangeList& ranges);

  // The program's host-to-device copy (Note [Background evictions yield to
  // uploads] in residency.cpp): prepare_upload instead of prepare, then, once
  // the copy is submitted (or has failed), finish_upload. Call with lock()
  // held throughout.
  CUresult prepare_upload(const RangeList& ranges, CUstream stream);
  void finish_upload(CUstream stream, bool submitted);

  ResidencyStats stats();
  void report_at_exit();

  // For the planner thread (Note [Planning off the hot path] in planner.h).
  std::uint64_t current_tick() const { return op_tick_.load(std::memory_order_relaxed); }
  // How many chunks a plan may keep resident: the budget less room for new
  // allocations and on-demand misses.
  std::size_t plan_capacity() const { return plan_capacity_.load(std::memory_order_relaxed); }
  // The device budget in chunks (Note [Evicting early] in policy/lookahead.h).
  std::uint64_t budget_for_planner() const { return budget_for_planner_.load(std::memory_order_relaxed); }
  // Brings back (ahead of use) the chunks the next ops need, in that order,
  // and keeps them from being chosen as victims until the next plan. Takes the
  // engine lock.
  void apply_plan(const std::vector<std::uint64_t>& upcoming);
  // Bounds the time a plan holds the engine lock.
  static constexpr std::uint64_t kMaxEvictionsPerPlan = 16;

 private:
  enum State : std::uint8_t { kFree, kUnbacked, kDevice, kEvicting, kHost };
  struct Chunk {
    std::atomic<std::uint8_t> state{kFree};
    CUmemGenericAllocationHandle device = 0;
    std::int64_t host_slot = -1;
    CUevent ready = nullptr;   // prefetch copy; streams not yet ordered after it wait on it
    CUevent evicted = nullptr; // evicting: the device-to-host copy's completion
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
  struct PendingSmall {        // a freed small block, reusable once `fence` completes
    std::uint64_t chunk;
    std::uint64_t offset_bytes;
    std::uint64_t bytes;
    CUevent fence;
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
  // Copies a host chunk back into `handle` on our host-to-device stream; when
  // `stream` is given, it waits for the copy.
  CUresult bring_back(std::uint64_t chunk, CUmemGenericAllocationHandle handle, CUstream stream);
  // Resident chunks the policy may choose from, skipping those the current
  // plan needs unless `include_planned`.
  void victim_candidates(bool include_planned, std::vector<policy::ChunkCandidate>* out);
  // The newest tick whose ops are known complete: every epoch up to it has
  // completed (asks the driver about epochs not known complete yet).
  std::uint64_t completed_tick();
  bool planned(std::uint64_t chunk) const { return plan_gen_ != 0 && planned_[chunk] == plan_gen_; }
  CUresult obtain_device_memory(std::uint64_t op_tick, CUmemGenericAllocationHandle* handle);
  // Victims whose eviction copy fails before an op gives up (Note [Driver failures]).
  static constexpr std::size_t kMaxFailedEvictions = 3;
  CUresult evict(std::uint64_t chunk, CUmemGenericAllocationHandle* freed);
  // start_eviction's answer when its victim was released while it obtained a
  // host slot (Note [A victim can vanish]); not a driver result.
  static constexpr CUresult kVictimVanished = static_cast<CUresult>(-1);
  CUresult start_eviction(std::uint64_t chunk);
  bool finish_eviction(std::uint64_t chunk, bool wait, CUmemGenericAllocationHandle* freed);
  void cancel_eviction(std::uint64_t chunk);
  void keep_headroom(std::uint64_t op_tick);
  // Evictions ahead of demand (headroom, early, a plan's): our device-to-host
  // stream first waits for the program's uploads on the link (Note [Background
  // evictions yield to uploads]). False when a copy could not be started.
  bool start_background_evictions(const std::vector<std::uint64_t>& victims);
  void yield_to_uploads();
  CUresult obtain_host_slot(std::int64_t* slot);
  CUresult map_device(std::uint64_t chunk, CUmemGenericAllocationHandle handle);
  void map_host_or_leave_unmapped(std::uint64_t chunk);
  // Note [Epoch fences]
  struct Epoch {
    std::uint64_t tick;           // every op up to this tick was submitted before the events
    std::vector<CUevent> events;  // one per known stream
  };
  static constexpr std::size_t kMaxEpochs = 64;
  std::uint64_t submitted_tick() const;
  const Epoch& epoch_after(std::uint64_t last_use_tick, bool* fresh);  // fresh: made now
  // Orders our device-to-host stream after the chunk's last use and after
  // `prefetch`, the copy that brought it back, if that may still run.
  void order_d2h_after(std::uint64_t last_use_tick, CUevent prefetch);
  // The same, as an event recorded on our device-to-host stream.
  CUevent fence_after(std::uint64_t last_use_tick, CUevent prefetch);
  CUevent stream_fence(CUstream stream);
  // Orders our device-to-host stream after every copy queued on our
  // host-to-device stream (Note [Fencing only what is new]).
  void order_d2h_after_h2d();
  void note_stream(CUstream stream);
  // last_stream_index_ names `stream`'s entry afterwards; the common case, the same
  // stream as the previous op on the same thread, is one comparison.
  void track_stream(CUstream stream) {
    if (stream != last_stream_ || (stream == CU_STREAM_PER_THREAD && !pthread_equal(pthread_self(), last_thread_)))
      note_stream(stream);
  }
  // Recomputes chunk k's hot word after its state or `ready` changed.
  void refresh_hot(std::uint64_t k);
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
  // Note [Hot words]: one word per chunk for the fast path, the last-use tick
  // shifted left by 8 with bit 0 set when an op may use the chunk as it is
  // (device-resident with no copy to wait for, or not allocated at all). The
  // fast path is then one load, one AND and one store per chunk.
  std::unique_ptr<std::uint64_t[]> hot_;
  // The stream of the previous op, already in known_streams_. Starts as a
  // value no stream has: 0 is the legacy default stream, a real stream.
  static inline const CUstream kNoStream = reinterpret_cast<CUstream>(~std::uintptr_t{0});
  CUstream last_stream_ = kNoStream;
  std::unique_ptr<Arena> arena_;
  std::vector<Block> blocks_by_base_;   // sorted by base
  std::atomic<std::uint64_t> op_tick_{0};  // written under mutex_; read by the planner thread
  std::uint64_t outer_tick_ = 0;  // tick of the outermost op being submitted (Note [Nested ops])

  std::uint64_t budget_chunks_ = 0, host_chunks_ = 0;
  // budget_chunks_ less room for new allocations and misses, for the planner
  // thread, which reads it without the lock; set wherever the budget changes.
  std::atomic<std::size_t> plan_capacity_{0};
  std::atomic<std::uint64_t> budget_for_planner_{0};
  void set_budget_chunks(std::uint64_t chunks) {
    budget_chunks_ = chunks;
    budget_for_planner_.store(chunks, std::memory_order_relaxed);
    plan_capacity_.store(chunks - std::min<std::uint64_t>(chunks, std::max<std::uint64_t>(2, chunks / 4)),
                         std::memory_order_relaxed);
  }
  std::uint64_t device_in_use_ = 0;     // device chunks mapped to application chunks
  std::uint64_t allocated_chunks_ = 0;  // chunks holding application data (any state)
  std::vector<CUmemGenericAllocationHandle> free_device_;
  std::uint64_t device_created_ = 0;

  std::uint64_t host_base_ = 0;         // host slots: each mapped here for our copies
  std::vector<CUmemGenericAllocationHandle> host_handles_;
  std::vector<std::int64_t> free_slots_;
  std::uint64_t host_in_use_ = 0;

  std::vector<PendingRelease> pending_;
  std::vector<PendingSmall> pending_small_;
  std::vector<std::uint64_t> evicting_;  // chunks whose eviction copy is in flight, oldest first
  std::deque<Epoch> epochs_;            // oldest first (Note [Epoch fences])
  std::uint64_t completed_tick_ = 0;    // completed_tick()'s answer last time
  bool in_prepare_ = false;
  bool been_short_ = false;  // an op has evicted on demand (Note [Headroom once short])
  // Note [Background evictions yield to uploads].
  struct Upload {
    CUevent start;  // recorded on its stream just before it
    CUevent done;   // and just after
    CUstream stream;
    pthread_t thread;  // that submitted it: a per-thread default stream is one per thread
    std::uint64_t tick;
    bool follows;  // submitted right after the previous entry, on the same stream
    bool waited;   // d2h_ waits for it
  };
  static constexpr std::size_t kMaxUploads = 8;
  std::vector<Upload> uploads_;  // not known done, oldest first
  Upload upload_{};  // the one being submitted
  std::vector<HostSlotRelease> pending_slots_;
  std::vector<CUevent> spare_events_;
  // Every stream the program has used, with the thread that used it: a
  // per-thread default stream handle means a different stream on each thread.
  // Note [Fencing only what is new]: the tick of the last op prepared on it,
  // and the newest tick up to which our device-to-host stream already waits
  // for it.
  struct KnownStream {
    CUstream stream;
    pthread_t thread;
    std::uint64_t last_op_tick = 0;
    std::uint64_t fenced_tick = 0;  // 0: never fenced
  };
  std::vector<KnownStream> known_streams_;
  std::size_t last_stream_index_ = 0;  // last_stream_'s entry in known_streams_
  bool h2d_unfenced_ = false;  // a copy queued on h2d_ that d2h_ does not yet wait for
  pthread_t last_thread_ = 0;

  pid_t owner_pid_ = 0;  // the process that started the engine (not a child of fork)
  CUstream d2h_ = nullptr, h2d_ = nullptr;
  CUdevice device_ = 0;
  bool strict_ = false;
  std::uint32_t evict_reason_ = 0, prefetch_reason_ = 0;

  std::unique_ptr<Planner> planner_;  // lookahead only
  std::unique_ptr<std::uint32_t[]> planned_;  // per chunk: the plan generation that needs it
  std::uint32_t plan_gen_ = 0;
  std::uint32_t lookahead_reason_ = 0;
  std::unique_ptr<policy::ResidencyPolicy> policy_;
  ResidencyStats stats_;
  std::map<std::uint64_t, std::uint64_t> extents_;  // learned tensor extents: start -> bytes
};

}  // namespace oversub
