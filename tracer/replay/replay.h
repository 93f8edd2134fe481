// `oversub-trace replay`: a trace's steps under a device-memory budget, on a device
// profile, with one policy; and the physical lower bound every policy is judged by.
//
// Note [Replay results]
// ~~~~~~~~~~~~~~~~~~~~~
// Everything is measured over the measured step (Note [Replay steps] in workload.h):
// from the moment the host returns from the previous step's closing sync to the
// moment it returns from this step's (or, for a trace without syncs, until the device
// is idle). `bytes_h2d` and `bytes_d2h` are the policy's own copies issued in that
// span (the program's copies, such as a batch upload, are in every policy's time but
// in no policy's bytes). `peak_device_bytes` is the most chunks holding device memory
// at once in it, times 2 MiB.
//
// Note [Stall times]
// ~~~~~~~~~~~~~~~~~~
//  - host stall: time the host thread waited for the residency engine (an eviction
//    copy it needed done before it could hand out memory). The program's own syncs
//    are not stalls.
//  - stream stall: summed over the step's compute tasks, how much later each started
//    than it would have without the policy's copies (its stream, the host and the
//    program's order were ready; a copy bringing back its data, or a cancelled
//    eviction still reading it, was not).
//
// Note [Lower bound]
// ~~~~~~~~~~~~~~~~~~
// No policy can beat max(compute, moved each way): compute is the measured step with
// unlimited memory (the same cost model, the same host, no copies of ours), and at
// the step's peak, peak live bytes less the budget are not on the device, so in a
// steady state at least that much leaves the device and comes back each step, each
// way at the link's one-way rate (link bandwidth times link efficiency, without the
// two-way penalty: a bound, not an estimate).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tracer/replay/device_profile.h"
#include "tracer/replay/policies.h"
#include "tracer/replay/workload.h"

namespace oversub::replay {

// What the host spends issuing one op (PyTorch eager: dispatch and launch).
inline constexpr int64_t host_issue_ns = 5000;

// Note [Replay timeline]
// ~~~~~~~~~~~~~~~~~~~~~~
// What `oversub-trace plot --budget` draws: one point after each item of the workload
// (allocation, free, op, sync), over the whole replay (the traced steps and the
// appended copies), on the host's clock. Recording it only reads the engine's state:
// a replay with a timeline gives the same result as one without.
struct TimelinePoint {
  int64_t host_ns = 0;         // the host's clock after the item
  uint64_t live_bytes = 0;     // device allocations live (their own sizes, not chunks)
  uint64_t device_bytes = 0;   // chunks holding device memory (device or evicting) x 2 MiB
  uint64_t evictions = 0;      // evictions started so far
  uint64_t prefetches = 0;     // chunks brought back so far (on demand and ahead)
};
struct ReplayTimeline {
  uint64_t budget_bytes = 0;   // in whole chunks; for unlimited, the footprint's chunks
  size_t measured_from = 0;    // the first point of the measured step
  std::vector<TimelinePoint> points;
};

struct ReplayOptions {
  const DeviceProfile* device = nullptr;
  uint64_t budget_bytes = 0;  // rounded down to whole chunks
  PolicyKind policy = PolicyKind::lookahead;
  PolicyParams params;
  ReplayTimeline* timeline = nullptr;  // filled when not null (Note [Replay timeline])
};

struct ReplayResult {
  bool ran = false;     // false: an op needs more chunks than the budget holds
  std::string failure;  // why not, naming the op's line
  int64_t step_ns = 0;
  uint64_t bytes_h2d = 0;
  uint64_t bytes_d2h = 0;
  int64_t host_stall_ns = 0;
  int64_t stream_stall_ns = 0;
  uint64_t peak_device_bytes = 0;  // over the measured step
  uint64_t peak_device_bytes_all = 0;  // over the whole replay
  uint64_t evictions = 0;
  uint64_t evictions_cancelled = 0;
  uint64_t prefetches = 0;
  uint64_t prefetches_ahead = 0;
  // Program uploads that the engine's background evictions waited for (Note [Background
  // evictions yield to uploads] in shim/engine/residency.cpp).
  uint64_t uploads_yielded_to = 0;
  uint64_t ops = 0;  // in the measured step
  // lookahead: how many of those ops ran with the step learned (the planner ready).
  std::optional<uint64_t> learned_ops;
  // lookahead: its choice of early eviction at the end of the step (Note [Early or on
  // demand] in policy/lookahead.h), for the report: "on", "off" or "not needed".
  std::optional<std::string> early_eviction;
};

ReplayResult run_replay(const Workload& workload, const ReplayOptions& options);

struct LowerBound {
  int64_t compute_ns = 0;
  uint64_t bytes_each_way = 0;
  int64_t link_ns = 0;  // bytes_each_way at the one-way rate
  int64_t bound_ns = 0;
};
LowerBound lower_bound(const Workload& workload, const DeviceProfile& device, uint64_t budget_bytes,
                       int64_t unlimited_step_ns);

// The budget in whole chunks, as the engine holds it.
uint64_t budget_chunks(uint64_t budget_bytes);

}  // namespace oversub::replay
