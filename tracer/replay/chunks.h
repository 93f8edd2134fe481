// The replay's residency engine: the live engine's chunk states (Note [Chunk states]
// in shim/engine/residency.h) on simulated time. The decisions come from policy/;
// this class only carries them out and charges their cost: copies on the simulated
// copy engines, and the host's waits for them.
//
// Note [Replay chunks]
// ~~~~~~~~~~~~~~~~~~~~
// As in the shim, an allocation of 1 MiB or more gets 2 MiB chunks of its own (its
// last one partly used), and smaller ones are packed, 512-byte aligned, into shared
// chunks (Note [Small allocations share a chunk] in shim/engine/arena.h). The replay
// packs by bumping through the current shared chunk and never reuses a freed block
// inside one (a shared chunk is free when all its allocations are): slightly more
// chunks than the shim's best fit, never fewer. Chunks are numbered in allocation
// order and never reused, so they double as the planner's slots (Note [Slots] in
// policy/lookahead.h), whose number is known before the replay starts.
//
// Memory: a chunk holds device memory while it is `device` or `evicting` (its copy to
// the host still reads it), exactly as in the shim; `used_chunks()` never exceeds the
// budget.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "policy/residency_policy.h"
#include "tracer/replay/simulator.h"
#include "tracer/replay/workload.h"

namespace oversub::replay {

struct Placement {
  uint64_t first_chunk = 0;
  uint32_t chunk_count = 0;
  bool shared = false;
};

// Places every allocation of the workload (Note [Replay chunks]); returns the number
// of chunks numbered.
uint64_t place_allocations(const Workload& workload, std::vector<Placement>* placements);

// Note [Footprint]
// ~~~~~~~~~~~~~~~~
// The most chunks that hold live allocations at once, over the trace as recorded:
// peak live bytes as the engine must hold them, in whole 2 MiB chunks. A budget of
// this many chunks fits the trace with nothing moved; budgets given as a percentage
// are a percentage of it, and vdnn and tflms act only when the budget is below it.
uint64_t footprint_chunks(const Workload& workload);

struct ChunkStats {
  uint64_t bytes_h2d = 0;  // brought back (on demand and ahead)
  uint64_t bytes_d2h = 0;  // evicted (a cancelled eviction's copy still counts: it ran)
  uint64_t evictions = 0;
  uint64_t evictions_cancelled = 0;  // of those, the chunk was used again before its copy was done
  uint64_t prefetches = 0;        // every copy back
  uint64_t prefetches_ahead = 0;  // of those, started before an op asked
  int64_t host_stall_ns = 0;      // the host waited for an eviction copy
  uint64_t uploads_yielded_to = 0;  // program uploads that background evictions were held behind
};

class ChunkEngine {
public:
  enum class State : uint8_t { free, unbacked, device, evicting, host };

  ChunkEngine(Simulator* sim, const Workload& workload, uint64_t budget_chunks);

  const Placement& placement(uint32_t alloc) const { return placements_[alloc]; }
  uint64_t chunk_capacity() const { return chunks_.size(); }
  uint64_t budget_chunks() const { return budget_; }
  uint64_t used_chunks() const { return used_; }
  uint64_t free_chunks() const { return budget_ - used_; }
  size_t evicting_count() const { return evicting_count_; }
  State state(uint64_t chunk) const { return chunks_[chunk].state; }
  const ChunkStats& stats() const { return stats_; }
  uint64_t peak_chunks() const { return peak_; }
  uint64_t peak_since_mark_chunks() const { return peak_since_mark_; }
  void mark_peak() { peak_since_mark_ = used_; }

  void on_alloc(uint32_t alloc);
  void on_free(uint32_t alloc);

  // The chunks an op touches, each once, with whether it writes them.
  struct Touch {
    uint64_t chunk;
    bool writes;
  };
  void chunks_of(const Op& op, std::vector<Touch>* out);

  // Makes the op's chunks device-resident, choosing victims with `policy` when memory
  // is short (the shim's make_device and obtain_device_memory), and appends what the
  // op must wait for. False when the budget cannot hold the op's own chunks.
  bool prepare(std::span<const Touch> touches, uint64_t tick, uint64_t stream, policy::ResidencyPolicy& policy,
               std::vector<TaskId>* deps);
  // The op was issued as `task` on `stream`.
  void used_by(std::span<const Touch> touches, TaskId task, uint64_t stream);

  // The program's host-to-device copy was issued as `task`, right after `previous` on
  // its stream (no_task: none) (Note [Background evictions yield to uploads] in
  // shim/engine/residency.cpp).
  void issued_upload(TaskId task, TaskId previous);

