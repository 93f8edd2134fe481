// Next-use distances on a small hand-built step (Note [Next-use distances]).
#include <gtest/gtest.h>

#include "policy/next_use.h"

namespace oversub::policy {
namespace {

constexpr TemplateId step_id = 1;
constexpr uint32_t period = 6;

// One step of 6 ops lasting 10, 20, ..., 60 ns. Chunk X (buffer 7, chunk 2) is used at
// phases 1 and 4; chunk Y (buffer 8, chunk 0) only at 3. Buffer 7's chunks 0..3 are all
// used at 1 (one access covering 4 chunks).
NextUsePredictor hand_built_step()
{
  NextUsePredictor p;
  for (uint32_t phase = 0; phase < period; ++phase) {
    p.record_op(step_id, period, phase, 10 * int64_t{phase + 1});
  }
  p.record_use(step_id, 1, LogicalChunk{7, 0}, 4);
  p.record_use(step_id, 4, LogicalChunk{7, 2}, 1);
  p.record_use(step_id, 4, LogicalChunk{7, 2}, 1);  // the same use twice counts once
  p.record_use(step_id, 3, LogicalChunk{8, 0}, 1);
  return p;
}

void expect_next(const NextUsePredictor& p, LogicalChunk chunk, uint32_t after, uint32_t distance,
                 uint32_t phase, int64_t time_ns)
{
  const auto next = p.next_use(step_id, chunk, after);
  ASSERT_TRUE(next.has_value()) << "after " << after;
  EXPECT_EQ(next->distance_ops, distance) << "after " << after;
  EXPECT_EQ(next->phase, phase) << "after " << after;
  EXPECT_EQ(next->time_until_ns, time_ns) << "after " << after;
}

TEST(PolicyNextUse, DistancesWithinAndAcrossTheStepBoundary)
{
  const NextUsePredictor p = hand_built_step();
  const LogicalChunk x{7, 2};
  expect_next(p, x, 0, 1, 1, 0);        // the very next op: no time to hide anything
  expect_next(p, x, 1, 3, 4, 30 + 40);  // ops 2 and 3 run in between
  expect_next(p, x, 2, 2, 4, 40);
  expect_next(p, x, 3, 1, 4, 0);
  expect_next(p, x, 4, 3, 1, 60 + 10);  // wraps: ops 5 and 0 of the next step
  expect_next(p, x, 5, 2, 1, 10);
  EXPECT_EQ(p.use_phases(step_id, x).size(), 2u);
}

TEST(PolicyNextUse, OnlyUseIsAWholeStepAway)
{
  const NextUsePredictor p = hand_built_step();
  expect_next(p, LogicalChunk{8, 0}, 3, period, 3, 210 - 40);
  expect_next(p, LogicalChunk{8, 0}, 0, 3, 3, 20 + 30);
  EXPECT_EQ(p.step_duration_ns(step_id), 210);
}

TEST(PolicyNextUse, EveryChunkOfARangeIsRecorded)
{
  const NextUsePredictor p = hand_built_step();
  expect_next(p, LogicalChunk{7, 0}, 4, 3, 1, 70);
  expect_next(p, LogicalChunk{7, 3}, 1, period, 1, 210 - 20);
  EXPECT_FALSE(p.next_use(step_id, LogicalChunk{7, 4}, 0).has_value());  // past the range
}

TEST(PolicyNextUse, UnknownChunkTemplateOrPhaseHasNoNextUse)
{
  const NextUsePredictor p = hand_built_step();
  EXPECT_FALSE(p.next_use(step_id, LogicalChunk{9, 0}, 0).has_value());
  EXPECT_FALSE(p.next_use(2, LogicalChunk{7, 2}, 0).has_value());
  EXPECT_FALSE(p.next_use(step_id, LogicalChunk{7, 2}, period).has_value());
}

TEST(PolicyNextUse, DurationsAreAveragedPerPhaseIgnoringUnknown)
{
  NextUsePredictor p;
  p.record_op(step_id, 4, 0, 100);
  p.record_op(step_id, 4, 1, 30);
  p.record_op(step_id, 4, 2, 0);  // unknown: not averaged in
  p.record_op(step_id, 4, 3, 7);
  p.record_op(step_id, 4, 0, 300);
  p.record_op(step_id, 4, 1, 0);
  p.record_op(step_id, 4, 2, 11);
  p.record_op(step_id, 4, 3, 8);  // mean of 7 and 8 rounds down
  EXPECT_EQ(p.mean_duration_ns(step_id, 0), 200);
  EXPECT_EQ(p.mean_duration_ns(step_id, 1), 30);
  EXPECT_EQ(p.mean_duration_ns(step_id, 2), 11);
  EXPECT_EQ(p.mean_duration_ns(step_id, 3), 7);
  EXPECT_EQ(p.step_duration_ns(step_id), 248);
  p.record_use(step_id, 3, LogicalChunk{1, 0}, 1);
  expect_next(p, LogicalChunk{1, 0}, 0, 3, 3, 30 + 11);
  expect_next(p, LogicalChunk{1, 0}, 3, 4, 3, 248 - 7);
  EXPECT_TRUE(p.complete(step_id));  // 8 ops = 2 steps recorded
}

TEST(PolicyNextUse, CompleteAfterTwoStepsAndForgotten)
{
  NextUsePredictor p;
  for (uint32_t k = 0; k < 2 * period - 1; ++k) {
    p.record_op(step_id, period, k % period, 0);
  }
  EXPECT_FALSE(p.complete(step_id));
  p.record_op(step_id, period, period - 1, 0);
  EXPECT_TRUE(p.complete(step_id));
  p.forget_template(step_id);
  EXPECT_FALSE(p.complete(step_id));
}

TEST(PolicyNextUse, FreesArePlacedByPhaseAndTheLastPlaceWins)
{
  NextUsePredictor p = hand_built_step();
  p.record_free(step_id, 4, 7);
  p.record_free(step_id, 2, 8);
  p.record_free(step_id, 9, 8);  // beyond the step: not one we can place
  EXPECT_EQ(p.free_phase(step_id, 7), std::optional<uint32_t>{4});
  EXPECT_EQ(p.free_phase(step_id, 8), std::optional<uint32_t>{2});
  EXPECT_EQ(p.free_phase(step_id, 5), std::nullopt);  // never freed (persistent)
  EXPECT_EQ(p.free_phase(2, 7), std::nullopt);        // unknown template
  ASSERT_EQ(p.frees_at(step_id, 4).size(), 1u);
  EXPECT_EQ(p.frees_at(step_id, 4)[0], LogicalId{7});
  // Note [Predicted frees]: freed elsewhere in a later step, it moves there.
  p.record_free(step_id, 5, 7);
  EXPECT_EQ(p.free_phase(step_id, 7), std::optional<uint32_t>{5});
  EXPECT_TRUE(p.frees_at(step_id, 4).empty());
  EXPECT_EQ(p.frees_at(step_id, 5).size(), 1u);
  p.forget_template(step_id);
  EXPECT_EQ(p.free_phase(step_id, 7), std::nullopt);
}

}  // namespace
}  // namespace oversub::policy
