// Next-use prediction: for each logical chunk, the phases of the learned step that use
// it, and how far (in ops and in predicted time) its next use is from a given phase.
// This is what the planner asks for "evict the chunk whose next use is furthest away"
// and "start the prefetch early enough to hide it".
//
// Note [Next-use distances]
// ~~~~~~~~~~~~~~~~~~~~~~~~~
// Phases are positions in a cyclic step of P ops. Asked after the op at phase c, the
// next use of a chunk is the first use phase u after c, wrapping into the next step:
// distance_ops = (u - c) mod P, in 1..P (a chunk used only at c itself is next needed a
// whole step later, distance P). time_until_ns is the predicted compute time that
// passes before op u starts: the sum of the mean durations of the phases strictly
// between c and u. So a prefetch of T ns issued right after op c is hidden iff
// T <= time_until_ns. Mean durations are plain per-phase averages of the durations
// supplied (0 = unknown is not averaged in), kept in a Fenwick tree so a query costs
// O(log P + log uses).
//
// Uses are the union of all steps observed under a template, so a data-dependent access
// is predicted conservatively (too early, never too late). A template is `complete`
// once 2P matched ops were recorded: the first P ops after a lock still see per-step
// buffers allocated before it (fresh ids, see Note [Logical buffers]); after P more, every
// use of every recurring buffer has been seen under its stable id.
//
// Note [Predicted frees]
// ~~~~~~~~~~~~~~~~~~~~~~
// A recurring buffer (an activation, a temporary) is freed at the same place of every
// step: right after the op at its free phase f. Its next use as the cyclic step reads
// it (Note [Next-use distances]) may lie beyond that free, in the next step, where a
// new allocation takes its logical id; until then the chunk's memory comes back by
// itself. Asked after the op at phase c, the free is (f - c) mod P ops away, 0 meaning
// right after this op; it comes before the next use at distance d iff it is fewer than
// d ops away (a free after the op at u itself follows that use). The planner uses this
// twice: a chunk freed before its next use is a cheap victim (one copy out, none back)
// but needs no eviction at all if its free comes before the memory is wanted (Note
// [Victim order] in lookahead.h); and the memory a free returns inside the plan window
// serves the buffers allocated after it (LookaheadPlanner::upcoming). The last free
// seen at a phase wins; a buffer freed at varying places is predicted where it was
// freed last.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "policy/identity.h"
#include "policy/iteration.h"

namespace oversub::policy {

struct LogicalChunk {
  LogicalId buffer = no_logical;
  uint32_t chunk = 0;  // index of the 2 MiB chunk inside the buffer
  bool operator==(const LogicalChunk&) const = default;
};

struct NextUse {
  uint32_t distance_ops = 0;  // 1..period
  uint32_t phase = 0;         // phase of that use
  int64_t time_until_ns = 0;  // predicted compute time before that op starts
};

class NextUsePredictor {
public:
  // The op at `phase` of template `id` (a step of `period_ops` ops) ran; duration 0 =
  // unknown. Creates the template's tables on first sight. Cost: O(log P).
  void record_op(TemplateId id, uint32_t period_ops, uint32_t phase, int64_t duration_ns);
  // Chunks [first.chunk, first.chunk + chunk_count) of first.buffer are used at `phase`.
  // Cost: O(chunk_count) hash lookups.
  void record_use(TemplateId id, uint32_t phase, LogicalChunk first, uint32_t chunk_count);

  // Note [Next-use distances]. nullopt: the chunk is not used in the learned step (or
  // the template is unknown).
  std::optional<NextUse> next_use(TemplateId id, LogicalChunk chunk, uint32_t after_phase) const;
  // Buffer `buffer` was freed right after the op at `phase` (Note [Predicted frees]).
  void record_free(TemplateId id, uint32_t phase, LogicalId buffer);
  // The phase after whose op the buffer is freed in the learned step; nullopt if it is
  // not freed in it (a persistent buffer) or the template is unknown.
  std::optional<uint32_t> free_phase(TemplateId id, LogicalId buffer) const;
  // The buffers freed right after the op at `phase` (the inverse of free_phase).
  std::span<const LogicalId> frees_at(TemplateId id, uint32_t phase) const;
  // Sorted use phases of a chunk (empty if none).
  std::span<const uint32_t> use_phases(TemplateId id, LogicalChunk chunk) const;
  // The logical chunks used at `phase` (the inverse of use_phases), in the order first
  // seen; empty for an unknown template or phase.
  std::span<const LogicalChunk> chunks_at(TemplateId id, uint32_t phase) const;
  uint32_t period_ops(TemplateId id) const;
  int64_t mean_duration_ns(TemplateId id, uint32_t phase) const;
  int64_t step_duration_ns(TemplateId id) const;  // sum of the mean durations
  bool complete(TemplateId id) const;
  // Whole steps recorded under the template (matched ops / period).
  uint64_t recorded_steps(TemplateId id) const;
  void forget_template(TemplateId id);

private:
  struct ChunkHash {
    size_t operator()(const LogicalChunk& c) const noexcept;
  };
  struct StepTable {
    uint32_t period_ops = 0;
    uint64_t recorded_ops = 0;
    std::vector<int64_t> duration_sum_ns;
    std::vector<uint32_t> duration_count;
    std::vector<int64_t> mean_ns;
    std::vector<int64_t> mean_tree_ns;  // Fenwick tree over mean_ns
    std::unordered_map<LogicalChunk, std::vector<uint32_t>, ChunkHash> uses;
    std::vector<std::vector<LogicalChunk>> by_phase;  // the same pairs, by phase
    std::unordered_map<LogicalId, uint32_t> free_phase;
    std::vector<std::vector<LogicalId>> frees_by_phase;  // the same, by phase

    int64_t prefix_ns(uint32_t end_phase) const;  // sum of mean_ns[0, end_phase)
    void add_mean_ns(uint32_t phase, int64_t delta_ns);
  };

  const StepTable* table(TemplateId id) const;

  std::unordered_map<TemplateId, StepTable> tables_;
};

}  // namespace oversub::policy
