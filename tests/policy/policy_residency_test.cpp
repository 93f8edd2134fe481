// The engine-facing policy interface and the lru policy.
#include <gtest/gtest.h>

#include "policy/residency_policy.h"

namespace oversub::policy {
namespace {

TEST(LruPolicy, ChoosesTheLeastRecentlyUsedFirst) {
  auto lru = make_policy("lru");
  ASSERT_NE(lru, nullptr);
  EXPECT_EQ(lru->name(), "lru");
  EXPECT_FALSE(lru->plans_ahead());
  const ChunkCandidate resident[] = {{10, 7}, {11, 3}, {12, 9}, {13, 3}, {14, 5}};
  std::vector<std::uint64_t> victims;
  lru->choose_victims(resident, 3, 100, &victims);
  // Ties (tick 3) go to the lower chunk index.
  EXPECT_EQ(victims, (std::vector<std::uint64_t>{11, 13, 14}));
}

TEST(LruPolicy, NeverChoosesWhatTheCurrentOpUses) {
  auto lru = make_policy("lru");
  const ChunkCandidate resident[] = {{1, 50}, {2, 50}, {3, 12}};
  std::vector<std::uint64_t> victims;
  lru->choose_victims(resident, 3, 50, &victims);  // op 50 uses chunks 1 and 2
  EXPECT_EQ(victims, (std::vector<std::uint64_t>{3}));
}

TEST(LruPolicy, UnknownNameGivesNoPolicy) { EXPECT_EQ(make_policy("fifo"), nullptr); }

}  // namespace
}  // namespace oversub::policy
