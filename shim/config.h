// oversub settings: every OVERSUB_* variable in one table (CONVENTIONS 7).
//
// Read once, at the first intercepted CUDA call. A bad value stops the process
// there, before any CUDA work, with one line naming the variable, the value
// and the accepted form, and exit status 2. docs/configuration.md is checked
// against this table by a test.
#pragma once

#include <cstdint>
#include <string>

namespace oversub {

enum class Mode { passthrough, swap };

enum class PolicyKind { lru, lookahead };

struct Config {
  Mode mode;
  std::string trace_path;       // empty: no trace
  int log_level;                // 0 quiet, 1 summary (default), 2 debug
  std::uint64_t budget_bytes;   // 0: use budget_percent, or the default
  double budget_percent;        // 0: not given
  std::uint64_t host_limit_bytes;  // 0: the default share of available memory
  bool strict;
  PolicyKind policy;
  std::string stats_path;       // empty: no stats file
  std::uint32_t lookahead_ops;  // how many ops ahead the lookahead policy prefetches for
};

// Replaces each "%p" in a path by the process id, so that every process of a
// multi-process job (torchrun, mpirun) writes its own trace or stats file.
std::string expand_process_id(const std::string& path);

// Parses "12GiB", "512MiB", "1.5GB", "4096" (bytes). False when malformed or zero.
bool parse_size(const char* text, std::uint64_t* bytes);

// Validates the environment on first use; later calls return the same object.
const Config& config();

// For docs and tests: the table itself.
struct SettingInfo {
  const char* name;
  const char* type;
  const char* default_text;
  const char* accepted;
  const char* description;
};
const SettingInfo* settings_table(std::size_t* count);

// Parses a value for `name` into a Config without touching the environment.
// Returns false and fills `error` (the one-line message) on a bad value.
bool apply_setting(Config* config, const char* name, const char* value, std::string* error);
Config default_config();

}  // namespace oversub
