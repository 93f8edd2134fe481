// Simulated driver: streams, events and host callbacks.
//
// Note [Simulated streams]
// Every stream has a worker thread that runs its queued work in order. A task
// may carry dependencies (stream, seq): it starts only once that stream has
// completed its task number `seq`. Events are such (stream, seq) pairs, and
// cuStreamWaitEvent queues an empty task that depends on one.
// The legacy default stream follows CUDA's rules: work on it waits for all
// prior work on blocking streams, and work on a blocking stream waits for all
// prior work on the legacy stream. Non-blocking streams are independent.
// With SIMCUDA_JITTER=1 every task sleeps a random time before it runs, so a
// program that is missing synchronisation reads stale data or faults instead
// of passing by luck.
#include <pthread.h>
#include <time.h>

#include <cstdio>

#include <algorithm>
#include <chrono>
#include <unordered_map>

#include "../common/settings.h"
#include "driver.h"

namespace simcuda::driver {
namespace {

struct Event {
  unsigned flags = 0;
  std::mutex mutex;
  Dep recorded;                                    // stream == nullptr: never recorded
  std::shared_ptr<std::atomic<std::int64_t>> time_ns;  // set when the stream reaches the record
};

struct Registry {
  std::mutex mutex;  // also orders enqueues, so legacy-stream snapshots are consistent
  std::shared_ptr<Stream> legacy;
  std::unordered_map<Stream*, std::shared_ptr<Stream>> streams;  // live, created streams (incl. per-thread)
  std::vector<std::shared_ptr<Stream>> all;                      // every worker, joined at exit
  std::unordered_map<Event*, std::shared_ptr<Event>> events;
  std::uint64_t next_id = 1;
};

// Set at exit: workers drop queued work and waiters stop waiting.
std::atomic<bool> g_shutting_down{false};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: see shutdown_streams
  return *r;
}

std::int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void wait_until(const Dep& dep) {
  Stream& s = *dep.stream;
  std::unique_lock lock(s.mutex);
  s.changed.wait(lock, [&] { return s.completed >= dep.seq || g_shutting_down.load(); });
}

void run_worker(Stream* s) {
  const Settings& cfg = settings();
  for (;;) {
    Stream::Task task;
    {
      std::unique_lock lock(s->mutex);
      s->changed.wait(lock, [&] { return !s->queue.empty() || s->closing; });
      if (s->closing && (s->queue.empty() || g_shutting_down.load())) {
        s->exited = true;
        return;
      }
      task = std::move(s->queue.front());
      s->queue.pop_front();
    }
    for (const Dep& d : task.deps) wait_until(d);
    if (cfg.jitter) {
      std::uint64_t us = s->rng() % (cfg.jitter_max_us + 1);
      std::this_thread::sleep_for(std::chrono::microseconds(us));
    }
    if (task.run) task.run();
    {
      std::lock_guard lock(s->mutex);
      ++s->completed;
    }
    s->changed.notify_all();
  }
}

std::shared_ptr<Stream> make_stream(unsigned flags, int priority, bool legacy) {
  auto s = std::make_shared<Stream>();
  s->flags = flags;
  s->priority = priority;
  s->legacy = legacy;
  Registry& r = registry();
  s->id = r.next_id++;
  s->rng.seed(settings().seed * 0x9E3779B97F4A7C15ull + s->id);
  s->worker = std::thread(run_worker, s.get());
  // Named after the stream, so that a fault's report says whose work it was.
  char name[16];
  std::snprintf(name, sizeof name, "simcuda-s%llu", static_cast<unsigned long long>(s->id));
  pthread_setname_np(s->worker.native_handle(), name);
  // Reap workers of destroyed streams that have drained their queues.
  std::erase_if(r.all, [](const std::shared_ptr<Stream>& old) {
    if (!old->exited.load()) return false;
    old->worker.join();
    return true;
  });
  r.all.push_back(s);
  return s;
}

std::shared_ptr<Stream> legacy_stream() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  if (!r.legacy) r.legacy = make_stream(0, 0, true);
  return r.legacy;
}

