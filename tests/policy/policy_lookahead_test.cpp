// The lookahead planner and policy on a synthetic step (policy/lookahead.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

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

// Note [Victims that wait] in policy/residency_policy.h.
TEST_F(Fixture, PolicyTakesIdleChunksBeforeBusyOnesAndTheOldestBusyFirst) {
  run_steps(6);
  LookaheadPolicy policy(&planner);
  // As above, but D (furthest next use) and C are busy: their last uses may still be
  // running. Every idle chunk goes first, even A, needed next; then C, the older busy one.
  const ChunkCandidate resident[] = {{kSlotA, tick, false}, {kSlotB, tick - 3, false}, {kSlotC, tick - 2, true},
                                     {kSlotD, tick, true}, {20, 1, false}};
  std::vector<uint64_t> victims;
  policy.choose_victims(resident, 5, tick + 1, &victims);
  EXPECT_EQ(victims, (std::vector<uint64_t>{kSlotB, kSlotA, 20, kSlotC, kSlotD}));
  victims.clear();
  policy.choose_victims(resident, 2, tick + 1, &victims);
  EXPECT_EQ(victims, (std::vector<uint64_t>{kSlotB, kSlotA}));
}


// A step with buffers freed inside it (Note [Predicted frees] in next_use.h): persistent
// V and W, and per step an activation X (allocated before op 0, last used at op 3,
// freed after op 5) and a temporary Y (allocated after X's free, used at ops 6 and 7,
// freed after op 7):
//   0: X w   1: W r   2: V r   3: X r   4: V w   5: V r   6: Y w, W r   7: Y r
struct FreesFixture : ::testing::Test {
  static constexpr uint64_t kSlotV = 30, kSlotW = 31, kSlotX = 32, kSlotY = 33;
  static constexpr AllocId kV = 1, kW = 2;
  LookaheadPlanner planner{64};
  uint64_t tick = 0;
  AllocId next_id = 10;
  AllocId x = 0, y = 0;

  void SetUp() override {
    planner.on_alloc(kV, chunk_bytes, no_site, kSlotV, 1, false);
    planner.on_alloc(kW, chunk_bytes, no_site, kSlotW, 1, false);
  }
  OpEvent op_at(uint32_t phase) const {
    OpEvent op;
    op.name = phase + 1;
    switch (phase) {
      case 0: op.accesses.add(use(x, AccessMode::write)); break;
      case 1: op.accesses.add(use(kW, AccessMode::read)); break;
      case 2: op.accesses.add(use(kV, AccessMode::read)); break;
      case 3: op.accesses.add(use(x, AccessMode::read)); break;
      case 4: op.accesses.add(use(kV, AccessMode::write)); break;
      case 5: op.accesses.add(use(kV, AccessMode::read)); break;
      case 6: op.accesses.add(use(y, AccessMode::write)); op.accesses.add(use(kW, AccessMode::read)); break;
      default: op.accesses.add(use(y, AccessMode::read)); break;
    }
    return op;
  }
  // Runs whole steps, then the ops of the next one up to and including `last_phase`;
  // a later call goes on from there.
  void run(int steps, uint32_t last_phase) {
    const uint64_t end = (done / 8 + steps) * 8 + last_phase + 1;
    for (; done < end; ++done) {
      const auto p = static_cast<uint32_t>(done % 8);
      if (done > 0) free_after((p + 7) % 8);  // the last op's frees come with the next one
      if (p == 0) {
        x = next_id++;
        planner.on_alloc(x, chunk_bytes, no_site, kSlotX, 1, false);
      }
      planner.on_op(++tick, op_at(p));
    }
  }
  void free_after(uint32_t p) {
    if (p == 5) {
      planner.on_free(x);
      y = next_id++;
      planner.on_alloc(y, chunk_bytes, no_site, kSlotY, 1, false);
    }
    if (p == 7) planner.on_free(y);
  }
  uint64_t done = 0;  // ops run
};

TEST_F(FreesFixture, PredictsAFreeThatComesBeforeTheNextUse) {
  run(6, 0);
  ASSERT_TRUE(planner.ready());
  // After op 0, X is used next at op 3, before its free: no free to predict.
  EXPECT_EQ(planner.next_use_op(kSlotX), tick + 3);
  EXPECT_EQ(planner.free_op(kSlotX), LookaheadPlanner::unknown);
  run(0, 3);
  // After op 3 its next use is op 0 of the next step (+5), under a new allocation; it
  // is freed after op 5 (+2) first.
  EXPECT_EQ(planner.next_use_op(kSlotX), tick + 5);
  EXPECT_EQ(planner.free_op(kSlotX), tick + 2);
  EXPECT_EQ(planner.free_op(kSlotW), LookaheadPlanner::unknown);  // persistent
}

