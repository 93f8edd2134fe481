// oversub settings: every OVERSUB_* variable in one table (CONVENTIONS 7).
//
// Checked when liboversub.so loads, before the program's main, and read for use
// at the first intercepted CUDA call (checked again there, so that a value a
// program sets for itself before it uses CUDA counts). A bad value, an unknown
// OVERSUB_* name or settings that contradict each other stop the process with
// one line naming the variable, the value and the accepted form, and exit
// status 2 (Note [Configuration errors] in config.cpp). docs/configuration.md
// is checked against this table by a test.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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
  std::string budget_text;      // OVERSUB_DEVICE_BUDGET as given, for messages
};

// Replaces each "%p" in a path by the process id, so that every process of a
// multi-process job (torchrun, mpirun) writes its own trace or stats file.
std::string expand_process_id(const std::string& path);

// The least OVERSUB_DEVICE_BUDGET and OVERSUB_HOST_LIMIT accept: two 2 MiB
// chunks each. A budget needs one chunk for data and one for exchanges; a host
// limit of less adds nothing to what the application may hold (Note [Capacity]
// in engine/residency.h). engine/residency.cpp checks these against its chunk.
constexpr std::uint64_t kMinimumBudgetBytes = std::uint64_t{4} << 20;
constexpr std::uint64_t kMinimumHostLimitBytes = std::uint64_t{4} << 20;

// Parses "12GiB", "512MiB", "1.5GB", "4096" (bytes). False when malformed or zero.
bool parse_size(const char* text, std::uint64_t* bytes);

// Validates the environment on first use; later calls return the same object.
const Config& config();

// Validates the environment as config() does, and keeps nothing: the library's
// load-time check (Note [Configuration errors] in config.cpp).
void check_environment();

// Prints the one-line error and ends the process with status 2.
[[noreturn]] void exit_with_configuration_error(const std::string& line);

// The OVERSUB_* entries of an environment, as NAME=VALUE strings.
using Environment = std::vector<std::string>;
Environment oversub_environment();

// Every check that needs no device: names, values, writable paths and settings
// that contradict each other. False with the one-line error in `error`.
bool read_environment(const Environment& environment, Config* config, std::string* error);

// The check that needs the device's size (Note [Budget and device]): false
// with the one-line error when OVERSUB_DEVICE_BUDGET asks for more than the
// device has, or for less than `minimum_bytes` (a percentage of a small device).
bool check_budget_fits_device(const Config& config, std::uint64_t device_bytes, std::uint64_t minimum_bytes,
                              std::string* error);

// For docs and tests: the table itself.
struct SettingInfo {
  const char* name;
  const char* type;
  const char* default_text;
  const char* accepted;
  const char* description;
  // Meaningful only in swap mode: giving it with OVERSUB_MODE=passthrough is
  // an error (Note [Contradicting settings] in config.cpp).
  bool swap_only = false;
};
const SettingInfo* settings_table(std::size_t* count);

// Parses a value for `name` into a Config without touching the environment.
// Returns false and fills `error` (the one-line message) on a bad value.
bool apply_setting(Config* config, const char* name, const char* value, std::string* error);
Config default_config();

}  // namespace oversub
