// Residency: the chunk state machine (Note [Chunk states] in residency.h).
#include "residency.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <string>

#include "../config.h"
#include "../log.h"
#include "policy/lookahead.h"
#include "tracer/writer.h"

namespace oversub {

// config.h states its minimums in bytes; swap mode counts chunks.
static_assert(kMinimumBudgetBytes == 2 * kChunkBytes && kMinimumHostLimitBytes == 2 * kChunkBytes);

std::atomic<Residency*> Residency::instance_{nullptr};
trace::Writer* trace_writer();  // engine.cpp

namespace {

std::uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::uint64_t(ts.tv_sec) * 1'000'000'000 + std::uint64_t(ts.tv_nsec);
}

std::uint64_t round_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

std::uint64_t available_host_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return std::uint64_t{8} << 30;
}

CUmemAllocationProp chunk_prop(CUmemLocationType type, int id) {
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = type;
  prop.location.id = id;
  return prop;
}

}  // namespace

// ---- start-up ----

// Starts at the first allocation (or memory query), when the caller has a
// current context. Without one it tries again at the next call.
void Residency::start_if_enabled() {
  static std::atomic<bool> settled{false};
  if (settled.load(std::memory_order_acquire)) return;
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  if (settled.load()) return;
  if (config().mode != Mode::swap) {
    settled.store(true);
    return;
  }
  CUdevice device = 0;
  const RealDriver& d = real_driver();
  if (d.cuCtxGetDevice == nullptr || d.cuCtxGetDevice(&device) != CUDA_SUCCESS) return;  // no context yet
  settled.store(true);
  auto* r = new Residency;  // lives for the process: hooks run during exit
  if (!r->initialise()) {
    log_error("swap mode could not start; continuing in passthrough mode");
    return;
  }
  r->owner_pid_ = getpid();
  instance_.store(r, std::memory_order_release);
  std::atexit([] {
    Residency* self = instance_.load();
    // A child of fork() that exits does no engine work: the engine lock may
    // have been held, at the fork, by a thread that does not exist in the child
    // (the planner's), and the statistics are the parent's to report.
    if (getpid() != self->owner_pid_) return;
    if (self->planner_) self->planner_->stop();  // before the driver goes away
    self->report_at_exit();
  });
}

