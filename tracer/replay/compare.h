// Rows of `oversub-trace replay` and `compare`: one policy at one budget on one
// device, beside the unlimited reference and the lower bound, and their renderings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tracer/replay/replay.h"

namespace oversub::replay {

// A budget as the user gives it: a size (common/parse_size.h) or a percentage of the
// trace's footprint ("50%"): its peak live device bytes in whole chunks (Note
// [Footprint] in chunks.h).
struct BudgetSpec {
  bool percent = false;
  double value = 0;  // percent, or bytes
  std::string text;
};
std::optional<BudgetSpec> parse_budget(std::string_view text);
uint64_t budget_bytes_of(const BudgetSpec& spec, const Workload& workload);
uint64_t footprint_bytes(const Workload& workload);

struct Row {
  std::string trace;
  std::string device;
  uint64_t budget_bytes = 0;
  double budget_fraction = 0;  // of the trace's footprint
  bool budget_exceeds_device = false;  // more than the profile's memory: no such card
  PolicyKind policy = PolicyKind::unlimited;
  // unlimited: the trace's peak fits the budget; others: the replay ran under it.
  bool fits = false;
  ReplayResult result;
  int64_t unlimited_step_ns = 0;
  LowerBound bound;
};

// The unlimited replay, shared by every row of a trace and device.
ReplayResult replay_unlimited(const Workload& workload, const DeviceProfile& device);
Row make_row(std::string trace, const Workload& workload, const DeviceProfile& device, uint64_t budget_bytes,
             PolicyKind policy, const ReplayResult& unlimited, const PolicyParams& params = {});

std::string render_replay_text(const Row& row, const Workload& workload, const DeviceProfile& device);
std::string render_rows_table(const std::vector<Row>& rows);
// One JSON array; each row has the keys of docs/replay.md, "Compare output".
std::string render_rows_json(const std::vector<Row>& rows);

}  // namespace oversub::replay
