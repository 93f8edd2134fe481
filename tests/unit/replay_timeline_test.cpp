// The replay's timeline (Note [Replay timeline] in tracer/replay/replay.h), on a
// committed PyTorch trace: what `oversub-trace plot --budget` draws must be the replay
// itself, so it may never show more resident memory than the budget, its live bytes
// are the trace's, and recording it changes nothing in the result.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "policy/events.h"
#include "tracer/reader.h"
#include "tracer/replay/compare.h"
#include "tracer/replay/device_profile.h"
#include "tracer/replay/replay.h"
#include "tracer/replay/workload.h"

namespace oversub::replay {
namespace {

Workload torch_workload(const std::string& name)
{
  const char* root = std::getenv("OVERSUB_SOURCE_ROOT");
  const std::string path = std::string(root ? root : ".") + "/tests/data/traces/torch/" + name;
  trace::Trace trace;
  const std::optional<trace::ParseError> parse = trace::read_trace(path, &trace);
  EXPECT_FALSE(parse.has_value()) << parse->to_string();
  Workload w;
  const std::optional<trace::ParseError> error = build_workload(trace, name, default_extra_steps, &w);
  EXPECT_FALSE(error.has_value()) << error->to_string();
  return w;
}

void expect_same(const ReplayResult& a, const ReplayResult& b)
{
  EXPECT_EQ(a.ran, b.ran);
  EXPECT_EQ(a.step_ns, b.step_ns);
  EXPECT_EQ(a.bytes_h2d, b.bytes_h2d);
  EXPECT_EQ(a.bytes_d2h, b.bytes_d2h);
  EXPECT_EQ(a.host_stall_ns, b.host_stall_ns);
  EXPECT_EQ(a.stream_stall_ns, b.stream_stall_ns);
  EXPECT_EQ(a.evictions, b.evictions);
  EXPECT_EQ(a.prefetches, b.prefetches);
  EXPECT_EQ(a.peak_device_bytes_all, b.peak_device_bytes_all);
}

class ReplayTimelineTest : public ::testing::TestWithParam<PolicyKind> {};

TEST_P(ReplayTimelineTest, ResidentStaysWithinTheBudgetAndLiveBytesAreTheTraces)
{
  const Workload w = torch_workload("unet3d-b2-64.trace.gz");
  const DeviceProfile& device = *find_device_profile("h100-sxm");
  ReplayOptions options;
  options.device = &device;
  options.policy = GetParam();
  options.budget_bytes = budget_bytes_of(*parse_budget("50%"), w);
  const ReplayResult plain = run_replay(w, options);
  ReplayTimeline timeline;
  options.timeline = &timeline;
  const ReplayResult recorded = run_replay(w, options);
  ASSERT_TRUE(recorded.ran) << recorded.failure;
  expect_same(plain, recorded);

  const size_t end = w.step_starts[w.measured_step + 1];
  ASSERT_EQ(timeline.points.size(), end);  // one point after each item
  EXPECT_EQ(timeline.measured_from, w.step_starts[w.measured_step]);
  EXPECT_EQ(timeline.budget_bytes, budget_chunks(options.budget_bytes) * policy::chunk_bytes);
  uint64_t peak_live = 0, step_peak_live = 0, peak_device = 0;
  for (size_t i = 0; i < timeline.points.size(); ++i) {
    const TimelinePoint& p = timeline.points[i];
    ASSERT_LE(p.device_bytes, timeline.budget_bytes) << "item " << i;
    if (i > 0) {
      ASSERT_GE(p.host_ns, timeline.points[i - 1].host_ns) << "item " << i;
      ASSERT_GE(p.evictions, timeline.points[i - 1].evictions) << "item " << i;
      ASSERT_GE(p.prefetches, timeline.points[i - 1].prefetches) << "item " << i;
    }
    peak_live = std::max(peak_live, p.live_bytes);
    peak_device = std::max(peak_device, p.device_bytes);
    if (i >= timeline.measured_from) step_peak_live = std::max(step_peak_live, p.live_bytes);
  }
  EXPECT_EQ(peak_live, w.peak_live_bytes);
  EXPECT_EQ(step_peak_live, w.step_peak_live_bytes);
  EXPECT_EQ(peak_device, recorded.peak_device_bytes_all);
  // Half the footprint: the policy had to move chunks both ways, and the timeline saw it.
  EXPECT_GT(timeline.points.back().evictions, 0u);
  EXPECT_GT(timeline.points.back().prefetches, 0u);
  EXPECT_GE(timeline.points.back().evictions, recorded.evictions);  // the result counts the measured step only
}

INSTANTIATE_TEST_SUITE_P(Policies, ReplayTimelineTest,
                         ::testing::Values(PolicyKind::lru, PolicyKind::lookahead, PolicyKind::lookahead_prefetch),
                         [](const ::testing::TestParamInfo<PolicyKind>& param) {
                           std::string name(policy_name(param.param));
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace oversub::replay
