// Next-use prediction: see Note [Next-use distances] in next_use.h.
#include "policy/next_use.h"

#include <algorithm>

#include "policy/signature.h"

namespace oversub::policy {

size_t NextUsePredictor::ChunkHash::operator()(const LogicalChunk& c) const noexcept
{
  return static_cast<size_t>(mix_hash(c.buffer, c.chunk));
}

int64_t NextUsePredictor::StepTable::prefix_ns(uint32_t end_phase) const
{
  int64_t sum = 0;
  for (uint32_t k = end_phase; k > 0; k &= k - 1) {
    sum += mean_tree_ns[k - 1];
  }
  return sum;
}

void NextUsePredictor::StepTable::add_mean_ns(uint32_t phase, int64_t delta_ns)
{
  for (uint32_t k = phase + 1; k <= period_ops; k += k & (~k + 1)) {
    mean_tree_ns[k - 1] += delta_ns;
  }
}

void NextUsePredictor::record_op(TemplateId id, uint32_t period_ops, uint32_t phase, int64_t duration_ns)
{
  StepTable& t = tables_[id];
  if (t.period_ops == 0) {
    t.period_ops = period_ops;
    t.duration_sum_ns.assign(period_ops, 0);
    t.duration_count.assign(period_ops, 0);
    t.mean_ns.assign(period_ops, 0);
    t.mean_tree_ns.assign(period_ops, 0);
    t.by_phase.assign(period_ops, {});
    t.frees_by_phase.assign(period_ops, {});
  }
  if (phase >= t.period_ops) {
    return;
  }
  ++t.recorded_ops;
  if (duration_ns <= 0) {
    return;
  }
  t.duration_sum_ns[phase] += duration_ns;
  ++t.duration_count[phase];
  const int64_t mean = t.duration_sum_ns[phase] / t.duration_count[phase];
  t.add_mean_ns(phase, mean - t.mean_ns[phase]);
  t.mean_ns[phase] = mean;
}

void NextUsePredictor::record_use(TemplateId id, uint32_t phase, LogicalChunk first, uint32_t chunk_count)
{
  const auto found = tables_.find(id);
  if (found == tables_.end() || phase >= found->second.period_ops) {
    return;  // record_op comes first; a use outside the step is not one we can place
  }
  StepTable& t = found->second;
  for (uint32_t k = 0; k < chunk_count; ++k) {
    std::vector<uint32_t>& phases = t.uses[LogicalChunk{first.buffer, first.chunk + k}];
    const auto at = std::lower_bound(phases.begin(), phases.end(), phase);
    if (at == phases.end() || *at != phase) {
      phases.insert(at, phase);
      t.by_phase[phase].push_back(LogicalChunk{first.buffer, first.chunk + k});
    }
  }
}

const NextUsePredictor::StepTable* NextUsePredictor::table(TemplateId id) const
{
  const auto it = tables_.find(id);
  return it == tables_.end() ? nullptr : &it->second;
}

std::optional<NextUse> NextUsePredictor::next_use(TemplateId id, LogicalChunk chunk, uint32_t after_phase) const
{
  const StepTable* t = table(id);
  if (t == nullptr || after_phase >= t->period_ops) {
    return std::nullopt;
  }
  const auto it = t->uses.find(chunk);
  if (it == t->uses.end() || it->second.empty()) {
    return std::nullopt;
  }
  const std::vector<uint32_t>& phases = it->second;
  const uint32_t period = t->period_ops;
  const auto later = std::upper_bound(phases.begin(), phases.end(), after_phase);
  NextUse out;
  if (later != phases.end()) {
    out.phase = *later;
    out.distance_ops = out.phase - after_phase;
    out.time_until_ns = t->prefix_ns(out.phase) - t->prefix_ns(after_phase + 1);
  } else {
    out.phase = phases.front();  // wraps into the next step
    out.distance_ops = period - after_phase + out.phase;
    out.time_until_ns = t->prefix_ns(period) - t->prefix_ns(after_phase + 1) + t->prefix_ns(out.phase);
  }
  return out;
}

void NextUsePredictor::record_free(TemplateId id, uint32_t phase, LogicalId buffer)
{
  const auto found = tables_.find(id);
  if (found == tables_.end() || phase >= found->second.period_ops || buffer == no_logical) {
    return;
  }
  StepTable& t = found->second;
  const auto [at, inserted] = t.free_phase.try_emplace(buffer, phase);
  if (!inserted) {
    if (at->second == phase) {
      return;
    }
    std::erase(t.frees_by_phase[at->second], buffer);
    at->second = phase;
  }
  t.frees_by_phase[phase].push_back(buffer);
}

std::optional<uint32_t> NextUsePredictor::free_phase(TemplateId id, LogicalId buffer) const
{
  const StepTable* t = table(id);
  if (t == nullptr) {
    return std::nullopt;
  }
  const auto it = t->free_phase.find(buffer);
  return it == t->free_phase.end() ? std::nullopt : std::optional<uint32_t>{it->second};
}

std::span<const LogicalId> NextUsePredictor::frees_at(TemplateId id, uint32_t phase) const
{
  const StepTable* t = table(id);
  if (t == nullptr || phase >= t->period_ops) {
    return {};
  }
  return t->frees_by_phase[phase];
}

std::span<const uint32_t> NextUsePredictor::use_phases(TemplateId id, LogicalChunk chunk) const
{
  const StepTable* t = table(id);
  if (t == nullptr) {
    return {};
  }
  const auto it = t->uses.find(chunk);
  return it == t->uses.end() ? std::span<const uint32_t>{} : std::span<const uint32_t>{it->second};
}

std::span<const LogicalChunk> NextUsePredictor::chunks_at(TemplateId id, uint32_t phase) const
{
  const StepTable* t = table(id);
  if (t == nullptr || phase >= t->period_ops) {
    return {};
  }
  return t->by_phase[phase];
}

uint32_t NextUsePredictor::period_ops(TemplateId id) const
{
  const StepTable* t = table(id);
  return t == nullptr ? 0 : t->period_ops;
}

int64_t NextUsePredictor::mean_duration_ns(TemplateId id, uint32_t phase) const
{
  const StepTable* t = table(id);
  return t == nullptr || phase >= t->period_ops ? 0 : t->mean_ns[phase];
}

int64_t NextUsePredictor::step_duration_ns(TemplateId id) const
{
  const StepTable* t = table(id);
  return t == nullptr ? 0 : t->prefix_ns(t->period_ops);
}

bool NextUsePredictor::complete(TemplateId id) const
{
  const StepTable* t = table(id);
  return t != nullptr && t->recorded_ops >= 2 * uint64_t{t->period_ops};
}

uint64_t NextUsePredictor::recorded_steps(TemplateId id) const
{
  const StepTable* t = table(id);
  return t == nullptr || t->period_ops == 0 ? 0 : t->recorded_ops / t->period_ops;
}

void NextUsePredictor::forget_template(TemplateId id)
{
  tables_.erase(id);
}

}  // namespace oversub::policy
