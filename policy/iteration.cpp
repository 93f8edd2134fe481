// Iteration detection: see Note [Iteration detection] and Note [Choosing the period]
// in iteration.h.
#include "policy/iteration.h"

#include <algorithm>
#include <limits>

namespace oversub::policy {
namespace {

// Polynomial rolling hash over signatures, modulo 2^64. Signatures are already well
// mixed, and every window hit is verified signature by signature, so a weak hash only
// costs a wasted comparison.
constexpr uint64_t window_base = 0x100000001b3ULL;
constexpr uint32_t ambiguous_phase = std::numeric_limits<uint32_t>::max();

uint32_t cyclic(int64_t value, uint32_t period)
{
  const int64_t p = period;
  return static_cast<uint32_t>(((value % p) + p) % p);
}

uint64_t cyclic_window_hash(const std::vector<OpSignature>& ops, uint32_t last_phase, uint32_t window)
{
  const auto period = static_cast<uint32_t>(ops.size());
  uint64_t h = 0;
  for (uint32_t t = 0; t < window; ++t) {
    const int64_t at = int64_t{last_phase} - int64_t{window} + 1 + t;
    h = h * window_base + ops[cyclic(at, period)];
  }
  return h;
}

}  // namespace

IterationDetector::IterationDetector(IterationParams params) : params_(params)
{
  params_.window_ops = std::max<uint32_t>(params_.window_ops, 1);
  params_.max_period_ops = std::max<uint32_t>(params_.max_period_ops, 2);
  params_.max_candidates = std::max<uint32_t>(params_.max_candidates, 1);
  params_.max_templates = std::max<uint32_t>(params_.max_templates, 1);
  params_.max_cycle_factor = std::max<uint32_t>(params_.max_cycle_factor, 1);
  for (uint32_t k = 0; k < params_.window_ops; ++k) {
    window_power_ *= window_base;
  }
  next_prune_op_ = params_.max_period_ops;
}

// --- history ring ---------------------------------------------------------------------
// Holds enough to look max_period_ops back and to drop the oldest op of a window.

bool IterationDetector::history_has(uint64_t op_index) const
{
  const uint64_t capacity = uint64_t{params_.max_period_ops} + params_.window_ops + 1;
  return op_index < ops_seen_ && ops_seen_ - op_index <= capacity;
}

OpSignature IterationDetector::history_at(uint64_t op_index) const
{
  const uint64_t capacity = uint64_t{params_.max_period_ops} + params_.window_ops + 1;
  return history_[op_index % capacity];
}

void IterationDetector::push_history(OpSignature signature)
{
  const uint64_t capacity = uint64_t{params_.max_period_ops} + params_.window_ops + 1;
  if (history_.size() < capacity) {
    history_.push_back(signature);  // grows to capacity once, then a ring
  } else {
    history_[ops_seen_ % capacity] = signature;
  }
  ++ops_seen_;
}

// --- discovery and confirmation --------------------------------------------------------

void IterationDetector::update_candidates(uint64_t i)
{
  const OpSignature now = history_at(i);
  for (Candidate& c : candidates_) {
    if (i >= c.period_ops && history_at(i - c.period_ops) == now) {
      ++c.run_ops;
    } else {
      c.run_ops = 0;
    }
  }
}

uint64_t IterationDetector::backward_run(uint64_t i, uint32_t period) const
{
  uint64_t run = 0;
  for (uint64_t t = i; t >= period && history_has(t - period); --t) {
    if (history_at(t) != history_at(t - period)) {
      break;
    }
    ++run;
    if (t == period) {
      break;
    }
  }
  return run;
}

void IterationDetector::discover(uint64_t i)
{
  if (i >= next_prune_op_) {
    std::erase_if(window_last_op_, [&](const auto& entry) {
      return entry.second + params_.max_period_ops < i;
    });
    next_prune_op_ = i + params_.max_period_ops;
  }
  auto [it, inserted] = window_last_op_.try_emplace(window_hash_, i);
  if (inserted) {
    return;
  }
  const uint64_t distance = i - it->second;
  it->second = i;
  if (distance == 0 || distance > params_.max_period_ops) {
    return;
  }
  const auto period = static_cast<uint32_t>(distance);
  const bool known = std::any_of(candidates_.begin(), candidates_.end(),
    [&](const Candidate& c) { return c.period_ops == period; });
  if (known) {
    return;
  }
  const uint64_t run = backward_run(i, period);
  if (run < params_.window_ops) {
    return;  // a hash collision, not a repeat
  }
  if (candidates_.size() < params_.max_candidates) {
    candidates_.push_back({period, run});
    return;
  }
  // Full: replace the weakest candidate, but never the period we are locked to.
  const uint32_t active_period = active_ ? templates_[*active_].period_ops() : 0;
  Candidate* weakest = nullptr;
  for (Candidate& c : candidates_) {
    if (c.period_ops != active_period && (weakest == nullptr || c.run_ops < weakest->run_ops)) {
      weakest = &c;
    }
  }
  if (weakest != nullptr && weakest->run_ops < run) {
    *weakest = {period, run};
  }
}

const IterationDetector::Candidate* IterationDetector::best_confirmed(uint32_t min_period_exclusive,
                                                                     uint32_t max_period) const
{
  const Candidate* best = nullptr;
  for (const Candidate& c : candidates_) {
    // A whole period plus one window: a single left-out (or inserted) op makes the ops
    // one period apart (k steps minus one op) match for exactly one period, never more.
    const uint64_t needed =
      std::max<uint64_t>(uint64_t{c.period_ops} + params_.window_ops, params_.min_confirm_ops);
    if (c.period_ops <= min_period_exclusive || c.period_ops > max_period || c.run_ops < needed) {
      continue;
    }
    // Note [Choosing the period]: not more than max_cycle_factor times a template that
    // was in use during the candidate's run (the step that an evaluation interrupts).
    const uint64_t run_start = ops_seen_ - c.run_ops;
    const bool too_long = std::any_of(templates_.begin(), templates_.end(), [&](const IterationTemplate& t) {
      return t.last_used_op >= run_start &&
             uint64_t{c.period_ops} > uint64_t{t.period_ops()} * params_.max_cycle_factor &&
             4 * matched_since(t, run_start) >= 3 * c.run_ops;
    });
    if (too_long) {
      continue;
    }
    if (best == nullptr || c.run_ops > best->run_ops ||
        (c.run_ops == best->run_ops && c.period_ops < best->period_ops)) {
      best = &c;
    }
  }
  return best;
}

// --- templates ---------------------------------------------------------------------------

uint64_t IterationDetector::matched_since(const IterationTemplate& t, uint64_t op_index)
{
  // The last sample at or before op_index (samples are in op order); none: all of it.
  uint64_t before = 0;
  for (auto it = t.matched_samples.rbegin(); it != t.matched_samples.rend(); ++it) {
    if (it->first <= op_index) {
      before = it->second;
      break;
    }
  }
  return t.matched_ops - before;
}

void IterationDetector::sample_coverage(uint64_t i)
{
  if (i % coverage_sample_ops != 0) {
    return;
  }
  const uint64_t keep = uint64_t{params_.max_period_ops} + params_.window_ops + coverage_sample_ops;
  for (IterationTemplate& t : templates_) {
    t.matched_samples.emplace_back(i, t.matched_ops);
    size_t drop = 0;
    while (drop + 1 < t.matched_samples.size() && t.matched_samples[drop + 1].first + keep < i) {
      ++drop;
    }
    if (drop > 0) {
      t.matched_samples.erase(t.matched_samples.begin(), t.matched_samples.begin() + static_cast<std::ptrdiff_t>(drop));
    }
  }
}

bool IterationDetector::window_equals_template(const IterationTemplate& t, uint32_t phase, uint64_t i) const
{
  for (uint32_t k = 0; k < params_.window_ops; ++k) {
    if (!history_has(i - k) ||
        history_at(i - k) != t.ops[cyclic(int64_t{phase} - k, t.period_ops())]) {
      return false;
    }
  }
  return true;
}

std::optional<std::pair<size_t, uint32_t>> IterationDetector::lookup_window(uint64_t i) const
{
  // The active template first, then the others in cache order: deterministic.
  std::vector<size_t> order;
  if (active_) {
    order.push_back(*active_);
  }
  for (size_t k = 0; k < templates_.size(); ++k) {
    if (!active_ || k != *active_) {
      order.push_back(k);
    }
  }
  for (size_t k : order) {
    const IterationTemplate& t = templates_[k];
    const auto it = t.window_phase.find(window_hash_);
    if (it != t.window_phase.end() && it->second != ambiguous_phase &&
        window_equals_template(t, it->second, i)) {
      return std::pair{k, it->second};
    }
  }
  return std::nullopt;
}

void IterationDetector::lock_to(size_t template_index, uint32_t phase, uint64_t i)
{
  active_ = template_index;
  phase_ = phase;
  misses_ = 0;
  last_break_op_.reset();
  templates_[template_index].last_used_op = i;
}

void IterationDetector::lose_lock(uint64_t i)
{
  if (active_) {
    templates_[*active_].last_failure_op = i;
  }
  active_.reset();
  misses_ = 0;
  last_break_op_.reset();
}

void IterationDetector::retire_template(size_t index)
{
  retired_.push_back(templates_[index].id);
  templates_.erase(templates_.begin() + static_cast<std::ptrdiff_t>(index));
}

void IterationDetector::adopt_candidate(uint64_t i, const Candidate& c, LockChange change, OpPosition& out)
{
  const uint32_t period = c.period_ops;
  const uint64_t run_ops = c.run_ops;
  const uint64_t run_start = i - run_ops + 1;  // phase 0: the first op that repeated

  IterationTemplate t;
  t.id = next_template_id_++;
  t.ops.resize(period);
  for (uint64_t j = i + 1 - period; j <= i; ++j) {
    t.ops[(j - run_start) % period] = history_at(j);
  }
  for (uint32_t phase = 0; phase < period; ++phase) {
    const uint64_t h = cyclic_window_hash(t.ops, phase, params_.window_ops);
    auto [it, inserted] = t.window_phase.try_emplace(h, phase);
    if (!inserted) {
      it->second = ambiguous_phase;
    }
  }
  t.last_used_op = i;

  // Drop shorter templates that failed inside the span the new one predicts perfectly
  // (Note [Choosing the period]); then make room, least recently used first.
  active_.reset();
  for (size_t k = templates_.size(); k-- > 0;) {
    const IterationTemplate& old = templates_[k];
    if (old.period_ops() < period && old.last_failure_op && *old.last_failure_op >= run_start) {
      retire_template(k);
    }
  }
  while (templates_.size() >= params_.max_templates) {
    size_t oldest = 0;
    for (size_t k = 1; k < templates_.size(); ++k) {
      if (templates_[k].last_used_op < templates_[oldest].last_used_op) {
        oldest = k;
      }
    }
    retire_template(oldest);
  }
  templates_.push_back(std::move(t));
  lock_to(templates_.size() - 1, static_cast<uint32_t>((run_ops - 1) % period), i);
  out.matched = true;
  out.change = change;
}

// --- tracking ----------------------------------------------------------------------------

void IterationDetector::track_locked(uint64_t i, OpSignature signature, OpPosition& out)
{
  IterationTemplate& t = templates_[*active_];
  const uint32_t period = t.period_ops();
  const uint32_t expected = (phase_ + 1) % period;
  t.last_used_op = i;
  if (signature == t.ops[expected]) {
    phase_ = expected;
    misses_ = 0;
    out.matched = true;
    return;
  }
  out.prediction_broke = true;
  last_break_op_ = i;
  t.last_failure_op = i;
  // Ops left out: the op matches one a little further on.
  const uint32_t max_skip = std::min(params_.max_skip_ops, period - 1);
  for (uint32_t d = 1; d <= max_skip; ++d) {
    if (signature == t.ops[(expected + d) % period]) {
      phase_ = (expected + d) % period;
      misses_ = 0;
      out.matched = true;
      return;
    }
  }
  // Elsewhere in a known template: jump there.
  if (i + 1 >= params_.window_ops) {
    if (const auto found = lookup_window(i)) {
      const auto broke_at = last_break_op_;
      lock_to(found->first, found->second, i);
      last_break_op_ = broke_at;  // the switch rule still sees this break
      out.matched = true;
      out.change = LockChange::resynced;
      return;
    }
  }
  // An inserted op: the phase stays where it was.
  ++misses_;
  if (misses_ > params_.max_misses) {
    lose_lock(i);
    out.change = LockChange::lost;
  }
}

OpPosition IterationDetector::observe(OpSignature signature)
{
  const uint64_t i = ops_seen_;
  const uint32_t window = params_.window_ops;
  window_hash_ = window_hash_ * window_base + signature;
  if (i >= window) {
    window_hash_ -= history_at(i - window) * window_power_;
  }
  push_history(signature);
  const bool window_ready = i + 1 >= window;

  OpPosition out;
  out.op_index = i;
  update_candidates(i);
  if (window_ready) {
    discover(i);
  }

  if (active_) {
    track_locked(i, signature, out);
  } else if (window_ready && !templates_.empty()) {
    if (const auto found = lookup_window(i)) {
      lock_to(found->first, found->second, i);
      out.matched = true;
      out.change = LockChange::resynced;
    }
  }

  if (!active_) {
    if (const Candidate* best = best_confirmed(0, params_.max_period_ops)) {
      adopt_candidate(i, Candidate{*best}, LockChange::learned, out);
    }
  } else if (last_break_op_) {
    const uint32_t period = templates_[*active_].period_ops();
    const Candidate* best = best_confirmed(period, params_.max_period_ops);
    if (best != nullptr && *last_break_op_ + best->run_ops > i) {
      adopt_candidate(i, Candidate{*best}, LockChange::switched, out);
    }
  }

  if (active_ && out.matched) {
    ++templates_[*active_].matched_ops;
  }
  sample_coverage(i);
  if (active_) {
    const IterationTemplate& t = templates_[*active_];
    out.state = IterationState::locked;
    out.template_id = t.id;
    out.period_ops = t.period_ops();
    out.phase = phase_;
  } else {
    out.state = templates_.empty() ? IterationState::learning : IterationState::resyncing;
  }
  position_ = out;
  return out;
}

const IterationTemplate* IterationDetector::active_template() const
{
  return active_ ? &templates_[*active_] : nullptr;
}

const IterationTemplate* IterationDetector::find_template(TemplateId id) const
{
  for (const IterationTemplate& t : templates_) {
    if (t.id == id) {
      return &t;
    }
  }
  return nullptr;
}

std::vector<TemplateId> IterationDetector::take_retired_templates()
{
  std::vector<TemplateId> out;
  out.swap(retired_);
  return out;
}

}  // namespace oversub::policy
