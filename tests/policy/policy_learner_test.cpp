// The event model and the StepLearner end to end: a small training step with persistent
// weights and per-step activations, fed as events, gives exact logical ids and next uses.
#include <gtest/gtest.h>

#include <type_traits>
#include <vector>

#include "policy/events.h"
#include "policy/learner.h"

namespace oversub::policy {
namespace {

constexpr uint64_t mib = uint64_t{1} << 20;

TEST(PolicyEvents, RecordsAreFixedSizeAndAccessListsOverflowWithoutAllocating)
{
  static_assert(std::is_trivially_copyable_v<OpEvent>);
  static_assert(std::is_trivially_copyable_v<Event>);
  EXPECT_EQ(chunks_for_bytes(0), 0u);
  EXPECT_EQ(chunks_for_bytes(1), 1u);
  EXPECT_EQ(chunks_for_bytes(2 * mib), 1u);
  EXPECT_EQ(chunks_for_bytes(2 * mib + 1), 2u);
  AccessList list;
  for (uint32_t k = 0; k < AccessList::inline_capacity; ++k) {
    EXPECT_TRUE(list.add(Access{k, 0, 1, AccessMode::read}));
  }
  EXPECT_TRUE(list.full());
  EXPECT_FALSE(list.overflowed());
  EXPECT_FALSE(list.add(Access{99, 0, 1, AccessMode::write}));
  EXPECT_TRUE(list.overflowed());
  EXPECT_EQ(list.size(), AccessList::inline_capacity);
  EXPECT_EQ(list.items().back().alloc_id, AccessList::inline_capacity - 1);
}

// One training step of 6 ops; op k lasts (k + 1) * 100 ns.
//   W1 (alloc 1, 4 MiB: chunks 0..1) and W2 (alloc 2, 2 MiB) are allocated once.
//   alloc act;  op0 fwd1: r W1, w act
//   alloc act2; op1 fwd2: r W2, r act, w act2
//               op2 loss: rw act2
//               op3 bwd2: r act2, r W2, rw act;   free act2
//               op4 bwd1: r act, r W1;            free act
//               op5 sgd:  rw W1, then rw W2 in a MoreAccessesEvent
class TinyTraining {
public:
  static constexpr AllocId w1 = 1;
  static constexpr AllocId w2 = 2;

  TinyTraining()
  {
    learner.observe(Event{0, AllocEvent{w1, 4 * mib, 1, 0}});
    learner.observe(Event{0, AllocEvent{w2, 2 * mib, 2, 0}});
  }

  AllocId act(int step) const { return 1000 + 10 * AllocId(step); }
  AllocId act2(int step) const { return act(step) + 1; }

  // Runs ops [first_op, last_op] of step `step`, with the allocations and frees between.
  void run(int step, uint32_t first_op = 0, uint32_t last_op = 5)
  {
    for (uint32_t k = first_op; k <= last_op; ++k) {
      run_op(step, k);
    }
  }

  StepLearner learner{LearnerParams{small_params()}};
  std::vector<OpPosition> positions;

private:
  static IterationParams small_params()
  {
    IterationParams p;
    p.window_ops = 4;
    p.min_confirm_ops = 8;
    return p;
  }

  void op(NameId name, uint32_t k, std::initializer_list<Access> accesses)
  {
    OpEvent e;
    e.kind = OpKind::kernel;
    e.name = name;
    e.duration_ns = int64_t{k + 1} * 100;
    for (const Access& a : accesses) {
      e.accesses.add(a);
    }
    now_ns_ += e.duration_ns;
    learner.observe(Event{now_ns_, e});
    positions.push_back(learner.position());
  }

  void run_op(int step, uint32_t k)
  {
    const AccessMode r = AccessMode::read, w = AccessMode::write, rw = AccessMode::read_write;
    switch (k) {
    case 0:
      learner.observe(Event{now_ns_, AllocEvent{act(step), 2 * mib, 10, 0}});
      op(1, k, {{w1, 0, 2, r}, {act(step), 0, 1, w}});
      break;
    case 1:
      learner.observe(Event{now_ns_, AllocEvent{act2(step), 2 * mib, 11, 0}});
      op(2, k, {{w2, 0, 1, r}, {act(step), 0, 1, r}, {act2(step), 0, 1, w}});
      break;
    case 2:
      op(3, k, {{act2(step), 0, 1, rw}});
      break;
    case 3:
      op(4, k, {{act2(step), 0, 1, r}, {w2, 0, 1, r}, {act(step), 0, 1, rw}});
      learner.observe(Event{now_ns_, FreeEvent{act2(step)}});
      break;
    case 4:
      op(5, k, {{act(step), 0, 1, r}, {w1, 0, 2, r}});
      learner.observe(Event{now_ns_, FreeEvent{act(step)}});
      break;
    default: {
      op(6, k, {{w1, 0, 2, rw}});
      MoreAccessesEvent more;
      more.accesses.add({w2, 0, 1, rw});
      learner.observe(Event{now_ns_, more});
      learner.observe(Event{now_ns_, SyncEvent{SyncKind::stream, 0}});
    }
    }
  }

