// Iteration detection: find the training step in a stream of op signatures, with no hints.
//
// Note [Iteration detection]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~
// A training step issues the same ops in the same order every time. The detector learns
// that sequence (a *template*) and then tracks where in it each new op falls (its
// *phase*). Three mechanisms, each cheap per op:
//
// 1. Discovery. A rolling hash of the last `window_ops` signatures indexes the op at
//    which each window last occurred. When the current window occurred before, the
//    distance is a candidate period p. Each candidate keeps a *run*: how many
//    consecutive ops (up to now) equal the op p positions earlier.
//
// 2. Confirmation. A candidate is confirmed when its run covers a whole period plus one
//    window, and at least `min_confirm_ops` (one full step repeated exactly, and then
//    some: one left-out op makes the ops k steps minus one op apart agree for exactly one
//    such "period", which must not confirm). When several are confirmed
//    the longest run wins (ties: the shorter period). The template is the last p
//    signatures; phase 0 is the first op of the run, i.e. the first op that repeated.
//    A first step that differs (warm-up, cuDNN autotuning) just delays the run's start.
//
// 3. Tracking. Once locked, each op is compared with the template's next op:
//    - equal: advance;
//    - equal to one of the next `max_skip_ops` ops instead: ops were left out; jump;
//    - the last window occurs exactly once in a known template: re-synchronise there;
//    - otherwise: an inserted op (a logging kernel); the phase stays put.
//    Every op other than the expected one raises `prediction_broke`. After more than
//    `max_misses` consecutive unexplained ops the position is lost (state `resyncing`)
//    and every later op tries the window lookup in all cached templates (the last
//    `max_templates`). So an evaluation step, which is a different op sequence, loses
//    the position and training steps pick it up again `window_ops` ops after they resume.
//    A change of shapes produces signatures no template knows: discovery confirms a new
//    period and a new template replaces the lock (relearn).
//
// Note [Choosing the period]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~
// Short repeats inside a step (identical residual blocks, or the A micro-batches of
// gradient accumulation before one optimizer step) also confirm, and they usually
// confirm first. Such a lock keeps breaking where the repeat ends (the next layer, the
// optimizer tail). The rule: while locked at period P, a confirmed candidate p with
// P < p <= max_cycle_factor * P replaces the lock if the current template broke at least
// once during the span that p predicted perfectly (p's run). So the detector settles on
// the longest period that explains everything: for gradient accumulation that is the
// whole A-micro-batch cycle with its optimizer step (our choice, so that the optimizer's
// accesses are predicted too), for blocks it is the whole step. A template that failed
// inside the span its successor explains is dropped from the cache.
//
// The factor bound applies whether locked or not: no candidate longer than
// max_cycle_factor times the period of a template that explained at least three
// quarters of the candidate's run is confirmed. It is what keeps a periodic evaluation step (every E steps) from being
// learned as part of an E-step super-period: with E > max_cycle_factor the training step
// stays the period and each evaluation is a short loss of position. With E <=
// max_cycle_factor the super-period is learned, which predicts the evaluation too.
// A change of shapes is unaffected: the old template is not used during the new run.
// A repeated block inside a step (a CNN's residual blocks, a transformer's layers) is
// unaffected too: each block's template explains only its part of the step, so the
// whole step, however many times longer, is still learned.
// (A template "used" anywhere in the run was the bound at first: the blocks' short
// templates then kept a CNN step of about 560 ops from ever being learned.)
//
// Limits: a step with no window of `window_ops` signatures that is unique within it
// cannot be re-synchronised (only tracked from lock); a step longer than
// `max_period_ops` is never found; an op inserted at a point where the next expected op
// equals it is silently absorbed as "the expected op" (harmless: same signature).
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "policy/signature.h"

