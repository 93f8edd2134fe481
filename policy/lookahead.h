// The lookahead policy (OVERSUB_POLICY=lookahead, the default): learn the training step
// from the op stream (StepLearner), then evict the chunk whose next use is furthest away
// and bring chunks back ahead of the ops that need them.
//
// Note [Slots]
// ~~~~~~~~~~~~
// The planner speaks of slots: the engine's units of residency (the live shim's 2 MiB
// arena chunks; replay's simulated ones). An allocation covers `slot_count` slots from
// `first_slot`, chunk k of the allocation being slot first_slot + k. Small allocations
// share a slot (Note [Small allocations share a chunk] in shim/engine/arena.h): they
// are `shared`, and all their accesses land on that one slot.
//
// Note [Predicted next use]
// ~~~~~~~~~~~~~~~~~~~~~~~~~
// After each op the planner stores, for every slot the op touched, the op index of the
// slot's next use: the op index now plus the next-use distance of the learned step
// (Note [Next-use distances]). The engine numbers its ops the same way (one tick per
// submitted op), so the engine compares those numbers with its own tick without asking
// the planner anything: a value below the tick is overdue (a prediction that did not
// come true) and counts as unknown. A slot several allocations share keeps the
// earliest pending use: after any access to it, the minimum over all its allocations'
// predicted next uses (one value cannot remember that for many tensors, and a shared
// chunk of biases is needed by nearly every layer). Before the step is learned, every touched slot is unknown and
// victims are chosen least recently used first, like lru.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policy/learner.h"
#include "policy/residency_policy.h"

namespace oversub::policy {

struct LookaheadParams {
  LearnerParams learner;
  // How many ops ahead upcoming() looks for chunks to bring back.
  uint32_t window_ops = 256;
};

class LookaheadPlanner {
public:
  static constexpr uint64_t no_use = ~uint64_t{0};  // the learned step never uses the slot
  static constexpr uint64_t unknown = 0;            // nothing predicted

  // `slot_capacity`: the number of slots the engine has (slots are 0..capacity-1).
  LookaheadPlanner(uint64_t slot_capacity, LookaheadParams params = {});

  // The event stream, in the order the engine saw it.
  void on_alloc(AllocId id, uint64_t bytes, SiteId site, uint64_t first_slot, uint32_t slot_count, bool shared);
  void on_free(AllocId id);
  // `op_index`: the engine's number for this op (Note [Predicted next use]), increasing.
  void on_op(uint64_t op_index, const OpEvent& op);
  void on_sync(const SyncEvent& sync) { learner_.on_sync(sync); }

  // Whether predictions are made: the step is learned and its uses are complete.
  bool ready() const;
  // What the ops after op `from_op` use (from_op at or after the last op observed: the
  // engine may be ahead of the planner), in the order of first use within the next
  // `window_ops` ops, at most `max_entries`, no repeats: the slot of a live allocation's
  // chunk, or `fresh` for a chunk of a buffer not allocated yet (it will need memory
  // but has nothing to bring back).
  static constexpr uint64_t fresh = ~uint64_t{0};
  void upcoming(uint64_t from_op, size_t max_entries, std::vector<uint64_t>* out) const;
  // Note [Predicted next use]. Safe to call from another thread than the one feeding
  // events (the engine asks while the planner's thread learns).
  uint64_t next_use_op(uint64_t slot) const
  {
    return slot < capacity_ ? next_use_[slot].load(std::memory_order_relaxed) : unknown;
  }
  // Note [Predicted frees] in next_use.h: the op index after which the slot's
  // allocation is predicted to be freed, when that comes before its next use (or it has
  // none); `unknown` otherwise. Set with next_use_op, read the same way.
  uint64_t free_op(uint64_t slot) const
  {
    return slot < capacity_ ? free_op_[slot].load(std::memory_order_relaxed) : unknown;
  }

