// oversub-trace replay FILE --budget SIZE|PCT [--policy NAME] [--device PROFILE] [--steps N]
//                      [--tflms-ahead N] [--lookahead-ops N] [--json]
#include <charconv>
#include <cstdio>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "tracer/cli/commands.h"
#include "tracer/cli/replay_common.h"
#include "tracer/reader.h"
#include "tracer/replay/compare.h"

namespace oversub::trace::cli {

std::optional<std::string> load_workload(const std::string& path, uint32_t extra_steps, replay::Workload* out)
{
  Trace trace;
  const std::string file = path == "-" ? "/dev/stdin" : path;
  if (std::optional<ParseError> error = read_trace(file, &trace)) return error->to_string();
  if (std::optional<ParseError> error = replay::build_workload(trace, file, extra_steps, out)) {
    return error->to_string();
  }
  return std::nullopt;
}

std::string device_profile_names()
{
  std::string names;
  for (const replay::DeviceProfile& p : replay::device_profiles()) names += (names.empty() ? "" : ", ") + std::string(p.name);
  return names;
}

std::string replay_policy_names()
{
  std::string names;
  for (const replay::PolicyInfo& p : replay::replay_policies()) names += (names.empty() ? "" : ", ") + std::string(p.name);
  return names;
}

bool parse_budget_value(std::string_view text, replay::BudgetSpec* out, std::string* problem)
{
  const std::optional<replay::BudgetSpec> budget = replay::parse_budget(text);
  if (budget) *out = *budget;
  else *problem = "budget '" + std::string(text) + "' is neither a size (16GiB, 12GB, 4096) nor a percentage (50%)";
  return budget.has_value();
}

bool parse_policy_value(std::string_view text, replay::PolicyKind* out, std::string* problem)
{
  const std::optional<replay::PolicyKind> kind = replay::parse_policy(text);
  if (kind) *out = *kind;
  else *problem = "unknown policy '" + std::string(text) + "' (known: " + replay_policy_names() + ")";
  return kind.has_value();
}

bool parse_device_value(std::string_view text, const replay::DeviceProfile** out, std::string* problem)
{
  const replay::DeviceProfile* device = replay::find_device_profile(text);
  if (device != nullptr) *out = device;
  else *problem = "unknown device '" + std::string(text) + "' (known: " + device_profile_names() + ")";
  return device != nullptr;
}

std::optional<uint32_t> parse_count(std::string_view text, uint32_t low, uint32_t high)
{
  uint32_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < low || value > high) return std::nullopt;
  return value;
}

std::string trace_label(const std::string& path)
{
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

const Subcommand replay_command = {
    "replay",
    "FILE --budget SIZE|PCT [--policy NAME] [--device PROFILE] [--steps N] [--json]",
    "simulate the traced steps under a device-memory budget: step time, bytes moved",
    run_replay,
};

int run_replay(Arguments arguments)
{
  std::optional<std::string> path;
  std::optional<replay::BudgetSpec> budget;
  replay::PolicyKind policy = replay::PolicyKind::lookahead;
  const replay::DeviceProfile* device = replay::find_device_profile("h100-sxm");
  uint32_t extra_steps = replay::default_extra_steps;
  replay::PolicyParams params;
  bool json = false;
  for (size_t i = 0; i < arguments.size(); ++i) {
    const std::string_view argument = arguments[i];
    if (argument == "--help" || argument == "-h") {
      std::printf("usage: oversub-trace replay %.*s\n\n"
                  "Replays the trace's steps on a simulated device under a memory budget (docs/replay.md):\n"
                  "compute streams, one copy engine each way, op durations from a roofline of each op's\n"
                  "FLOPs and bytes. Prints the measured (last) step's time, its overhead against unlimited\n"
                  "memory, the physical lower bound, bytes moved each way, stall times and peak device bytes.\n\n"
                  "  --budget SIZE|PCT  device memory: a size (16GiB, 12GB, 512MiB) or a percentage of the\n"
                  "                     trace's peak live device bytes (50%%)\n"
                  "  --policy NAME      %s (default lookahead)\n"
                  "  --device PROFILE   %s (default h100-sxm)\n"
                  "  --steps N          copies of the last step to append; the last is measured (default %u)\n"
                  "  --tflms-ahead N    ops between a tflms swap-in and its use (default %u)\n"
                  "  --lookahead-ops N  OVERSUB_LOOKAHEAD_OPS of `lookahead`: plans N ops ahead (default %u,\n"
                  "                     the shim's; `lookahead-prefetch` is lookahead with %u)\n"
                  "  --json             its row as `compare --json` prints rows (an array of one)\n",
                  static_cast<int>(replay_command.synopsis.size()), replay_command.synopsis.data(),
                  replay_policy_names().c_str(), device_profile_names().c_str(), replay::default_extra_steps,
                  replay::default_tflms_ahead_ops, replay::default_lookahead_ops,
                  replay::default_prefetch_lookahead_ops);
      return exit_ok;
    }
    if (argument == "--json") {
      json = true;
      continue;
    }
    if (argument == "--budget" || argument == "--policy" || argument == "--device" || argument == "--steps" ||
        argument == "--tflms-ahead" || argument == "--lookahead-ops") {
      if (i + 1 >= arguments.size()) return usage_error(replay_command, std::string(argument) + " needs a value");
      const std::string_view value = arguments[++i];
      std::string problem;
      if (argument == "--budget") {
        replay::BudgetSpec spec;
        if (!parse_budget_value(value, &spec, &problem)) return usage_error(replay_command, problem);
        budget = spec;
      } else if (argument == "--policy") {
        if (!parse_policy_value(value, &policy, &problem)) return usage_error(replay_command, problem);
      } else if (argument == "--device") {
        if (!parse_device_value(value, &device, &problem)) return usage_error(replay_command, problem);
      } else if (argument == "--lookahead-ops") {
        const std::optional<uint32_t> count = parse_count(value, 0, 65536);
        if (!count) return usage_error(replay_command, "--lookahead-ops must be a whole number from 0 to 65536");
        params.lookahead_ops = *count;
      } else {
        const std::optional<uint32_t> count = parse_count(value, 0, 100);
        if (!count) return usage_error(replay_command, std::string(argument) + " must be a whole number from 0 to 100");
        (argument == "--steps" ? extra_steps : params.tflms_ahead_ops) = *count;
      }
    } else if (const int status = take_file(replay_command, argument, &path); status != exit_ok) {
      return status;
    }
  }
  if (!path) return usage_error(replay_command, "missing FILE");
  if (!budget) return usage_error(replay_command, "missing --budget SIZE|PCT");

  replay::Workload workload;
  if (std::optional<std::string> error = load_workload(*path, extra_steps, &workload)) return failure(*error);
  const uint64_t budget_bytes = replay::budget_bytes_of(*budget, workload);
  const replay::ReplayResult unlimited = replay::replay_unlimited(workload, *device);
  const replay::Row row = replay::make_row(trace_label(*path), workload, *device, budget_bytes, policy, unlimited, params);
  const std::string text =
    json ? replay::render_rows_json({row}) : replay::render_replay_text(row, workload, *device);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return row.result.ran ? exit_ok : exit_failure;
}

}  // namespace oversub::trace::cli