// The per-thread default stream: a blocking stream owned by its thread.
struct PerThreadStream {
  std::shared_ptr<Stream> stream;
  ~PerThreadStream() {
    if (!stream || forked_child()) return;
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    r.streams.erase(stream.get());
    std::lock_guard slock(stream->mutex);
    stream->closing = true;
    stream->changed.notify_all();
  }
};
thread_local PerThreadStream t_per_thread;

std::shared_ptr<Stream> per_thread_stream() {
  if (!t_per_thread.stream) {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    t_per_thread.stream = make_stream(0, 0, false);
    r.streams[t_per_thread.stream.get()] = t_per_thread.stream;
  }
  return t_per_thread.stream;
}

std::shared_ptr<Event> find_event(CUevent handle) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  auto it = r.events.find(reinterpret_cast<Event*>(handle));
  return it == r.events.end() ? nullptr : it->second;
}

}  // namespace

std::shared_ptr<Stream> resolve_stream(CUstream handle, DefaultStream mode) {
  if (handle == nullptr) return mode == DefaultStream::legacy ? legacy_stream() : per_thread_stream();
  if (handle == CU_STREAM_LEGACY) return legacy_stream();
  if (handle == CU_STREAM_PER_THREAD) return per_thread_stream();
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  auto it = r.streams.find(reinterpret_cast<Stream*>(handle));
  return it == r.streams.end() ? nullptr : it->second;
}

std::uint64_t enqueue(const std::shared_ptr<Stream>& stream, std::function<void()> run, std::vector<Dep> extra) {
  Registry& r = registry();
  std::lock_guard order(r.mutex);
  std::vector<Dep> deps = std::move(extra);
  auto add_if_pending = [&](const std::shared_ptr<Stream>& other) {
    std::lock_guard lock(other->mutex);
    if (other->completed < other->enqueued) deps.push_back(Dep{other, other->enqueued});
  };
  if (stream->legacy) {
    for (auto& [ptr, other] : r.streams)
      if ((other->flags & CU_STREAM_NON_BLOCKING) == 0) add_if_pending(other);
  } else if ((stream->flags & CU_STREAM_NON_BLOCKING) == 0 && r.legacy && r.legacy != stream) {
    add_if_pending(r.legacy);
  }
  std::erase_if(deps, [&](const Dep& d) { return d.stream == stream; });  // FIFO already orders them
  std::uint64_t seq;
  {
    std::lock_guard lock(stream->mutex);
    seq = ++stream->enqueued;
    stream->queue.push_back(Stream::Task{std::move(run), std::move(deps)});
  }
  stream->changed.notify_all();
  return seq;
}

void wait_for(const Dep& dep) {
  if (dep.stream) wait_until(dep);
}

bool is_complete(const Dep& dep) {
  if (!dep.stream) return true;
  std::lock_guard lock(dep.stream->mutex);
  return dep.stream->completed >= dep.seq;
}

void synchronize_device() {
  std::vector<Dep> tails;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    for (auto& s : r.all) {
      std::lock_guard slock(s->mutex);
      if (s->completed < s->enqueued) tails.push_back(Dep{s, s->enqueued});
    }
  }
  for (const Dep& d : tails) wait_until(d);
}

CUresult stream_synchronize(CUstream handle, DefaultStream mode) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  auto s = resolve_stream(handle, mode);
  if (!s) return CUDA_ERROR_INVALID_HANDLE;
  std::uint64_t seq;
  {
    std::lock_guard lock(s->mutex);
    seq = s->enqueued;
  }
  wait_until(Dep{s, seq});
  return CUDA_SUCCESS;
}

void shutdown_streams() {
  Registry& r = registry();
  std::vector<std::shared_ptr<Stream>> all;
  {
    std::lock_guard lock(r.mutex);
    g_shutting_down.store(true);
    all = r.all;
  }
  for (auto& s : all) {
    {
      std::lock_guard lock(s->mutex);
      s->closing = true;
    }
    s->changed.notify_all();
  }
  for (auto& s : all)
    if (s->worker.joinable() && s->worker.get_id() != std::this_thread::get_id()) s->worker.join();
}

}  // namespace simcuda::driver

