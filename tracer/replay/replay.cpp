// The host's walk through the workload: see replay.h and Note [Replay time] in
// simulator.h.
#include "tracer/replay/replay.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "policy/events.h"
#include "tracer/replay/chunks.h"
#include "tracer/replay/cost_model.h"
#include "tracer/replay/simulator.h"

namespace oversub::replay {

uint64_t budget_chunks(uint64_t budget_bytes) { return budget_bytes / policy::chunk_bytes; }

ReplayResult run_replay(const Workload& workload, const ReplayOptions& options)
{
  const DeviceProfile& device = *options.device;
  Simulator sim(device);
  const bool unlimited = options.policy == PolicyKind::unlimited;
  ChunkEngine engine(&sim, workload,
                     unlimited ? std::numeric_limits<uint64_t>::max() / 2 : budget_chunks(options.budget_bytes));
  const std::unique_ptr<ReplayPolicy> policy = make_replay_policy(options.policy, workload, &engine, sim, options.params);

  ReplayResult result;
  const size_t begin = workload.step_starts[workload.measured_step];
  const size_t end = workload.step_starts[workload.measured_step + 1];
  int64_t start_ns = 0;
  ChunkStats start_stats;
  int64_t start_stream_stall_ns = 0;
  uint64_t tick = 0;
  std::vector<ChunkEngine::Touch> touches;
  std::vector<TaskId> deps;
  ReplayTimeline* const timeline = options.timeline;
  uint64_t live_bytes = 0;
  if (timeline) {
    timeline->points.clear();
    timeline->points.reserve(end);
    timeline->budget_bytes = (unlimited ? workload.footprint_chunks : engine.budget_chunks()) * policy::chunk_bytes;
    timeline->measured_from = begin;
  }
  for (size_t i = 0; i < end; ++i) {
    if (timeline && i > 0) {  // the point of item i - 1, now that it is done
      const ChunkStats& now = engine.stats();
      timeline->points.push_back(
          {sim.now(), live_bytes, engine.used_chunks() * policy::chunk_bytes, now.evictions, now.prefetches});
    }
    if (i == begin) {
      start_ns = sim.now();
      start_stats = engine.stats();
      start_stream_stall_ns = sim.stream_stall_ns();
      engine.mark_peak();
    }
    const Item& item = workload.items[i];
    switch (item.kind) {
      case ItemKind::alloc:
        live_bytes += workload.allocs[item.index].bytes;
        engine.on_alloc(item.index);
        policy->on_alloc(item.index);
        break;
      case ItemKind::free:
        live_bytes -= workload.allocs[item.index].bytes;
        engine.on_free(item.index);
        policy->on_free(item.index);
        break;
      case ItemKind::sync: {
        const Sync& sync = workload.syncs[item.index];
        policy->on_sync(sync);
        // An event's stream is not in the trace: an event sync waits for everything.
        if (sync.kind == trace::SyncKind::stream) {
          sim.wait_stream(sync.handle);
        } else {
          sim.wait_all();
        }
        break;
      }
      case ItemKind::op: {
        const Op& op = workload.ops[item.index];
        ++tick;
        if (i >= begin) ++result.ops;
        sim.host_work(host_issue_ns);
        touches.clear();
        deps.clear();
        engine.chunks_of(op, &touches);
        policy->before_op(item.index, tick);
        if (!engine.prepare(touches, tick, op.stream, policy->victims(), &deps)) {
          result.failure = fmt::format("the op at line {} needs {} chunks of 2 MiB at once; the budget holds {}",
                                       op.line, touches.size(), engine.budget_chunks());
          return result;
        }
        const int64_t duration_ns = op_duration_ns(op, device, workload.half_precision);
        const bool upload = is_link_copy(op) && is_host_to_device(op);
        const TaskId previous = upload ? sim.last_on_stream(op.stream) : no_task;
        const TaskId task = is_link_copy(op) ? sim.copy(is_host_to_device(op) ? CopyWay::h2d : CopyWay::d2h,
                                                        op.copy_bytes, deps, op.stream)
                                             : sim.compute(op.stream, duration_ns, deps);
        engine.used_by(touches, task, op.stream);
        policy->after_op(item.index, tick, duration_ns);
        // After the op's own headroom, which the shim keeps before submitting it.
        if (upload) engine.issued_upload(task, previous);
        if (const std::optional<bool> learned = policy->learned(); learned && i >= begin) {
          result.learned_ops = result.learned_ops.value_or(0) + (*learned ? 1 : 0);
        }
        break;
      }
    }
  }
  const Item& last = workload.items[end - 1];
  if (last.kind != ItemKind::sync || workload.syncs[last.index].kind != trace::SyncKind::device) sim.wait_all();
  if (timeline) {
    const ChunkStats& now = engine.stats();
    timeline->points.push_back(
        {sim.now(), live_bytes, engine.used_chunks() * policy::chunk_bytes, now.evictions, now.prefetches});
  }

  const ChunkStats& stats = engine.stats();
  result.early_eviction = policy->early_eviction();
  result.ran = true;
  result.step_ns = sim.now() - start_ns;
  result.bytes_h2d = stats.bytes_h2d - start_stats.bytes_h2d;
  result.bytes_d2h = stats.bytes_d2h - start_stats.bytes_d2h;
  result.host_stall_ns = stats.host_stall_ns - start_stats.host_stall_ns;
  result.stream_stall_ns = sim.stream_stall_ns() - start_stream_stall_ns;
  result.evictions = stats.evictions - start_stats.evictions;
  result.evictions_cancelled = stats.evictions_cancelled - start_stats.evictions_cancelled;
  result.prefetches = stats.prefetches - start_stats.prefetches;
  result.prefetches_ahead = stats.prefetches_ahead - start_stats.prefetches_ahead;
  result.uploads_yielded_to = stats.uploads_yielded_to - start_stats.uploads_yielded_to;
  result.peak_device_bytes = engine.peak_since_mark_chunks() * policy::chunk_bytes;
  result.peak_device_bytes_all = engine.peak_chunks() * policy::chunk_bytes;
  return result;
}

LowerBound lower_bound(const Workload& workload, const DeviceProfile& device, uint64_t budget_bytes,
                       int64_t unlimited_step_ns)
{
  LowerBound bound;
  bound.compute_ns = unlimited_step_ns;
  const uint64_t budget = budget_chunks(budget_bytes) * policy::chunk_bytes;
  bound.bytes_each_way = workload.step_peak_live_bytes > budget ? workload.step_peak_live_bytes - budget : 0;
  const double one_way = device.link_bytes_per_s * device.link_efficiency;
  bound.link_ns = std::llround(static_cast<double>(bound.bytes_each_way) / one_way * 1e9);
  bound.bound_ns = std::max(bound.compute_ns, bound.link_ns);
  return bound;
}

}  // namespace oversub::replay
