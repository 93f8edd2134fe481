// SIMCUDA_* settings: sizes parse; a bad value, an unknown name or a
// contradiction stops the program with one line naming the variable, the value
// and the accepted form (exit status 2); tests/simcuda/README.md lists every
// variable as the table does.
#include <cuda.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

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

std::string read_readme() {
  const char* root = std::getenv("OVERSUB_SOURCE_ROOT");
  std::ifstream in(std::string(root != nullptr ? root : ".") + "/tests/simcuda/README.md");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Settings, ReadmeListsEveryVariableAsTheTableDoes) {
  const std::string readme = read_readme();
  ASSERT_FALSE(readme.empty()) << "tests/simcuda/README.md not found (OVERSUB_SOURCE_ROOT)";
  std::size_t count = 0;
  const VariableInfo* table = variables_table(&count);
  ASSERT_GE(count, 5u);
  std::string jitter_only;
  for (std::size_t i = 0; i < count; ++i) {
    const VariableInfo& v = table[i];
    const std::string row = std::string("| `") + v.name + "` | " + v.default_text + " | " + v.accepted + " | " +
                            v.description + " |";
    EXPECT_NE(readme.find(row), std::string::npos) << "README lacks or differs on the row:\n" << row;
    if (v.jitter_only) jitter_only += std::string(jitter_only.empty() ? "" : ", ") + "`" + v.name + "`";
  }
  std::size_t documented = 0;
  for (std::size_t at = readme.find("| `SIMCUDA_"); at != std::string::npos; at = readme.find("| `SIMCUDA_", at + 1))
    ++documented;
  EXPECT_EQ(documented, count);
  const std::string line = "Jitter-only variables: " + jitter_only + ".";
  EXPECT_NE(readme.find(line), std::string::npos) << "README lacks the line:\n" << line;
}

TEST(Settings, GoodEnvironmentsAreRead) {
  Settings s{};
  std::string error;
  ASSERT_TRUE(read_settings({}, &s, &error)) << error;
  EXPECT_EQ(s.memory_bytes, 1ull << 30);
  EXPECT_FALSE(s.jitter);
  ASSERT_TRUE(read_settings({"SIMCUDA_MEMORY=64MiB", "SIMCUDA_REPORT=1", "SIMCUDA_JITTER=1", "SIMCUDA_SEED=7",
                             "SIMCUDA_JITTER_MAX_US=50", "OTHER_SIMCUDA_THING=x"},
                            &s, &error))
      << error;
  EXPECT_EQ(s.memory_bytes, 64ull << 20);
  EXPECT_TRUE(s.report);
  EXPECT_TRUE(s.jitter);
  EXPECT_EQ(s.seed, 7u);
  EXPECT_EQ(s.jitter_max_us, 50u);
  EXPECT_TRUE(s.fail_call.empty());
  ASSERT_TRUE(read_settings({"SIMCUDA_FAIL=cuMemcpyDtoDAsync_v2:100"}, &s, &error)) << error;
  EXPECT_EQ(s.fail_call, "cuMemcpyDtoDAsync_v2");
  EXPECT_EQ(s.fail_nth, 100u);
  ASSERT_TRUE(read_settings({"SIMCUDA_FAIL=off"}, &s, &error)) << error;
  EXPECT_TRUE(s.fail_call.empty());
}

TEST(Settings, BadEnvironmentsGiveOneLine) {
  struct Case {
    std::vector<std::string> environment;
    const char* expected;
  };
  const Case cases[] = {
      {{"SIMCUDA_MEMROY=64MiB"}, "simcuda: unknown variable SIMCUDA_MEMROY='64MiB': expected one of SIMCUDA_MEMORY"},
      {{"SIMCUDA_JITTER=yes"}, "simcuda: invalid SIMCUDA_JITTER='yes': expected 0 or 1"},
      {{"SIMCUDA_REPORT="}, "simcuda: invalid SIMCUDA_REPORT='': expected 0 or 1"},
      {{"SIMCUDA_SEED=7"}, "simcuda: SIMCUDA_SEED='7' has no effect without SIMCUDA_JITTER=1"},
      {{"SIMCUDA_JITTER=0", "SIMCUDA_JITTER_MAX_US=50"},
       "simcuda: SIMCUDA_JITTER_MAX_US='50' has no effect without SIMCUDA_JITTER=1"},
  };
  for (const Case& c : cases) {
    Settings s{};
    std::string error;
    EXPECT_FALSE(read_settings(c.environment, &s, &error)) << c.expected;
    EXPECT_EQ(error.rfind(c.expected, 0), 0u) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
}

// One variable set to one value at cuInit; `message` is the start of the line
// expected (nullptr: "simcuda: invalid NAME='value': expected ").
struct BadValue {
  const char* variable;
  const char* value;
  const char* message = nullptr;
};

class SettingsDeathTest : public ::testing::TestWithParam<BadValue> {};

TEST_P(SettingsDeathTest, StopsWithOneClearLine) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const BadValue& bad = GetParam();
  std::string expected = bad.message != nullptr
                             ? std::string(bad.message)
                             : std::string("simcuda: invalid ") + bad.variable + "='" + bad.value + "': expected ";
  EXPECT_EXIT(
      {
        setenv(bad.variable, bad.value, 1);
        cuInit(0);
        std::exit(0);
      },
      ::testing::ExitedWithCode(2), expected);
}

INSTANTIATE_TEST_SUITE_P(
    EveryVariable, SettingsDeathTest,
    ::testing::Values(BadValue{"SIMCUDA_MEMORY", "lots"}, BadValue{"SIMCUDA_MEMORY", "0"},
                      BadValue{"SIMCUDA_REPORT", "maybe"}, BadValue{"SIMCUDA_JITTER", "2"},
                      BadValue{"SIMCUDA_SEED", "-3"}, BadValue{"SIMCUDA_SEED", "x"},
                      BadValue{"SIMCUDA_JITTER_MAX_US", "0"}, BadValue{"SIMCUDA_JITTER_MAX_US", "1000000"},
                      BadValue{"SIMCUDA_JITTER", "true"}, BadValue{"SIMCUDA_FAIL", "cuMemCreate"},
                      BadValue{"SIMCUDA_FAIL", "cuMemCreate:0"}, BadValue{"SIMCUDA_FAIL", "cuLaunchKernel:3"},
                      BadValue{"SIMCUDA_FAIL", "cuMemMap:x"},
                      BadValue{"SIMCUDA_MEMROY", "64MiB",
                               "simcuda: unknown variable SIMCUDA_MEMROY='64MiB': expected one of "},
                      BadValue{"SIMCUDA_JITTER_MAX_US", "50",
                               "simcuda: SIMCUDA_JITTER_MAX_US='50' has no effect without SIMCUDA_JITTER=1"}));

}  // namespace
}  // namespace simcuda
