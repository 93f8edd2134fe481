// oversub-trace as a user runs it: exit statuses 0/1/2 and what it prints.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "tests/unit/tracer_test_support.h"
#include "tracer/format.h"

namespace oversub::trace {
namespace {

using testing::CliRun;
using testing::run_cli;

std::string data(const std::string& name) { return testing::data_trace(name); }

TEST(TracerCli, SummaryOfAValidTrace)
{
  const CliRun run = run_cli("summary " + data("small.trace"));
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("peak live bytes     15728640 (15.00 MiB) at seq 6"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("kernel 1, copy 2"), std::string::npos) << run.output;
}

TEST(TracerCli, SummaryJson)
{
  const CliRun run = run_cli("summary --json " + data("small.trace"));
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_EQ(run.output.front(), '{');
  EXPECT_NE(run.output.find("\"peak_live_bytes\": 15728640"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("\"ops_by_kind\": {"), std::string::npos) << run.output;
}

TEST(TracerCli, MalformedTraceIsOneLineAndExitOne)
{
  const std::string path = data("malformed-undefined-name.trace");
  const CliRun run = run_cli("summary " + path);
  EXPECT_EQ(run.status, 1);
  EXPECT_EQ(run.output.rfind("oversub-trace: " + path + ":4: ", 0), 0u) << run.output;
  EXPECT_EQ(run.output.find('\n'), run.output.size() - 1) << "more than one line: " << run.output;
}

TEST(TracerCli, MissingFileExitsOne)
{
  const CliRun run = run_cli("summary /nonexistent-oversub/x.trace");
  EXPECT_EQ(run.status, 1);
  EXPECT_EQ(run.output, "oversub-trace: /nonexistent-oversub/x.trace: cannot open: No such file or directory\n");
}

TEST(TracerCli, UsageErrorsExitTwo)
{
  for (const char* arguments : {"", "frobnicate", "summary", "summary --bogus x.trace", "summary a b"}) {
    const CliRun run = run_cli(arguments);
    EXPECT_EQ(run.status, 2) << "'" << arguments << "': " << run.output;
    EXPECT_NE(run.output.find("usage: oversub-trace"), std::string::npos) << run.output;
  }
}

TEST(TracerCli, PlotWritesAPng)
{
  testing::TempPath out(".png");
  const CliRun run = run_cli("plot " + data("small.trace") + " -o " + out.str() + " --width 400 --height 250");
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_EQ(run.output, "");
  const std::string png = testing::read_file(out.str());
  ASSERT_GE(png.size(), 24u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(png.substr(12, 4), "IHDR");
  EXPECT_EQ(png.substr(16, 8), std::string("\0\0\x01\x90\0\0\0\xfa", 8));  // 400 x 250
}

TEST(TracerCli, PlotOfAMalformedTraceIsOneLineAndExitOne)
{
  testing::TempPath out(".png");
  const std::string path = data("malformed-undefined-name.trace");
  const CliRun run = run_cli("plot " + path + " -o " + out.str());
  EXPECT_EQ(run.status, 1);
  EXPECT_EQ(run.output, run_cli("summary " + path).output);  // the same line as summary
  EXPECT_EQ(run.output.rfind("oversub-trace: " + path + ":4: ", 0), 0u) << run.output;
  EXPECT_EQ(run.output.find('\n'), run.output.size() - 1) << "more than one line: " << run.output;
  EXPECT_EQ(testing::read_file(out.str()), "") << "no PNG for a malformed trace";
}

TEST(TracerCli, PlotToAnUnwritablePathExitsOne)
{
  const CliRun run = run_cli("plot " + data("small.trace") + " -o /nonexistent-oversub/x.png");
  EXPECT_EQ(run.status, 1);
  EXPECT_EQ(run.output, "oversub-trace: /nonexistent-oversub/x.png: cannot write: No such file or directory\n");
}

TEST(TracerCli, PlotUsageErrorsExitTwo)
{
  const std::string trace = data("small.trace");
  for (const std::string& arguments :
       {std::string("plot"), "plot " + trace, std::string("plot -o x.png"), "plot " + trace + " -o", "plot " + trace + " a -o x.png",
        "plot " + trace + " -o x.png --bogus", "plot " + trace + " -o x.png --width 10",
        "plot " + trace + " -o x.png --height abc", "plot " + trace + " -o x.png --width 99999"}) {
    const CliRun run = run_cli(arguments);
    EXPECT_EQ(run.status, 2) << "'" << arguments << "': " << run.output;
    EXPECT_NE(run.output.find("usage: oversub-trace plot FILE -o OUT.png"), std::string::npos) << run.output;
  }
}

TEST(TracerCli, HelpAndVersion)
{
  CliRun run = run_cli("--help");
  EXPECT_EQ(run.status, 0);
  EXPECT_NE(run.output.find("summary FILE [--json]"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("plot FILE -o OUT.png"), std::string::npos) << run.output;
  run = run_cli("plot --help");
  EXPECT_EQ(run.status, 0);
  EXPECT_NE(run.output.find("--width"), std::string::npos) << run.output;
  run = run_cli("summary --help");
  EXPECT_EQ(run.status, 0);
  EXPECT_NE(run.output.find("--json"), std::string::npos) << run.output;
  run = run_cli("--version");
  EXPECT_EQ(run.status, 0);
  EXPECT_EQ(run.output.rfind("oversub-trace ", 0), 0u) << run.output;
  EXPECT_NE(run.output.find("(trace format " + std::to_string(format_version) + ")"), std::string::npos)
      << run.output;
}

}  // namespace
}  // namespace oversub::trace
