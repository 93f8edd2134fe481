// StepLearner: one object that consumes the event stream and keeps the iteration
// detector, buffer identity and next-use predictor in step with each other. The planner
// (live in the shim, offline in replay) owns one and asks it where the step stands and
// when each chunk is needed next.
//
// Order of work per event (the three parts depend on each other in this order):
// - alloc: identity keys it by the detector's current place (Note [Logical buffers]);
// - op: signature from the sizes identity knows (Note [Op signature]), then the
//   detector places it, then, if it matched the learned step, the predictor records its
//   duration and the logical chunks it touched;
// - more accesses: recorded at the phase of the op before them;
// - free: identity forgets the allocation;
// - sync: counted (the planner decides what a sync means for waiting).
#pragma once

#include <cstdint>
#include <optional>

#include "policy/events.h"
#include "policy/identity.h"
#include "policy/iteration.h"
#include "policy/next_use.h"

namespace oversub::policy {

struct LearnerParams {
  IterationParams iteration;
};

class StepLearner {
public:
  explicit StepLearner(LearnerParams params = {});

  void observe(const Event& event);
  LogicalId on_alloc(const AllocEvent& alloc);
  void on_free(const FreeEvent& free);
  OpPosition on_op(const OpEvent& op);
  void on_more_accesses(const MoreAccessesEvent& more);
  void on_sync(const SyncEvent& sync);

  // Where the last op fell.
  const OpPosition& position() const { return detector_.position(); }
  std::optional<LogicalId> logical_id(AllocId alloc_id) const { return identity_.logical_id(alloc_id); }
  // When chunk `chunk` of live allocation `alloc_id` is used next, counted from the last
  // op. nullopt when not locked, the allocation is unknown, or the step does not use it.
  std::optional<NextUse> next_use(AllocId alloc_id, uint32_t chunk) const;

  const IterationDetector& detector() const { return detector_; }
  const BufferIdentity& identity() const { return identity_; }
  const NextUsePredictor& predictor() const { return predictor_; }
  uint64_t syncs_seen() const { return syncs_seen_; }

private:
  void record_accesses(const AccessList& accesses);

  IterationDetector detector_;
  BufferIdentity identity_;
  NextUsePredictor predictor_;
  bool last_op_recorded_ = false;  // the last op matched the step: its extra accesses count
  uint64_t syncs_seen_ = 0;
};

}  // namespace oversub::policy
