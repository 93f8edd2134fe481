// simcuda settings: every SIMCUDA_* variable, in one table (CONVENTIONS 7).
//
// Validated once, at the simulated driver's initialisation (cuInit), before
// any simulated work. An unknown SIMCUDA_* name, a bad value or settings that
// contradict each other stop the program with one line naming the variable,
// the value and the accepted form, and exit status 2 (Note [simcuda
// settings] in settings.cpp). tests/simcuda/README.md is checked against the
// table by a test.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace simcuda {

struct Settings {
  std::uint64_t memory_bytes;  // SIMCUDA_MEMORY: device capacity
  bool report;                 // SIMCUDA_REPORT: print peak device bytes at exit
  bool jitter;                 // SIMCUDA_JITTER: random delays before queued work
  std::uint64_t seed;          // SIMCUDA_SEED: seeds the jitter
  std::uint32_t jitter_max_us; // SIMCUDA_JITTER_MAX_US: longest single delay
  // SIMCUDA_FAIL: fault injection (Note [Injected faults] in driver/faults.cpp).
  // fail_call is one of kFailableCalls, or empty when off.
  std::string fail_call;
  std::uint64_t fail_nth;      // the call (counted from 1) that fails
};

// The driver functions SIMCUDA_FAIL can make fail, with the error each returns.
inline constexpr const char* kFailableCalls[] = {"cuMemCreate", "cuMemMap", "cuMemcpyDtoDAsync_v2"};

// Parses and validates the environment once; later calls return the same object.
const Settings& settings();

// The SIMCUDA_* entries of an environment, as NAME=VALUE strings.
std::vector<std::string> simcuda_environment();

// Every check settings() makes, on a given environment. False with the
// one-line error in `error`.
bool read_settings(const std::vector<std::string>& environment, Settings* out, std::string* error);

// For docs and tests: the table itself.
struct VariableInfo {
  const char* name;
  const char* default_text;
  const char* accepted;     // the accepted form, shown in errors
  const char* description;  // one line, for docs
  bool jitter_only;         // meaningful only with SIMCUDA_JITTER=1
};
const VariableInfo* variables_table(std::size_t* count);

// Parses a size: "256MiB", "2GiB", "1.5GiB", "64KiB", "512MB", or plain bytes.
// Returns false when `text` is not of that form or is zero.
bool parse_size_bytes(const char* text, std::uint64_t* bytes);

}  // namespace simcuda
