// oversub-trace replay and compare as a user runs them: what they print, exit
// statuses 0/1/2, and the JSON rows' keys.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/tracer_test_support.h"

namespace oversub::trace {
namespace {

using testing::CliRun;
using testing::run_cli;

std::string data(const std::string& name) { return testing::source_path("tests/data/traces/" + name); }
const std::string small_model = data("torch/unet3d-b2-64.trace.gz");

size_t count(const std::string& text, const std::string& what)
{
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(ReplayCli, ReplayPrintsTheStepAndWhatItCost)
{
  const CliRun run = run_cli("replay " + small_model + " --budget 50% --policy lru --device a100-40gb");
  EXPECT_EQ(run.status, 0) << run.output;
  for (const char* line : {"trace               unet3d-b2-64.trace.gz (4 steps recorded, 8 repeated; measured: step 12",
                           "device              a100-40gb: ", "policy              lru", "step time ",
                           "unlimited memory ", "lower bound ", "moved               host to device ",
                           "host stall ", "stream stall ", "peak device bytes "}) {
    EXPECT_NE(run.output.find(line), std::string::npos) << line << "\n" << run.output;
  }
  EXPECT_NE(run.output.find("50% of the footprint"), std::string::npos) << run.output;
}

TEST(ReplayCli, LookaheadHasLearnedTheStepItIsMeasuredOn)
{
  const CliRun run = run_cli("replay " + small_model + " --budget 50% --policy lookahead-prefetch");
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("step learned        for 959 of the step's 959 ops"), std::string::npos) << run.output;
}

TEST(ReplayCli, AFittingBudgetMovesNothingWithoutHeadroom)
{
  const CliRun run = run_cli("replay " + small_model + " --budget 100% --policy vdnn");
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("(overhead +0.0%)"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("host to device 0.00 GB, device to host 0.00 GB"), std::string::npos) << run.output;
}

TEST(ReplayCli, ABudgetLargerThanTheCardIsFlagged)
{
  CliRun run = run_cli("replay " + small_model + " --budget 16GiB --device titan-x-12gb --policy lru");
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("warning             the budget exceeds the titan-x-12gb's 12.88 GB of memory"),
            std::string::npos)
    << run.output;
  run = run_cli("replay " + small_model + " --budget 1GiB --device titan-x-12gb --json");
  EXPECT_NE(run.output.find("\"budget_exceeds_device\": false"), std::string::npos) << run.output;
}

TEST(ReplayCli, ABudgetNoOpCanRunUnderExitsOne)
{
  const CliRun run = run_cli("replay " + small_model + " --budget 4MiB --policy lru");
  EXPECT_EQ(run.status, 1) << run.output;
  EXPECT_NE(run.output.find("does not run: the op at line "), std::string::npos) << run.output;
}

// One line, FILE:LINE: what was expected, exit status 1: from the reader and from the replay.
void expect_one_line_error(const std::string& arguments, const std::string& prefix)
{
  const CliRun run = run_cli(arguments);
  EXPECT_EQ(run.status, 1) << run.output;
  EXPECT_EQ(run.output.rfind(prefix, 0), 0u) << run.output;
  EXPECT_EQ(run.output.find('\n'), run.output.size() - 1) << "more than one line: " << run.output;
}

TEST(ReplayCli, MalformedTracesAreOneLineAndExitOne)
{
  const std::string undefined = data("malformed-undefined-name.trace");
  const std::string truncated = data("malformed-truncated.trace");
  const std::string unknown_free = data("malformed-free-unknown.trace");
  expect_one_line_error("replay " + undefined + " --budget 50%", "oversub-trace: " + undefined + ":4: ");
  expect_one_line_error("replay " + truncated + " --budget 1GiB", "oversub-trace: " + truncated + ":");
  expect_one_line_error("replay " + unknown_free + " --budget 50%",
                        "oversub-trace: " + unknown_free +
                          ":6: free of allocation id 2, which is not live; expected its `a` line before");
  expect_one_line_error("compare " + small_model + " " + unknown_free, "oversub-trace: " + unknown_free + ":6: ");
  expect_one_line_error("replay /nonexistent-oversub/x.trace --budget 50%",
                        "oversub-trace: /nonexistent-oversub/x.trace: ");
}

TEST(ReplayCli, UsageErrorsExitTwo)
{
  const std::string t = small_model;
  for (const std::string& arguments :
       {std::string("replay"), "replay " + t, "replay " + t + " --budget", "replay " + t + " --budget half",
        "replay " + t + " --budget 5x", "replay " + t + " --budget 0%", "replay " + t + " --budget 50% --policy fifo",
        "replay " + t + " --budget 50% --device h100", "replay " + t + " " + t + " --budget 50%",
        "replay " + t + " --budget 50% --steps 1000", "replay " + t + " --budget 50% --bogus",
        std::string("compare"), "compare " + t + " --devices h100-sxm,x", "compare " + t + " --budgets 50%,,25%",
        "compare " + t + " --policies lru,mru", "compare " + t + " --budgets"}) {
    SCOPED_TRACE(arguments);
    const CliRun run = run_cli(arguments);
    EXPECT_EQ(run.status, 2) << run.output;
    const std::string command = arguments.substr(0, arguments.find(' '));
    EXPECT_NE(run.output.find("usage: oversub-trace " + command + " FILE"), std::string::npos) << run.output;
  }
  const CliRun run = run_cli("replay " + t + " --budget 50% --device h100");
  EXPECT_NE(run.output.find("unknown device 'h100' (known: h100-sxm, h100-pcie, gh200, "), std::string::npos)
    << run.output;
}

TEST(ReplayCli, CompareJsonHasEveryKeyInEveryRow)
{
  const CliRun run = run_cli("compare " + small_model + " --budgets 100%,50% --devices h100-sxm,gh200 --json");
  ASSERT_EQ(run.status, 0) << run.output;
  const size_t rows = 2 * 2 * 6;  // budgets, devices, policies
  EXPECT_EQ(count(run.output, "\n  {"), rows) << run.output;
  for (const char* key : {"trace", "device", "budget_bytes", "budget_fraction", "policy", "step_time_s",
                          "lower_bound_s", "overhead", "bytes_h2d", "bytes_d2h", "fits"}) {
    EXPECT_EQ(count(run.output, std::string("\"") + key + "\": "), rows) << key;
  }
  EXPECT_NE(run.output.find("\"trace\": \"unet3d-b2-64.trace.gz\", \"device\": \"gh200\""), std::string::npos);
  EXPECT_NE(run.output.find("\"budget_fraction\": 1.000000, \"policy\": \"unlimited\", \"step_time_s\": "),
            std::string::npos)
    << run.output;
  EXPECT_EQ(count(run.output, "\"fits\": false"), 2u) << "only unlimited at 50% does not fit: " << run.output;
}

TEST(ReplayCli, CompareTableHasARowPerPolicyAndBudget)
{
  const CliRun run = run_cli("compare " + small_model + " --budgets 75%,1GB --policies lru,lookahead");
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_EQ(count(run.output, "\n"), 1u + 2 * 2) << run.output;
  EXPECT_EQ(count(run.output, "unet3d-b2-64.trace.gz        h100-sxm"), 4u) << run.output;
  EXPECT_NE(run.output.find("1.00 GB"), std::string::npos) << run.output;
}

TEST(ReplayCli, HelpNamesEveryPolicyAndDevice)
{
  for (const char* command : {"replay --help", "compare --help"}) {
    const CliRun run = run_cli(command);
    EXPECT_EQ(run.status, 0);
    for (const char* name : {"unlimited", "lru", "vdnn", "tflms", "lookahead", "lookahead-prefetch", "h100-sxm",
                             "h100-pcie", "gh200", "a100-40gb", "v100-32gb-nvlink", "titan-x-12gb"}) {
      EXPECT_NE(run.output.find(name), std::string::npos) << command << ": " << name;
    }
  }
  const CliRun run = run_cli("--help");
  EXPECT_NE(run.output.find("replay FILE --budget SIZE|PCT"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("compare FILE..."), std::string::npos) << run.output;
}

}  // namespace
}  // namespace oversub::trace

