// oversub-trace plot FILE -o OUT.png [--width PX] [--height PX]
//                    [--budget SIZE|PCT [--policy NAME] [--device PROFILE]]
#include <charconv>
#include <cstdio>
#include <optional>
#include <string>

#include "tracer/cli/commands.h"
#include "tracer/cli/replay_common.h"
#include "tracer/plot.h"
#include "tracer/png.h"
#include "tracer/reader.h"
#include "tracer/replay/compare.h"
#include "tracer/replay/replay.h"

namespace oversub::trace::cli {
namespace {

std::optional<uint32_t> parse_pixels(std::string_view text)
{
  uint32_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string basename_of(const std::string& path)
{
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Note [Replayed memory timeline] in tracer/plot.h.
int plot_replayed(const std::string& path, const std::string& output, const replay::BudgetSpec& budget,
                  replay::PolicyKind policy, const replay::DeviceProfile& device, const PlotOptions& options)
{
  replay::Workload workload;
  if (std::optional<std::string> error = load_workload(path, replay::default_extra_steps, &workload)) {
    return failure(*error);
  }
  replay::ReplayTimeline timeline;
  replay::ReplayOptions replay_options;
  replay_options.device = &device;
  replay_options.budget_bytes = replay::budget_bytes_of(budget, workload);
  replay_options.policy = policy;
  replay_options.timeline = &timeline;
  const replay::ReplayResult result = replay::run_replay(workload, replay_options);
  if (!result.ran) return failure(trace_label(path) + ": " + result.failure);

  ReplayedTimeline series;
  series.budget_bytes = timeline.budget_bytes;
  series.measured_from = timeline.measured_from;
  for (const replay::TimelinePoint& point : timeline.points) {
    series.live_bytes.push_back(point.live_bytes);
    series.device_bytes.push_back(point.device_bytes);
    series.evictions.push_back(point.evictions);
    series.prefetches.push_back(point.prefetches);
  }
  const std::string settings = "replay: policy " + std::string(replay::policy_name(policy)) + ", device " +
                               std::string(device.name) + ", step " +
                               std::to_string(result.step_ns / 1000000) + " ms";
  const Plot plot = render_replayed_plot(series, trace_label(path), settings, options);
  if (std::optional<std::string> error = png::write_file(output, plot.image)) return failure(*error);
  return exit_ok;
}

}  // namespace

const Subcommand plot_command = {
    "plot",
    "FILE -o OUT.png [--width PX] [--height PX] [--budget SIZE|PCT [--policy NAME] [--device PROFILE]]",
    "memory timeline as a PNG: as traced, or replayed under a budget",
    run_plot,
};

int run_plot(Arguments arguments)
{
  std::optional<std::string> path;
  std::optional<std::string> output;
  PlotOptions options;
  std::optional<replay::BudgetSpec> budget;
  std::optional<replay::PolicyKind> policy;
  const replay::DeviceProfile* device = nullptr;
  for (size_t i = 0; i < arguments.size(); ++i) {
    const std::string_view argument = arguments[i];
    if (argument == "--help" || argument == "-h") {
      std::printf("usage: oversub-trace plot %.*s\n\n"
                  "Draws the trace's memory timeline as a PNG (default %ux%u): live allocated bytes,\n"
                  "bytes evicted to the host and not yet prefetched, and the device's total memory,\n"
                  "against the events in seq order.\n\n"
                  "With --budget, draws the replay's timeline instead (docs/replay.md): live bytes,\n"
                  "resident bytes, the budget, and where evictions and bring-backs start.\n"
                  "  --budget SIZE|PCT  a size (16GiB) or a percentage of the trace's footprint (50%%)\n"
                  "  --policy NAME      %s (default lookahead)\n"
                  "  --device PROFILE   %s (default h100-sxm)\n",
                  static_cast<int>(plot_command.synopsis.size()), plot_command.synopsis.data(), options.width,
                  options.height, replay_policy_names().c_str(), device_profile_names().c_str());
      return exit_ok;
    }
    if (argument == "--budget" || argument == "--policy" || argument == "--device") {
      if (i + 1 >= arguments.size()) return usage_error(plot_command, std::string(argument) + " needs a value");
      const std::string_view value = arguments[++i];
      std::string problem;
      bool ok = false;
      if (argument == "--budget") {
        replay::BudgetSpec spec;
        ok = parse_budget_value(value, &spec, &problem);
        if (ok) budget = spec;
      } else if (argument == "--policy") {
        replay::PolicyKind kind;
        ok = parse_policy_value(value, &kind, &problem);
        if (ok) policy = kind;
      } else {
        ok = parse_device_value(value, &device, &problem);
      }
      if (!ok) return usage_error(plot_command, problem);
      continue;
    }
    if (argument == "-o" || argument == "--output" || argument == "--width" || argument == "--height") {
      if (i + 1 >= arguments.size()) return usage_error(plot_command, std::string(argument) + " needs a value");
      const std::string_view value = arguments[++i];
      if (argument == "-o" || argument == "--output") {
        if (value.empty()) return usage_error(plot_command, "empty output path");
        output = std::string(value);
        continue;
      }
      const bool width = argument == "--width";
      const uint32_t low = width ? min_plot_width : min_plot_height;
      const std::optional<uint32_t> pixels = parse_pixels(value);
      if (!pixels || *pixels < low || *pixels > max_plot_side) {
        return usage_error(plot_command, std::string(argument) + " must be a number of pixels from " +
                                             std::to_string(low) + " to " + std::to_string(max_plot_side));
      }
      (width ? options.width : options.height) = *pixels;
    } else if (const int status = take_file(plot_command, argument, &path); status != exit_ok) {
      return status;
    }
  }
  if (!path) return usage_error(plot_command, "missing FILE");
  if (!output) return usage_error(plot_command, "missing -o OUT.png");
  if (!budget && (policy || device)) return usage_error(plot_command, "--policy and --device need --budget");
  if (budget) {
    return plot_replayed(*path, *output, *budget, policy.value_or(replay::PolicyKind::lookahead),
                         device ? *device : *replay::find_device_profile("h100-sxm"), options);
  }

  Trace trace;
  if (std::optional<ParseError> error = read_trace(path == "-" ? "/dev/stdin" : *path, &trace)) {
    return failure(error->to_string());
  }
  const std::string name = trace.process && !trace.process->executable.empty()
                               ? basename_of(trace.process->executable)
                               : basename_of(*path);
  const Plot plot = render_plot(trace, name, options);
  if (std::optional<std::string> error = png::write_file(*output, plot.image)) return failure(*error);
  return exit_ok;
}

}  // namespace oversub::trace::cli
