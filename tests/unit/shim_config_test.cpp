// The settings table (shim/config.cpp): parsing, errors, contradictions, and
// that docs/configuration.md lists every variable exactly as the table does.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

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
  // The swap-only settings (Note [Contradicting settings]) are listed as the table marks them.
  std::string swap_only;
  for (std::size_t i = 0; i < count; ++i)
    if (table[i].swap_only) swap_only += std::string(swap_only.empty() ? "" : ", ") + "`" + table[i].name + "`";
  const std::string line = "Swap-only settings: " + swap_only + ".";
  EXPECT_NE(docs.find(line), std::string::npos) << "docs/configuration.md lacks the line:\n" << line;
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
                          Case{"OVERSUB_TRACE", ""}, Case{"OVERSUB_STATS", ""}, Case{"OVERSUB_DEVICE_BUDGET", "1MiB"},
                          Case{"OVERSUB_HOST_LIMIT", "4096"}, Case{"OVERSUB_DEVICE_BUDGET", "12XB"}}) {
    Config c = default_config();
    std::string error;
    EXPECT_FALSE(apply_setting(&c, bad.name, bad.value, &error)) << bad.name << "=" << bad.value;
    EXPECT_EQ(error.rfind(std::string("oversub: invalid ") + bad.name + "='" + bad.value + "': expected ", 0), 0u)
        << error;
  }
}

// A fresh directory for path checks, removed afterwards.
class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/oversub-config-test-XXXXXX";
    path_ = mkdtemp(name);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string read_error(const Environment& environment) {
  Config c = default_config();
  std::string error;
  EXPECT_FALSE(read_environment(environment, &c, &error)) << "accepted: " << ::testing::PrintToString(environment);
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  return error;
}

TEST(ShimConfig, GoodEnvironmentsAreRead) {
  TempDir dir;
  Config c = default_config();
  std::string error;
  ASSERT_TRUE(read_environment({}, &c, &error)) << error;
  EXPECT_EQ(c.mode, Mode::swap);
  ASSERT_TRUE(read_environment({"OVERSUB_DEVICE_BUDGET=4MiB", "OVERSUB_HOST_LIMIT=64GiB", "OVERSUB_STRICT=1",
                                "OVERSUB_POLICY=lru", "OVERSUB_TRACE=" + dir.path() + "/run-%p.trace",
                                "OVERSUB_STATS=" + dir.path() + "/run-%p.json", "OVERSUB_LOG=quiet"},
                               &c, &error))
      << error;
  EXPECT_EQ(c.budget_bytes, 4ull << 20);
  EXPECT_EQ(c.budget_text, "4MiB");
  EXPECT_EQ(c.host_limit_bytes, 64ull << 30);
  EXPECT_TRUE(c.strict);
  EXPECT_EQ(c.log_level, 0);
  // Passthrough with the settings that apply to it; an existing writable file is fine.
  std::ofstream(dir.path() + "/old.trace") << "old";
  ASSERT_TRUE(read_environment({"OVERSUB_MODE=passthrough", "OVERSUB_TRACE=" + dir.path() + "/old.trace",
                                "OVERSUB_STATS=" + dir.path() + "/s.json", "OVERSUB_LOG=debug"},
                               &c, &error))
      << error;
  EXPECT_EQ(c.mode, Mode::passthrough);
  // A relative path in the working directory.
  ASSERT_TRUE(read_environment({"OVERSUB_STATS=relative.json"}, &c, &error)) << error;
  EXPECT_FALSE(std::filesystem::exists("relative.json")) << "checking a path must not create the file";
}

TEST(ShimConfig, SizesBelowTwoChunksAreRejected) {
  EXPECT_EQ(read_error({"OVERSUB_DEVICE_BUDGET=4194303"}),
            "oversub: invalid OVERSUB_DEVICE_BUDGET='4194303': expected a size from 4MiB to the card's memory such as "
            "12GiB, 512MiB or a byte count, or a percentage of the card's memory above 0 and at most 100 such as 75%");
  EXPECT_EQ(read_error({"OVERSUB_HOST_LIMIT=2MiB"}),
            "oversub: invalid OVERSUB_HOST_LIMIT='2MiB': expected a size of at least 4MiB such as 64GiB, 512MiB or a "
            "byte count");
}

TEST(ShimConfig, UnknownNamesComeFirst) {
  EXPECT_EQ(read_error({"OVERSUB_MODE=fast", "OVERSUB_BUDGET=1GiB"})
                .rfind("oversub: unknown variable OVERSUB_BUDGET='1GiB': expected one of OVERSUB_MODE, ", 0),
            0u);
}