TEST_F(FreesFixture, AChunkFreedSoonRanksByItsFreeNotItsNextUse) {
  run(6, 3);
  LookaheadPolicy policy(&planner);
  // After op 3: V next used at +1, W at +3, X freed at +2 (next "used" at +5).
  // Evicting X buys memory until +2 only, W until +3: W goes first.
  const ChunkCandidate resident[] = {{kSlotV, tick - 1}, {kSlotW, tick - 2}, {kSlotX, tick}};
  std::vector<uint64_t> victims;
  policy.choose_victims(resident, 3, tick + 1, &victims);
  EXPECT_EQ(victims, (std::vector<uint64_t>{kSlotW, kSlotX, kSlotV}));
}

TEST_F(FreesFixture, AFreeInsideTheWindowServesTheBufferAllocatedAfterIt) {
  run(6, 3);
  std::vector<uint64_t> slots;
  planner.upcoming(tick, 16, &slots);
  // Phases 4..7, 0..3: V at 4; Y at 6 needs no room of its own, X's free after op 5
  // hands it back; W at 6. (Phase 7 also uses a buffer of the step the lock was found
  // in, under an id that never recurs: fresh to the planner.)
  ASSERT_GE(slots.size(), 2u);
  EXPECT_EQ(slots[0], kSlotV);
  EXPECT_EQ(slots[1], kSlotW);
  EXPECT_EQ(std::count(slots.begin(), slots.end(), LookaheadPlanner::fresh), 1);
  // The engine three ops ahead (after op 6): the frees up to there are the engine's to
  // count, so Y, first used at op 7, still needs room.
  slots.clear();
  planner.upcoming(tick + 3, 16, &slots);
  ASSERT_FALSE(slots.empty());
  EXPECT_EQ(slots[0], LookaheadPlanner::fresh);
}

TEST_F(FreesFixture, NoEvictionAheadOfDemandOnceTheLearnedStepFitsTheBudget) {
  LookaheadPolicy policy(&planner);
  run(0, 7);  // a step, not learned yet: evictions ahead of demand as the engine wants
  EXPECT_EQ(planner.learned_peak_slots(), 0u);
  EXPECT_EQ(policy.proactive_evictions(5, 3), 5u);
  run(6, 7);
  ASSERT_TRUE(planner.ready());
  // Note [Learned peak]: V, W and one of X and Y (X is freed before Y is allocated).
  EXPECT_EQ(planner.learned_peak_slots(), 3u);
  EXPECT_EQ(policy.proactive_evictions(5, 3), 0u);  // it fits: nothing needs to move
  EXPECT_EQ(policy.proactive_evictions(5, 2), 5u);  // it does not
}

// Note [Evicting early]: a step whose live memory rises to a peak and falls again, as
// a forward and a backward pass do. P persists; activations A1..A3 are allocated
// before ops 1..3 and freed after ops 6, 5 and 4:
//   0: P r   1: A1 w   2: A1 r, A2 w   3: A2 r, A3 w   4: A3 r   5: A2 r   6: A1 r   7: P w
// with a small buffer S, in a shared slot, read at op 7 too. Live slots while each op
// runs: 2 3 4 5 5 4 3 2 (the peak first at op 3).
struct RiseFixture : ::testing::Test {
  static constexpr uint64_t kSlotP = 40, kSlotA1 = 41, kSlotA2 = 42, kSlotA3 = 43, kSlotS = 50;
  static constexpr AllocId kP = 1, kS = 2;  // S: a small buffer in a shared slot, used with P at op 7
  LookaheadPlanner planner{64};
  uint64_t tick = 0;
  uint64_t done = 0;
  AllocId next_id = 10;
  AllocId a[4] = {};  // a[1..3]

