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
  // `now_ns`: the engine's clock when it saw the op (-1: none), for Note [Early or on
  // demand]; the planner only takes differences of it.
  void on_op(uint64_t op_index, const OpEvent& op, int64_t now_ns = -1);
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

  // Whether small allocations share the slot (Note [Slots]). Safe from another thread.
  bool shared_slot(uint64_t slot) const
  {
    return slot < capacity_ && shared_slot_[slot].load(std::memory_order_relaxed) != 0;
  }

  // Note [Learned peak]: the most slots live allocations have held at once, over
  // everything observed; 0 until the step is learned. Safe from another thread.
  uint64_t learned_peak_slots() const { return learned_peak_slots_.load(std::memory_order_relaxed); }
  // Note [Evicting early]: the engine's budget, in slots (0: none told, nothing rises).
  // Called on the thread that feeds the events; it takes effect from the next op.
  void set_budget_slots(uint64_t slots) { budget_slots_ = slots; }
  // After the last op observed: how many slots live memory is predicted to grow by
  // before the learned step's peak, the op index of that peak, and the op index from
  // which live memory is back within the budget after it; 0, `unknown`, `unknown`
  // until a whole step's live memory has been recorded. Safe from another thread
  // (each value alone; they may straddle one op).
  uint64_t rise_slots() const { return rise_slots_.load(std::memory_order_relaxed); }
  uint64_t rise_peak_op() const { return rise_peak_op_.load(std::memory_order_relaxed); }
  uint64_t rise_fits_op() const { return rise_fits_op_.load(std::memory_order_relaxed); }
  // Note [Early or on demand]: whether the rise is to be acted on now. Safe from another
  // thread.
  bool evicts_early() const { return early_.load(std::memory_order_relaxed); }
  // Where the choice stands, for the report (the planner's thread only): `none` while
  // there is nothing to choose (the step is not known, or it fits the budget).
  enum class EarlyChoice : uint8_t { none, trying, early, on_demand };
  struct EarlyReport {
    EarlyChoice choice = EarlyChoice::none;
    int64_t on_demand_step_ns = 0;  // the steps timed, once chosen
    int64_t early_step_ns = 0;
  };
  EarlyReport early_report() const;

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
  void record_live(const OpPosition& pos, uint64_t op_index, int64_t now_ns);

  LookaheadParams params_;
  StepLearner learner_;
  uint64_t capacity_;
  std::unique_ptr<std::atomic<uint64_t>[]> next_use_;
  std::unique_ptr<std::atomic<uint64_t>[]> free_op_;
  std::unique_ptr<std::atomic<uint8_t>[]> shared_slot_;
  std::unordered_map<AllocId, Placement> allocs_;
  std::unordered_map<uint64_t, std::vector<AllocId>> shared_slots_;  // slot -> its allocations
  std::unordered_map<LogicalId, AllocId> live_by_logical_;
  uint64_t live_slots_ = 0;
  uint64_t peak_slots_ = 0;
  std::atomic<uint64_t> learned_peak_slots_{0};
  // Note [Evicting early]: live slots while the op at each phase ran, in the last step
  // (kNotRecorded where not yet seen), and the phase of their maximum.
  static constexpr uint64_t kNotRecorded = ~uint64_t{0};
  TemplateId curve_template_ = no_template;
  std::vector<uint64_t> live_by_phase_;
  uint64_t curve_unrecorded_ = 0;
  uint32_t curve_peak_phase_ = 0;
  uint32_t curve_fits_after_peak_ = 0;  // ops from the peak until live slots fit the budget
  bool curve_valid_ = false;
  uint64_t budget_slots_ = 0;
  uint64_t curve_budget_slots_ = 0;  // the budget curve_fits_after_peak_ was found for
  uint32_t fits_after_peak() const;
  // Note [Early or on demand]
  enum class Trial : uint8_t { none, on_demand_first, on_demand, early_first, early, decided };
  Trial trial_ = Trial::none;
  static constexpr uint32_t kRetimeAfterSteps = 200;
  uint32_t decided_steps_ = 0;  // steps since the choice was made
  int64_t step_started_ns_ = -1;
  int64_t on_demand_step_ns_ = 0;
  int64_t early_step_ns_ = 0;
  std::atomic<bool> early_{false};
  void time_step(int64_t now_ns);
  std::atomic<uint64_t> rise_slots_{0};
  std::atomic<uint64_t> rise_peak_op_{unknown};
  std::atomic<uint64_t> rise_fits_op_{unknown};
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
// Note [Evicting early]
// ~~~~~~~~~~~~~~~~~~~~~
// On demand, an eviction starts when an op finds memory full, so in a forward pass
// that outgrows the budget the device-to-host link idles until the budget is reached
// and then runs flat out while the ops wait for it. When the step is link-bound
// (BERT-large at half its footprint on a PCIe host) that idle start is what the step
// loses against vDNN, which offloads from the first layer on. Evicting the same
// victims earlier costs nothing more: Belady's victims for the peak are the chunks
// whose next use comes furthest after it, and most exist long before it (the first
// layers' activations, the optimizer state), so their copies can run as soon as
// their last use before the peak has been issued.
// So the planner records how many slots live allocations hold while each op of the
// step runs (the last step's curve) and the phase of its maximum; after each op it
// publishes the rise still to come before that peak (peak less the slots live now),
// the op index of the peak, and the op index from which live memory fits the budget
// again after it. When the learned peak exceeds the budget, the engine keeps that many
// chunks free or on their way, choosing the victims whose predicted next use comes no
// sooner than memory fits again (or which are freed, unused, after the peak),
// furthest first: the growth then lands in memory that was emptied ahead of it, and
// the chunks moved are the ones the peak would have forced out anyway. Chunks needed
// sooner are never taken for this, so nothing evicted early has to come back while
// memory is still short. The engines ask
// only where they keep headroom (after an op that took the slow path), off the hot
// path. The curve is the previous step's: a step that changes shape is predicted one
// step late, and ops short of memory still evict on demand. Two more rules come from
// the replay:
//  - the victims are never slots small allocations share: the slot being filled takes
//    new small buffers after its prediction was made, and they are used at once (a
//    3D U-Net's batch-norm statistics: its early eviction was cancelled every few ops,
//    and each cancelled copy made the next op wait for the whole queue);
//  - the rise runs to the step's peak wherever it lies, past the device sync that ends
//    a step included: evicting during the optimizer, while the link idles, for the
//    next forward pass is most of the gain on BERT-large (427 to 390 ms at half its
//    footprint on h100-sxm).
//
// Note [Early or on demand]
// ~~~~~~~~~~~~~~~~~~~~~~~~~
// Evicting early pays only where the link limits the step. Where compute does (a fast
// link: gh200, the V100's NVLink), on-demand evictions already hide behind compute,
// and early ones cost a little: busy victims hold up our in-order device-to-host queue
// until the device reaches their ops, and copies still queued at the step's device
// sync lengthen the step (BERT-large on v100-32gb-nvlink at 75%: 977 ms against 968
// ms on demand). Which case a step is depends on the link's speed against the
// kernels', which neither the planner nor the shim knows ahead. So it is measured:
// once the memory curve is whole and its peak exceeds the budget, the planner times
// one step on demand and then, evicting early, a second one (the first step evicting
// early is not timed: the host's lead on the device changes in it, and its time is
// not the mode's), and keeps the faster mode. It times both again every 200 steps
// (kRetimeAfterSteps; first an untimed step on demand when it was evicting early), for
// as long as the template and the budget stay: a choice made while the program warms
// up (cuDNN's autotuning, a caching allocator growing) would otherwise last the whole
// run. Timing again costs at most two steps in the slower mode per 200. A step is timed from its phase 0 to the next on the engine's clock,
// given with each op (the shim's planner thread reads CLOCK_MONOTONIC as it drains
// its ring; the replay gives simulated host time); the planner only takes
// differences. Without a clock nothing can be compared, and it evicts early. The
// replay's measured step comes after the choice settles (Note [Replay steps] in
// tracer/replay/workload.h). Across the 108 rows of the policy benchmarks below the
// footprint it kept the faster mode in every one (within 0.05% of the better of the
// two modes run alone).
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
  // Note [Evicting early]: the planner's predicted rise, once the learned peak exceeds
  // the budget; victims by furthest predicted next use (or free) beyond the rise's tick,
  // busy or not.
  Rise predicted_rise(std::uint64_t budget_chunks) const override;
  void choose_early_victims(std::span<const ChunkCandidate> resident, std::size_t count, std::uint64_t op_tick,
                            const Rise& rise, std::vector<std::uint64_t>* victims) override;

private:
  const LookaheadPlanner* planner_;
};

}  // namespace oversub::policy