// Note [Default budget]
// The card's memory minus a reserve for the CUDA context, library workspaces
// and kernels' code: an eighth of the card, at most 1 GiB. The host limit
// defaults to half of the memory the host has available at start.
bool Residency::initialise() {
  const RealDriver& r = real_driver();
  if (!r.cuCtxGetDevice || !r.cuMemAddressReserve || !r.cuMemCreate || !r.cuMemMap || !r.cuMemUnmap ||
      !r.cuMemSetAccess || !r.cuStreamCreate || !r.cuEventCreate || !r.cuEventRecord || !r.cuEventQuery ||
      !r.cuMemcpyDtoDAsync_v2 || !r.cuStreamWaitEvent || !r.cuEventSynchronize) {
    log_error("the driver lacks the virtual memory management API");
    return false;
  }
  if (r.cuCtxGetDevice(&device_) != CUDA_SUCCESS) return false;
  std::size_t total = 0;
  if (!r.cuDeviceTotalMem_v2 || r.cuDeviceTotalMem_v2(&total, device_) != CUDA_SUCCESS) return false;
  const Config& c = config();
  if (std::string error; !check_budget_fits_device(c, total, kMinimumBudgetBytes, &error))
    exit_with_configuration_error(error);  // Note [Budget and device] in config.cpp
  std::uint64_t budget = c.budget_bytes;
  if (c.budget_percent > 0) budget = static_cast<std::uint64_t>(double(total) * c.budget_percent / 100.0);
  if (budget == 0) budget = total - std::min<std::uint64_t>(round_up(total / 8, kChunkBytes), std::uint64_t{1} << 30);
  set_budget_chunks(budget / kChunkBytes);
  if (budget_chunks_ < 2) {  // only the default budget of a tiny device gets here
    log_error("the device's %zu bytes leave fewer than two 2 MiB chunks for the default budget", total);
    return false;
  }
  std::uint64_t host = c.host_limit_bytes != 0 ? c.host_limit_bytes : available_host_bytes() / 2;
  host_chunks_ = host / kChunkBytes;
  strict_ = c.strict;

  // Room for every chunk the application may own, twice over for fragmentation.
  const std::uint64_t arena_chunks = 2 * (budget_chunks_ + host_chunks_) + 64;
  bytes_ = arena_chunks * kChunkBytes;
  CUdeviceptr base = 0, host_base = 0;
  if (r.cuMemAddressReserve(&base, bytes_, kChunkBytes, 0, 0) != CUDA_SUCCESS ||
      r.cuMemAddressReserve(&host_base, std::max<std::uint64_t>(host_chunks_, 1) * kChunkBytes, kChunkBytes, 0, 0) !=
          CUDA_SUCCESS) {
    log_error("cannot reserve %" PRIu64 " MiB of device address space", bytes_ >> 20);
    return false;
  }
  base_ = base;
  host_base_ = host_base;
  chunks_.reset(new Chunk[arena_chunks]);
  hot_.reset(new std::uint64_t[arena_chunks]);
  for (std::uint64_t k = 0; k < arena_chunks; ++k) hot_[k] = 1;  // free: usable as it is
  arena_ = std::make_unique<Arena>(arena_chunks);
  host_handles_.assign(host_chunks_, 0);
  if (r.cuStreamCreate(&d2h_, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS ||
      r.cuStreamCreate(&h2d_, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS)
    return false;
  planned_.reset(new std::uint32_t[arena_chunks]());
  if (c.policy == PolicyKind::lookahead) {
    planner_ = std::make_unique<Planner>(this, arena_chunks, base_, c.lookahead_ops);
    policy_ = std::make_unique<policy::LookaheadPolicy>(&planner_->planner());
  } else {
    policy_ = policy::make_policy("lru");
  }
  evict_reason_ = intern_name(policy_->name());
  prefetch_reason_ = intern_name("on-demand");
  lookahead_reason_ = intern_name("lookahead");
  stats_.budget_bytes = budget_chunks_ * kChunkBytes;
  stats_.host_limit_bytes = host_chunks_ * kChunkBytes;
  log_debug("swap mode: budget %" PRIu64 " MiB, host limit %" PRIu64 " MiB%s, policy %s; arena at 0x%" PRIx64
            ", host slots at 0x%" PRIx64,
            stats_.budget_bytes >> 20, stats_.host_limit_bytes >> 20, strict_ ? ", strict" : "",
            std::string(policy_->name()).c_str(), base_, host_base_);
  if (planner_) {
    // The planner thread submits copies and records events: it needs the
    // program's context current on it, or every call fails.
    CUcontext context = nullptr;
    if (!r.cuCtxGetCurrent || !r.cuCtxSetCurrent || r.cuCtxGetCurrent(&context) != CUDA_SUCCESS || context == nullptr) {
      log_error("cannot find the current context; lookahead cannot start, using lru");
      planner_.reset();
      policy_ = policy::make_policy("lru");
      evict_reason_ = intern_name(policy_->name());
    } else {
      planner_->start(context);
    }
  }
  return true;
}

// ---- events ----

CUevent Residency::new_event() {
  if (!spare_events_.empty()) {
    CUevent e = spare_events_.back();
    spare_events_.pop_back();
    return e;
  }
  CUevent e = nullptr;
  real_driver().cuEventCreate(&e, CU_EVENT_DISABLE_TIMING);
  return e;
}

void Residency::recycle_event(CUevent e) {
  if (e != nullptr) spare_events_.push_back(e);
}

void Residency::wait_host(CUevent e) {
  const std::uint64_t start = now_ns();
  real_driver().cuEventSynchronize(e);
  stats_.host_wait_ns += now_ns() - start;
}

void Residency::note_stream(CUstream stream) {
  const pthread_t self = pthread_self();
  last_stream_ = stream;
  last_thread_ = self;
  const bool per_thread = stream == CU_STREAM_PER_THREAD;
  for (std::size_t i = 0; i < known_streams_.size(); ++i) {
    const KnownStream& k = known_streams_[i];
    if (k.stream == stream && (!per_thread || pthread_equal(k.thread, self))) {
      last_stream_index_ = i;
      return;
    }
  }
  last_stream_index_ = known_streams_.size();
  known_streams_.push_back(KnownStream{stream, self});
}

void Residency::refresh_hot(std::uint64_t k) {
  const Chunk& c = chunks_[k];
  const std::uint8_t state = c.state.load(std::memory_order_relaxed);
  const bool usable = (state == kDevice && c.ready == nullptr) || state == kFree;
  hot_[k] = (hot_[k] & ~std::uint64_t{0xff}) | (usable ? 1u : 0u);
}

// Note [Epoch fences]
// Fencing a chunk's eviction on every stream *now* (Note [Ordering an eviction
// after the last use]) makes its copy wait for everything queued so far, when
// only the work up to the chunk's last use matters: a chunk last used a
// hundred ops ago would wait for the device to drain the hundred ops since.
// So each set of per-stream events recorded for a fence is kept as an epoch,
// stamped with the tick of the last op submitted before it. A chunk whose last
// use is at or before an epoch's tick is fenced by that epoch's events (the
// oldest such epoch: the first to complete, often complete already), and only
// when no epoch follows its last use are new events recorded. Epochs are made
// only where an eviction or free needs one, never per op; the oldest are
// dropped beyond kMaxEpochs (a chunk used before all of them takes the oldest).
std::uint64_t Residency::submitted_tick() const {
  // Inside an op (prepare, or a library call's own allocations) the outermost
  // op is not submitted yet; otherwise every op so far is.
  const std::uint64_t tick = op_tick_.load(std::memory_order_relaxed);
  return in_prepare_ || mutex_.depth() > 1 ? (outer_tick_ > 0 ? outer_tick_ - 1 : 0) : tick;
}

// Reusing epochs was off for a while (2026-11-25): ThreadSanitizer reported
// eviction copies reading a chunk that an op still wrote. The cause was a
// cancelled eviction's copy, which the chunk's next op did not wait for; since
// cancel_eviction gives the chunk a `ready` point after the copy, the tsan
// setup is clean with reuse on (swap, stress-mt and faults suites, and
// swap-gpt-8x-strict, 2026-11-26).
constexpr bool kReuseEpochs = true;

const Residency::Epoch& Residency::epoch_after(std::uint64_t last_use_tick, bool* fresh) {
  *fresh = false;
  for (const Epoch& e : epochs_)
    if (kReuseEpochs && e.tick >= last_use_tick) return e;
  *fresh = true;
  const RealDriver& r = real_driver();
  Epoch epoch;
  epoch.tick = submitted_tick();
  const pthread_t self = pthread_self();
  bool other_threads_default_stream = false;
  for (auto it = known_streams_.begin(); it != known_streams_.end();) {
    if (it->fenced_tick >= it->last_op_tick) {  // Note [Fencing only what is new]
      ++it;
      continue;
    }
    if (it->stream == CU_STREAM_PER_THREAD && !pthread_equal(it->thread, self)) {
      // Another thread's default stream cannot be named from here.
      other_threads_default_stream = true;
      ++it;
      continue;
    }
    CUevent e = new_event();
    if (r.cuEventRecord(e, it->stream) == CUDA_ERROR_INVALID_HANDLE) {
      recycle_event(e);
      it = known_streams_.erase(it);  // destroyed since: its work can no longer be fenced on
      last_stream_ = kNoStream;       // re-noted on the next op
      continue;
    }
    epoch.events.push_back(e);
    it->fenced_tick = epoch.tick;  // fence_after has d2h_ wait for it at once
    ++it;
  }
  // The only safe fence then is the whole device: wait for it (rare: a program
  // that uses per-thread default streams from several threads). Everything
  // submitted is then complete, and the epoch needs no events.
  if (other_threads_default_stream) {
    const std::uint64_t start = now_ns();
    r.cuCtxSynchronize();
    stats_.host_wait_ns += now_ns() - start;
    for (CUevent e : epoch.events) recycle_event(e);
    epoch.events.clear();
  }
  while (epochs_.size() >= kMaxEpochs) {
    for (CUevent e : epochs_.front().events) recycle_event(e);  // waits already captured them
    epochs_.pop_front();
  }
  // An epoch at an earlier tick than a kept one would break the order the
  // search relies on; ticks only grow, so this is the newest.
  epochs_.push_back(std::move(epoch));
  return epochs_.back();
}

// Note [Fencing only what is new]
// Our device-to-host stream runs in order, so once it waits for a point on a
// stream, everything queued on d2h_ after that wait follows all the work
// submitted to that stream before the point, for good. A stream on which no
// op has been prepared since d2h_ last waited for it (its last op's tick is
// at most the tick up to which that wait covered it) needs no new event: an
// eviction right after another, or the chunks of one free, fence on the one
// or two streams that have new work instead of on every stream the program
// has used. The same holds for our host-to-device stream: a new point on it
// is needed only after a bring-back copy has been queued since the last one.
// Without this, at a budget of 1/8 in the 3-thread stress test each fence
// queued about ten event records on the program's streams and a dozen waits
// on d2h_, and the simulated device spent most of its time on them.
// Every op that touches memory goes through prepare(), which stamps its
// stream; so does a graph launch, though its ranges are unknown.
void Residency::order_d2h_after_h2d() {
  if (!h2d_unfenced_) return;
  const RealDriver& r = real_driver();
  CUevent h2d_point = new_event();
  r.cuEventRecord(h2d_point, h2d_);
  r.cuStreamWaitEvent(d2h_, h2d_point, 0);
  recycle_event(h2d_point);
  h2d_unfenced_ = false;
}

// See Note [Ordering an eviction after the last use] and Note [Epoch fences].
// A reused epoch needs no wait: d2h_ waited for its events when it was made,
// and runs in order. Of our host-to-device stream only the chunk's own
// bring-back matters: another bring-back reads another chunk's host slot, and
// a slot is handed out again only once the copy that last read it has
// completed (reclaim, pending_slots_).
void Residency::order_d2h_after(std::uint64_t last_use_tick, CUevent prefetch) {
  const RealDriver& r = real_driver();
  bool fresh = false;
  const Epoch& epoch = epoch_after(last_use_tick, &fresh);
  if (fresh)
    for (CUevent e : epoch.events) r.cuStreamWaitEvent(d2h_, e, 0);
  if (prefetch != nullptr) r.cuStreamWaitEvent(d2h_, prefetch, 0);
}

CUevent Residency::fence_after(std::uint64_t last_use_tick, CUevent prefetch) {
  order_d2h_after(last_use_tick, prefetch);
  CUevent done = new_event();
  real_driver().cuEventRecord(done, d2h_);
  return done;
}

// A stream-ordered free: the point `stream` has reached, and after our own
// copy streams' work (an eviction copy still reading the chunk, a prefetch
// still writing it), both of which the program knows nothing about.
CUevent Residency::stream_fence(CUstream stream) {
  const RealDriver& r = real_driver();
  CUevent point = new_event(), done = new_event();
  r.cuEventRecord(point, stream);
  r.cuStreamWaitEvent(d2h_, point, 0);
  order_d2h_after_h2d();
  r.cuEventRecord(done, d2h_);
  recycle_event(point);
  return done;
}

// ---- mapping ----

CUresult Residency::map_device(std::uint64_t chunk, CUmemGenericAllocationHandle handle) {
  const RealDriver& r = real_driver();
  const CUdeviceptr at = address_of(chunk);
  CUresult res = r.cuMemMap(at, kChunkBytes, 0, handle, 0);
  if (res != CUDA_SUCCESS) return res;
  CUmemAccessDesc access{};
  access.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  access.location.id = device_;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  return r.cuMemSetAccess(at, kChunkBytes, &access, 1);
}

// An evicted chunk stays addressable through its host copy, unless strict.
// Note [Driver failures]: if the remap fails, the chunk is left unmapped as
// in strict mode. Its data is safe in its host slot, and every op the shim
// sees brings it back first; only an access the shim cannot see faults.
void Residency::map_host_or_leave_unmapped(std::uint64_t chunk) {
  if (strict_) return;
  Chunk& c = chunks_[chunk];
  if (map_device(chunk, host_handles_[std::size_t(c.host_slot)]) != CUDA_SUCCESS) {
    real_driver().cuMemUnmap(address_of(chunk), kChunkBytes);  // mapped without access, if cuMemSetAccess failed
    log_error("could not map host memory behind an evicted chunk; an unpredicted access will fault");
  }
}

CUresult Residency::obtain_host_slot(std::int64_t* slot) {
  reclaim(false);
  if (free_slots_.empty() && !pending_slots_.empty()) reclaim(true);
  if (!free_slots_.empty()) {
    *slot = free_slots_.back();
    free_slots_.pop_back();
    return CUDA_SUCCESS;
  }
  // Create the next slot: host-located memory, mapped once into our own range
  // so that both copy directions can address it.
  std::uint64_t next = 0;
  while (next < host_chunks_ && host_handles_[next] != 0) ++next;
  if (next == host_chunks_) return CUDA_ERROR_OUT_OF_MEMORY;
  const RealDriver& r = real_driver();
  CUmemAllocationProp prop = chunk_prop(CU_MEM_LOCATION_TYPE_HOST, 0);
  CUmemGenericAllocationHandle h = 0;
  if (r.cuMemCreate(&h, kChunkBytes, &prop, 0) != CUDA_SUCCESS) return CUDA_ERROR_OUT_OF_MEMORY;
  const CUdeviceptr at = host_base_ + next * kChunkBytes;
  CUmemAccessDesc access{};
  access.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  access.location.id = device_;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  if (r.cuMemMap(at, kChunkBytes, 0, h, 0) != CUDA_SUCCESS) {
    r.cuMemRelease(h);  // the slot stays uncreated: a later eviction tries again
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  if (r.cuMemSetAccess(at, kChunkBytes, &access, 1) != CUDA_SUCCESS) {
    r.cuMemUnmap(at, kChunkBytes);
    r.cuMemRelease(h);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  host_handles_[next] = h;
  *slot = std::int64_t(next);
  return CUDA_SUCCESS;
}

// ---- eviction (the lru policy: on demand, least recently used first) ----

// Note [Evictions in flight]
// An eviction starts with the fence and the device-to-host copy and leaves the
// chunk mapped on the device (state evicting). It finishes once the copy has
// completed: only then is the address unmapped and the device memory reused.
// If an op needs the chunk before that, the eviction is cancelled: the chunk
// simply stays on the device and the host copy is discarded when the copy is
// done. On demand (no free memory at all) we start and finish at once; ahead
// of demand (keep_headroom) we start and let the copy overlap the ops that
// follow.
CUresult Residency::start_eviction(std::uint64_t chunk) {
  Chunk& c = chunks_[chunk];
  std::int64_t slot = -1;
  if (CUresult res = obtain_host_slot(&slot); res != CUDA_SUCCESS) return res;
  // Note [A victim can vanish]: obtaining a slot may reclaim, and reclaiming
  // may release the victim itself: a shared chunk whose last small block's
  // free has just completed. Its address may then be unmapped already, or
  // handed out again. Copying it would read unmapped memory (strict) or save
  // another allocation's bytes, so the caller chooses again.
  if (c.state.load(std::memory_order_relaxed) != kDevice) {
    free_slots_.push_back(slot);
    return kVictimVanished;
  }
  const RealDriver& r = real_driver();
  order_d2h_after(hot_[chunk] >> 8, c.ready);
  // The copy itself, ordered after the fence on our device-to-host stream.
  if (CUresult res =
          r.cuMemcpyDtoDAsync_v2(host_base_ + std::uint64_t(slot) * kChunkBytes, address_of(chunk), kChunkBytes, d2h_);
      res != CUDA_SUCCESS) {
    // Note [Driver failures]: nothing was queued, so the slot is free again
    // and the chunk, untouched, stays on the device.
    free_slots_.push_back(slot);
    log_error("an eviction copy failed (%d); the chunk stays on the device", int(res));
    return res;
  }
  CUevent done = new_event();
  r.cuEventRecord(done, d2h_);
  if (trace::Writer* w = trace_writer())
    w->evict(address_of(chunk), kChunkBytes, reinterpret_cast<std::uint64_t>(d2h_), evict_reason_);
  c.host_slot = slot;
  c.evicted = done;
  c.state.store(kEvicting, std::memory_order_release);
  refresh_hot(chunk);
  evicting_.push_back(chunk);
  stats_.bytes_evicted += kChunkBytes;
  ++stats_.evictions;
  return CUDA_SUCCESS;
}

// Returns the chunk's device memory; waits for the copy when `wait`, else
// returns false if the copy is still running.
bool Residency::finish_eviction(std::uint64_t chunk, bool wait, CUmemGenericAllocationHandle* freed) {
  Chunk& c = chunks_[chunk];
  const RealDriver& r = real_driver();
  if (wait) wait_host(c.evicted);
  else if (r.cuEventQuery(c.evicted) != CUDA_SUCCESS) return false;
  recycle_event(c.evicted);
  c.evicted = nullptr;
  if (c.ready != nullptr) {
    recycle_event(c.ready);
    c.ready = nullptr;
  }
  r.cuMemUnmap(address_of(chunk), kChunkBytes);  // safe: the copy, after the last use, is done
  *freed = c.device;
  c.device = 0;
  c.state.store(kHost, std::memory_order_release);
  refresh_hot(chunk);
  map_host_or_leave_unmapped(chunk);
  std::erase(evicting_, chunk);
  --device_in_use_;
  ++host_in_use_;
  update_peaks();
  return true;
}

// The cancelled copy may still be reading the chunk: an op that writes it
// before the copy is done races with it. The copy's bytes are discarded, so
// the race would lose nothing, but it is a race all the same (ThreadSanitizer
// reports it, and a real device gives no guarantee either), so the chunk gets
// a point after the copy as its `ready` event: the next op on any stream waits
// for it on the device, the host does not.
void Residency::cancel_eviction(std::uint64_t chunk) {
  Chunk& c = chunks_[chunk];
  pending_slots_.push_back(HostSlotRelease{c.host_slot, c.evicted});  // free once the copy is done
  CUevent after_copy = new_event();
  real_driver().cuEventRecord(after_copy, d2h_);  // our stream is in order: after the copy
  if (c.ready != nullptr) recycle_event(c.ready);  // the copy itself followed that prefetch
  c.ready = after_copy;
  c.ready_waited = kNoStream;
  c.host_slot = -1;
  c.evicted = nullptr;
  c.state.store(kDevice, std::memory_order_release);
  refresh_hot(chunk);
  std::erase(evicting_, chunk);
  ++stats_.evictions_cancelled;
}

CUresult Residency::evict(std::uint64_t chunk, CUmemGenericAllocationHandle* freed) {
  if (CUresult res = start_eviction(chunk); res != CUDA_SUCCESS) return res;
  finish_eviction(chunk, true, freed);
  return CUDA_SUCCESS;
}

// After an op that needed memory: start evictions so that a few chunks are
// free (or on their way) before the next op asks, chosen by the policy.
//
// The copies overlap the ops that follow (Note [Evictions in flight]); an op
// that needs one of these chunks again cancels its eviction.

// Note [Headroom once short]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~
// Headroom is kept only once an op has had to evict on demand. Until then the
// program's memory has fitted the budget, and evicting ahead of a demand that
// may never come would move bytes a program that fits must not pay for: at a
// budget equal to the footprint, the free chunks run out exactly at the peak,
// and headroom would evict a few chunks there every step (the replay fuzz
// target found it, tests/fuzz/replay.cpp). The replay's engine does the same
// (tracer/replay/chunks.cpp).
void Residency::keep_headroom(std::uint64_t op_tick) {
  if (!been_short_) return;
  if (planner_ && planner_->plans()) return;  // the plans keep room (Note [Plans])
  const std::uint64_t want = std::max<std::uint64_t>(2, budget_chunks_ / 16);
  const auto available = [&] {
    return free_device_.size() + evicting_.size() +
           (budget_chunks_ > device_created_ ? budget_chunks_ - device_created_ : 0);
  };
  std::vector<policy::ChunkCandidate> resident;
  std::vector<std::uint64_t> victims;
  if (const std::uint64_t now = available(); now < want) {
    const std::uint64_t count = policy_->proactive_evictions(want - now, budget_chunks_);
    if (count == 0) return;  // Note [Policy decisions]: nothing needs to move, early or not
    victim_candidates(false, &resident);
    policy_->choose_victims(resident, count, op_tick, &victims);
    if (!start_background_evictions(victims)) return;
  }
  // Note [Evicting early] in policy/lookahead.h. Chunks of the op being prepared are
  // never victims (last use op_tick): it has not been launched yet.
  const policy::ResidencyPolicy::Rise rise = policy_->predicted_rise(budget_chunks_);
  const std::uint64_t now = available();
  if (rise.chunks <= now) return;
  resident.clear();
  victims.clear();
  victim_candidates(false, &resident);
  policy_->choose_early_victims(resident, rise.chunks - now, op_tick, rise, &victims);
  start_background_evictions(victims);
}

CUresult Residency::obtain_device_memory(std::uint64_t op_tick, CUmemGenericAllocationHandle* handle) {
  reclaim(false);
  if (!free_device_.empty()) {
    *handle = free_device_.back();
    free_device_.pop_back();
    return CUDA_SUCCESS;
  }
  if (device_created_ < budget_chunks_) {
    CUmemAllocationProp prop = chunk_prop(CU_MEM_LOCATION_TYPE_DEVICE, device_);
    if (real_driver().cuMemCreate(handle, kChunkBytes, &prop, 0) == CUDA_SUCCESS) {
      ++device_created_;
      return CUDA_SUCCESS;
    }
    set_budget_chunks(device_created_);  // the card has less than the budget: live with it
    log_info("device memory ran out at %" PRIu64 " MiB; the budget is now that", device_created_ * 2);
  }
  // Then evictions already on their way (Note [Evictions in flight]), the
  // oldest first: its copy is the closest to done.
  if (!evicting_.empty()) {
    finish_eviction(evicting_.front(), true, handle);
    return CUDA_SUCCESS;
  }
  // Then freed chunks whose last use is still running: waiting for the oldest
  // free only, not for every free in flight (which is the whole device's queue).
  while (!pending_.empty()) {
    wait_host(pending_.front().fence);
    reclaim(false);
    if (!free_device_.empty()) {
      *handle = free_device_.back();
      free_device_.pop_back();
      return CUDA_SUCCESS;
    }
  }
  // The policy chooses among the resident chunks (Note [Policy decisions]).
  been_short_ = true;  // Note [Headroom once short]
  std::vector<std::uint64_t> failed;  // victims whose eviction copy the driver refused
  const auto not_failed = [&](std::vector<policy::ChunkCandidate>* candidates) {
    std::erase_if(*candidates, [&](const policy::ChunkCandidate& c) {
      return std::find(failed.begin(), failed.end(), c.chunk) != failed.end();
    });
  };
  for (;;) {
    std::vector<policy::ChunkCandidate> resident;
    std::vector<std::uint64_t> victims;
    victim_candidates(false, &resident);
    not_failed(&resident);
    policy_->choose_victims(resident, 1, op_tick, &victims);
    if (victims.empty()) {  // everything left is planned: the op that asks now comes first
      resident.clear();
      victim_candidates(true, &resident);
      not_failed(&resident);
      policy_->choose_victims(resident, 1, op_tick, &victims);
    }
    if (victims.empty()) return CUDA_ERROR_OUT_OF_MEMORY;
    const CUresult res = evict(victims.front(), handle);
    // Note [Driver failures]: a refused copy leaves its victim resident; try
    // another, a few times, then give the op CUDA_ERROR_OUT_OF_MEMORY. (A full
    // host pool is CUDA_ERROR_OUT_OF_MEMORY already: another victim needs a
    // slot too.)
    if (res != kVictimVanished && res != CUDA_SUCCESS && res != CUDA_ERROR_OUT_OF_MEMORY) {
      failed.push_back(victims.front());
      if (failed.size() >= kMaxFailedEvictions) return CUDA_ERROR_OUT_OF_MEMORY;
      continue;
    }
    if (res != kVictimVanished) return res;
    // Note [A victim can vanish]: the reclaim that released it may have
    // freed device memory too.
    if (!free_device_.empty()) {
      *handle = free_device_.back();
      free_device_.pop_back();
      return CUDA_SUCCESS;
    }
  }
}

// ---- making a chunk resident ----

CUresult Residency::make_device(std::uint64_t chunk, CUstream stream, std::uint64_t op_tick) {
  Chunk& c = chunks_[chunk];
  const RealDriver& r = real_driver();
  std::uint8_t state = c.state.load(std::memory_order_relaxed);
  if (state == kEvicting) {
    // Still on the device: keep it there, and go on to order this stream after
    // a prefetch copy that may still be filling it.
    cancel_eviction(chunk);
    state = kDevice;
  }
  if (state == kDevice) {
    // Brought back earlier on our copy stream: order this stream after it too.
    if (c.ready != nullptr && c.ready_waited != stream) {
      if (r.cuEventQuery(c.ready) == CUDA_SUCCESS) {
        recycle_event(c.ready);
        c.ready = nullptr;
        refresh_hot(chunk);
      } else {
        r.cuStreamWaitEvent(stream, c.ready, 0);
        c.ready_waited = stream;
      }
    }
    return CUDA_SUCCESS;
  }
  if (state != kUnbacked && state != kHost) return CUDA_ERROR_INVALID_VALUE;
  CUmemGenericAllocationHandle handle = 0;
  if (CUresult res = obtain_device_memory(op_tick, &handle); res != CUDA_SUCCESS) return res;
  if (state == kHost) return bring_back(chunk, handle, stream);
  if (CUresult res = map_device(chunk, handle); res != CUDA_SUCCESS) {
    free_device_.push_back(handle);
    return res;
  }
  c.device = handle;
  c.state.store(kDevice, std::memory_order_release);
  refresh_hot(chunk);
  ++device_in_use_;
  update_peaks();
  return CUDA_SUCCESS;
}

CUresult Residency::bring_back(std::uint64_t chunk, CUmemGenericAllocationHandle handle, CUstream stream) {
  Chunk& c = chunks_[chunk];
  const RealDriver& r = real_driver();
  if (!strict_) r.cuMemUnmap(address_of(chunk), kChunkBytes);  // the host mapping
  if (CUresult res = map_device(chunk, handle); res != CUDA_SUCCESS) {
    free_device_.push_back(handle);
    if (!strict_) map_host_or_leave_unmapped(chunk);
    return res;
  }
  if (CUresult res = r.cuMemcpyDtoDAsync_v2(address_of(chunk), host_base_ + std::uint64_t(c.host_slot) * kChunkBytes,
                                            kChunkBytes, h2d_);
      res != CUDA_SUCCESS) {
    // Note [Driver failures]: nothing was queued. The chunk stays on the host
    // with its data; the device memory, never written, is free again.
    r.cuMemUnmap(address_of(chunk), kChunkBytes);
    free_device_.push_back(handle);
    map_host_or_leave_unmapped(chunk);
    log_error("a copy bringing a chunk back failed (%d); the chunk stays on the host", int(res));
    return res;
  }
  h2d_unfenced_ = true;
  c.device = handle;
  CUevent ready = new_event();
  r.cuEventRecord(ready, h2d_);
  if (stream != kNoStream) r.cuStreamWaitEvent(stream, ready, 0);
  c.ready = ready;
  c.ready_waited = stream;  // kNoStream (a plan) matches no stream of the program
  // The host slot is free once the copy has read it.
  CUevent slot_done = new_event();
  r.cuEventRecord(slot_done, h2d_);
  pending_slots_.push_back(HostSlotRelease{c.host_slot, slot_done});
  c.host_slot = -1;
  --host_in_use_;
  stats_.bytes_prefetched += kChunkBytes;
  ++stats_.prefetches;
  if (stream == kNoStream) ++stats_.prefetches_ahead;
  if (trace::Writer* w = trace_writer())
    w->prefetch(address_of(chunk), kChunkBytes, reinterpret_cast<std::uint64_t>(h2d_),
                stream == kNoStream ? lookahead_reason_ : prefetch_reason_);
  c.state.store(kDevice, std::memory_order_release);
  refresh_hot(chunk);
  ++device_in_use_;
  update_peaks();
  return CUDA_SUCCESS;
}

std::uint64_t Residency::completed_tick() {
  const RealDriver& r = real_driver();
  for (const Epoch& e : epochs_) {
    if (e.tick <= completed_tick_) continue;
    for (CUevent event : e.events)
      if (r.cuEventQuery(event) != CUDA_SUCCESS) return completed_tick_;
    completed_tick_ = e.tick;  // epochs are in tick order: every one before it has completed too
  }
  return completed_tick_;
}

// Note [Victims that wait] in policy/residency_policy.h: a chunk is busy when
// its last use comes after the newest epoch known complete (ops between epochs
// are not tracked one by one, so this errs towards busy), or when the copy
// that brought it back has not completed.
void Residency::victim_candidates(bool include_planned, std::vector<policy::ChunkCandidate>* out) {
  const RealDriver& r = real_driver();
  const std::uint64_t done = completed_tick();
  for (std::uint64_t i = 0; i < arena_->chunk_count(); ++i) {
    if (chunks_[i].state.load(std::memory_order_relaxed) != kDevice || (!include_planned && planned(i))) continue;
    const std::uint64_t last_use = hot_[i] >> 8;
    const bool busy =
        last_use > done || (chunks_[i].ready != nullptr && r.cuEventQuery(chunks_[i].ready) != CUDA_SUCCESS);
    out->push_back({i, last_use, busy});
  }
}

// Note [Plans]
// The planner thread asks, a few ops at a time, for what the next ops will use
// (LookaheadPlanner::upcoming), in the order of use: chunks of live
// allocations, and chunks of buffers not allocated yet ("fresh"). Walking that
// list, every entry that holds no device memory yet (fresh, unbacked, or on the
// host) will need a chunk of it. A chunk on the host starts coming back on our
// host-to-device stream when device memory is free beyond what the entries
// before it will need; otherwise it waits for a later plan. Chunks being
// evicted that the window needs are kept. If the window needs more memory than
// is free or already on its way, the evictions of the resident chunks used
// furthest in the future start now, so that their copies overlap the ops in
// between and the memory is free when the program asks. Nothing here waits for
// the device. The chunks of the plan are spared by evictions until the next
// plan, unless an op needs their memory and nothing else is left.
void Residency::apply_plan(const std::vector<std::uint64_t>& upcoming) {
  std::lock_guard lock(mutex_);
  if (++plan_gen_ == 0) plan_gen_ = 1;
  const std::uint64_t chunk_count = arena_->chunk_count();
  for (std::uint64_t k : upcoming)
    if (k < chunk_count) planned_[k] = plan_gen_;
  reclaim(false);
  const auto free_now = [&] {
    return free_device_.size() + (budget_chunks_ > device_created_ ? budget_chunks_ - device_created_ : 0);
  };
  std::uint64_t reserved = 0;  // entries so far that will need device memory at their use
  for (std::uint64_t k : upcoming) {
    if (k >= chunk_count) {  // fresh
      ++reserved;
      continue;
    }
    const std::uint8_t state = chunks_[k].state.load(std::memory_order_relaxed);
    if (state == kEvicting) {
      cancel_eviction(k);
      continue;
    }
    if (state == kUnbacked) ++reserved;
    if (state != kHost) continue;
    if (free_now() <= reserved) {
      ++reserved;
      continue;
    }
    CUmemGenericAllocationHandle handle = 0;
    if (!free_device_.empty()) {
      handle = free_device_.back();
      free_device_.pop_back();
    } else {
      CUmemAllocationProp prop = chunk_prop(CU_MEM_LOCATION_TYPE_DEVICE, device_);
      if (real_driver().cuMemCreate(&handle, kChunkBytes, &prop, 0) != CUDA_SUCCESS) {
        ++reserved;
        continue;
      }
      ++device_created_;
    }
    if (bring_back(k, handle, kNoStream) != CUDA_SUCCESS) ++reserved;
  }
  const std::uint64_t coming = free_now() + evicting_.size();
  if (reserved <= coming) return;
  const std::uint64_t count =
      policy_->proactive_evictions(std::min<std::uint64_t>(reserved - coming, kMaxEvictionsPerPlan), budget_chunks_);
  if (count == 0) return;  // Note [Policy decisions]: nothing needs to move
  const std::uint64_t tick = op_tick_.load(std::memory_order_relaxed);
  std::vector<policy::ChunkCandidate> resident;
  victim_candidates(false, &resident);
  std::vector<std::uint64_t> victims;
  policy_->choose_victims(resident, count, tick + 1, &victims);
  start_background_evictions(victims);
}

// Cost when everything is resident: per chunk, one store (its LRU tick) and
// two loads; no driver call, no allocation. The engine lock is held by the
// caller (Note [Engine lock]), so the tick needs no atomic increment.
// Note [Nested ops]
// A library call (cuBLAS, cuDNN) makes its ranges resident, then launches its
// own kernels from inside our hook; those launches come back here, nested.
// Whatever a nested op needs must not push out what the enclosing call made
// resident and has not run yet: evictions for a nested op spare every chunk
// used since the outermost op began (last use >= outer_tick_).
CUresult Residency::prepare(const RangeList& ranges, CUstream stream) {
  struct PrepareScope {  // Note [Epoch fences]: this op is not submitted yet
    bool& flag;
    bool old;
    explicit PrepareScope(bool& f) : flag(f), old(f) { flag = true; }
    ~PrepareScope() { flag = old; }
  } scope(in_prepare_);
  const std::uint64_t tick = op_tick_.load(std::memory_order_relaxed) + 1;
  op_tick_.store(tick, std::memory_order_relaxed);  // one writer at a time: the lock holder
  if (mutex_.depth() <= 1) outer_tick_ = tick;
  const std::uint64_t spare_from = outer_tick_;
  ++stats_.ops;
  track_stream(stream);
  known_streams_[last_stream_index_].last_op_tick = tick;  // Note [Fencing only what is new]
  if (planner_) planner_->push_op(tick, reinterpret_cast<std::uint64_t>(stream), ranges, bytes_);
  std::uint64_t all_ready = 1;
  const std::uint64_t stamp = tick << 8;
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    const Range& range = ranges.data()[i];
    if (!owns(range.address) || range.bytes == 0) continue;
    const std::uint64_t first = (range.address - base_) / kChunkBytes;
    const std::uint64_t last = (range.address + range.bytes - 1 - base_) / kChunkBytes;
    for (std::uint64_t* h = &hot_[first], *end = &hot_[last] + 1; h != end; ++h) {
      all_ready &= *h;
      *h = stamp | (*h & 0xff);
    }
  }
  if (all_ready) return CUDA_SUCCESS;
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    const Range& range = ranges.data()[i];
    if (!owns(range.address) || range.bytes == 0) continue;
    const std::uint64_t first = (range.address - base_) / kChunkBytes;
    const std::uint64_t last = (range.address + range.bytes - 1 - base_) / kChunkBytes;
    for (std::uint64_t k = first; k <= last; ++k)
      if (chunks_[k].state.load(std::memory_order_relaxed) == kFree) {
        continue;  // not allocated: a stale word in a parameter block, not a use
      } else if (CUresult res = make_device(k, stream, spare_from); res != CUDA_SUCCESS) {
        log_error("cannot make a chunk resident (budget %" PRIu64 " MiB too small for one op?): %d",
                  stats_.budget_bytes >> 20, int(res));
        return res;
      }
  }
  keep_headroom(spare_from);
  return CUDA_SUCCESS;
}

// Note [Background evictions yield to uploads]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// A training step begins by uploading its batch (images, then labels, on one
// stream), and its first kernel waits for that copy. Our evictions ahead of
// demand (headroom, early eviction, a plan's) go the other way on the same
// link, and where the link slows when both directions are busy (PCIe, NVLink
// 2.0: two_way_efficiency in the replay's device profiles) they stretch the
// upload, and so the step. No op waits for a background eviction yet, so it
// can go after the upload instead: before starting any, our device-to-host
// stream waits for every upload of the program that is on the link (a point
// recorded on its stream just before it has been reached: its stream's
// earlier work is done) and not done yet, and for an upload queued right
// behind one waited for (the labels after the images).
//  - An upload still queued behind other work on its stream is not waited
//    for: d2h_ runs in order, so waiting for it would hold every later
//    eviction, on-demand ones included, behind that work too.
//  - Evictions on demand never wait for an upload: the host waits for them.
//  - An op's headroom is kept in its prepare, before it is submitted, so an
//    upload's own headroom does not wait for it; the next background
//    evictions do.
// The replay does the same (ChunkEngine::uploads_to_yield_to in
// tracer/replay/chunks.cpp). There, VGG-16 at 75% on v100-32gb-nvlink, where
// lookahead was 0.011% slower than vdnn, ties with it since: the step's
// first kernel waits for the 154 MB input upload, which our headroom
// evictions no longer slow down (docs/benchmarks.md).
// A copy being captured into a graph is not tracked (it does not run now, and
// our events would become nodes of the program's graph); the simulated GPU
// has no stream capture, so that branch is untested there.
// Cost: a capture query and two event records per upload, and one or two
// queries per upload kept when background evictions start; nothing on the
// launch path.
CUresult Residency::prepare_upload(const RangeList& ranges, CUstream stream) {
  track_stream(stream);
  // Right behind the previous upload: on its stream, with no op between (the stream's
  // last op is that upload). Known streams are compared by handle and thread, not by
  // index: an epoch drops destroyed streams from the list.
  const pthread_t self = pthread_self();
  const bool follows = !uploads_.empty() && uploads_.back().stream == stream &&
                       (stream != CU_STREAM_PER_THREAD || pthread_equal(uploads_.back().thread, self)) &&
                       uploads_.back().tick == known_streams_[last_stream_index_].last_op_tick;
  if (CUresult res = prepare(ranges, stream); res != CUDA_SUCCESS) return res;
  upload_ = Upload{nullptr, nullptr, stream, self, op_tick_.load(std::memory_order_relaxed), follows, false};
  // A copy captured into a graph does not run now; our events would become
  // nodes of the program's graph. It is left alone.
  const RealDriver& r = real_driver();
  CUstreamCaptureStatus capture = CU_STREAM_CAPTURE_STATUS_NONE;
  if (r.cuStreamIsCapturing != nullptr && r.cuStreamIsCapturing(stream, &capture) == CUDA_SUCCESS &&
      capture != CU_STREAM_CAPTURE_STATUS_NONE)
    return CUDA_SUCCESS;
  upload_.start = new_event();
  r.cuEventRecord(upload_.start, stream);
  return CUDA_SUCCESS;
}

void Residency::finish_upload(CUstream stream, bool submitted) {
  if (upload_.start == nullptr) return;  // captured (prepare_upload)
  if (!submitted) {
    recycle_event(upload_.start);
    return;
  }
  if (uploads_.size() == kMaxUploads) {
    recycle_event(uploads_.front().start);
    recycle_event(uploads_.front().done);
    uploads_.erase(uploads_.begin());
  }
  upload_.done = new_event();
  real_driver().cuEventRecord(upload_.done, stream);
  uploads_.push_back(upload_);
}

bool Residency::start_background_evictions(const std::vector<std::uint64_t>& victims) {
  if (victims.empty()) return true;
  yield_to_uploads();
  for (std::uint64_t v : victims) {
    const CUresult res = start_eviction(v);
    if (res != CUDA_SUCCESS && res != kVictimVanished) return false;
  }
  return true;
}

void Residency::yield_to_uploads() {
  const RealDriver& r = real_driver();
  bool previous_waited = false;
  std::size_t kept = 0;
  for (Upload& u : uploads_) {
    if (r.cuEventQuery(u.done) == CUDA_SUCCESS) {
      recycle_event(u.start);
      recycle_event(u.done);
      previous_waited = false;
      continue;
    }
    if (!u.waited && ((u.follows && previous_waited) || r.cuEventQuery(u.start) == CUDA_SUCCESS)) {
      r.cuStreamWaitEvent(d2h_, u.done, 0);
      u.waited = true;
      ++stats_.uploads_yielded_to;
    }
    previous_waited = u.waited;
    uploads_[kept++] = u;
  }
  uploads_.resize(kept);
}

// ---- allocation and free ----

CUresult Residency::allocate(CUdeviceptr* out, std::uint64_t bytes, AllocKind, CUstream) {
  if (out == nullptr || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  reclaim(false);
  const bool small = bytes < kSmallAllocationBytes;
  const std::uint64_t want = small ? 1 : round_up(bytes, kChunkBytes) / kChunkBytes;
  if (allocated_chunks_ + want > capacity_chunks()) {
    reclaim(true);  // frees still in flight may give room
    if (allocated_chunks_ + want > capacity_chunks()) return CUDA_ERROR_OUT_OF_MEMORY;
  }
  Block block{};
  if (small) {
    auto b = arena_->take_small(bytes);
    if (!b) return CUDA_ERROR_OUT_OF_MEMORY;
    block = Block{address_of(b->chunk) + b->offset_bytes, bytes, b->chunk, 1, true};
    Chunk& c = chunks_[b->chunk];
    if (b->new_chunk) {
      c.state.store(kUnbacked, std::memory_order_release);
      c.small = true;
      refresh_hot(b->chunk);
      ++allocated_chunks_;
    }
    ++c.users;
  } else {
    auto first = arena_->take_chunks(want);
    if (!first) return CUDA_ERROR_OUT_OF_MEMORY;
    block = Block{address_of(*first), bytes, *first, want, false};
    for (std::uint64_t k = *first; k < *first + want; ++k) {
      chunks_[k].state.store(kUnbacked, std::memory_order_release);
      chunks_[k].small = false;
      chunks_[k].users = 1;
      refresh_hot(k);
    }
    allocated_chunks_ += want;
  }
  auto at = std::lower_bound(blocks_by_base_.begin(), blocks_by_base_.end(), block.base,
                             [](const Block& b, std::uint64_t base) { return b.base < base; });
  blocks_by_base_.insert(at, block);
  if (planner_)
    planner_->push_alloc(block.base, bytes, block.first_chunk, static_cast<std::uint32_t>(block.chunk_count), small);
  stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, allocated_chunks_ * kChunkBytes);
  *out = block.base;
  return CUDA_SUCCESS;
}

// A chunk nobody uses any more: its memory and address come back once its
// last use has completed (freeing never synchronises the device).
void Residency::release_chunk(std::uint64_t chunk, CUstream stream, bool stream_ordered) {
  Chunk& c = chunks_[chunk];
  if (c.state.load(std::memory_order_relaxed) == kEvicting) cancel_eviction(chunk);
  const std::uint8_t state = c.state.load(std::memory_order_relaxed);
  --allocated_chunks_;
  c.state.store(kFree, std::memory_order_release);
  refresh_hot(chunk);
  if (state == kUnbacked) {
    arena_->give_chunks(chunk, 1);
    return;
  }
  CUevent fence = stream_ordered ? stream_fence(stream) : fence_after(hot_[chunk] >> 8, c.ready);
  if (state == kHost) {
    if (!strict_) real_driver().cuMemUnmap(address_of(chunk), kChunkBytes);
    pending_slots_.push_back(HostSlotRelease{c.host_slot, nullptr});
    c.host_slot = -1;
    --host_in_use_;
  } else {
    --device_in_use_;
  }
  pending_.push_back(PendingRelease{chunk, fence});
}

bool Residency::release(CUdeviceptr pointer, CUstream stream, bool stream_ordered, CUresult* result) {
  if (!owns(pointer)) return false;
  auto at = std::lower_bound(blocks_by_base_.begin(), blocks_by_base_.end(), std::uint64_t(pointer),
                             [](const Block& b, std::uint64_t base) { return b.base < base; });
  if (at == blocks_by_base_.end() || at->base != pointer) {
    *result = CUDA_ERROR_INVALID_VALUE;
    return true;
  }
  const Block block = *at;
  blocks_by_base_.erase(at);
  if (planner_) planner_->push_free(block.base);
  extents_.erase(extents_.lower_bound(block.base), extents_.lower_bound(block.base + block.bytes));
  if (block.small) {
    // The block's bytes may be handed out again only once its last use is
    // over, like a whole chunk (Note [Chunk states]): until its fence completes
    // it stays taken in the arena.
    Chunk& c = chunks_[block.first_chunk];
    --c.users;
    const std::uint64_t offset = block.base - address_of(block.first_chunk);
    CUevent fence = stream_ordered ? stream_fence(stream) : fence_after(hot_[block.first_chunk] >> 8, c.ready);
    pending_small_.push_back(PendingSmall{block.first_chunk, offset, block.bytes, fence});
  } else {
    for (std::uint64_t k = block.first_chunk; k < block.first_chunk + block.chunk_count; ++k) {
      chunks_[k].users = 0;
      release_chunk(k, stream, stream_ordered);
    }
  }
  *result = CUDA_SUCCESS;
  return true;
}

void Residency::reclaim(bool wait) {
  const RealDriver& r = real_driver();
  std::vector<std::uint64_t> emptied;
  for (auto it = pending_small_.begin(); it != pending_small_.end();) {
    if (wait) wait_host(it->fence);
    else if (r.cuEventQuery(it->fence) != CUDA_SUCCESS) {
      ++it;
      continue;
    }
    recycle_event(it->fence);
    if (arena_->give_small(it->chunk, it->offset_bytes, it->bytes)) emptied.push_back(it->chunk);
    it = pending_small_.erase(it);
  }
  // An emptied shared chunk: its blocks' last uses are over; release it the
  // ordinary way (a second, cheap fence).
  for (std::uint64_t chunk : emptied) release_chunk(chunk, nullptr, false);
  for (std::size_t i = 0; i < evicting_.size();) {
    CUmemGenericAllocationHandle freed = 0;
    if (finish_eviction(evicting_[i], false, &freed)) free_device_.push_back(freed);  // erased evicting_[i]
    else ++i;
  }
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (wait) wait_host(it->fence);
    if (!wait && r.cuEventQuery(it->fence) != CUDA_SUCCESS) {
      ++it;
      continue;
    }
    Chunk& c = chunks_[it->chunk];
    if (c.device != 0) {
      r.cuMemUnmap(address_of(it->chunk), kChunkBytes);
      free_device_.push_back(c.device);
      c.device = 0;
    }
    if (c.ready != nullptr) {
      recycle_event(c.ready);
      c.ready = nullptr;
    }
    arena_->give_chunks(it->chunk, 1);
    recycle_event(it->fence);
    it = pending_.erase(it);
  }
  for (auto it = pending_slots_.begin(); it != pending_slots_.end();) {
    if (it->done != nullptr) {
      if (wait) wait_host(it->done);
      else if (r.cuEventQuery(it->done) != CUDA_SUCCESS) {
        ++it;
        continue;
      }
      recycle_event(it->done);
    }
    free_slots_.push_back(it->slot);
    it = pending_slots_.erase(it);
  }
}

// ---- what the application sees ----

// Note [Reported memory]
// cuMemGetInfo reports the oversubscribed capacity: total = budget + host
// limit, free = total minus what the application holds. Frameworks size their
// work by these numbers; reporting the card's own would make them refuse to
// allocate what oversub can serve.
void Residency::memory_info(std::size_t* free_bytes, std::size_t* total_bytes) {
  std::lock_guard lock(mutex_);
  const std::uint64_t total = capacity_chunks() * kChunkBytes;
  const std::uint64_t used = allocated_chunks_ * kChunkBytes;
  if (total_bytes) *total_bytes = total;
  if (free_bytes) *free_bytes = used < total ? total - used : 0;
}

// Note [Ranges inside a segment]
// A framework's caching allocator carves many tensors out of one large
// segment, and a raw kernel only tells us a pointer. We learn tensor extents
// from the ops that state them exactly (cuBLAS/cuDNN arguments, copies and
// memsets): a pointer at or inside a learned extent touches that extent from
// the pointer on. A pointer we know nothing about touches everything from it
// to the end of its allocation (a kernel does not reach below its pointer).
// Only ranges inside segments are kept (elsewhere the allocation is the
// tensor), and release() forgets a segment's extents, so the map holds what
// live segments contain, not every address the program ever used.
void Residency::learn_extents(const RangeList& ranges) {
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    const Range& range = ranges.data()[i];
    const Allocation* a = address_map().lookup(range.address);
    if (range.bytes == 0 || a == nullptr || a->bytes <= kSegmentBytes) continue;
    std::uint64_t& known = extents_[range.address];
    known = std::max(known, range.bytes);
  }
}