  // Building blocks for the policies. An eviction runs after its chunk's last use, the
  // copy that brought it back, and the tasks in `after`.
  bool start_eviction(uint64_t chunk, std::span<const TaskId> after = {});
  void reclaim();  // finishes the evictions whose copies are done (the host does not wait)
  // Brings a chunk on the host back ahead of use into free memory; false when none.
  bool bring_back_ahead(uint64_t chunk);
  // Makes room for one chunk now: the shim's obtain_device_memory (may wait).
  // Note [Victims of one op]
  bool obtain(uint64_t tick, policy::ResidencyPolicy& policy);
  void cancel_eviction(uint64_t chunk);
  void touch(uint64_t chunk, uint64_t tick) { chunks_[chunk].last_use_tick = tick; }
  // The shim's keep_headroom: start evictions so that max(2, budget / 16) chunks are
  // free or on their way. The shim calls it at the end of an op's prepare, when a chunk
  // of the op was not ready to use (its slow path): last_prepare_was_slow().
  void keep_headroom(uint64_t tick, policy::ResidencyPolicy& policy);
  bool last_prepare_was_slow() const { return last_prepare_slow_; }
  // Note [Plans] in shim/engine/residency.cpp, on simulated time.
  void apply_plan(std::span<const uint64_t> upcoming, uint64_t tick, policy::ResidencyPolicy& policy);

  // Resident chunks a policy may choose from (those a plan needs only when `include_planned`).
  void candidates(bool include_planned, std::vector<policy::ChunkCandidate>* out) const;

private:
  // Background evictions started now wait for these: the program's uploads on the link
  // (Note [Background evictions yield to uploads]), each once.
  void uploads_to_yield_to(std::vector<TaskId>* out);
  void start_background_evictions(std::span<const uint64_t> victims);

  struct Chunk {
    State state = State::free;
    uint32_t users = 0;
    uint32_t resident_index = 0;  // in resident_, while device
    uint32_t planned_gen = 0;
    uint64_t last_use_tick = 0;
    uint64_t touched_tick = 0;  // dedupe in chunks_of
    uint32_t touch_index = 0;   // its entry in chunks_of's output
    uint64_t last_write_stream = 0;
    TaskId last_use = no_task;
    TaskId last_write = no_task;
    TaskId ready = no_task;       // a copy the next user waits for
    TaskId evict_copy = no_task;  // while evicting
    uint32_t evictions = 0;       // numbers its evictions (evicting_)
  };
  void make_resident(uint64_t chunk);
  void make_not_resident(uint64_t chunk);
  void finish_eviction(uint64_t chunk, bool wait);
  void use_memory();
  void bring_back(uint64_t chunk);

  Simulator& sim_;
  uint64_t budget_;
  std::vector<Placement> placements_;
  std::vector<Chunk> chunks_;
  std::vector<uint64_t> resident_;  // chunks in state device
  // Evictions in flight, oldest first: (chunk, its eviction number). An entry whose
  // chunk is no longer evicting, or evicting again under a later number, is stale and
  // skipped, so a cancelled or freed eviction costs O(1), not a search.
  std::deque<std::pair<uint64_t, uint32_t>> evicting_;
  size_t evicting_count_ = 0;
  bool evicting(uint64_t chunk, uint32_t number) const
  {
    return chunks_[chunk].state == State::evicting && chunks_[chunk].evictions == number;
  }
  // The oldest eviction in flight (stale entries dropped), or nullopt.
  std::optional<uint64_t> oldest_eviction();
  void stop_evicting(uint64_t chunk);
  uint64_t used_ = 0;
  uint64_t peak_ = 0;
  uint64_t peak_since_mark_ = 0;
  uint64_t touch_stamp_ = 0;
  bool last_prepare_slow_ = false;
  uint32_t plan_gen_ = 0;
  ChunkStats stats_;
  // Note [Victims of one op]
  std::vector<uint64_t> victims_;  // best last
  uint64_t victims_tick_ = 0;
  uint32_t victims_plan_gen_ = 0;
  bool been_short_ = false;  // an op has evicted on demand (Note [Headroom once short], shim)
  struct Upload {
    TaskId task;
    bool follows;  // issued right after the previous entry, on the same stream
    bool waited = false;  // background evictions wait for it
  };
  std::vector<Upload> uploads_;  // the program's uploads not known done, oldest first
  static constexpr size_t max_uploads = 8;
  uint64_t victims_wanted_ = 1;
};

}  // namespace oversub::replay