  void SetUp() override {
    planner.on_alloc(kP, chunk_bytes, no_site, kSlotP, 1, false);
    planner.on_alloc(kS, 4096, no_site, kSlotS, 1, true);
  }
  OpEvent op_at(uint32_t phase) const {
    OpEvent op;
    op.name = phase + 1;
    switch (phase) {
      case 0: op.accesses.add(use(kP, AccessMode::read)); break;
      case 1: op.accesses.add(use(a[1], AccessMode::write)); break;
      case 2: op.accesses.add(use(a[1], AccessMode::read)); op.accesses.add(use(a[2], AccessMode::write)); break;
      case 3: op.accesses.add(use(a[2], AccessMode::read)); op.accesses.add(use(a[3], AccessMode::write)); break;
      case 4: op.accesses.add(use(a[3], AccessMode::read)); break;
      case 5: op.accesses.add(use(a[2], AccessMode::read)); break;
      case 6: op.accesses.add(use(a[1], AccessMode::read)); break;
      default:
        op.accesses.add(use(kP, AccessMode::write));
        op.accesses.add(use(kS, AccessMode::read));
        break;
    }
    return op;
  }
  // Runs whole steps, then the next one's ops up to and including `last_phase`. With
  // `op_ns` set, the engine's clock advances by op_ns(evicting early) per op.
  std::function<int64_t(bool)> op_ns;
  int64_t now = 0;
  // The decision of Note [Early or on demand], with the two step times it compared.
  void expect_choice(LookaheadPlanner::EarlyChoice choice, int64_t on_demand_ns, int64_t early_ns) const {
    const LookaheadPlanner::EarlyReport report = planner.early_report();
    ASSERT_EQ(report.choice, choice);
    EXPECT_EQ(planner.evicts_early(), choice == LookaheadPlanner::EarlyChoice::early);
    EXPECT_EQ(report.on_demand_step_ns, on_demand_ns);
    EXPECT_EQ(report.early_step_ns, early_ns);
  }
  void run(int steps, uint32_t last_phase) {
    const uint64_t end = (done / 8 + steps) * 8 + last_phase + 1;
    for (; done < end; ++done) {
      const auto p = static_cast<uint32_t>(done % 8);
      if (p >= 5) planner.on_free(a[8 - p]);  // after ops 4..6: A3, A2, A1
      if (p >= 1 && p <= 3) {
        a[p] = next_id++;
        planner.on_alloc(a[p], chunk_bytes, no_site, kSlotP + p, 1, false);
      }
      if (op_ns) now += op_ns(planner.evicts_early());
      planner.on_op(++tick, op_at(p), op_ns ? now : -1);
    }
  }
};

TEST_F(RiseFixture, PredictsTheRiseStillToComeBeforeThePeak) {
  planner.set_budget_slots(3);
  run(1, 1);
  EXPECT_EQ(planner.rise_slots(), 0u);  // not learned yet: nothing predicted
  run(6, 1);
  ASSERT_TRUE(planner.ready());
  EXPECT_EQ(planner.learned_peak_slots(), 5u);
  // After op 1: three slots live, the peak of five comes at op 3, and live memory is
  // back within three slots at op 6.
  EXPECT_EQ(planner.rise_slots(), 2u);
  EXPECT_EQ(planner.rise_peak_op(), tick + 2);
  EXPECT_EQ(planner.rise_fits_op(), tick + 5);
  run(0, 4);  // still at the peak: the next one is a step away, and no higher
  EXPECT_EQ(planner.rise_slots(), 0u);
  EXPECT_EQ(planner.rise_peak_op(), tick + 7);
  run(0, 7);  // after the last op: two slots live, the peak four ops on
  EXPECT_EQ(planner.rise_slots(), 3u);
  EXPECT_EQ(planner.rise_peak_op(), tick + 4);
  EXPECT_EQ(planner.rise_fits_op(), tick + 7);
  planner.set_budget_slots(4);  // a larger budget is fitted again sooner after the peak
  run(0, 0);
  EXPECT_EQ(planner.rise_fits_op(), tick + 5);
  // A new budget: Note [Early or on demand] chooses again, from the next step.
  EXPECT_EQ(planner.early_report().choice, LookaheadPlanner::EarlyChoice::none);

  LookaheadPolicy policy(&planner);
  run(4, 0);  // the budget changed: the choice of Note [Early or on demand] is made again
  ASSERT_TRUE(planner.evicts_early());  // no clock: nothing to compare, so early
  EXPECT_EQ(policy.predicted_rise(4).chunks, 3u);
  EXPECT_EQ(policy.predicted_rise(4).peak_tick, tick + 3);
  EXPECT_EQ(policy.predicted_rise(5).chunks, 0u);  // the learned step fits: nothing moves early
}

