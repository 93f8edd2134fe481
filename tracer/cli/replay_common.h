// What `replay` and `compare` share: reading a trace into a replay workload, and the
// options both take.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tracer/replay/compare.h"
#include "tracer/replay/device_profile.h"
#include "tracer/replay/policies.h"
#include "tracer/replay/workload.h"

namespace oversub::trace::cli {

// Reads FILE ("-": stdin) and builds its workload; on failure returns the one-line
// error (FILE:LINE: what was expected).
std::optional<std::string> load_workload(const std::string& path, uint32_t extra_steps, replay::Workload* out);

// "h100-sxm, h100-pcie, ...": for usage errors.
std::string device_profile_names();
std::string replay_policy_names();

// One value of --budget, --policy or --device (or one item of compare's
// --budgets, --policies, --devices lists): true with the value in *out, or
// false with the usage problem, naming the value and what is accepted.
bool parse_budget_value(std::string_view text, replay::BudgetSpec* out, std::string* problem);
bool parse_policy_value(std::string_view text, replay::PolicyKind* out, std::string* problem);
bool parse_device_value(std::string_view text, const replay::DeviceProfile** out, std::string* problem);

// A whole number in [low, high], or nullopt.
std::optional<uint32_t> parse_count(std::string_view text, uint32_t low, uint32_t high);

// The label of a trace in reports: its file name.
std::string trace_label(const std::string& path);

}  // namespace oversub::trace::cli
