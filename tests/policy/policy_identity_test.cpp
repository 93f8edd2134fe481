// Buffer identity: persistent allocations keep one logical id; per-step allocations get
// the same logical id every step from their place in the step (Note [Logical buffers]).
#include <gtest/gtest.h>

#include "policy/identity.h"

namespace oversub::policy {
namespace {

constexpr uint64_t mib = uint64_t{1} << 20;

AllocEvent alloc(AllocId id, uint64_t bytes, SiteId site)
{
  return AllocEvent{id, bytes, site, 0};
}

TEST(PolicyIdentity, PersistentAllocationKeepsItsLogicalId)
{
  BufferIdentity ids;
  const LogicalId weights = ids.on_alloc(alloc(1, 64 * mib, 7), std::nullopt);
  const LogicalId other = ids.on_alloc(alloc(2, 64 * mib, 7), std::nullopt);
  EXPECT_NE(weights, no_logical);
  EXPECT_NE(weights, other);
  for (AllocId step = 0; step < 5; ++step) {  // per-step traffic around it
    ids.on_alloc(alloc(100 + step, 4 * mib, 9), IterationPlace{1, 3});
    ids.on_free(100 + step);
  }
  EXPECT_EQ(ids.logical_id(1), weights);
  EXPECT_EQ(ids.alloc_bytes(1), 64 * mib);
  ASSERT_NE(ids.buffer(weights), nullptr);
  EXPECT_FALSE(ids.buffer(weights)->recurring);
  EXPECT_TRUE(ids.buffer(weights)->live);
}

TEST(PolicyIdentity, PerStepAllocationsMapToTheSameLogicalIdEveryStep)
{
  BufferIdentity ids;
  std::vector<LogicalId> act, act_b, act_c, other_phase;
  for (AllocId step = 0; step < 4; ++step) {
    const AllocId base = 1000 + 10 * step;
    // Two same-site same-size allocations between the same two ops: slots 0 and 1.
    act.push_back(ids.on_alloc(alloc(base, 4 * mib, 5), IterationPlace{1, 3}));
    act_b.push_back(ids.on_alloc(alloc(base + 1, 4 * mib, 5), IterationPlace{1, 3}));
    act_c.push_back(ids.on_alloc(alloc(base + 2, 6 * mib, 5), IterationPlace{1, 3}));
    other_phase.push_back(ids.on_alloc(alloc(base + 3, 4 * mib, 5), IterationPlace{1, 8}));
    for (AllocId k = 0; k < 4; ++k) {
      ids.on_free(base + k);
    }
  }
  for (size_t s = 1; s < 4; ++s) {
    EXPECT_EQ(act[s], act[0]);
    EXPECT_EQ(act_b[s], act_b[0]);
    EXPECT_EQ(act_c[s], act_c[0]);
    EXPECT_EQ(other_phase[s], other_phase[0]);
  }
  EXPECT_NE(act[0], act_b[0]);
  EXPECT_NE(act[0], act_c[0]);  // other size
  EXPECT_NE(act[0], other_phase[0]);
  EXPECT_EQ(act_b[0], act[0] + 1);  // ids are handed out in allocation order
  EXPECT_TRUE(ids.buffer(act[0])->recurring);
  EXPECT_FALSE(ids.buffer(act[0])->live);
  EXPECT_EQ(ids.live_allocations(), 0u);
  EXPECT_FALSE(ids.logical_id(1000).has_value());
}

TEST(PolicyIdentity, InstanceStillLiveGetsItsOwnId)
{
  BufferIdentity ids;
  const IterationPlace place{2, 0};
  const LogicalId first = ids.on_alloc(alloc(1, 2 * mib, 3), place);
  const LogicalId second = ids.on_alloc(alloc(2, 2 * mib, 3), place);  // 1 still live
  EXPECT_NE(first, second);
  ids.on_free(1);
  EXPECT_EQ(ids.on_alloc(alloc(3, 2 * mib, 3), place), first);  // slot 0 free again
  EXPECT_EQ(ids.logical_id(2), second);
}

TEST(PolicyIdentity, UnlockedAllocationsGetFreshIdsAndAreForgottenWhenFreed)
{
  BufferIdentity ids;
  const LogicalId a = ids.on_alloc(alloc(1, 2 * mib, 3), std::nullopt);
  ids.on_free(1);
  const LogicalId b = ids.on_alloc(alloc(2, 2 * mib, 3), std::nullopt);
  EXPECT_NE(a, b);
  EXPECT_EQ(ids.buffer(a), nullptr);
  EXPECT_EQ(ids.alloc_bytes(99), 0u);  // not ours
  ids.on_free(99);                      // ignored
}

TEST(PolicyIdentity, ForgettingATemplateDropsItsKeys)
{
  BufferIdentity ids;
  const LogicalId a = ids.on_alloc(alloc(1, 2 * mib, 3), IterationPlace{4, 1});
  ids.on_free(1);
  const LogicalId live = ids.on_alloc(alloc(2, 8 * mib, 3), IterationPlace{4, 2});
  ids.forget_template(4);
  EXPECT_EQ(ids.buffer(a), nullptr);
  EXPECT_EQ(ids.logical_id(2), live);  // live allocations keep their id
  EXPECT_NE(ids.on_alloc(alloc(3, 2 * mib, 3), IterationPlace{4, 1}), a);
  ids.on_free(2);
  EXPECT_EQ(ids.buffer(live), nullptr);
}

}  // namespace
}  // namespace oversub::policy
