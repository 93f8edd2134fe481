// oversub-trace compare FILE... [--devices D1,D2] [--budgets B1,B2] [--policies P1,P2]
//                       [--steps N] [--json]
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "tracer/cli/commands.h"
#include "tracer/cli/replay_common.h"
#include "tracer/replay/compare.h"

namespace oversub::trace::cli {
namespace {

std::vector<std::string_view> split_commas(std::string_view text)
{
  std::vector<std::string_view> parts;
  size_t from = 0;
  for (;;) {
    const size_t comma = text.find(',', from);
    parts.push_back(text.substr(from, comma == std::string_view::npos ? std::string_view::npos : comma - from));
    if (comma == std::string_view::npos) return parts;
    from = comma + 1;
  }
}

constexpr std::string_view default_budgets = "100%,75%,50%,33%,25%";

}  // namespace

const Subcommand compare_command = {
    "compare",
    "FILE... [--devices D1,D2] [--budgets B1,B2] [--policies P1,P2] [--json]",
    "every policy at every budget on every device, as a table or JSON rows",
    run_compare,
};

int run_compare(Arguments arguments)
{
  std::vector<std::string> paths;
  std::vector<const replay::DeviceProfile*> devices;
  std::vector<replay::BudgetSpec> budgets;
  std::vector<replay::PolicyKind> policies;
  uint32_t extra_steps = replay::default_extra_steps;
  bool json = false;
  for (size_t i = 0; i < arguments.size(); ++i) {
    const std::string_view argument = arguments[i];
    if (argument == "--help" || argument == "-h") {
      std::printf("usage: oversub-trace compare %.*s\n\n"
                  "Replays every FILE with every policy at every budget on every device (docs/replay.md)\n"
                  "and prints one row each: step time, overhead against unlimited memory, step time over\n"
                  "the lower bound, bytes moved each way, and whether it fits.\n\n"
                  "  --devices LIST   device profiles (default h100-sxm): %s\n"
                  "  --budgets LIST   sizes or percentages of each trace's peak (default %.*s)\n"
                  "  --policies LIST  (default all): %s\n"
                  "  --steps N        copies of the last step to append; the last is measured (default %u)\n"
                  "  --json           a JSON array of rows with the keys trace, device, budget_bytes,\n"
                  "                   budget_fraction, policy, step_time_s, lower_bound_s, overhead,\n"
                  "                   bytes_h2d, bytes_d2h, fits (and more: docs/replay.md)\n",
                  static_cast<int>(compare_command.synopsis.size()), compare_command.synopsis.data(),
                  device_profile_names().c_str(), static_cast<int>(default_budgets.size()), default_budgets.data(),
                  replay_policy_names().c_str(), replay::default_extra_steps);
      return exit_ok;
    }
    if (argument == "--json") {
      json = true;
      continue;
    }
    if (argument == "--devices" || argument == "--budgets" || argument == "--policies" || argument == "--steps") {
      if (i + 1 >= arguments.size()) return usage_error(compare_command, std::string(argument) + " needs a value");
      const std::string_view value = arguments[++i];
      if (argument == "--steps") {
        const std::optional<uint32_t> count = parse_count(value, 0, 100);
        if (!count) return usage_error(compare_command, "--steps must be a whole number from 0 to 100");
        extra_steps = *count;
        continue;
      }
      for (std::string_view part : split_commas(value)) {
        std::string problem;
        bool ok = false;
        if (argument == "--devices") {
          const replay::DeviceProfile* device = nullptr;
          ok = parse_device_value(part, &device, &problem);
          if (ok) devices.push_back(device);
        } else if (argument == "--budgets") {
          replay::BudgetSpec budget;
          ok = parse_budget_value(part, &budget, &problem);
          if (ok) budgets.push_back(budget);
        } else {
          replay::PolicyKind kind;
          ok = parse_policy_value(part, &kind, &problem);
          if (ok) policies.push_back(kind);
        }
        if (!ok) return usage_error(compare_command, problem);
      }
    } else if (argument.starts_with("-") && argument != "-") {
      return usage_error(compare_command, "unknown option '" + std::string(argument) + "'");
    } else {
      paths.emplace_back(argument);
    }
  }
  if (paths.empty()) return usage_error(compare_command, "missing FILE");
  if (devices.empty()) devices.push_back(replay::find_device_profile("h100-sxm"));
  if (budgets.empty()) {
    for (std::string_view part : split_commas(default_budgets)) budgets.push_back(*replay::parse_budget(part));
  }
  if (policies.empty()) {
    for (const replay::PolicyInfo& p : replay::replay_policies()) policies.push_back(p.kind);
  }

  // Every trace is read before the first replay, so a malformed one fails fast.
  std::vector<replay::Workload> workloads(paths.size());
  for (size_t t = 0; t < paths.size(); ++t) {
    if (std::optional<std::string> error = load_workload(paths[t], extra_steps, &workloads[t])) return failure(*error);
  }
  std::vector<replay::Row> rows;
  for (size_t t = 0; t < paths.size(); ++t) {
    for (const replay::DeviceProfile* device : devices) {
      const replay::ReplayResult unlimited = replay::replay_unlimited(workloads[t], *device);
      for (const replay::BudgetSpec& budget : budgets) {
        const uint64_t bytes = replay::budget_bytes_of(budget, workloads[t]);
        for (replay::PolicyKind policy : policies) {
          rows.push_back(replay::make_row(trace_label(paths[t]), workloads[t], *device, bytes, policy, unlimited));
        }
      }
    }
  }
  const std::string text = json ? replay::render_rows_json(rows) : replay::render_rows_table(rows);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return exit_ok;
}

}  // namespace oversub::trace::cli
