// Iteration detection on synthetic signature streams with every irregularity of issue 6:
// warm-up, repeated blocks, gradient accumulation, evaluation steps, inserted and left-out
// ops, a change of shapes and a change back. Signatures are small integers so that the
// expected lock points can be worked out by hand (each test says how).
#include <gtest/gtest.h>

#include <vector>

#include "policy/iteration.h"

namespace oversub::policy {
namespace {

using Sigs = std::vector<OpSignature>;

// Signatures first, first + 1, ..., first + count - 1.
Sigs run_of(OpSignature first, uint32_t count)
{
  Sigs out;
  for (uint32_t k = 0; k < count; ++k) {
    out.push_back(first + k);
  }
  return out;
}

void append(Sigs& to, const Sigs& more)
{
  to.insert(to.end(), more.begin(), more.end());
}

std::vector<OpPosition> feed(IterationDetector& d, const Sigs& sigs)
{
  std::vector<OpPosition> out;
  for (OpSignature s : sigs) {
    out.push_back(d.observe(s));
  }
  return out;
}

// Small windows so that hand-computed lock points stay short.
IterationParams small_params()
{
  IterationParams p;
  p.window_ops = 4;
  p.min_confirm_ops = 8;
  p.max_skip_ops = 2;
  p.max_misses = 6;
  p.max_templates = 4;
  p.max_cycle_factor = 8;
  return p;
}

std::vector<uint64_t> ops_with(const std::vector<OpPosition>& pos, LockChange change)
{
  std::vector<uint64_t> out;
  for (const OpPosition& p : pos) {
    if (p.change == change) {
      out.push_back(p.op_index);
    }
  }
  return out;
}

std::vector<uint64_t> broken_ops(const std::vector<OpPosition>& pos)
{
  std::vector<uint64_t> out;
  for (const OpPosition& p : pos) {
    if (p.prediction_broke) {
      out.push_back(p.op_index);
    }
  }
  return out;
}

TEST(PolicyIteration, PlainRepeatLocksAfterOneRepeatWithDefaults)
{
  // Step = 10 distinct ops. Default window 8: op 17 repeats op 7's window (period 10,
  // run 8); confirmation needs max(10 + 8, 16) = 18 matching ops: op 27. Phase 0 is op 10.
  IterationDetector d;
  Sigs sigs;
  for (int step = 0; step < 5; ++step) {
    append(sigs, run_of(1, 10));
  }
  const auto pos = feed(d, sigs);
  for (uint64_t i = 0; i < 27; ++i) {
    EXPECT_EQ(pos[i].state, IterationState::learning) << i;
  }
  EXPECT_EQ(ops_with(pos, LockChange::learned), (std::vector<uint64_t>{27}));
  EXPECT_EQ(pos[27].period_ops, 10u);
  EXPECT_EQ(pos[27].phase, 7u);
  for (uint64_t i = 27; i < pos.size(); ++i) {
    EXPECT_EQ(pos[i].state, IterationState::locked) << i;
    EXPECT_EQ(pos[i].phase, i % 10) << i;
    EXPECT_TRUE(pos[i].matched) << i;
    EXPECT_FALSE(pos[i].prediction_broke) << i;
    EXPECT_EQ(pos[i].template_id, 1u);
  }
}

TEST(PolicyIteration, WarmUpStepWithAutotuningOpsDelaysTheLockOnly)
{
  // Step 0 has an autotuning op after every third op (ops 0..14), so no window of 4
  // repeats step 0's until op 27 ([10,11,12,1] = ops 12..15): period 12 with a run of 4
  // (op 23 meets an autotuning op 12 back). Confirmation at run 12 + 4: op 39, the first op
  // of step 3. Phase 0 is op 24 (signature 10), so phase = (position - 9) mod 12.
  IterationDetector d(small_params());
  Sigs sigs = {1, 2, 3, 900, 4, 5, 6, 901, 7, 8, 9, 902, 10, 11, 12};
  for (int step = 1; step < 6; ++step) {
    append(sigs, run_of(1, 12));
  }
  const auto pos = feed(d, sigs);
  EXPECT_EQ(ops_with(pos, LockChange::learned), (std::vector<uint64_t>{39}));
  EXPECT_EQ(pos[38].state, IterationState::learning);
  EXPECT_EQ(pos[39].period_ops, 12u);
  EXPECT_EQ(pos[39].phase, 3u);
  for (uint64_t i = 39; i < pos.size(); ++i) {
    const uint64_t position = (i - 15) % 12;
    EXPECT_EQ(pos[i].phase, (position + 12 - 9) % 12) << i;
    EXPECT_TRUE(pos[i].matched) << i;
  }
  EXPECT_TRUE(broken_ops(pos).empty());
}

TEST(PolicyIteration, RepeatedBlocksSettleOnTheWholeStep)
{
  // Step (27 ops) = stem 1..3, four identical blocks 10..14, tail 20..23.
  // - Inside step 0 the blocks repeat: period 5 is found at op 11 (run 4) and confirmed at
  //   op 16 (run 5 + 4).
  // - The tail breaks it at op 23; 7 unexplained ops later (op 29) the position is lost.
  // - Op 33 ends the window 10..13 of step 1's first block: resynced to the block.
  // - Step 1's tail breaks it again from op 50; lost at op 56.
  // - Period 27 was found at op 30 (window 1,2,3,10, run 4); its run reaches 27 + 4 at
  //   op 57: learned, phase 0 at the step's first op. The block template failed inside
  //   that run and is dropped.
  IterationDetector d(small_params());
  Sigs step = run_of(1, 3);
  for (int b = 0; b < 4; ++b) {
    append(step, run_of(10, 5));
  }
  append(step, run_of(20, 4));
  ASSERT_EQ(step.size(), 27u);
  Sigs sigs;
  for (int k = 0; k < 5; ++k) {
    append(sigs, step);
  }
  const auto pos = feed(d, sigs);
  EXPECT_EQ(ops_with(pos, LockChange::learned), (std::vector<uint64_t>{16, 57}));
  EXPECT_EQ(pos[16].period_ops, 5u);
  EXPECT_EQ(pos[16].phase, 3u);
  EXPECT_EQ(ops_with(pos, LockChange::lost), (std::vector<uint64_t>{29, 56}));
  EXPECT_EQ(ops_with(pos, LockChange::resynced), (std::vector<uint64_t>{33}));
  EXPECT_TRUE(ops_with(pos, LockChange::switched).empty());
  EXPECT_EQ(pos[57].period_ops, 27u);
  EXPECT_EQ(pos[57].phase, 3u);
  EXPECT_EQ(pos[57].template_id, 2u);
  EXPECT_EQ(d.find_template(1), nullptr);
  EXPECT_EQ(d.take_retired_templates(), (std::vector<TemplateId>{1}));
  for (uint64_t i = 57; i < pos.size(); ++i) {
    EXPECT_EQ(pos[i].phase, i % 27) << i;
    EXPECT_TRUE(pos[i].matched) << i;
    EXPECT_FALSE(pos[i].prediction_broke) << i;
  }
}

TEST(PolicyIteration, GradientAccumulationLearnsTheWholeCycle)
{
  // Cycle (21 ops) = 3 micro-batches of 1..6, then the optimizer tail 30..32.
  // - Micro-batch period 6: found at op 9 (run 4), confirmed at op 15 (run 6 + 4), phase 3.
  // - The tail (ops 18..20) is three inserted ops; op 21 matches again.
  // - Op 39 (tail of cycle 1) repeats op 18's window: period 21 with a run of 19, so it is
  //   confirmed at op 45 (run 21 + 4); the micro-batch lock broke at ops 39..41, inside
  //   that run: switch, phase 0 at the cycle's first op.
  IterationDetector d(small_params());
  Sigs cycle;
  for (int a = 0; a < 3; ++a) {
    append(cycle, run_of(1, 6));
  }
  append(cycle, run_of(30, 3));
  Sigs sigs;
  for (int k = 0; k < 5; ++k) {
    append(sigs, cycle);
  }
  const auto pos = feed(d, sigs);
  EXPECT_EQ(ops_with(pos, LockChange::learned), (std::vector<uint64_t>{15}));
  EXPECT_EQ(pos[15].period_ops, 6u);
  EXPECT_EQ(pos[15].phase, 3u);
  EXPECT_EQ(broken_ops(pos), (std::vector<uint64_t>{18, 19, 20, 39, 40, 41}));
  EXPECT_FALSE(pos[18].matched);
  EXPECT_EQ(pos[18].phase, 5u);  // stays at the last explained op
  EXPECT_TRUE(pos[21].matched);
  EXPECT_EQ(pos[21].phase, 0u);
  EXPECT_EQ(ops_with(pos, LockChange::switched), (std::vector<uint64_t>{45}));
  EXPECT_EQ(pos[45].period_ops, 21u);
  EXPECT_EQ(pos[45].phase, 3u);
  for (uint64_t i = 45; i < pos.size(); ++i) {
    EXPECT_EQ(pos[i].period_ops, 21u) << i;
    EXPECT_EQ(pos[i].phase, i % 21) << i;
    EXPECT_TRUE(pos[i].matched) << i;
  }
  EXPECT_TRUE(ops_with(pos, LockChange::lost).empty());
}

// Four training steps of 1..10, then an evaluation of 12 different ops; four cycles of 52.
Sigs training_with_evaluation()
{
  Sigs sigs;
  for (int cycle = 0; cycle < 4; ++cycle) {
    for (int step = 0; step < 4; ++step) {
      append(sigs, run_of(1, 10));
    }
    append(sigs, run_of(50, 12));
  }
  return sigs;
}

TEST(PolicyIteration, EvaluationStepsLoseThePositionBriefly)
{
  // With max_cycle_factor 4 the 52-op cycle (> 4 x 10) is never learned. Lock at op 23.
  // Each evaluation (ops 52c+40..52c+51) breaks at its first op and loses the position
  // at its seventh (max_misses 6); the next training step resyncs at its fourth op.
  IterationParams params = small_params();
  params.max_cycle_factor = 4;
  IterationDetector d(params);
  const auto pos = feed(d, training_with_evaluation());
  EXPECT_EQ(ops_with(pos, LockChange::learned), (std::vector<uint64_t>{23}));
  EXPECT_EQ(ops_with(pos, LockChange::lost), (std::vector<uint64_t>{46, 98, 150, 202}));
  EXPECT_EQ(ops_with(pos, LockChange::resynced), (std::vector<uint64_t>{55, 107, 159}));
  for (uint64_t c = 0; c < 3; ++c) {
    const OpPosition& back = pos[52 * (c + 1) + 3];
    EXPECT_EQ(back.phase, 3u);
    EXPECT_EQ(back.template_id, 1u);
    EXPECT_EQ(pos[52 * c + 40].prediction_broke, true);
    EXPECT_EQ(pos[52 * c + 47].state, IterationState::resyncing);
  }
  for (const OpPosition& p : pos) {
    if (p.state == IterationState::locked) {
      EXPECT_EQ(p.period_ops, 10u) << p.op_index;
    }
  }
}

TEST(PolicyIteration, FrequentEvaluationIsLearnedAsPartOfALongerPeriod)
{
  // With max_cycle_factor 8 the 52-op cycle is allowed: its run starts at op 52 and
  // reaches 52 + 4 at op 107, but there the training step has just been resynced (op 107
  // is position 3 of cycle 2's first step), and a lock that has not broken is kept. The
  // third evaluation breaks it at op 144, inside the 52-op run: switch. The 10-op
  // template is dropped, and nothing breaks after that.
  IterationDetector d(small_params());
  const auto pos = feed(d, training_with_evaluation());
  EXPECT_EQ(ops_with(pos, LockChange::learned), (std::vector<uint64_t>{23}));
  EXPECT_EQ(ops_with(pos, LockChange::switched), (std::vector<uint64_t>{144}));
  EXPECT_EQ(pos[144].period_ops, 52u);
  EXPECT_EQ(pos[144].phase, 40u);
  EXPECT_EQ(d.find_template(1), nullptr);
  EXPECT_TRUE(pos[144].prediction_broke);
  for (uint64_t i = 144; i < pos.size(); ++i) {
    EXPECT_EQ(pos[i].phase, i % 52) << i;
    EXPECT_EQ(pos[i].prediction_broke, i == 144) << i;
  }
}

TEST(PolicyIteration, OccasionalInsertedOpsKeepTheLock)
{
  // A logging op (77) after position 4 of step 3, after position 7 of step 7 and after
  // position 1 of step 8. Lock at op 23; each inserted op breaks the prediction and is
  // not matched, its phase stays at the op before it, and the next op matches.
  IterationDetector d(small_params());
  Sigs sigs;
  std::vector<uint64_t> inserted;
  for (int step = 0; step < 12; ++step) {
    const Sigs normal = run_of(1, 10);
    for (uint32_t k = 0; k < 10; ++k) {
      sigs.push_back(normal[k]);
      if ((step == 3 && k == 4) || (step == 7 && k == 7) || (step == 8 && k == 1)) {
        inserted.push_back(sigs.size());
        sigs.push_back(77);
      }
    }
  }
  ASSERT_EQ(inserted, (std::vector<uint64_t>{35, 79, 84}));
  const auto pos = feed(d, sigs);
  EXPECT_EQ(ops_with(pos, LockChange::learned), (std::vector<uint64_t>{23}));
  EXPECT_EQ(broken_ops(pos), inserted);
  const std::vector<uint32_t> phase_before = {4, 7, 1};
  for (size_t k = 0; k < inserted.size(); ++k) {
    const OpPosition& p = pos[inserted[k]];
    EXPECT_FALSE(p.matched);
    EXPECT_EQ(p.phase, phase_before[k]);
    EXPECT_TRUE(pos[inserted[k] + 1].matched);
    EXPECT_EQ(pos[inserted[k] + 1].phase, phase_before[k] + 1);
  }
  for (uint64_t i = 23; i < pos.size(); ++i) {
    EXPECT_EQ(pos[i].state, IterationState::locked) << i;
    EXPECT_EQ(pos[i].template_id, 1u) << i;
  }
  EXPECT_EQ(ops_with(pos, LockChange::switched).size(), 0u);
}

TEST(PolicyIteration, LeftOutOpIsSkippedOver)
{
  // Step 4 leaves out position 6: op 46 (position 7) arrives when 6 is expected. (Ops 19
  // apart then agree for exactly 19 ops, ops 46..64: not enough to confirm period 19.)
  IterationDetector d(small_params());
  Sigs sigs;
  for (int step = 0; step < 8; ++step) {
    for (OpSignature s : run_of(1, 10)) {
      if (!(step == 4 && s == 7)) {
        sigs.push_back(s);
      }
    }
  }
  const auto pos = feed(d, sigs);
  EXPECT_EQ(broken_ops(pos), (std::vector<uint64_t>{46}));
  EXPECT_TRUE(pos[46].matched);
  EXPECT_EQ(pos[46].phase, 7u);
  EXPECT_EQ(pos[49].phase, 0u);  // step 5 starts one op early in the stream
  EXPECT_EQ(pos.back().phase, 9u);
  EXPECT_EQ(pos.back().template_id, 1u);
}

TEST(PolicyIteration, ShapeChangeRelearnsAndChangingBackResyncs)
{
  // Steps 0..4: 1..10. Steps 5..8: 101..110 (new shapes, so new signatures). Steps 9..11:
  // 1..10 again.
  // - Lock at op 23. From op 50 nothing matches; the position is lost at op 56.
  // - Period 10 matches again from op 60; run 10 + 4 at op 73: a second template, phase 3.
  // - Back to the old shapes at op 90: op 93 completes the window 1..4, which template 1
  //   knows: resynced at phase 3, no relearning.
  IterationDetector d(small_params());
  Sigs sigs;
  for (int step = 0; step < 12; ++step) {
    append(sigs, run_of(step >= 5 && step < 9 ? 101 : 1, 10));
  }
  const auto pos = feed(d, sigs);
  EXPECT_EQ(ops_with(pos, LockChange::learned), (std::vector<uint64_t>{23, 73}));
  EXPECT_EQ(ops_with(pos, LockChange::lost), (std::vector<uint64_t>{56}));
  EXPECT_EQ(ops_with(pos, LockChange::resynced), (std::vector<uint64_t>{93}));
  EXPECT_EQ(pos[55].state, IterationState::locked);
  EXPECT_EQ(pos[57].state, IterationState::resyncing);
  EXPECT_EQ(pos[73].template_id, 2u);
  EXPECT_EQ(pos[73].phase, 3u);
  EXPECT_EQ(pos[93].template_id, 1u);
  EXPECT_EQ(pos[93].phase, 3u);
  EXPECT_EQ(broken_ops(pos), (std::vector<uint64_t>{50, 51, 52, 53, 54, 55, 56, 90, 91, 92, 93}));
  for (uint64_t i = 94; i < pos.size(); ++i) {
    EXPECT_EQ(pos[i].phase, i % 10) << i;
    EXPECT_TRUE(pos[i].matched) << i;
  }
}

}  // namespace
}  // namespace oversub::policy
