// SIMCUDA_* settings: sizes parse, and a bad value stops the program with one
// line naming the variable, the value and the accepted form (exit status 2).
#include <cuda.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include "../common/settings.h"

namespace simcuda {
namespace {

TEST(Settings, ParsesSizes) {
  std::uint64_t v = 0;
  EXPECT_TRUE(parse_size_bytes("256MiB", &v));
  EXPECT_EQ(v, 256ull << 20);
  EXPECT_TRUE(parse_size_bytes("2GiB", &v));
  EXPECT_EQ(v, 2ull << 30);
  EXPECT_TRUE(parse_size_bytes("1.5GiB", &v));
  EXPECT_EQ(v, 3ull << 29);
  EXPECT_TRUE(parse_size_bytes("4096", &v));
  EXPECT_EQ(v, 4096u);
  EXPECT_TRUE(parse_size_bytes("1GB", &v));
  EXPECT_EQ(v, 1000000000u);
  for (const char* bad : {"", "0", "-1GiB", "12 GiB", "1.5", "GiB", "7XiB", "1e400", "abc"})
    EXPECT_FALSE(parse_size_bytes(bad, &v)) << bad;
}

struct BadValue {
  const char* variable;
  const char* value;
};

class SettingsDeathTest : public ::testing::TestWithParam<BadValue> {};

TEST_P(SettingsDeathTest, BadValueStopsWithOneClearLine) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const BadValue& bad = GetParam();
  std::string expected = std::string("simcuda: invalid ") + bad.variable + "='" + bad.value + "': expected ";
  EXPECT_EXIT(
      {
        setenv(bad.variable, bad.value, 1);
        cuInit(0);
        std::exit(0);
      },
      ::testing::ExitedWithCode(2), expected);
}

INSTANTIATE_TEST_SUITE_P(EveryVariable, SettingsDeathTest,
                         ::testing::Values(BadValue{"SIMCUDA_MEMORY", "lots"}, BadValue{"SIMCUDA_MEMORY", "0"},
                                           BadValue{"SIMCUDA_REPORT", "maybe"}, BadValue{"SIMCUDA_JITTER", "2"},
                                           BadValue{"SIMCUDA_SEED", "-3"}, BadValue{"SIMCUDA_SEED", "x"},
                                           BadValue{"SIMCUDA_JITTER_MAX_US", "0"},
                                           BadValue{"SIMCUDA_JITTER_MAX_US", "1000000"}));

}  // namespace
}  // namespace simcuda