TEST_F(RiseFixture, EarlyVictimsAreOnlyThoseNotNeededUntilMemoryFitsAgainFurthestFirst) {
  planner.set_budget_slots(3);
  run(6, 2);
  ASSERT_TRUE(planner.ready());
  ASSERT_TRUE(planner.evicts_early());
  LookaheadPolicy policy(&planner);
  // After op 2 the peak comes at op 3 (tick + 1) and live memory fits three slots again
  // at op 6 (tick + 4). P is next used at op 7 (tick + 5), A1 at op 6 (tick + 4), A2
  // at op 3 (too soon). S is next used at op 7 too, but small buffers allocated later
  // may join its slot and be used at once: never an early victim.
  const ResidencyPolicy::Rise rise = policy.predicted_rise(3);
  ASSERT_EQ(rise.chunks, 1u);
  ASSERT_EQ(rise.peak_tick, tick + 1);
  ASSERT_EQ(rise.fits_tick, tick + 4);
  const ChunkCandidate resident[] = {
    {kSlotS, tick - 2, false}, {kSlotP, tick - 2, false}, {kSlotA1, tick, true}, {kSlotA2, tick, true}};
  std::vector<uint64_t> victims;
  policy.choose_early_victims(resident, 4, tick + 1, rise, &victims);
  EXPECT_EQ(victims, (std::vector<uint64_t>{kSlotP, kSlotA1}));  // busy or not
  victims.clear();
  policy.choose_early_victims(resident, 1, tick + 1, rise, &victims);
  EXPECT_EQ(victims, (std::vector<uint64_t>{kSlotP}));
  // A1 is needed before memory fits a smaller budget (never, in this step).
  victims.clear();
  ResidencyPolicy::Rise later = rise;
  later.fits_tick = tick + 5;
  policy.choose_early_victims(resident, 4, tick + 1, later, &victims);
  EXPECT_EQ(victims, (std::vector<uint64_t>{kSlotP}));
  // Chunks the op being prepared uses are never victims.
  victims.clear();
  policy.choose_early_victims(resident, 4, tick, rise, &victims);
  EXPECT_EQ(victims, (std::vector<uint64_t>{kSlotP}));
}

// Note [Early or on demand]: a step on demand and one evicting early are timed, and the
// faster mode stays.
TEST_F(RiseFixture, EvictsEarlyOnlyWhenATimedStepWasFasterSo) {
  planner.set_budget_slots(3);
  op_ns = [](bool early) { return early ? int64_t{10} : int64_t{20}; };
  run(12, 0);
  ASSERT_TRUE(planner.ready());
  expect_choice(LookaheadPlanner::EarlyChoice::early, 8 * 20, 8 * 10);
  LookaheadPolicy policy(&planner);
  EXPECT_GT(policy.predicted_rise(3).chunks, 0u);
}

TEST_F(RiseFixture, StaysOnDemandWhenEvictingEarlyMadeTheStepSlower) {
  planner.set_budget_slots(3);
  op_ns = [](bool early) { return early ? int64_t{30} : int64_t{20}; };
  run(6, 0);
  EXPECT_EQ(planner.early_report().choice, LookaheadPlanner::EarlyChoice::trying);
  run(6, 0);
  expect_choice(LookaheadPlanner::EarlyChoice::on_demand, 8 * 20, 8 * 30);
  LookaheadPolicy policy(&planner);
  EXPECT_EQ(policy.predicted_rise(3).chunks, 0u);  // nothing moves early
}

// A choice made early in a run (warm-up) does not last it: both modes are timed again
// every kRetimeAfterSteps steps, starting from an untimed step on demand.
TEST_F(RiseFixture, TimesBothModesAgainEvery200StepsAndFollowsAChange) {
  planner.set_budget_slots(3);
  bool early_faster = true;
  op_ns = [&](bool early) { return early == early_faster ? int64_t{10} : int64_t{30}; };
  run(12, 0);
  expect_choice(LookaheadPlanner::EarlyChoice::early, 8 * 30, 8 * 10);
  early_faster = false;  // the program changed: evicting early now costs
  run(190, 0);
  expect_choice(LookaheadPlanner::EarlyChoice::early, 8 * 30, 8 * 10);  // not timed again yet
  run(20, 0);
  expect_choice(LookaheadPlanner::EarlyChoice::on_demand, 8 * 10, 8 * 30);
  early_faster = true;  // and back: the next timing follows
  run(220, 0);
  expect_choice(LookaheadPlanner::EarlyChoice::early, 8 * 30, 8 * 10);
}

TEST_F(RiseFixture, NothingToChooseWhenTheStepFitsTheBudget) {
  planner.set_budget_slots(5);
  op_ns = [](bool early) { return early ? int64_t{10} : int64_t{20}; };
  run(12, 0);
  ASSERT_TRUE(planner.ready());
  EXPECT_EQ(planner.early_report().choice, LookaheadPlanner::EarlyChoice::none);
  EXPECT_FALSE(planner.evicts_early());
}

}  // namespace
}  // namespace oversub::policy