  int64_t now_ns_ = 0;
};

TEST(PolicyLearner, LocksOnTheTinyStepAndKeepsIdentities)
{
  // Op 9 repeats op 3's window (period 6, run 4); run 6 + 4 at op 15 = step 2, op 3.
  TinyTraining t;
  std::vector<LogicalId> act_ids, act2_ids;
  for (int step = 0; step < 6; ++step) {
    t.run(step, 0, 1);
    act_ids.push_back(*t.learner.logical_id(t.act(step)));
    act2_ids.push_back(*t.learner.logical_id(t.act2(step)));
    t.run(step, 2, 5);
  }
  ASSERT_EQ(t.positions.size(), 36u);
  EXPECT_EQ(t.positions[14].state, IterationState::learning);
  EXPECT_EQ(t.positions[15].state, IterationState::locked);
  EXPECT_EQ(t.positions[15].change, LockChange::learned);
  EXPECT_EQ(t.positions[15].phase, 3u);
  EXPECT_EQ(t.positions[35].phase, 5u);
  EXPECT_EQ(t.learner.syncs_seen(), 6u);

  // Weights: allocated once, same id throughout. Activations: fresh ids until the step
  // after the lock (step 3: act is allocated after op 17, the first place known), then
  // the same id every step.
  EXPECT_EQ(t.learner.logical_id(TinyTraining::w1), LogicalId{1});
  EXPECT_EQ(t.learner.logical_id(TinyTraining::w2), LogicalId{2});
  for (int step = 1; step < 3; ++step) {
    EXPECT_NE(act_ids[step], act_ids[step - 1]) << step;
  }
  for (int step = 4; step < 6; ++step) {
    EXPECT_EQ(act_ids[step], act_ids[3]) << step;
    EXPECT_EQ(act2_ids[step], act2_ids[3]) << step;
  }
  EXPECT_NE(act_ids[3], act2_ids[3]);
  EXPECT_TRUE(t.learner.identity().buffer(act_ids[3])->recurring);
  // 2 * period matched ops since op 15: complete from op 26 on.
  EXPECT_TRUE(t.learner.predictor().complete(t.positions[35].template_id));
}

TEST(PolicyLearner, NextUsesOfWeightsAndActivationsAreExact)
{
  TinyTraining t;
  for (int step = 0; step < 5; ++step) {
    t.run(step);
  }
  // Step 5, after op 3 (phase 3): act is read by op 4 next; W1 too; W2 by the SGD op,
  // recorded through its MoreAccessesEvent.
  t.run(5, 0, 3);
  ASSERT_EQ(t.learner.position().phase, 3u);
  const auto act = t.learner.next_use(t.act(5), 0);
  ASSERT_TRUE(act.has_value());
  EXPECT_EQ(act->distance_ops, 1u);
  EXPECT_EQ(act->time_until_ns, 0);
  const auto w1 = t.learner.next_use(TinyTraining::w1, 1);
  ASSERT_TRUE(w1.has_value());
  EXPECT_EQ(w1->phase, 4u);
  const auto w2 = t.learner.next_use(TinyTraining::w2, 0);
  ASSERT_TRUE(w2.has_value());
  EXPECT_EQ(w2->distance_ops, 2u);
  EXPECT_EQ(w2->phase, 5u);
  EXPECT_EQ(w2->time_until_ns, 500);  // op 4 runs in between
  EXPECT_FALSE(t.learner.next_use(TinyTraining::w1, 2).has_value());  // W1 has 2 chunks

  // After the SGD op (phase 5): W1 is next read by op 0, W2 by op 1 (op 0 in between).
  t.run(5, 4, 5);
  const auto w1_next = t.learner.next_use(TinyTraining::w1, 0);
  ASSERT_TRUE(w1_next.has_value());
  EXPECT_EQ(w1_next->distance_ops, 1u);
  EXPECT_EQ(w1_next->phase, 0u);
  const auto w2_next = t.learner.next_use(TinyTraining::w2, 0);
  ASSERT_TRUE(w2_next.has_value());
  EXPECT_EQ(w2_next->distance_ops, 2u);
  EXPECT_EQ(w2_next->time_until_ns, 100);

  // After op 1 of step 6: W1 is next used by op 4 (ops 2 and 3 in between: 300 + 400 ns),
  // the activation allocated in this step by op 3.
  t.run(6, 0, 1);
  const auto w1_later = t.learner.next_use(TinyTraining::w1, 0);
  ASSERT_TRUE(w1_later.has_value());
  EXPECT_EQ(w1_later->distance_ops, 3u);
  EXPECT_EQ(w1_later->time_until_ns, 700);
  const auto act6 = t.learner.next_use(t.act(6), 0);
  ASSERT_TRUE(act6.has_value());
  EXPECT_EQ(act6->phase, 3u);
  EXPECT_EQ(act6->distance_ops, 2u);
  EXPECT_EQ(act6->time_until_ns, 300);
  const TemplateId id = t.learner.position().template_id;
  const auto uses = t.learner.predictor().use_phases(id, LogicalChunk{*t.learner.logical_id(t.act(6)), 0});
  EXPECT_EQ(std::vector<uint32_t>(uses.begin(), uses.end()), (std::vector<uint32_t>{0, 1, 3, 4}));
}

TEST(PolicyLearner, NothingIsPredictedBeforeTheLock)
{
  TinyTraining t;
  t.run(0);
  EXPECT_EQ(t.learner.position().state, IterationState::learning);
  EXPECT_FALSE(t.learner.next_use(TinyTraining::w1, 0).has_value());
}

}  // namespace
}  // namespace oversub::policy
