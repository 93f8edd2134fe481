// What `replay` and `compare` share: reading a trace into a replay workload, and the
// options both take.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tracer/replay/device_profile.h"
#include "tracer/replay/workload.h"

namespace oversub::trace::cli {

// Reads FILE ("-": stdin) and builds its workload; on failure returns the one-line
// error (FILE:LINE: what was expected).
std::optional<std::string> load_workload(const std::string& path, uint32_t extra_steps, replay::Workload* out);

// "h100-sxm, h100-pcie, ...": for usage errors.
std::string device_profile_names();
std::string replay_policy_names();

// A whole number in [low, high], or nullopt.
std::optional<uint32_t> parse_count(std::string_view text, uint32_t low, uint32_t high);

// The label of a trace in reports: its file name.
std::string trace_label(const std::string& path);

}  // namespace oversub::trace::cli
