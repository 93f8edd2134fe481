// The committed PyTorch traces (tests/data/traces/torch, made by scripts/trace_from_torch.py)
// as the iteration detector sees them: after the first step, every step issues the same ops,
// and the detector learns the whole step from the trace alone and tracks the last one.
//
// Signatures here hash each op's kind, name and its ranges' sizes and access modes. The
// shim hashes allocation sizes and chunk spans instead (Note [Op signature]); in these
// traces both repeat exactly when the step does, so the detector's task is the same.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "policy/iteration.h"
#include "policy/signature.h"
#include "tracer/reader.h"

namespace oversub {
namespace {

std::vector<std::string> torch_traces()
{
  const char* root = std::getenv("OVERSUB_SOURCE_ROOT");
  const std::filesystem::path dir = std::filesystem::path(root ? root : ".") / "tests/data/traces/torch";
  std::vector<std::string> paths;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    if (entry.path().string().ends_with(".trace.gz")) paths.push_back(entry.path().string());
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

policy::OpSignature signature(const trace::OpEvent& op)
{
  uint64_t h = policy::mix_hash(static_cast<uint64_t>(op.kind), op.name);
  for (const trace::Range& range : op.ranges) {
    h = policy::mix_hash(h, range.bytes);
    h = policy::mix_hash(h, static_cast<uint64_t>(range.access));
  }
  return h;
}

// Each step's op signatures, split at the device syncs that end the steps.
std::vector<std::vector<policy::OpSignature>> steps_of(const trace::Trace& trace)
{
  std::vector<std::vector<policy::OpSignature>> steps(1);
  for (const trace::Event& event : trace.events) {
    if (const auto* op = std::get_if<trace::OpEvent>(&event.body)) {
      steps.back().push_back(signature(*op));
    } else if (const auto* sync = std::get_if<trace::SyncEvent>(&event.body);
               sync != nullptr && sync->kind == trace::SyncKind::device) {
      steps.emplace_back();
    }
  }
  steps.pop_back();  // after the last sync: only the final frees, no ops
  return steps;
}

TEST(PolicyTorchTraces, TheTracesAreThere)
{
  // Six models, several sizes of two of them (tests/data/traces/torch/make-traces.sh).
  EXPECT_GE(torch_traces().size(), 6u);
}

TEST(PolicyTorchTraces, StepsAfterTheFirstRepeatExactly)
{
  for (const std::string& path : torch_traces()) {
    SCOPED_TRACE(path);
    trace::Trace trace;
    const std::optional<trace::ParseError> error = trace::read_trace(path, &trace);
    ASSERT_FALSE(error.has_value()) << error->to_string();
    const auto steps = steps_of(trace);
    const std::string* declared = trace.metadata_value("steps");
    ASSERT_NE(declared, nullptr);
    EXPECT_EQ(std::to_string(steps.size()), *declared);
    ASSERT_GE(steps.size(), 3u) << "a first step and two that repeat";
    EXPECT_NE(steps[0], steps[1]) << "the first step creates gradients and optimizer state; later ones reuse them";
    for (size_t i = 2; i < steps.size(); ++i) EXPECT_EQ(steps[i], steps[1]) << "step " << i + 1;
  }
}

// Feeds every step but the last, then checks that the detector locks on the whole step
// within the last step's first two windows and tracks the rest of it.
void expect_whole_step_learned(const policy::IterationParams& params)
{
  for (const std::string& path : torch_traces()) {
    SCOPED_TRACE(path);
    trace::Trace trace;
    ASSERT_FALSE(trace::read_trace(path, &trace).has_value());
    const auto steps = steps_of(trace);
    ASSERT_GE(steps.size(), 2u);
    const size_t period = steps.back().size();
    policy::IterationDetector detector(params);
    uint64_t first_op_of_last_step = 0;
    for (size_t s = 0; s + 1 < steps.size(); ++s) {
      for (policy::OpSignature op : steps[s]) detector.observe(op);
      first_op_of_last_step += steps[s].size();
    }
    size_t matched = 0;
    std::optional<uint64_t> locked_at;
    for (policy::OpSignature op : steps.back()) {
      const policy::OpPosition position = detector.observe(op);
      if (position.state == policy::IterationState::locked && position.period_ops == period) {
        if (!locked_at) locked_at = position.op_index;
        matched += position.matched ? 1 : 0;
      }
    }
    EXPECT_TRUE(locked_at.has_value()) << "never locked on the " << period << "-op step";
    if (!locked_at) continue;
    EXPECT_LE(*locked_at - first_op_of_last_step, 2 * params.window_ops);
    EXPECT_GE(matched, period - 2 * params.window_ops);
  }
}

// The traces carry a learnable step: with the factor bound of Note [Choosing the period]
// lifted, the detector confirms the whole step as soon as it has repeated once plus a
// window. (So a trace needs a first step and two more before one can be tracked: the
// script records four.)
TEST(PolicyTorchTraces, TheWholeStepIsLearnedWhenLongPeriodsMayConfirm)
{
  policy::IterationParams params;
  params.max_cycle_factor = params.max_period_ops;
  expect_whole_step_learned(params);
}

// With the default parameters: the short templates of repeated blocks (ResNet
// bottlenecks lock at 9 to 27 ops) explain only their part of the step, so they do not
// bound the period, and the whole step is learned (Note [Choosing the period]).
TEST(PolicyTorchTraces, TheWholeStepIsLearnedWithDefaultParams)
{
  expect_whole_step_learned(policy::IterationParams{});
}

}  // namespace
}  // namespace oversub