TEST(ShimConfig, UnwritablePathsAreRejectedAtStart) {
  TempDir dir;
  const std::string missing = dir.path() + "/no-such-dir/run.trace";
  EXPECT_EQ(read_error({"OVERSUB_TRACE=" + missing}),
            "oversub: invalid OVERSUB_TRACE='" + missing + "': expected a writable file path (" + dir.path() +
                "/no-such-dir: No such file or directory)");
  EXPECT_EQ(read_error({"OVERSUB_STATS=" + dir.path()}),
            "oversub: invalid OVERSUB_STATS='" + dir.path() + "': expected a writable file path (" + dir.path() +
                ": is a directory)");
  EXPECT_EQ(read_error({"OVERSUB_STATS=" + dir.path() + "/"}).rfind("oversub: invalid OVERSUB_STATS=", 0), 0u);
  std::ofstream(dir.path() + "/file") << "x";
  EXPECT_EQ(read_error({"OVERSUB_TRACE=" + dir.path() + "/file/run.trace"}),
            "oversub: invalid OVERSUB_TRACE='" + dir.path() + "/file/run.trace': expected a writable file path (" +
                dir.path() + "/file/run.trace: Not a directory)");
}

TEST(ShimConfig, ContradictionsNameBothSettings) {
  for (const char* swap_only : {"OVERSUB_DEVICE_BUDGET=8GiB", "OVERSUB_HOST_LIMIT=8GiB", "OVERSUB_STRICT=1",
                                "OVERSUB_STRICT=0", "OVERSUB_POLICY=lru"}) {
    const std::string entry(swap_only);
    const std::string name = entry.substr(0, entry.find('='));
    const std::string value = entry.substr(entry.find('=') + 1);
    EXPECT_EQ(read_error({"OVERSUB_MODE=passthrough", entry}),
              "oversub: " + name + "='" + value +
                  "' conflicts with OVERSUB_MODE='passthrough', which never limits, moves or unmaps memory: expected " +
                  name + " unset, or OVERSUB_MODE=swap");
  }
  TempDir dir;
  const std::string path = dir.path() + "/run.out";
  EXPECT_EQ(read_error({"OVERSUB_TRACE=" + path, "OVERSUB_STATS=" + path}),
            "oversub: OVERSUB_STATS='" + path + "' and OVERSUB_TRACE='" + path +
                "' name the same file, which the statistics would overwrite at exit: expected two different files");
  // The same file under two spellings, before and after it exists; %p expands alike in both.
  EXPECT_NE(read_error({"OVERSUB_TRACE=" + dir.path() + "/./run-%p.out", "OVERSUB_STATS=" + dir.path() + "/run-%p.out"})
                .find("name the same file"),
            std::string::npos);
  std::ofstream(path) << "x";
  ASSERT_EQ(symlink(path.c_str(), (dir.path() + "/link.out").c_str()), 0);
  EXPECT_NE(read_error({"OVERSUB_TRACE=" + path, "OVERSUB_STATS=" + dir.path() + "/link.out"}).find("name the same file"),
            std::string::npos);
}

TEST(ShimConfig, BudgetMustFitTheDevice) {
  const std::uint64_t device = 64ull << 20;
  Config c = default_config();
  std::string error;
  ASSERT_TRUE(apply_setting(&c, "OVERSUB_DEVICE_BUDGET", "64MiB", &error));
  EXPECT_TRUE(check_budget_fits_device(c, device, kMinimumBudgetBytes, &error)) << error;
  ASSERT_TRUE(apply_setting(&c, "OVERSUB_DEVICE_BUDGET", "65MiB", &error));
  EXPECT_FALSE(check_budget_fits_device(c, device, kMinimumBudgetBytes, &error));
  EXPECT_EQ(error,
            "oversub: invalid OVERSUB_DEVICE_BUDGET='65MiB': the budget is 65.0 MiB (68157440 bytes) but the device "
            "has 64.0 MiB (67108864 bytes): expected a size no larger than the device, or a percentage of it such as "
            "75%");
  ASSERT_TRUE(apply_setting(&c, "OVERSUB_DEVICE_BUDGET", "100%", &error));
  EXPECT_TRUE(check_budget_fits_device(c, device, kMinimumBudgetBytes, &error)) << error;
  ASSERT_TRUE(apply_setting(&c, "OVERSUB_DEVICE_BUDGET", "5%", &error));
  EXPECT_FALSE(check_budget_fits_device(c, device, kMinimumBudgetBytes, &error));
  EXPECT_EQ(error.rfind("oversub: invalid OVERSUB_DEVICE_BUDGET='5%': that is 3.2 MiB (3355443 bytes) of the device's "
                        "64.0 MiB (67108864 bytes): expected a percentage that leaves at least 4.0 MiB",
                        0),
            0u)
      << error;
  EXPECT_TRUE(check_budget_fits_device(default_config(), device, kMinimumBudgetBytes, &error)) << error;
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

TEST(ShimConfigDeathTest, ContradictionStopsTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        clear_test_variables();
        setenv("OVERSUB_MODE", "passthrough", 1);
        setenv("OVERSUB_STRICT", "1", 1);
        (void)config();
        std::exit(0);
      },
      ::testing::ExitedWithCode(2), "oversub: OVERSUB_STRICT='1' conflicts with OVERSUB_MODE='passthrough'");
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
