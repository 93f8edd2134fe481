// Shared helpers for the tracer unit tests: temporary files, test-data paths and
// running the oversub-trace command.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace oversub::trace::testing {

// A fresh file path under $TMPDIR (or /tmp), removed when the object dies.
class TempPath {
 public:
  explicit TempPath(const std::string& suffix = ".trace")
  {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/oversub-tracer-XXXXXX";
    std::string dir = pattern;
    if (mkdtemp(dir.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    dir_ = dir;
    path_ = dir + "/t" + suffix;
  }
  ~TempPath()
  {
    std::remove(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  const std::string& str() const { return path_; }

 private:
  std::string dir_;
  std::string path_;
};

inline std::string read_file(const std::string& path)
{
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline void write_file(const std::string& path, const std::string& text)
{
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

inline std::string source_path(const std::string& relative)
{
  const char* root = std::getenv("OVERSUB_SOURCE_ROOT");
  return std::string(root ? root : ".") + "/" + relative;
}

// A test-data trace under tests/data/traces/.
inline std::string data_trace(const std::string& name) { return source_path("tests/data/traces/" + name); }

struct CliRun {
  int status;
  std::string output;  // stdout and stderr together
};

// Runs `oversub-trace ARGUMENTS` through the shell, as a user would.
inline CliRun run_cli(const std::string& arguments)
{
  const char* cli = std::getenv("OVERSUB_TRACE_CLI");
  EXPECT_NE(cli, nullptr) << "meson sets OVERSUB_TRACE_CLI to build/tracer/oversub-trace";
  const std::string command = std::string(cli ? cli : "oversub-trace") + " " + arguments + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::string output;
  char chunk[4096];
  while (size_t n = fread(chunk, 1, sizeof chunk, pipe)) output.append(chunk, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

}  // namespace oversub::trace::testing