using namespace simcuda::driver;

namespace {

CUresult stream_create(CUstream* out, unsigned flags, int priority) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (out == nullptr || (flags & ~unsigned{CU_STREAM_NON_BLOCKING}) != 0) return CUDA_ERROR_INVALID_VALUE;
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  auto s = make_stream(flags, std::clamp(priority, -5, 0), false);
  r.streams[s.get()] = s;
  *out = reinterpret_cast<CUstream>(s.get());
  return CUDA_SUCCESS;
}

CUresult stream_query(CUstream handle, DefaultStream mode) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  auto s = resolve_stream(handle, mode);
  if (!s) return CUDA_ERROR_INVALID_HANDLE;
  std::lock_guard lock(s->mutex);
  return s->completed >= s->enqueued ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

CUresult stream_wait_event(CUstream handle, CUevent event, unsigned flags, DefaultStream mode) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  auto s = resolve_stream(handle, mode);
  auto e = find_event(event);
  if (!s || !e) return CUDA_ERROR_INVALID_HANDLE;
  if (flags != 0 && flags != CU_EVENT_WAIT_DEFAULT && flags != CU_EVENT_WAIT_EXTERNAL) return CUDA_ERROR_INVALID_VALUE;
  Dep dep;
  {
    std::lock_guard lock(e->mutex);
    dep = e->recorded;
  }
  if (!dep.stream) return CUDA_SUCCESS;  // never recorded: nothing to wait for
  enqueue(s, nullptr, {dep});
  return CUDA_SUCCESS;
}

CUresult event_record(CUevent event, CUstream handle, DefaultStream mode) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  auto s = resolve_stream(handle, mode);
  auto e = find_event(event);
  if (!s || !e) return CUDA_ERROR_INVALID_HANDLE;
  auto stamp = std::make_shared<std::atomic<std::int64_t>>(0);
  std::lock_guard lock(e->mutex);  // held across enqueue so concurrent records stay ordered
  std::uint64_t seq = enqueue(s, [stamp] { stamp->store(now_ns()); });
  e->recorded = Dep{s, seq};
  e->time_ns = stamp;
  return CUDA_SUCCESS;
}

CUresult host_func(CUstream handle, CUhostFn fn, void* data, DefaultStream mode) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (fn == nullptr) return CUDA_ERROR_INVALID_VALUE;
  auto s = resolve_stream(handle, mode);
  if (!s) return CUDA_ERROR_INVALID_HANDLE;
  enqueue(s, [fn, data] { fn(data); });
  return CUDA_SUCCESS;
}

CUresult add_callback(CUstream handle, CUstreamCallback fn, void* data, unsigned flags, DefaultStream mode) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (fn == nullptr || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  auto s = resolve_stream(handle, mode);
  if (!s) return CUDA_ERROR_INVALID_HANDLE;
  enqueue(s, [fn, data, handle] { fn(handle, CUDA_SUCCESS, data); });
  return CUDA_SUCCESS;
}

CUresult get_flags(CUstream handle, unsigned* flags, DefaultStream mode) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (flags == nullptr) return CUDA_ERROR_INVALID_VALUE;
  auto s = resolve_stream(handle, mode);
  if (!s) return CUDA_ERROR_INVALID_HANDLE;
  *flags = s->flags;
  return CUDA_SUCCESS;
}

CUresult get_priority(CUstream handle, int* priority, DefaultStream mode) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (priority == nullptr) return CUDA_ERROR_INVALID_VALUE;
  auto s = resolve_stream(handle, mode);
  if (!s) return CUDA_ERROR_INVALID_HANDLE;
  *priority = s->priority;
  return CUDA_SUCCESS;
}

