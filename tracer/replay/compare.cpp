// Rows and their renderings: see compare.h.
#include "tracer/replay/compare.h"

#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "common/parse_size.h"
#include "policy/events.h"
#include "tracer/summary.h"

namespace oversub::replay {
namespace {

std::string seconds(int64_t ns)
{
  const double s = static_cast<double>(ns) / 1e9;
  if (s >= 1) return fmt::format("{:.3f} s", s);
  if (s >= 1e-3) return fmt::format("{:.2f} ms", s * 1e3);
  return fmt::format("{:.1f} us", s * 1e6);
}

std::string gigabytes(uint64_t bytes) { return fmt::format("{:.2f} GB", static_cast<double>(bytes) / 1e9); }

// Step time over the unlimited one, less one: 0.25 is 25% slower.
double overhead(const Row& row)
{
  return static_cast<double>(row.result.step_ns) / static_cast<double>(row.unlimited_step_ns) - 1;
}
// The bound is for a policy under the budget; unlimited ignores the budget.
bool bound_applies(const Row& row) { return row.policy != PolicyKind::unlimited || row.fits; }

double versus_bound(const Row& row)
{
  return static_cast<double>(row.result.step_ns) / static_cast<double>(std::max<int64_t>(1, row.bound.bound_ns));
}

}  // namespace

uint64_t footprint_bytes(const Workload& workload) { return workload.footprint_chunks * policy::chunk_bytes; }

std::optional<BudgetSpec> parse_budget(std::string_view text)
{
  BudgetSpec spec;
  spec.text = std::string(text);
  if (text.ends_with('%')) {
    const std::string_view number = text.substr(0, text.size() - 1);
    double percent = 0;
    const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), percent);
    if (error != std::errc() || end != number.data() + number.size() || !(percent > 0) || percent > 1e6) {
      return std::nullopt;
    }
    spec.percent = true;
    spec.value = percent;
    return spec;
  }
  uint64_t bytes = 0;
  if (!common::parse_size(spec.text.c_str(), &bytes)) return std::nullopt;
  spec.value = static_cast<double>(bytes);
  return spec;
}

uint64_t budget_bytes_of(const BudgetSpec& spec, const Workload& workload)
{
  if (!spec.percent) return static_cast<uint64_t>(spec.value);
  return static_cast<uint64_t>(std::llround(static_cast<double>(footprint_bytes(workload)) * spec.value / 100));
}

ReplayResult replay_unlimited(const Workload& workload, const DeviceProfile& device)
{
  ReplayOptions options;
  options.device = &device;
  options.policy = PolicyKind::unlimited;
  return run_replay(workload, options);
}

Row make_row(std::string trace, const Workload& workload, const DeviceProfile& device, uint64_t budget_bytes,
             PolicyKind policy, const ReplayResult& unlimited, const PolicyParams& params)
{
  Row row;
  row.trace = std::move(trace);
  row.device = std::string(device.name);
  row.budget_bytes = budget_bytes;
  row.budget_exceeds_device = budget_bytes > device.memory_bytes;
  row.budget_fraction = workload.footprint_chunks == 0
                          ? 0
                          : static_cast<double>(budget_bytes) / static_cast<double>(footprint_bytes(workload));
  row.policy = policy;
  row.unlimited_step_ns = unlimited.step_ns;
  row.bound = lower_bound(workload, device, budget_bytes, unlimited.step_ns);
  if (policy == PolicyKind::unlimited) {
    row.result = unlimited;
    row.fits = workload.footprint_chunks <= budget_chunks(budget_bytes);
  } else {
    ReplayOptions options;
    options.device = &device;
    options.budget_bytes = budget_bytes;
    options.policy = policy;
    options.params = params;
    row.result = run_replay(workload, options);
    row.fits = row.result.ran;
  }
  return row;
}

