// Shared helpers for the tracer unit tests: temporary files and test-data paths.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

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

}  // namespace oversub::trace::testing
