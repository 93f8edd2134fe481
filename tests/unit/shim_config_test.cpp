// The settings table (shim/config.cpp): parsing, errors, and that
// docs/configuration.md lists every variable exactly as the table does.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <unistd.h>

#include "shim/config.h"

namespace oversub {
namespace {

std::string read_docs() {
  const char* root = std::getenv("OVERSUB_SOURCE_ROOT");
  std::ifstream in(std::string(root != nullptr ? root : ".") + "/docs/configuration.md");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The test harness passes paths in OVERSUB_SOURCE_ROOT / OVERSUB_TRACE_CLI,
// which the shim would rightly reject as unknown settings.
void clear_test_variables() {
  unsetenv("OVERSUB_SOURCE_ROOT");
  unsetenv("OVERSUB_TRACE_CLI");
}

TEST(ShimConfig, DocsListEveryVariableAsTheTableDoes) {
  const std::string docs = read_docs();
  ASSERT_FALSE(docs.empty()) << "docs/configuration.md not found";
  std::size_t count = 0;
  const SettingInfo* table = settings_table(&count);
  ASSERT_GE(count, 8u);
  std::size_t rows = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const SettingInfo& s = table[i];
    const std::string row = std::string("| `") + s.name + "` | " + s.type + " | " + s.default_text + " | " +
                            s.accepted + " | " + s.description + " |";
    EXPECT_NE(docs.find(row), std::string::npos) << "docs/configuration.md lacks or differs on the row:\n" << row;
    ++rows;
  }
  // And no row for a variable the table does not have.
  std::size_t documented = 0;
  for (std::size_t at = docs.find("| `OVERSUB_"); at != std::string::npos; at = docs.find("| `OVERSUB_", at + 1))
    ++documented;
  EXPECT_EQ(documented, rows);
}

TEST(ShimConfig, ParsesSizesAndPercentages) {
  std::uint64_t bytes = 0;
  EXPECT_TRUE(parse_size("12GiB", &bytes));
  EXPECT_EQ(bytes, 12ull << 30);
  EXPECT_TRUE(parse_size("512MiB", &bytes));
  EXPECT_EQ(bytes, 512ull << 20);
  EXPECT_TRUE(parse_size("4096", &bytes));
  EXPECT_EQ(bytes, 4096u);
  for (const char* bad : {"", "0", "-1", "12 GiB", "lots", "1.5", "3XB", "1e3", "0x10", " 5", "1.GiB", ".5GiB"}) EXPECT_FALSE(parse_size(bad, &bytes)) << bad;
  Config c = default_config();
  std::string error;
  EXPECT_TRUE(apply_setting(&c, "OVERSUB_DEVICE_BUDGET", "75%", &error));
  EXPECT_DOUBLE_EQ(c.budget_percent, 75.0);
  EXPECT_TRUE(apply_setting(&c, "OVERSUB_DEVICE_BUDGET", "2GiB", &error));
  EXPECT_EQ(c.budget_bytes, 2ull << 30);
  EXPECT_EQ(c.budget_percent, 0.0);
}

TEST(ShimConfig, PercentPInPathsBecomesTheProcessId) {
  const std::string pid = std::to_string(getpid());
  EXPECT_EQ(expand_process_id("/tmp/run-%p.trace"), "/tmp/run-" + pid + ".trace");
  EXPECT_EQ(expand_process_id("%p/%p"), pid + "/" + pid);
  EXPECT_EQ(expand_process_id("plain.json"), "plain.json");
  EXPECT_EQ(expand_process_id("100%"), "100%");
}

TEST(ShimConfig, BadValuesNameTheVariableTheValueAndTheForm) {
  struct Case {
    const char* name;
    const char* value;
  };
  for (const Case& bad : {Case{"OVERSUB_MODE", "fast"}, Case{"OVERSUB_DEVICE_BUDGET", "150%"},
                          Case{"OVERSUB_DEVICE_BUDGET", "lots"}, Case{"OVERSUB_HOST_LIMIT", "-5"},
                          Case{"OVERSUB_STRICT", "yes"}, Case{"OVERSUB_POLICY", "fifo"}, Case{"OVERSUB_LOG", "loud"},
                          Case{"OVERSUB_TRACE", ""}, Case{"OVERSUB_STATS", ""}}) {
    Config c = default_config();
    std::string error;
    EXPECT_FALSE(apply_setting(&c, bad.name, bad.value, &error)) << bad.name << "=" << bad.value;
    EXPECT_EQ(error.rfind(std::string("oversub: invalid ") + bad.name + "='" + bad.value + "': expected ", 0), 0u)
        << error;
  }
}

TEST(ShimConfigDeathTest, UnknownVariableStopsTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        clear_test_variables();
        setenv("OVERSUB_BUDGET", "1GiB", 1);  // misspelt OVERSUB_DEVICE_BUDGET
        (void)config();
        std::exit(0);
      },
      ::testing::ExitedWithCode(2), "unknown variable OVERSUB_BUDGET");
}

TEST(ShimConfigDeathTest, BadValueStopsTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        clear_test_variables();
        setenv("OVERSUB_DEVICE_BUDGET", "lots", 1);
        (void)config();
        std::exit(0);
      },
      ::testing::ExitedWithCode(2), "oversub: invalid OVERSUB_DEVICE_BUDGET='lots': expected a size");
}

}  // namespace
}  // namespace oversub