  // Note [Learned peak]: the most slots live allocations have held at once, over
  // everything observed; 0 until the step is learned. Safe from another thread.
  uint64_t learned_peak_slots() const { return learned_peak_slots_.load(std::memory_order_relaxed); }

  const StepLearner& learner() const { return learner_; }
  uint64_t ops_observed() const { return ops_observed_; }
  uint64_t predictions_broken() const { return predictions_broken_; }

private:
  struct Placement {
    uint64_t first_slot = 0;
    uint32_t slot_count = 0;
    bool shared = false;
    LogicalId logical = no_logical;
  };
  void mark(uint64_t slot, uint64_t value, uint64_t op_index);
  void mark_shared(uint64_t slot, bool predicting, bool complete, const OpPosition& pos, uint64_t op_index);

  LookaheadParams params_;
  StepLearner learner_;
  uint64_t capacity_;
  std::unique_ptr<std::atomic<uint64_t>[]> next_use_;
  std::unique_ptr<std::atomic<uint64_t>[]> free_op_;
  std::unordered_map<AllocId, Placement> allocs_;
  std::unordered_map<uint64_t, std::vector<AllocId>> shared_slots_;  // slot -> its allocations
  std::unordered_map<LogicalId, AllocId> live_by_logical_;
  uint64_t live_slots_ = 0;
  uint64_t peak_slots_ = 0;
  std::atomic<uint64_t> learned_peak_slots_{0};
  uint64_t last_op_index_ = 0;
  uint64_t ops_observed_ = 0;
  uint64_t predictions_broken_ = 0;
};

// Note [Learned peak]
// ~~~~~~~~~~~~~~~~~~~
// The planner counts the slots live allocations hold (a shared slot once, while any of
// its allocations lives) and keeps the most held at once over everything observed.
// Once the step is learned, that peak covers a whole step, so if it is within the
// budget the program's live memory never exceeds it: every chunk it uses fits, and an
// eviction ahead of demand (headroom, room reserved by a plan) would only copy out data
// that must come back (or never needs to go). The policy then starts none; an op
// short of memory (the step changed, the budget shrank) still evicts on demand. The
// peak is over all steps seen, never lowered: a later, smaller step keeps the caution
// of the larger one.
//
// Note [Victim order]
// ~~~~~~~~~~~~~~~~~~~
// Evicting a chunk buys its memory until the op that ends the purchase: its next use,
// when it must come back (a copy each way), or its predicted free (Note [Predicted
// frees] in next_use.h), when the memory would have come back anyway (the copy out was
// the whole cost, and it bought only the ops before the free). So a chunk freed before
// its next use ranks by its free, not by its next use: one freed right after the op
// that wants memory is nearly worthless to evict, however far its next use (as the
// cyclic step reads it, in the next step, under a new allocation) or if it has none.
// Keeping it and evicting a chunk used later lets its free serve the next request,
// where evicting it would leave that request to evict again: under sustained pressure
// (a forward pass piling up activations) that is one eviction fewer each time.
//
// The ResidencyPolicy face of the planner: victims by furthest predicted next use.
class LookaheadPolicy final : public ResidencyPolicy {
public:
  explicit LookaheadPolicy(const LookaheadPlanner* planner) : planner_(planner) {}
  std::string_view name() const override { return "lookahead"; }
  // Order: slots the learned step does not use again (nor frees), then predicted uses
  // and frees (Note [Victim order]) furthest first, then slots with nothing predicted,
  // least recently used first; busy slots after all of those, least recently used
  // first (Note [Victims that wait] in residency_policy.h). Slots the op itself uses
  // (last_use_tick >= op_tick) are never chosen.
  void choose_victims(std::span<const ChunkCandidate> resident, std::size_t count, std::uint64_t op_tick,
                      std::vector<std::uint64_t>* victims) override;
  // None once the learned step is known to fit the budget (Note [Learned peak]).
  std::uint64_t proactive_evictions(std::uint64_t wanted, std::uint64_t budget_chunks) const override;

private:
  const LookaheadPlanner* planner_;
};

}  // namespace oversub::policy