namespace oversub::policy {

using TemplateId = uint32_t;
inline constexpr TemplateId no_template = 0;

struct IterationParams {
  uint32_t window_ops = 8;            // signatures per rolling window (discovery, resync)
  uint32_t min_confirm_ops = 16;      // a confirming run covers a period and at least this
  uint32_t max_period_ops = 1u << 17; // longest step found; bounds history memory
  uint32_t max_candidates = 8;        // candidate periods tracked at once
  uint32_t max_skip_ops = 4;          // left-out ops tolerated at one point
  uint32_t max_misses = 16;           // consecutive unexplained ops before the position is lost
  uint32_t max_templates = 4;         // learned sequences kept for re-synchronisation
  uint32_t max_cycle_factor = 16;     // Note [Choosing the period]
};

enum class IterationState : uint8_t {
  learning,   // no template yet (or the only ones were dropped)
  locked,     // tracking a template; `phase` is valid
  resyncing,  // templates known but the position was lost; looking for it
};

// How this op changed the lock.
enum class LockChange : uint8_t {
  none,
  learned,   // a new template was confirmed (first lock, or relearn after a change)
  switched,  // a longer period replaced the current lock (Note [Choosing the period])
  resynced,  // a known template was found again by its window
  lost,      // too many unexplained ops: position lost
};

// Where one op falls. For an op that the template does not explain (inserted),
// `matched` is false and `phase` is the phase of the last explained op.
struct OpPosition {
  uint64_t op_index = 0;  // 0-based count of ops observed before this one
  IterationState state = IterationState::learning;
  TemplateId template_id = no_template;
  uint32_t period_ops = 0;  // 0 unless locked
  uint32_t phase = 0;       // valid when locked
  bool matched = false;     // locked and this op is the template's op at `phase`
  bool prediction_broke = false;  // was locked, and this op was not the expected one
  LockChange change = LockChange::none;
};

struct IterationTemplate {
  TemplateId id = no_template;
  std::vector<OpSignature> ops;  // ops[phase]
  // Window hash -> phase of the window's last op; `ambiguous_phase` if the window occurs
  // more than once in the (cyclic) template.
  std::unordered_map<uint64_t, uint32_t> window_phase;
  uint64_t last_used_op = 0;
  std::optional<uint64_t> last_failure_op;  // last op at which tracking it broke
  // Ops it explained (matched), in all, and sampled every `coverage_sample_ops` ops as
  // (op index, matched so far): how much of a recent span it explained
  // (Note [Choosing the period]).
  uint64_t matched_ops = 0;
  std::vector<std::pair<uint64_t, uint64_t>> matched_samples;

  uint32_t period_ops() const { return static_cast<uint32_t>(ops.size()); }
};

class IterationDetector {
public:
  explicit IterationDetector(IterationParams params = {});

  // Feed the next op's signature. Cost: O(max_candidates) comparisons and one hash-map
  // update; O(period) only when a template is created or a candidate first appears.
  OpPosition observe(OpSignature signature);

  const OpPosition& position() const { return position_; }
  const IterationTemplate* active_template() const;
  const IterationTemplate* find_template(TemplateId id) const;
  const IterationParams& params() const { return params_; }
  // Templates dropped since the last call (for callers that key state by template).
  std::vector<TemplateId> take_retired_templates();

private:
  struct Candidate {
    uint32_t period_ops = 0;
    uint64_t run_ops = 0;
  };

  OpSignature history_at(uint64_t op_index) const;
  bool history_has(uint64_t op_index) const;
  void push_history(OpSignature signature);
  void update_candidates(uint64_t i);
  void discover(uint64_t i);
  uint64_t backward_run(uint64_t i, uint32_t period) const;
  const Candidate* best_confirmed(uint32_t min_period_exclusive, uint32_t max_period) const;
  static constexpr uint64_t coverage_sample_ops = 64;
  static uint64_t matched_since(const IterationTemplate& t, uint64_t op_index);
  void sample_coverage(uint64_t i);
  bool window_equals_template(const IterationTemplate& t, uint32_t phase, uint64_t i) const;
  std::optional<std::pair<size_t, uint32_t>> lookup_window(uint64_t i) const;
  void track_locked(uint64_t i, OpSignature signature, OpPosition& out);
  void adopt_candidate(uint64_t i, const Candidate& c, LockChange change, OpPosition& out);
  void lock_to(size_t template_index, uint32_t phase, uint64_t i);
  void lose_lock(uint64_t i);
  void retire_template(size_t index);

  IterationParams params_;
  uint64_t window_power_ = 1;  // base^window_ops, for the rolling hash

  std::vector<OpSignature> history_;  // ring of the last max_period_ops + 1 signatures
  uint64_t ops_seen_ = 0;
  uint64_t window_hash_ = 0;  // of the last window_ops signatures (valid once enough ops)
  std::unordered_map<uint64_t, uint64_t> window_last_op_;
  uint64_t next_prune_op_ = 0;

  std::vector<Candidate> candidates_;
  std::vector<IterationTemplate> templates_;
  std::vector<TemplateId> retired_;
  TemplateId next_template_id_ = 1;

  std::optional<size_t> active_;  // index into templates_
  uint32_t phase_ = 0;
  uint32_t misses_ = 0;
  std::optional<uint64_t> last_break_op_;  // of the active lock
  OpPosition position_;
};

}  // namespace oversub::policy
