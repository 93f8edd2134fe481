// The discrete-event core of `oversub-trace replay`: compute streams, one copy engine
// per direction, tasks with dependencies, and a host thread that issues them and
// sometimes waits.
//
// Note [Replay time]
// ~~~~~~~~~~~~~~~~~~
// Two clocks. The host's (`now()`) moves when the host works (issuing an op costs
// `host_issue_ns`) or waits (a sync, or the residency engine waiting for a copy). The
// device's moves from event to event: a task ends, the next one starts. Before the
// host acts at time t, every device event up to t has happened (advance_to), so the
// host sees the device exactly as it is at t: which copies are done, which are not.
// That is what makes the replay's decisions the ones the live engine would take.
//
// Tasks:
//  - a compute task runs on a stream: it starts when the stream's previous task and
//    its other dependencies are done, and takes its fixed duration. Streams do not
//    slow each other down (the traces we replay use one stream; a model of SM sharing
//    would be guesswork).
//  - a copy task runs on the copy engine of its direction, in FIFO order (one
//    engine each way, as the shim uses one stream each way): it starts when it is at
//    the head, the engine is free and its dependencies are done. It takes
//    `copy_latency_ns`, then its bytes flow at link_bytes_per_s * link_efficiency;
//    while the other direction also has a copy in flight both flow at
//    `two_way_efficiency` of that rate (Note [Two-way copies] in simulator.cpp).
//    A copy may also belong to a stream (the program's own cudaMemcpyAsync): it then
//    also waits for, and is waited on by, that stream's tasks.
//
// Every operation is O(log n) in the number of pending events, and O(1) per
// dependency.
#pragma once

#include <cstdint>
#include <deque>
#include <limits>
#include <optional>
#include <queue>
#include <span>
#include <unordered_map>
#include <vector>

#include "tracer/replay/device_profile.h"

namespace oversub::replay {

using TaskId = uint32_t;
inline constexpr TaskId no_task = std::numeric_limits<TaskId>::max();

enum class CopyWay : uint8_t { h2d, d2h };

class Simulator {
public:
  explicit Simulator(const DeviceProfile& device);

  int64_t now() const { return host_ns_; }
  // The host works for `ns` (device events in that span happen).
  void host_work(int64_t ns);

  // A compute task on `stream`, issued now, after `deps` (finished or not).
  TaskId compute(uint64_t stream, int64_t duration_ns, std::span<const TaskId> deps);
  // A copy on the engine of `way`, issued now. `stream`: the program's stream it
  // belongs to, or nullopt for the residency engine's own copies.
  TaskId copy(CopyWay way, uint64_t bytes, std::span<const TaskId> deps, std::optional<uint64_t> stream);

  bool done(TaskId task) const { return task == no_task || tasks_[task].end_ns >= 0; }
  // The last task issued on the program's `stream`, or no_task.
  TaskId last_on_stream(uint64_t stream) const
  {
    const auto it = stream_last_.find(stream);
    return it == stream_last_.end() ? no_task : it->second;
  }
  // Whether every task it waits for is done: a copy then flows, or waits only for its
  // engine (the shim asks the same of an event recorded just before it).
  bool may_start(TaskId task) const { return task == no_task || tasks_[task].pending == 0; }
  int64_t end_ns(TaskId task) const { return tasks_[task].end_ns; }
  // The host waits for the task; returns how long it waited.
  int64_t wait(TaskId task);
  int64_t wait_stream(uint64_t stream);
  int64_t wait_all();  // every stream and both copy engines

  // Time compute tasks spent ready but for a copy they waited on (Note [Stall times]
  // in replay.h), summed over tasks that have started.
  int64_t stream_stall_ns() const { return stream_stall_ns_; }
  size_t task_count() const { return tasks_.size(); }

private:
  struct Task {
    bool is_copy = false;
    CopyWay way = CopyWay::h2d;
    bool on_stream = false;
    uint64_t stream = 0;
    int64_t duration_ns = 0;  // compute
    uint64_t bytes = 0;       // copy
    int64_t issued_ns = 0;
    int64_t start_ns = -1;
    int64_t end_ns = -1;
    uint32_t pending = 0;  // dependencies not done
    std::vector<TaskId> deps;
    std::vector<TaskId> dependents;
  };
  struct Engine {
    std::deque<TaskId> queue;  // waiting, FIFO
    TaskId running = no_task;
    double bytes_left = 0;
    double rate = 0;        // bytes per ns now
    int64_t flow_from = 0;  // when bytes started flowing at `rate` (after the latency)
    uint32_t version = 0;   // bumps when its completion is rescheduled
    TaskId last = no_task;  // the last task given to it
  };
  struct Pending {
    int64_t time_ns;
    uint64_t order;  // FIFO among equal times: determinism
    TaskId task;
    uint32_t version;
    bool operator>(const Pending& o) const { return time_ns != o.time_ns ? time_ns > o.time_ns : order > o.order; }
  };

  TaskId add(Task task, std::span<const TaskId> deps);
  void ready(TaskId id, int64_t at);
  void start_compute(TaskId id, int64_t at);
  void try_start_copy(CopyWay way, int64_t at);
  void finish(TaskId id, int64_t at);
  void reshare(int64_t at);  // Note [Two-way copies]
  void schedule_copy_end(CopyWay way, int64_t at);
  void schedule(int64_t time, TaskId id, uint32_t version);
  bool step();  // processes the next event; false when none is left
  void advance_to(int64_t t);
  int64_t wait_until_done(TaskId task);

  const DeviceProfile& device_;
  double one_way_bytes_per_ns_;
  int64_t host_ns_ = 0;
  std::vector<Task> tasks_;
  Engine engines_[2];
  std::unordered_map<uint64_t, TaskId> stream_last_;
  std::priority_queue<Pending, std::vector<Pending>, std::greater<>> events_;
  uint64_t order_ = 0;
  int64_t stream_stall_ns_ = 0;
};

}  // namespace oversub::replay
