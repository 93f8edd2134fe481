// The lookahead planner and policy: see lookahead.h.
#include "policy/lookahead.h"

#include <algorithm>
#include <optional>
#include <unordered_set>

namespace oversub::policy {

LookaheadPlanner::LookaheadPlanner(uint64_t slot_capacity, LookaheadParams params)
  : params_(params),
    learner_(params.learner),
    capacity_(slot_capacity),
    next_use_(new std::atomic<uint64_t>[slot_capacity]),
    free_op_(new std::atomic<uint64_t>[slot_capacity]),
    shared_slot_(new std::atomic<uint8_t>[slot_capacity])
{
  for (uint64_t i = 0; i < capacity_; ++i) {
    next_use_[i].store(unknown, std::memory_order_relaxed);
    free_op_[i].store(unknown, std::memory_order_relaxed);
    shared_slot_[i].store(0, std::memory_order_relaxed);
  }
}

void LookaheadPlanner::on_alloc(AllocId id, uint64_t bytes, SiteId site, uint64_t first_slot, uint32_t slot_count,
                                bool shared)
{
  const LogicalId logical = learner_.on_alloc(AllocEvent{id, bytes, site, 0});
  allocs_[id] = Placement{first_slot, shared ? 1 : slot_count, shared, logical};
  if (shared) {
    std::vector<AllocId>& users = shared_slots_[first_slot];
    live_slots_ += users.empty() ? 1 : 0;
    users.push_back(id);
    if (first_slot < capacity_) {
      shared_slot_[first_slot].store(1, std::memory_order_relaxed);  // Note [Evicting early]
    }
  } else {
    live_slots_ += slot_count;
  }
  peak_slots_ = std::max(peak_slots_, live_slots_);
  live_by_logical_[logical] = id;
  // A fresh allocation's slots carry nothing from their previous owner (a shared slot
  // keeps what its other allocations predicted).
  for (uint32_t k = 0; !shared && k < slot_count && first_slot + k < capacity_; ++k) {
    next_use_[first_slot + k].store(unknown, std::memory_order_relaxed);
    free_op_[first_slot + k].store(unknown, std::memory_order_relaxed);
    shared_slot_[first_slot + k].store(0, std::memory_order_relaxed);
  }
}

void LookaheadPlanner::on_free(AllocId id)
{
  const auto it = allocs_.find(id);
  if (it == allocs_.end()) {
    return;
  }
  const auto live = live_by_logical_.find(it->second.logical);
  if (live != live_by_logical_.end() && live->second == id) {
    live_by_logical_.erase(live);
  }
  if (it->second.shared) {
    const auto slot = shared_slots_.find(it->second.first_slot);
    if (slot != shared_slots_.end()) {
      std::erase(slot->second, id);
      if (slot->second.empty()) {
        shared_slots_.erase(slot);
        --live_slots_;
      }
    }
  } else {
    live_slots_ -= std::min<uint64_t>(live_slots_, it->second.slot_count);
  }
  allocs_.erase(it);
  learner_.on_free(FreeEvent{id});
}

bool LookaheadPlanner::ready() const
{
  const OpPosition& pos = learner_.position();
  return pos.state == IterationState::locked && learner_.predictor().recorded_steps(pos.template_id) >= 1;
}

void LookaheadPlanner::mark(uint64_t slot, uint64_t value, uint64_t op_index)
{
  if (slot >= capacity_) {
    return;
  }
  std::atomic<uint64_t>& cell = next_use_[slot];
  const uint64_t old = cell.load(std::memory_order_relaxed);
  // A slot shared by small allocations keeps the earliest use still pending.
  if (old != unknown && old != no_use && old > op_index && value != unknown && old < value) {
    return;
  }
  cell.store(value, std::memory_order_relaxed);
}

void LookaheadPlanner::mark_shared(uint64_t slot, bool predicting, bool complete, const OpPosition& pos,
                                   uint64_t op_index)
{
  if (slot >= capacity_) {
    return;
  }
  uint64_t value = unknown;
  if (predicting) {
    uint32_t nearest = 0;
    const auto allocs = shared_slots_.find(slot);
    if (allocs != shared_slots_.end()) {
      for (AllocId id : allocs->second) {
        const auto next =
          learner_.predictor().next_use(pos.template_id, LogicalChunk{allocs_.at(id).logical, 0}, pos.phase);
        if (next && (nearest == 0 || next->distance_ops < nearest)) {
          nearest = next->distance_ops;
        }
      }
    }
    value = nearest != 0 ? op_index + nearest : complete ? no_use : unknown;
  }
  next_use_[slot].store(value, std::memory_order_relaxed);
}

void LookaheadPlanner::on_op(uint64_t op_index, const OpEvent& op, int64_t now_ns)
{
  const OpPosition pos = learner_.on_op(op);
  last_op_index_ = op_index;
  ++ops_observed_;
  if (pos.prediction_broke) {
    ++predictions_broken_;
  }
  const bool predicting = ready() && pos.matched;
  // Note [Learned peak]
  learned_peak_slots_.store(ready() ? peak_slots_ : 0, std::memory_order_relaxed);
  const bool complete = predicting && learner_.predictor().complete(pos.template_id);
  record_live(pos, op_index, now_ns);
  for (const Access& a : op.accesses.items()) {
    const auto it = allocs_.find(a.alloc_id);
    if (it == allocs_.end()) {
      continue;
    }
    const Placement& place = it->second;
    if (place.shared) {
      mark_shared(place.first_slot, predicting, complete, pos, op_index);
      continue;
    }
    const uint32_t first = place.shared ? 0 : a.chunk_first;
    const uint32_t end = place.shared ? 1 : std::min(a.chunk_first + a.chunk_count, place.slot_count);
    // Note [Predicted frees]: how many ops until the allocation is freed, if it is.
    std::optional<uint32_t> free_in;
    if (predicting) {
      if (const auto f = learner_.predictor().free_phase(pos.template_id, place.logical)) {
        const uint32_t period = pos.period_ops;
        free_in = (*f + period - pos.phase % period) % period;
      }
    }
    for (uint32_t k = first; k < end; ++k) {
      uint64_t value = unknown;
      uint64_t freed = unknown;
      if (predicting) {
        // A shared slot is chunk 0 of each of its allocations.
        const auto next = learner_.predictor().next_use(pos.template_id, LogicalChunk{place.logical, k}, pos.phase);
        // Until a second step has been recorded, a buffer from before the lock may
        // have uses not learned yet (Note [Next-use distances]): no use is unknown.
        value = next ? op_index + next->distance_ops : complete ? no_use : unknown;
        if (free_in && (next ? *free_in < next->distance_ops : complete)) {
          freed = op_index + *free_in;
        }
      }
      mark(place.first_slot + k, value, op_index);
      if (place.first_slot + k < capacity_) {
        free_op_[place.first_slot + k].store(freed, std::memory_order_relaxed);
      }
    }
  }
}

// Note [Evicting early]: ops from the peak until live memory is back within the budget
// (a whole period if it never is).
uint32_t LookaheadPlanner::fits_after_peak() const
{
  const auto period = static_cast<uint32_t>(live_by_phase_.size());
  for (uint32_t d = 1; d < period; ++d) {
    if (live_by_phase_[(curve_peak_phase_ + d) % period] <= budget_slots_) {
      return d;
    }
  }
  return period;
}

// Note [Early or on demand]: called at the first op of each step (phase 0).
void LookaheadPlanner::time_step(int64_t now_ns)
{
  const bool timed = now_ns >= 0 && step_started_ns_ >= 0;
  const int64_t took = timed ? now_ns - step_started_ns_ : 0;
  step_started_ns_ = now_ns;
  if (!curve_valid_ || budget_slots_ == 0 || live_by_phase_[curve_peak_phase_] <= budget_slots_) {
    trial_ = Trial::none;  // nothing to choose: the step fits, or is not known yet
    early_.store(false, std::memory_order_relaxed);
    return;
  }
  switch (trial_) {
    case Trial::none:  // the first whole step that could evict early runs on demand
      trial_ = Trial::on_demand;
      early_.store(false, std::memory_order_relaxed);
      break;
    case Trial::on_demand_first:  // timing again after evicting early: this step changes mode
      trial_ = Trial::on_demand;
      break;
    case Trial::on_demand:
      on_demand_step_ns_ = took;
      trial_ = Trial::early_first;  // not timed: the host's lead on the device changes in it
      early_.store(true, std::memory_order_relaxed);
      break;
    case Trial::early_first:
      trial_ = Trial::early;
      break;
    case Trial::early:
      early_step_ns_ = took;
      trial_ = Trial::decided;
      // Without a clock (now_ns < 0) there is nothing to compare: evict early.
      early_.store(!timed || early_step_ns_ <= on_demand_step_ns_, std::memory_order_relaxed);
      decided_steps_ = 0;
      break;
    case Trial::decided:
      if (++decided_steps_ >= kRetimeAfterSteps) {  // time both again, on demand first
        trial_ = early_.load(std::memory_order_relaxed) ? Trial::on_demand_first : Trial::on_demand;
        early_.store(false, std::memory_order_relaxed);
      }
      break;
  }
}

LookaheadPlanner::EarlyReport LookaheadPlanner::early_report() const
{
  switch (trial_) {
    case Trial::none:
      return {};
    case Trial::decided:
      return {evicts_early() ? EarlyChoice::early : EarlyChoice::on_demand, on_demand_step_ns_, early_step_ns_};
    default:
      return {EarlyChoice::trying, 0, 0};
  }
}

// Note [Evicting early]
void LookaheadPlanner::record_live(const OpPosition& pos, uint64_t op_index, int64_t now_ns)
{
  const auto publish = [&](uint64_t rise, uint64_t peak_op, uint64_t fits_op) {
    rise_slots_.store(rise, std::memory_order_relaxed);
    rise_peak_op_.store(peak_op, std::memory_order_relaxed);
    rise_fits_op_.store(fits_op, std::memory_order_relaxed);
  };
  if (!ready() || !pos.matched || pos.period_ops == 0) {
    publish(0, unknown, unknown);
    return;
  }
  const uint32_t period = pos.period_ops;
  if (curve_template_ != pos.template_id || live_by_phase_.size() != period) {
    curve_template_ = pos.template_id;
    live_by_phase_.assign(period, kNotRecorded);
    curve_unrecorded_ = period;
    curve_valid_ = false;
    trial_ = Trial::none;
    step_started_ns_ = -1;
  }
  const uint32_t phase = pos.phase;
  curve_unrecorded_ -= live_by_phase_[phase] == kNotRecorded ? 1 : 0;
  live_by_phase_[phase] = live_slots_;
  if (phase == 0) {
    time_step(now_ns);
  }
  // The peak, and where live memory fits the budget again after it, are found again
  // once per step, when the step's curve is whole (and when the budget changes).
  const bool budget_changed = curve_budget_slots_ != budget_slots_;
  if (curve_unrecorded_ == 0 && (phase + 1 == period || !curve_valid_ || budget_changed)) {
    curve_peak_phase_ = static_cast<uint32_t>(
      std::max_element(live_by_phase_.begin(), live_by_phase_.end()) - live_by_phase_.begin());
    curve_budget_slots_ = budget_slots_;
    curve_fits_after_peak_ = fits_after_peak();
    if (!curve_valid_ || budget_changed) {
      trial_ = Trial::none;  // a new curve or budget: choose again
    }
    curve_valid_ = true;
  }
  if (!curve_valid_) {
    publish(0, unknown, unknown);
    return;
  }
  const uint64_t peak = live_by_phase_[curve_peak_phase_];
  const uint32_t distance = (curve_peak_phase_ + period - phase) % period;
  publish(peak > live_slots_ && distance > 0 ? peak - live_slots_ : 0, op_index + distance,
          op_index + distance + curve_fits_after_peak_);
}

void LookaheadPlanner::upcoming(uint64_t from_op, size_t max_entries, std::vector<uint64_t>* out) const
{
  if (!ready() || max_entries == 0) {
    return;
  }
  const OpPosition& pos = learner_.position();
  const NextUsePredictor& predictor = learner_.predictor();
  const uint32_t period = predictor.period_ops(pos.template_id);
  if (period == 0) {
    return;
  }
  const uint64_t ahead = from_op > last_op_index_ ? from_op - last_op_index_ : 0;
  if (ahead >= period) {
    return;  // the engine is a whole step ahead: the planner cannot place it
  }
  const uint32_t start = static_cast<uint32_t>((pos.phase + ahead) % period);
  std::unordered_set<uint64_t> seen_slots;
  std::unordered_set<uint64_t> seen_fresh;
  // Note [Predicted frees] in next_use.h: chunks that frees inside the window hand back,
  // not yet claimed by a fresh buffer after them; and the fresh chunks each buffer not
  // allocated yet claimed (its own free hands them back).
  uint64_t freed_chunks = 0;
  std::unordered_map<LogicalId, uint64_t> fresh_chunks;
  const auto count_frees = [&](uint32_t phase) {
    for (LogicalId buffer : predictor.frees_at(pos.template_id, phase)) {
      if (const auto live = live_by_logical_.find(buffer); live != live_by_logical_.end()) {
        const Placement& place = allocs_.at(live->second);
        freed_chunks += place.shared ? 0 : place.slot_count;  // a shared slot outlives one of its users
      } else if (const auto claimed = fresh_chunks.find(buffer); claimed != fresh_chunks.end()) {
        freed_chunks += claimed->second;
        fresh_chunks.erase(claimed);
      }
    }
  };
  const uint32_t window = std::min(params_.window_ops, period);
  // Frees up to the engine's op have happened there (or are told when they do): the
  // engine counts that memory as free already. Only those after later ops count.
  for (uint32_t j = 1; j <= window && out->size() < max_entries; ++j) {
    const uint32_t phase = (start + j) % period;
    for (const LogicalChunk& c : predictor.chunks_at(pos.template_id, phase)) {
      const auto live = live_by_logical_.find(c.buffer);
      if (live == live_by_logical_.end()) {
        if (seen_fresh.insert(mix_hash(c.buffer, c.chunk)).second) {
          if (freed_chunks > 0) {
            --freed_chunks;  // takes memory a free before it handed back: nothing to reserve
          } else {
            out->push_back(fresh);
          }
          ++fresh_chunks[c.buffer];
        }
      } else {
        const Placement& place = allocs_.at(live->second);
        if (c.chunk >= place.slot_count) {
          continue;
        }
        const uint64_t slot = place.first_slot + c.chunk;
        if (!seen_slots.insert(slot).second) {
          continue;
        }
        out->push_back(slot);
      }
      if (out->size() == max_entries) {
        break;
      }
    }
    count_frees(phase);
  }
}

void LookaheadPolicy::choose_victims(std::span<const ChunkCandidate> resident, std::size_t count,
                                     std::uint64_t op_tick, std::vector<std::uint64_t>* victims)
{
  struct Ranked {
    int tier;        // 0: no further use, 1: predicted use or free, 2: unknown, 3: busy
    uint64_t order;  // smaller goes first within a tier
    uint64_t chunk;
  };
  std::vector<Ranked> eligible;
  eligible.reserve(resident.size());
  for (const ChunkCandidate& c : resident) {
    if (c.last_use_tick >= op_tick) {
      continue;
    }
    if (c.busy) {  // Note [Victims that wait] in residency_policy.h
      eligible.push_back({3, c.last_use_tick, c.chunk});
      continue;
    }
    const uint64_t next = planner_->next_use_op(c.chunk);
    const uint64_t freed = planner_->free_op(c.chunk);
    if (freed != LookaheadPlanner::unknown && freed >= op_tick) {
      // Note [Victim order]: its memory comes back by itself at that op.
      eligible.push_back({1, ~freed, c.chunk});
    } else if (next == LookaheadPlanner::no_use) {
      eligible.push_back({0, c.last_use_tick, c.chunk});
    } else if (next != LookaheadPlanner::unknown && next >= op_tick) {
      eligible.push_back({1, ~next, c.chunk});  // furthest first
    } else {
      eligible.push_back({2, c.last_use_tick, c.chunk});
    }
  }
  count = std::min(count, eligible.size());
  std::partial_sort(eligible.begin(), eligible.begin() + static_cast<std::ptrdiff_t>(count), eligible.end(),
                    [](const Ranked& a, const Ranked& b) {
                      if (a.tier != b.tier) return a.tier < b.tier;
                      if (a.order != b.order) return a.order < b.order;
                      return a.chunk < b.chunk;
                    });
  for (std::size_t i = 0; i < count; ++i) {
    victims->push_back(eligible[i].chunk);
  }
}

std::uint64_t LookaheadPolicy::proactive_evictions(std::uint64_t wanted, std::uint64_t budget_chunks) const
{
  const uint64_t peak = planner_->learned_peak_slots();
  return peak != 0 && peak <= budget_chunks ? 0 : wanted;
}

ResidencyPolicy::Rise LookaheadPolicy::predicted_rise(std::uint64_t budget_chunks) const
{
  const uint64_t peak = planner_->learned_peak_slots();
  if (peak == 0 || peak <= budget_chunks) {
    return {};
  }
  if (!planner_->evicts_early()) {
    return {};  // Note [Early or on demand]
  }
  const uint64_t peak_op = planner_->rise_peak_op();
  const uint64_t fits_op = planner_->rise_fits_op();
  if (peak_op == LookaheadPlanner::unknown || fits_op == LookaheadPlanner::unknown) {
    return {};
  }
  return Rise{planner_->rise_slots(), peak_op, fits_op};
}

void LookaheadPolicy::choose_early_victims(std::span<const ChunkCandidate> resident, std::size_t count,
                                           std::uint64_t op_tick, const Rise& rise,
                                           std::vector<std::uint64_t>* victims)
{
  struct Ranked {
    uint64_t returns;  // the tick its memory would be wanted back (or freed); larger goes first
    uint64_t chunk;
  };
  std::vector<Ranked> eligible;
  for (const ChunkCandidate& c : resident) {
    if (c.last_use_tick >= op_tick || planner_->shared_slot(c.chunk)) {
      continue;
    }
    const uint64_t next = planner_->next_use_op(c.chunk);
    const uint64_t freed = planner_->free_op(c.chunk);
    if (freed != LookaheadPlanner::unknown && freed >= op_tick) {
      // Freed, not used, after the peak: one copy out, none back.
      if (freed > rise.peak_tick) {
        eligible.push_back({freed, c.chunk});
      }
    } else if (next == LookaheadPlanner::no_use) {
      eligible.push_back({LookaheadPlanner::no_use, c.chunk});
    } else if (next != LookaheadPlanner::unknown && next >= rise.fits_tick) {
      eligible.push_back({next, c.chunk});
    }
  }
  count = std::min(count, eligible.size());
  std::partial_sort(eligible.begin(), eligible.begin() + static_cast<std::ptrdiff_t>(count), eligible.end(),
                    [](const Ranked& a, const Ranked& b) {
                      return a.returns != b.returns ? a.returns > b.returns : a.chunk < b.chunk;
                    });
  for (std::size_t i = 0; i < count; ++i) {
    victims->push_back(eligible[i].chunk);
  }
}

}  // namespace oversub::policy
