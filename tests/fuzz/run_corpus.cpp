// Replays fuzz corpora without libFuzzer: the regression test for every fuzz
// target (tests/fuzz/README.md). Linked with one target's file, it feeds each
// file named on the command line, or found under a directory named there, to that
// target's LLVMFuzzerTestOneInput, as libFuzzer does when given files to run.
// A crash or abort fails the test; the output names the file being run.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

bool collect(const std::filesystem::path& path, std::vector<std::filesystem::path>* files)
{
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(path, error)) {
      if (entry.is_regular_file()) files->push_back(entry.path());
    }
  } else if (std::filesystem::is_regular_file(path, error)) {
    files->push_back(path);
  } else {
    std::fprintf(stderr, "run_corpus: %s: no such file or directory\n", path.c_str());
    return false;
  }
  if (error) {
    std::fprintf(stderr, "run_corpus: %s: %s\n", path.c_str(), error.message().c_str());
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv)
{
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
    return 2;
  }
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    if (!collect(argv[i], &files)) return 1;
  }
  std::sort(files.begin(), files.end());  // a stable order, so a failure reproduces
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      std::fprintf(stderr, "run_corpus: cannot read %s\n", file.c_str());
      return 1;
    }
    std::fprintf(stderr, "running %s (%zu bytes)\n", file.c_str(), bytes.size());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("ran %zu inputs\n", files.size());
  // An empty corpus would make this test pass without testing anything.
  return files.empty() ? 1 : 0;
}
