// Buffer identity across iterations: which allocation of this step is "the same buffer"
// as one of the previous step.
//
// Note [Logical buffers]
// ~~~~~~~~~~~~~~~~~~~~~~
// Predictions are made about logical buffers, not allocations. Two kinds:
// - Persistent allocations (weights, optimizer state, anything allocated once) keep
//   their allocation for the whole run, so one allocation is one logical buffer: the
//   id assigned at allocation never changes.
// - Recurring allocations (activations, gradients with PYTORCH_NO_CUDA_MEMORY_CACHING=1
//   or cudaMallocAsync) get a new alloc_id every step. While the iteration detector is
//   locked, an allocation is keyed by (template, phase of the last op before it, call
//   site, bytes, slot) and the same key yields the same logical id every step. The slot
//   is the lowest one whose logical buffer is not live: two same-site same-size
//   allocations between the same two ops get slots 0 and 1 (their order among
//   same-site allocations), and a buffer whose previous instance is still live gets its
//   own id instead of aliasing it.
// Allocations made while the detector is not locked (the first step, evaluation, after
// a lost position) get a fresh id: they are either persistent, and stay correct, or
// short-lived, and nothing is predicted for them.
//
// Limits: a recurring buffer that lives longer than one step alternates between two
// logical ids (slot 0, slot 1), so its uses are learned per id; an allocation whose size
// varies from step to step (data-dependent) gets a new key each time it varies.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>

#include "policy/events.h"
#include "policy/iteration.h"

namespace oversub::policy {

using LogicalId = uint64_t;
inline constexpr LogicalId no_logical = 0;

// Where in a learned step something happened: after the op at `phase` of `template_id`.
struct IterationPlace {
  TemplateId template_id = no_template;
  uint32_t phase = 0;
};

struct LogicalBuffer {
  LogicalId id = no_logical;
  uint64_t bytes = 0;
  SiteId site = no_site;
  bool recurring = false;  // keyed by its place in the step (Note [Logical buffers])
  bool live = false;
};

class BufferIdentity {
public:
  // `place` is where the detector stands (nullopt when it is not locked).
  // Cost: a few hash lookups.
  LogicalId on_alloc(const AllocEvent& alloc, std::optional<IterationPlace> place);
  void on_free(AllocId alloc_id);

  std::optional<LogicalId> logical_id(AllocId alloc_id) const;
  // Size of a live allocation; 0 for one we never saw (not ours, or already freed).
  uint64_t alloc_bytes(AllocId alloc_id) const;
  const LogicalBuffer* buffer(LogicalId id) const;
  size_t live_allocations() const { return live_.size(); }

  // Drop the keys learned under a template the detector no longer holds.
  void forget_template(TemplateId id);

private:
  struct RecurringKey {
    TemplateId template_id;
    uint32_t phase;
    SiteId site;
    uint64_t bytes;
    uint32_t slot;
    bool operator==(const RecurringKey&) const = default;
  };
  struct RecurringKeyHash {
    size_t operator()(const RecurringKey& k) const noexcept;
  };

  LogicalId new_buffer(const AllocEvent& alloc, bool recurring);

  std::unordered_map<AllocId, LogicalId> live_;
  std::unordered_map<RecurringKey, LogicalId, RecurringKeyHash> recurring_;
  std::unordered_map<LogicalId, LogicalBuffer> buffers_;  // live or recurring
  LogicalId next_id_ = 1;
};

}  // namespace oversub::policy
