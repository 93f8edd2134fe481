// The lookahead planner and policy on a synthetic step (policy/lookahead.h).
#include <gtest/gtest.h>

#include "policy/lookahead.h"

namespace oversub::policy {
namespace {

constexpr uint64_t kSlotA = 10, kSlotB = 11, kSlotC = 12, kSlotD = 13;
constexpr AllocId kA = 1, kB = 2, kC = 3, kD = 4;

Access use(AllocId id, AccessMode mode) { return Access{id, 0, 1, mode}; }

// One step of eight ops over four persistent one-chunk buffers A..D:
//   0: A w   1: B r   2: A r, C w   3: D r   4: B rw   5: C r   6: D w   7: A r, D r
// (each op has its own name, so the step has no shorter repeat).
OpEvent step_op(uint32_t phase) {
  OpEvent op;
  op.name = phase + 1;
  switch (phase) {
    case 0: op.accesses.add(use(kA, AccessMode::write)); break;
    case 1: op.accesses.add(use(kB, AccessMode::read)); break;
    case 2: op.accesses.add(use(kA, AccessMode::read)); op.accesses.add(use(kC, AccessMode::write)); break;
    case 3: op.accesses.add(use(kD, AccessMode::read)); break;
    case 4: op.accesses.add(use(kB, AccessMode::read_write)); break;
    case 5: op.accesses.add(use(kC, AccessMode::read)); break;
    case 6: op.accesses.add(use(kD, AccessMode::write)); break;
    default: op.accesses.add(use(kA, AccessMode::read)); op.accesses.add(use(kD, AccessMode::read)); break;
  }
  return op;
}

struct Fixture : ::testing::Test {
  LookaheadPlanner planner{64};
  uint64_t tick = 0;

  void SetUp() override {
    planner.on_alloc(kA, chunk_bytes, no_site, kSlotA, 1, false);
    planner.on_alloc(kB, chunk_bytes, no_site, kSlotB, 1, false);
    planner.on_alloc(kC, chunk_bytes, no_site, kSlotC, 1, false);
    planner.on_alloc(kD, chunk_bytes, no_site, kSlotD, 1, false);
  }
  void run_steps(int steps) {
    for (int s = 0; s < steps; ++s)
      for (uint32_t p = 0; p < 8; ++p) planner.on_op(++tick, step_op(p));
  }
};

TEST_F(Fixture, NothingIsPredictedBeforeTheStepIsLearned) {
  run_steps(1);
  EXPECT_FALSE(planner.ready());
  EXPECT_EQ(planner.next_use_op(kSlotA), LookaheadPlanner::unknown);
  std::vector<uint64_t> slots;
  planner.upcoming(tick, 8, &slots);
  EXPECT_TRUE(slots.empty());
}

TEST_F(Fixture, PredictsEachSlotsNextUse) {
  run_steps(6);
  ASSERT_TRUE(planner.ready());
  // The last op was phase 7 (tick = 48). Next uses: A at phase 0 (+1), D at phase 3
  // (+4); B was last used at phase 4 (tick 45), next at phase 1 (+5); C at phase 5
  // (tick 46), next at phase 2 (+5).
  EXPECT_EQ(planner.next_use_op(kSlotA), tick + 1);
  EXPECT_EQ(planner.next_use_op(kSlotD), tick + 4);
  EXPECT_EQ(planner.next_use_op(kSlotB), tick - 3 + 5);
  EXPECT_EQ(planner.next_use_op(kSlotC), tick - 2 + 5);
  EXPECT_EQ(planner.next_use_op(99), LookaheadPlanner::unknown);  // beyond the capacity
}

TEST_F(Fixture, UpcomingSlotsInOrderOfUseFromWhereTheEngineIs) {
  run_steps(6);
  std::vector<uint64_t> slots;
  planner.upcoming(tick, 8, &slots);  // the engine is where the planner is: phases 0, 1, 2, 3...
  EXPECT_EQ(slots, (std::vector<uint64_t>{kSlotA, kSlotB, kSlotC, kSlotD}));
  slots.clear();
  planner.upcoming(tick + 2, 8, &slots);  // two ops ahead: from phase 2 on
  EXPECT_EQ(slots, (std::vector<uint64_t>{kSlotA, kSlotC, kSlotD, kSlotB}));
  slots.clear();
  planner.upcoming(tick, 2, &slots);  // capped
  EXPECT_EQ(slots, (std::vector<uint64_t>{kSlotA, kSlotB}));
}

TEST_F(Fixture, AFreedBufferNeedsFreshMemoryAndItsSlotForgetsItsPrediction) {
  run_steps(6);
  planner.on_free(kB);
  std::vector<uint64_t> slots;
  planner.upcoming(tick, 8, &slots);
  // B's use at phase 1 now needs memory, with nothing to bring back.
  EXPECT_EQ(slots, (std::vector<uint64_t>{kSlotA, LookaheadPlanner::fresh, kSlotC, kSlotD}));
  planner.on_alloc(7, chunk_bytes, no_site, kSlotB, 1, false);  // another buffer takes B's slot
  EXPECT_EQ(planner.next_use_op(kSlotB), LookaheadPlanner::unknown);
}

TEST_F(Fixture, PolicyEvictsTheFurthestNextUseFirst) {
  run_steps(6);
  LookaheadPolicy policy(&planner);
  EXPECT_EQ(policy.name(), "lookahead");
  // Next uses: A +1, D +4, B +2, C +3 (relative to the last tick). Slot 20 has nothing
  // predicted: it goes after every predicted one, oldest first.
  const ChunkCandidate resident[] = {{kSlotA, tick}, {kSlotB, tick - 3}, {kSlotC, tick - 2}, {kSlotD, tick},
                                     {20, 1}};
  std::vector<uint64_t> victims;
  policy.choose_victims(resident, 5, tick + 1, &victims);
  EXPECT_EQ(victims, (std::vector<uint64_t>{kSlotD, kSlotC, kSlotB, kSlotA, 20}));
  victims.clear();
  policy.choose_victims(resident, 5, tick, &victims);  // the op at `tick` uses A and D: spared
  EXPECT_EQ(victims, (std::vector<uint64_t>{kSlotC, kSlotB, 20}));
}

}  // namespace
}  // namespace oversub::policy