// Call with lock() held (the launch path holds it), for an allocation over
// kSegmentBytes (the launch scan tests that; a smaller one is a tensor of its own).
Residency::Span Residency::narrow_kernel_range(std::uint64_t pointer, const Allocation& a) {
  auto it = extents_.upper_bound(pointer);
  if (it != extents_.begin()) {
    --it;
    if (pointer < it->first + it->second && it->first >= a.base)
      return Span{pointer, std::min(it->first + it->second, a.base + a.bytes) - pointer};
  }
  return Span{pointer, a.base + a.bytes - pointer};
}

void Residency::update_peaks() {
  stats_.peak_device_bytes = std::max(stats_.peak_device_bytes, device_in_use_ * kChunkBytes);
  stats_.peak_host_bytes = std::max(stats_.peak_host_bytes, host_in_use_ * kChunkBytes);
}

ResidencyStats Residency::stats() {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Residency::report_at_exit() {
  const ResidencyStats s = stats();
  if (config().log_level >= 1)
    std::fprintf(stderr,
                 "oversub: peak device %" PRIu64 " MiB of %" PRIu64 " MiB budget, peak host %" PRIu64
                 " MiB, evicted %" PRIu64 " MiB (%" PRIu64 "), prefetched %" PRIu64 " MiB (%" PRIu64
                 "), host waited %.1f ms, %" PRIu64 " ops\n",
                 s.peak_device_bytes >> 20, s.budget_bytes >> 20, s.peak_host_bytes >> 20, s.bytes_evicted >> 20,
                 s.evictions, s.bytes_prefetched >> 20, s.prefetches, double(s.host_wait_ns) / 1e6, s.ops);
  if (config().stats_path.empty()) return;
  const std::string path = expand_process_id(config().stats_path);
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    log_error("OVERSUB_STATS: cannot write %s", path.c_str());
    return;
  }
  std::fprintf(f,
               "{\"budget_bytes\": %" PRIu64 ", \"host_limit_bytes\": %" PRIu64 ", \"peak_device_bytes\": %" PRIu64
               ", \"peak_host_bytes\": %" PRIu64 ", \"peak_allocated_bytes\": %" PRIu64 ", \"bytes_evicted\": %" PRIu64
               ", \"bytes_prefetched\": %" PRIu64 ", \"evictions\": %" PRIu64 ", \"evictions_cancelled\": %" PRIu64
               ", \"prefetches\": %" PRIu64 ", \"prefetches_ahead\": %" PRIu64 ", \"uploads_yielded_to\": %" PRIu64
               ", \"host_wait_ns\": %" PRIu64 ", \"ops\": %" PRIu64 ", \"policy\": \"%s\", \"strict\": %s}\n",
               s.budget_bytes, s.host_limit_bytes, s.peak_device_bytes, s.peak_host_bytes, s.peak_allocated_bytes,
               s.bytes_evicted, s.bytes_prefetched, s.evictions, s.evictions_cancelled, s.prefetches, s.prefetches_ahead,
               s.uploads_yielded_to, s.host_wait_ns, s.ops, std::string(policy_->name()).c_str(), strict_ ? "true" : "false");
  std::fclose(f);
}

}  // namespace oversub
