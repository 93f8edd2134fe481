// StepLearner: wiring of detector, identity and predictor (see learner.h).
#include "policy/learner.h"

#include <type_traits>

#include "policy/signature.h"

namespace oversub::policy {

StepLearner::StepLearner(LearnerParams params) : detector_(params.iteration) {}

void StepLearner::observe(const Event& event)
{
  std::visit([this](const auto& body) {
    using Body = std::decay_t<decltype(body)>;
    if constexpr (std::is_same_v<Body, AllocEvent>) {
      on_alloc(body);
    } else if constexpr (std::is_same_v<Body, FreeEvent>) {
      on_free(body);
    } else if constexpr (std::is_same_v<Body, OpEvent>) {
      on_op(body);
    } else if constexpr (std::is_same_v<Body, MoreAccessesEvent>) {
      on_more_accesses(body);
    } else {
      on_sync(body);
    }
  }, event.body);
}

LogicalId StepLearner::on_alloc(const AllocEvent& alloc)
{
  const OpPosition& pos = detector_.position();
  std::optional<IterationPlace> place;
  if (pos.state == IterationState::locked) {
    place = IterationPlace{pos.template_id, pos.phase};
  }
  return identity_.on_alloc(alloc, place);
}

void StepLearner::on_free(const FreeEvent& free)
{
  // Note [Predicted frees]: a free after an op of the learned step is placed there.
  if (last_op_recorded_) {
    if (const auto logical = identity_.logical_id(free.alloc_id)) {
      predictor_.record_free(detector_.position().template_id, detector_.position().phase, *logical);
    }
  }
  identity_.on_free(free.alloc_id);
}

OpPosition StepLearner::on_op(const OpEvent& op)
{
  const OpSignature signature =
    op_signature(op, [this](AllocId id) { return identity_.alloc_bytes(id); });
  const OpPosition pos = detector_.observe(signature);
  for (TemplateId retired : detector_.take_retired_templates()) {
    identity_.forget_template(retired);
    predictor_.forget_template(retired);
  }
  last_op_recorded_ = pos.state == IterationState::locked && pos.matched;
  if (last_op_recorded_) {
    predictor_.record_op(pos.template_id, pos.period_ops, pos.phase, op.duration_ns);
    record_accesses(op.accesses);
  }
  return pos;
}

void StepLearner::on_more_accesses(const MoreAccessesEvent& more)
{
  if (last_op_recorded_) {
    record_accesses(more.accesses);
  }
}

void StepLearner::on_sync(const SyncEvent&)
{
  ++syncs_seen_;
}

void StepLearner::record_accesses(const AccessList& accesses)
{
  const OpPosition& pos = detector_.position();
  for (const Access& a : accesses.items()) {
    if (const auto logical = identity_.logical_id(a.alloc_id)) {
      predictor_.record_use(pos.template_id, pos.phase, LogicalChunk{*logical, a.chunk_first}, a.chunk_count);
    }
  }
}

std::optional<NextUse> StepLearner::next_use(AllocId alloc_id, uint32_t chunk) const
{
  const OpPosition& pos = detector_.position();
  const auto logical = identity_.logical_id(alloc_id);
  if (pos.state != IterationState::locked || !logical) {
    return std::nullopt;
  }
  return predictor_.next_use(pos.template_id, LogicalChunk{*logical, chunk}, pos.phase);
}

}  // namespace oversub::policy
