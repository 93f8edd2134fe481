// simcuda settings: every SIMCUDA_* variable, in one table (CONVENTIONS 7).
//
// A bad value stops the program before any simulated CUDA work, with one line
// naming the variable, the value and the accepted form, and exit status 2.
#pragma once

#include <cstdint>

namespace simcuda {

struct Settings {
  std::uint64_t memory_bytes;  // SIMCUDA_MEMORY: device capacity
  bool report;                 // SIMCUDA_REPORT: print peak device bytes at exit
  bool jitter;                 // SIMCUDA_JITTER: random delays before queued work
  std::uint64_t seed;          // SIMCUDA_SEED: seeds the jitter
  std::uint32_t jitter_max_us; // SIMCUDA_JITTER_MAX_US: longest single delay
};

// Parses and validates the environment once; later calls return the same object.
const Settings& settings();

// Parses a size: "256MiB", "2GiB", "1.5GiB", "64KiB", "512MB", or plain bytes.
// Returns false when `text` is not of that form or is zero.
bool parse_size_bytes(const char* text, std::uint64_t* bytes);

}  // namespace simcuda