namespace oversub::trace {
namespace {

// `plot --budget`: Note [Replayed memory timeline] in tracer/plot.h.
TEST(ReplayCli, PlotOfAReplayDrawsThePngAndDiffersByBudget)
{
  testing::TempPath half(".png");
  testing::TempPath quarter(".png");
  CliRun run = run_cli("plot " + small_model + " --budget 50% --policy lookahead --device v100-32gb-nvlink -o " +
                       half.str() + " --width 500 --height 300");
  ASSERT_EQ(run.status, 0) << run.output;
  run = run_cli("plot " + small_model + " --budget 25% --policy lookahead --device v100-32gb-nvlink -o " +
                quarter.str() + " --width 500 --height 300");
  ASSERT_EQ(run.status, 0) << run.output;
  const std::string a = testing::read_file(half.str());
  const std::string b = testing::read_file(quarter.str());
  ASSERT_GE(a.size(), 24u);
  EXPECT_EQ(a.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(a.substr(16, 8), std::string("\0\0\x01\xf4\0\0\x01\x2c", 8));  // 500 x 300
  EXPECT_NE(a, b);  // a lower budget line, more traffic
}

TEST(ReplayCli, PlotReplayUsageErrorsExitTwo)
{
  for (const std::string& arguments :
       {"plot " + small_model + " -o x.png --policy lru", "plot " + small_model + " -o x.png --budget lots",
        "plot " + small_model + " -o x.png --budget 50% --policy bogus",
        "plot " + small_model + " -o x.png --budget 50% --device bogus"}) {
    const CliRun run = run_cli(arguments);
    EXPECT_EQ(run.status, 2) << "'" << arguments << "': " << run.output;
    EXPECT_NE(run.output.find("usage: oversub-trace plot FILE -o OUT.png"), std::string::npos) << run.output;
  }
}

TEST(ReplayCli, PlotOfABudgetNoOpCanRunUnderExitsOne)
{
  testing::TempPath out(".png");
  const CliRun run = run_cli("plot " + small_model + " --budget 2MiB -o " + out.str());
  EXPECT_EQ(run.status, 1) << run.output;
  EXPECT_NE(run.output.find("needs"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace oversub::trace