CUresult get_id(CUstream handle, unsigned long long* id, DefaultStream mode) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (id == nullptr) return CUDA_ERROR_INVALID_VALUE;
  auto s = resolve_stream(handle, mode);
  if (!s) return CUDA_ERROR_INVALID_HANDLE;
  *id = s->id;
  return CUDA_SUCCESS;
}

// Stream capture is not simulated: no stream is ever capturing.
CUresult is_capturing(CUstream handle, CUstreamCaptureStatus* status, DefaultStream mode) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (status == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (!resolve_stream(handle, mode)) return CUDA_ERROR_INVALID_HANDLE;
  *status = CU_STREAM_CAPTURE_STATUS_NONE;
  return CUDA_SUCCESS;
}

}  // namespace

SIMCU_EXPORT CUresult cuStreamCreate(CUstream* out, unsigned int flags) { return stream_create(out, flags, 0); }
SIMCU_EXPORT CUresult cuStreamCreateWithPriority(CUstream* out, unsigned int flags, int priority) {
  return stream_create(out, flags, priority);
}

// Like the real call, returns at once; queued work still completes.
SIMCU_EXPORT CUresult cuStreamDestroy_v2(CUstream handle) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  Registry& reg = registry();
  std::shared_ptr<Stream> s;
  {
    std::lock_guard lock(reg.mutex);
    auto it = reg.streams.find(reinterpret_cast<Stream*>(handle));
    if (it == reg.streams.end() || it->second == t_per_thread.stream) return CUDA_ERROR_INVALID_HANDLE;
    s = it->second;
    reg.streams.erase(it);
  }
  {
    std::lock_guard lock(s->mutex);
    s->closing = true;
  }
  s->changed.notify_all();
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuStreamSynchronize(CUstream s) { return stream_synchronize(s, DefaultStream::legacy); }
SIMCU_EXPORT CUresult cuStreamSynchronize_ptsz(CUstream s) { return stream_synchronize(s, DefaultStream::per_thread); }
SIMCU_EXPORT CUresult cuStreamQuery(CUstream s) { return stream_query(s, DefaultStream::legacy); }
SIMCU_EXPORT CUresult cuStreamQuery_ptsz(CUstream s) { return stream_query(s, DefaultStream::per_thread); }
SIMCU_EXPORT CUresult cuStreamWaitEvent(CUstream s, CUevent e, unsigned int flags) {
  return stream_wait_event(s, e, flags, DefaultStream::legacy);
}
SIMCU_EXPORT CUresult cuStreamWaitEvent_ptsz(CUstream s, CUevent e, unsigned int flags) {
  return stream_wait_event(s, e, flags, DefaultStream::per_thread);
}
SIMCU_EXPORT CUresult cuLaunchHostFunc(CUstream s, CUhostFn fn, void* data) {
  return host_func(s, fn, data, DefaultStream::legacy);
}
SIMCU_EXPORT CUresult cuLaunchHostFunc_ptsz(CUstream s, CUhostFn fn, void* data) {
  return host_func(s, fn, data, DefaultStream::per_thread);
}
SIMCU_EXPORT CUresult cuStreamAddCallback(CUstream s, CUstreamCallback fn, void* data, unsigned int flags) {
  return add_callback(s, fn, data, flags, DefaultStream::legacy);
}
SIMCU_EXPORT CUresult cuStreamAddCallback_ptsz(CUstream s, CUstreamCallback fn, void* data, unsigned int flags) {
  return add_callback(s, fn, data, flags, DefaultStream::per_thread);
}
SIMCU_EXPORT CUresult cuStreamGetFlags(CUstream s, unsigned int* flags) { return get_flags(s, flags, DefaultStream::legacy); }
SIMCU_EXPORT CUresult cuStreamGetFlags_ptsz(CUstream s, unsigned int* flags) {
  return get_flags(s, flags, DefaultStream::per_thread);
}
SIMCU_EXPORT CUresult cuStreamGetPriority(CUstream s, int* p) { return get_priority(s, p, DefaultStream::legacy); }
SIMCU_EXPORT CUresult cuStreamGetPriority_ptsz(CUstream s, int* p) { return get_priority(s, p, DefaultStream::per_thread); }
SIMCU_EXPORT CUresult cuStreamGetId(CUstream s, unsigned long long* id) { return get_id(s, id, DefaultStream::legacy); }
SIMCU_EXPORT CUresult cuStreamGetId_ptsz(CUstream s, unsigned long long* id) {
  return get_id(s, id, DefaultStream::per_thread);
}
SIMCU_EXPORT CUresult cuStreamIsCapturing(CUstream s, CUstreamCaptureStatus* st) {
  return is_capturing(s, st, DefaultStream::legacy);
}
SIMCU_EXPORT CUresult cuStreamIsCapturing_ptsz(CUstream s, CUstreamCaptureStatus* st) {
  return is_capturing(s, st, DefaultStream::per_thread);
}
SIMCU_EXPORT CUresult cuStreamGetCtx(CUstream s, CUcontext* ctx) {
  if (ctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (!resolve_stream(s, DefaultStream::legacy)) return CUDA_ERROR_INVALID_HANDLE;
  return cuCtxGetCurrent(ctx);
}

// ---- events ----

SIMCU_EXPORT CUresult cuEventCreate(CUevent* out, unsigned int flags) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  constexpr unsigned kKnown = CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS;
  if (out == nullptr || (flags & ~kKnown) != 0) return CUDA_ERROR_INVALID_VALUE;
  auto e = std::make_shared<Event>();
  e->flags = flags;
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  r.events[e.get()] = e;
  *out = reinterpret_cast<CUevent>(e.get());
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuEventDestroy_v2(CUevent event) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  return r.events.erase(reinterpret_cast<Event*>(event)) == 1 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

SIMCU_EXPORT CUresult cuEventRecord(CUevent e, CUstream s) { return event_record(e, s, DefaultStream::legacy); }
SIMCU_EXPORT CUresult cuEventRecord_ptsz(CUevent e, CUstream s) { return event_record(e, s, DefaultStream::per_thread); }
SIMCU_EXPORT CUresult cuEventRecordWithFlags(CUevent e, CUstream s, unsigned int) {
  return event_record(e, s, DefaultStream::legacy);
}
SIMCU_EXPORT CUresult cuEventRecordWithFlags_ptsz(CUevent e, CUstream s, unsigned int) {
  return event_record(e, s, DefaultStream::per_thread);
}

SIMCU_EXPORT CUresult cuEventQuery(CUevent event) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  auto e = find_event(event);
  if (!e) return CUDA_ERROR_INVALID_HANDLE;
  Dep dep;
  {
    std::lock_guard lock(e->mutex);
    dep = e->recorded;
  }
  return is_complete(dep) ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

SIMCU_EXPORT CUresult cuEventSynchronize(CUevent event) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  auto e = find_event(event);
  if (!e) return CUDA_ERROR_INVALID_HANDLE;
  Dep dep;
  {
    std::lock_guard lock(e->mutex);
    dep = e->recorded;
  }
  wait_for(dep);
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuEventElapsedTime_v2(float* ms, CUevent start, CUevent end) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (ms == nullptr) return CUDA_ERROR_INVALID_VALUE;
  auto a = find_event(start), b = find_event(end);
  if (!a || !b) return CUDA_ERROR_INVALID_HANDLE;
  if ((a->flags | b->flags) & CU_EVENT_DISABLE_TIMING) return CUDA_ERROR_INVALID_HANDLE;
  std::lock_guard la(a->mutex);
  std::unique_lock lb(b->mutex, std::defer_lock);
  if (a != b) lb.lock();
  if (!a->recorded.stream || !b->recorded.stream) return CUDA_ERROR_INVALID_HANDLE;
  if (!is_complete(a->recorded) || !is_complete(b->recorded)) return CUDA_ERROR_NOT_READY;
  *ms = static_cast<float>(b->time_ns->load() - a->time_ns->load()) / 1e6f;
  return CUDA_SUCCESS;
}
