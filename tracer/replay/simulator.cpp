// The event loop: Note [Replay time] in simulator.h.
//
// Note [Two-way copies]
// ~~~~~~~~~~~~~~~~~~~~~
// A copy's bytes flow at the one-way rate (link_bytes_per_s * link_efficiency) while
// the other engine is idle, and at two_way_efficiency of it while the other engine
// has a copy in flight too. Whenever an engine starts or finishes a copy, the copy in
// flight on each engine is brought up to date (bytes still to go, at the rate it had)
// and its end is rescheduled at the new rate; the stale end event is recognised by
// its version and dropped. The fixed latency of a copy is not stretched: it is the
// DMA setup, not bytes on the link.
#include "tracer/replay/simulator.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace oversub::replay {

Simulator::Simulator(const DeviceProfile& device)
  : device_(device), one_way_bytes_per_ns_(device.link_bytes_per_s * device.link_efficiency / 1e9)
{
}

void Simulator::host_work(int64_t ns)
{
  host_ns_ += ns;
  advance_to(host_ns_);
}

TaskId Simulator::add(Task task, std::span<const TaskId> deps)
{
  const auto id = static_cast<TaskId>(tasks_.size());
  task.issued_ns = host_ns_;
  const auto depend = [&](TaskId d) {
    if (d == no_task || done(d)) return;
    ++task.pending;
    task.deps.push_back(d);
    tasks_[d].dependents.push_back(id);
  };
  for (TaskId d : deps) depend(d);
  if (task.on_stream) {
    auto [it, fresh] = stream_last_.try_emplace(task.stream, no_task);
    depend(it->second);
    it->second = id;
  }
  const bool is_copy = task.is_copy;
  const CopyWay way = task.way;
  const bool now_ready = task.pending == 0;
  tasks_.push_back(std::move(task));
  if (is_copy) {
    Engine& engine = engines_[static_cast<int>(way)];
    engine.queue.push_back(id);
    engine.last = id;
  }
  if (now_ready) ready(id, host_ns_);
  return id;
}

TaskId Simulator::compute(uint64_t stream, int64_t duration_ns, std::span<const TaskId> deps)
{
  Task task;
  task.on_stream = true;
  task.stream = stream;
  task.duration_ns = std::max<int64_t>(0, duration_ns);
  return add(std::move(task), deps);
}

TaskId Simulator::copy(CopyWay way, uint64_t bytes, std::span<const TaskId> deps, std::optional<uint64_t> stream)
{
  Task task;
  task.is_copy = true;
  task.way = way;
  task.bytes = bytes;
  task.on_stream = stream.has_value();
  task.stream = stream.value_or(0);
  return add(std::move(task), deps);
}

void Simulator::ready(TaskId id, int64_t at)
{
  if (tasks_[id].is_copy) {
    try_start_copy(tasks_[id].way, at);
  } else {
    start_compute(id, at);
  }
}

void Simulator::start_compute(TaskId id, int64_t at)
{
  Task& task = tasks_[id];
  task.start_ns = at;
  // Note [Stall times] in replay.h: when it would have started without the residency
  // engine's copies.
  int64_t without_copies = task.issued_ns;
  for (TaskId d : task.deps) {
    const Task& dep = tasks_[d];
    if (!(dep.is_copy && !dep.on_stream)) without_copies = std::max(without_copies, dep.end_ns);
  }
  stream_stall_ns_ += std::max<int64_t>(0, at - without_copies);
  schedule(at + task.duration_ns, id, 0);
}

void Simulator::try_start_copy(CopyWay way, int64_t at)
{
  Engine& engine = engines_[static_cast<int>(way)];
  if (engine.running != no_task || engine.queue.empty()) return;
  const TaskId head = engine.queue.front();
  if (tasks_[head].pending > 0) return;
  engine.queue.pop_front();
  engine.running = head;
  tasks_[head].start_ns = at;
  engine.bytes_left = static_cast<double>(tasks_[head].bytes);
  engine.flow_from = at + device_.copy_latency_ns;
  engine.rate = 0;
  reshare(at);
}

void Simulator::reshare(int64_t at)
{
  const bool both = engines_[0].running != no_task && engines_[1].running != no_task;
  const double rate = one_way_bytes_per_ns_ * (both ? device_.two_way_efficiency : 1.0);
  for (int way = 0; way < 2; ++way) {
    Engine& engine = engines_[way];
    if (engine.running == no_task) continue;
    if (at > engine.flow_from) {
      engine.bytes_left = std::max(0.0, engine.bytes_left - static_cast<double>(at - engine.flow_from) * engine.rate);
      engine.flow_from = at;
    }
    if (engine.rate == rate) continue;  // its end event still holds
    engine.rate = rate;
    schedule_copy_end(static_cast<CopyWay>(way), at);
  }
}

void Simulator::schedule_copy_end(CopyWay way, int64_t at)
{
  Engine& engine = engines_[static_cast<int>(way)];
  ++engine.version;
  const int64_t end = std::max(at, engine.flow_from) + std::llround(engine.bytes_left / engine.rate);
  schedule(end, engine.running, engine.version);
}

void Simulator::schedule(int64_t time, TaskId id, uint32_t version)
{
  events_.push(Pending{time, order_++, id, version});
}

void Simulator::finish(TaskId id, int64_t at)
{
  Task& task = tasks_[id];
  task.end_ns = at;
  if (task.is_copy) {
    Engine& engine = engines_[static_cast<int>(task.way)];
    engine.running = no_task;
    engine.bytes_left = 0;
    reshare(at);
    try_start_copy(task.way, at);
  }
  // Copy: dependents may be compute tasks or copies on either engine.
  const std::vector<TaskId> dependents = std::move(tasks_[id].dependents);
  for (TaskId d : dependents) {
    if (--tasks_[d].pending == 0) ready(d, at);
  }
}

bool Simulator::step()
{
  while (!events_.empty()) {
    const Pending event = events_.top();
    events_.pop();
    const Task& task = tasks_[event.task];
    if (task.end_ns >= 0) continue;
    if (task.is_copy) {
      const Engine& engine = engines_[static_cast<int>(task.way)];
      if (engine.running != event.task || engine.version != event.version) continue;  // rescheduled
    }
    finish(event.task, event.time_ns);
    return true;
  }
  return false;
}

void Simulator::advance_to(int64_t t)
{
  while (!events_.empty() && events_.top().time_ns <= t) step();
}

int64_t Simulator::wait_until_done(TaskId task)
{
  const int64_t before = host_ns_;
  while (!done(task)) {
    if (!step()) std::abort();  // cannot happen: a task only waits on tasks issued before it
  }
  host_ns_ = std::max(host_ns_, end_ns(task));
  advance_to(host_ns_);
  return host_ns_ - before;
}

int64_t Simulator::wait(TaskId task) { return task == no_task ? 0 : wait_until_done(task); }

int64_t Simulator::wait_stream(uint64_t stream)
{
  const auto it = stream_last_.find(stream);
  return it == stream_last_.end() ? 0 : wait(it->second);
}

int64_t Simulator::wait_all()
{
  const int64_t before = host_ns_;
  for (const auto& [stream, last] : stream_last_) wait(last);
  for (const Engine& engine : engines_) wait(engine.last);
  // Waiting on one may not have waited on a later one issued before: all are issued.
  for (const auto& [stream, last] : stream_last_) wait(last);
  return host_ns_ - before;
}

}  // namespace oversub::replay