std::string render_replay_text(const Row& row, const Workload& workload, const DeviceProfile& device)
{
  std::string out;
  size_t ops = 0;
  for (size_t i = workload.step_starts[workload.measured_step]; i < workload.step_starts[workload.measured_step + 1];
       ++i) {
    ops += workload.items[i].kind == ItemKind::op;
  }
  out += fmt::format("trace               {} ({} step{} recorded, {} repeated; measured: step {}, {} ops)\n",
                     row.trace, workload.trace_steps, workload.trace_steps == 1 ? "" : "s", workload.repeated_steps,
                     workload.measured_step + 1, ops);
  out += fmt::format("device              {}: {}\n", device.name, device.description);
  out += fmt::format("budget              {} ({} chunks of 2 MiB): {:.0f}% of the footprint, {} in chunks ({} live bytes "
                     "at the peak)\n",
                     gigabytes(row.budget_bytes), budget_chunks(row.budget_bytes), row.budget_fraction * 100,
                     gigabytes(footprint_bytes(workload)), gigabytes(workload.peak_live_bytes));
  if (row.budget_bytes > device.memory_bytes) {
    out += fmt::format("warning             the budget exceeds the {}'s {} of memory\n", device.name,
                       gigabytes(device.memory_bytes));
  }
  out += fmt::format("policy              {}\n", policy_name(row.policy));
  if (!row.result.ran) {
    out += fmt::format("result              does not run: {}\n", row.result.failure);
    return out;
  }
  if (row.policy == PolicyKind::unlimited && !row.fits) {
    out += "fits                no: the step's peak exceeds the budget (unlimited ignores it)\n";
  }
  out += fmt::format("step time           {}\n", seconds(row.result.step_ns));
  out += fmt::format("unlimited memory    {} (overhead {:+.1f}%)\n", seconds(row.unlimited_step_ns), overhead(row) * 100);
  out += fmt::format("lower bound         {} (compute {}; {} each way: {}){}\n", seconds(row.bound.bound_ns),
                     seconds(row.bound.compute_ns), gigabytes(row.bound.bytes_each_way), seconds(row.bound.link_ns),
                     bound_applies(row) ? fmt::format("; step / bound {:.2f}", versus_bound(row)) : std::string());
  out += fmt::format("moved               host to device {}, device to host {}\n", gigabytes(row.result.bytes_h2d),
                     gigabytes(row.result.bytes_d2h));
  out += fmt::format("copies              {} evictions ({} cancelled: used again before the copy was done), {} "
                     "brought back ({} ahead of use)\n",
                     row.result.evictions, row.result.evictions_cancelled, row.result.prefetches,
                     row.result.prefetches_ahead);
  if (row.result.learned_ops) {
    out += fmt::format("step learned        for {} of the step's {} ops (the planner predicts next uses)\n",
                       *row.result.learned_ops, row.result.ops);
  }
  if (row.result.early_eviction) {
    out += fmt::format("early eviction      {}\n", *row.result.early_eviction);
  }
  out += fmt::format("host stall          {}\n", seconds(row.result.host_stall_ns));
  out += fmt::format("stream stall        {}\n", seconds(row.result.stream_stall_ns));
  out += fmt::format("peak device bytes   {}\n", gigabytes(row.result.peak_device_bytes));
  return out;
}

std::string render_rows_table(const std::vector<Row>& rows)
{
  std::string out = fmt::format("{:<28} {:<17} {:>9} {:>5} {:<18} {:>11} {:>9} {:>8} {:>9} {:>9} {}\n", "trace",
                                "device", "budget", "of", "policy", "step", "overhead", "/bound", "h2d", "d2h", "fits");
  for (const Row& row : rows) {
    const bool shown = row.result.ran;
    const bool bounded = shown && bound_applies(row);
    out += fmt::format("{:<28} {:<17} {:>9} {:>4.0f}% {:<18} {:>11} {:>9} {:>8} {:>9} {:>9} {}\n", row.trace,
                       row.device, gigabytes(row.budget_bytes), row.budget_fraction * 100, policy_name(row.policy),
                       shown ? seconds(row.result.step_ns) : "-",
                       shown ? fmt::format("{:+.1f}%", overhead(row) * 100) : "-",
                       bounded ? fmt::format("{:.2f}", versus_bound(row)) : "-",
                       shown ? gigabytes(row.result.bytes_h2d) : "-", shown ? gigabytes(row.result.bytes_d2h) : "-",
                       row.fits ? "yes" : "no");
  }
  return out;
}

std::string render_rows_json(const std::vector<Row>& rows)
{
  std::string out = "[";
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& row = rows[i];
    const bool ran = row.result.ran;
    const auto optional_seconds = [&](int64_t ns) {
      return ran ? fmt::format("{:.9f}", static_cast<double>(ns) / 1e9) : std::string("null");
    };
    out += i == 0 ? "\n" : ",\n";
    out += fmt::format(
      "  {{\"trace\": {}, \"device\": {}, \"budget_bytes\": {}, \"budget_fraction\": {:.6f}, \"policy\": {}, "
      "\"step_time_s\": {}, \"lower_bound_s\": {:.9f}, \"overhead\": {}, \"bytes_h2d\": {}, \"bytes_d2h\": {}, "
      "\"fits\": {}, \"vs_lower_bound\": {}, \"unlimited_step_time_s\": {:.9f}, \"host_stall_s\": {}, "
      "\"stream_stall_s\": {}, \"peak_device_bytes\": {}, \"budget_exceeds_device\": {}, "
      "\"step_learned_ops\": {}, \"early_eviction\": {}, \"failure\": {}}}",
      trace::json_string(row.trace), trace::json_string(row.device), row.budget_bytes, row.budget_fraction,
      trace::json_string(policy_name(row.policy)), optional_seconds(row.result.step_ns),
      static_cast<double>(row.bound.bound_ns) / 1e9, ran ? fmt::format("{:.6f}", overhead(row)) : "null",
      row.result.bytes_h2d, row.result.bytes_d2h, row.fits ? "true" : "false",
      ran && bound_applies(row) ? fmt::format("{:.6f}", versus_bound(row)) : "null", static_cast<double>(row.unlimited_step_ns) / 1e9,
      optional_seconds(row.result.host_stall_ns), optional_seconds(row.result.stream_stall_ns),
      row.result.peak_device_bytes, row.budget_exceeds_device ? "true" : "false",
      ran && row.result.learned_ops ? fmt::format("{}", *row.result.learned_ops) : std::string("null"),
      ran && row.result.early_eviction ? trace::json_string(*row.result.early_eviction) : std::string("null"),
      ran ? std::string("null") : trace::json_string(row.result.failure));
  }
  out += rows.empty() ? "]\n" : "\n]\n";
  return out;
}

}  // namespace oversub::replay
