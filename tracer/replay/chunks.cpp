// The replay's residency engine: see chunks.h.
#include "tracer/replay/chunks.h"

#include <algorithm>
#include <array>

#include "policy/events.h"

namespace oversub::replay {
namespace {

constexpr uint64_t small_allocation_bytes = uint64_t{1} << 20;  // below: packed (Note [Replay chunks])
constexpr uint64_t small_align_bytes = 512;

}  // namespace

uint64_t place_allocations(const Workload& workload, std::vector<Placement>* placements)
{
  placements->assign(workload.allocs.size(), Placement{});
  uint64_t next_chunk = 0;
  uint64_t shared_chunk = 0;
  uint64_t shared_used = policy::chunk_bytes;  // no open shared chunk yet
  for (const Item& item : workload.items) {
    if (item.kind != ItemKind::alloc) continue;
    const uint64_t bytes = workload.allocs[item.index].bytes;
    Placement& place = (*placements)[item.index];
    if (bytes == 0) continue;
    if (bytes >= small_allocation_bytes) {
      place = {next_chunk, policy::chunks_for_bytes(bytes), false};
      next_chunk += place.chunk_count;
      continue;
    }
    const uint64_t rounded = (bytes + small_align_bytes - 1) / small_align_bytes * small_align_bytes;
    if (shared_used + rounded > policy::chunk_bytes) {
      shared_chunk = next_chunk++;
      shared_used = 0;
    }
    shared_used += rounded;
    place = {shared_chunk, 1, true};
  }
  return next_chunk;
}

uint64_t footprint_chunks(const Workload& workload)
{
  std::vector<Placement> placements;
  std::vector<uint32_t> users(place_allocations(workload, &placements));
  const size_t recorded_end = workload.repeated_steps > 0
                                ? workload.step_starts[workload.step_starts.size() - 1 - workload.repeated_steps]
                                : workload.items.size();
  uint64_t live = 0;
  uint64_t peak = 0;
  for (size_t i = 0; i < recorded_end; ++i) {
    const Item& item = workload.items[i];
    if (item.kind != ItemKind::alloc && item.kind != ItemKind::free) continue;
    const Placement& place = placements[item.index];
    for (uint64_t c = place.first_chunk; c < place.first_chunk + place.chunk_count; ++c) {
      if (item.kind == ItemKind::alloc) {
        live += users[c]++ == 0;
      } else {
        live -= --users[c] == 0;
      }
    }
    peak = std::max(peak, live);
  }
  return peak;
}

ChunkEngine::ChunkEngine(Simulator* sim, const Workload& workload, uint64_t budget_chunks)
  : sim_(*sim), budget_(budget_chunks)
{
  chunks_.resize(place_allocations(workload, &placements_));
}

void ChunkEngine::on_alloc(uint32_t alloc)
{
  const Placement& place = placements_[alloc];
  for (uint64_t c = place.first_chunk; c < place.first_chunk + place.chunk_count; ++c) {
    Chunk& chunk = chunks_[c];
    if (chunk.state == State::free) chunk = Chunk{State::unbacked};
    ++chunk.users;
  }
}

void ChunkEngine::on_free(uint32_t alloc)
{
  const Placement& place = placements_[alloc];
  for (uint64_t c = place.first_chunk; c < place.first_chunk + place.chunk_count; ++c) {
    Chunk& chunk = chunks_[c];
    if (--chunk.users > 0) continue;
    if (chunk.state == State::device) {
      make_not_resident(c);
      --used_;
    } else if (chunk.state == State::evicting) {
      stop_evicting(c);  // its copy still runs; nobody waits for it
      --used_;
    }
    chunk.state = State::free;
  }
}

void ChunkEngine::chunks_of(const Op& op, std::vector<Touch>* out)
{
  ++touch_stamp_;
  for (const ChunkAccess& a : op.accesses) {
    const Placement& place = placements_[a.alloc];
    const bool writes = a.access != trace::Access::read;
    const uint64_t first = place.shared ? 0 : a.chunk_first;
    const uint64_t end = place.shared ? 1 : std::min<uint64_t>(a.chunk_first + a.chunk_count, place.chunk_count);
    for (uint64_t k = first; k < end; ++k) {
      const uint64_t c = place.first_chunk + k;
      if (chunks_[c].touched_tick == touch_stamp_) {
        (*out)[chunks_[c].touch_index].writes |= writes;
        continue;
      }
      chunks_[c].touched_tick = touch_stamp_;
      chunks_[c].touch_index = static_cast<uint32_t>(out->size());
      out->push_back({c, writes});
    }
  }
}

void ChunkEngine::make_resident(uint64_t chunk)
{
  chunks_[chunk].state = State::device;
  chunks_[chunk].resident_index = static_cast<uint32_t>(resident_.size());
  resident_.push_back(chunk);
}

void ChunkEngine::make_not_resident(uint64_t chunk)
{
  const uint32_t index = chunks_[chunk].resident_index;
  const uint64_t moved = resident_.back();
  resident_[index] = moved;
  chunks_[moved].resident_index = index;
  resident_.pop_back();
}

void ChunkEngine::use_memory()
{
  ++used_;
  peak_ = std::max(peak_, used_);
  peak_since_mark_ = std::max(peak_since_mark_, used_);
}

bool ChunkEngine::start_eviction(uint64_t chunk, std::span<const TaskId> after)
{
  Chunk& c = chunks_[chunk];
  if (c.state != State::device) return false;
  // After the chunk's last use, and after the copy that brought it back (the shim's fence).
  std::array<TaskId, 2 + max_uploads> deps{c.last_use, c.ready};
  const size_t count = 2 + std::min(after.size(), max_uploads);
  std::copy(after.begin(), after.begin() + static_cast<std::ptrdiff_t>(count - 2), deps.begin() + 2);
  c.evict_copy = sim_.copy(CopyWay::d2h, policy::chunk_bytes, std::span(deps.data(), count), std::nullopt);
  c.ready = no_task;
  make_not_resident(chunk);
  c.state = State::evicting;
  evicting_.emplace_back(chunk, ++c.evictions);
  ++evicting_count_;
  stats_.bytes_d2h += policy::chunk_bytes;
  ++stats_.evictions;
  return true;
}

void ChunkEngine::finish_eviction(uint64_t chunk, bool wait)
{
  Chunk& c = chunks_[chunk];
  if (wait) stats_.host_stall_ns += sim_.wait(c.evict_copy);
  c.evict_copy = no_task;
  stop_evicting(chunk);
  c.state = State::host;
  --used_;
}

std::optional<uint64_t> ChunkEngine::oldest_eviction()
{
  while (!evicting_.empty() && !evicting(evicting_.front().first, evicting_.front().second)) evicting_.pop_front();
  if (evicting_.empty()) return std::nullopt;
  return evicting_.front().first;
}

// The chunk leaves state evicting (the caller sets the next one); its entry goes stale.
void ChunkEngine::stop_evicting(uint64_t chunk)
{
  chunks_[chunk].state = State::host;
  --evicting_count_;
}

void ChunkEngine::reclaim()
{
  for (std::optional<uint64_t> c = oldest_eviction(); c && sim_.done(chunks_[*c].evict_copy); c = oldest_eviction()) {
    finish_eviction(*c, false);
  }
}

void ChunkEngine::cancel_eviction(uint64_t chunk)
{
  Chunk& c = chunks_[chunk];
  // The copy may still read the chunk: its next user waits for it (the shim's after_copy).
  c.ready = c.evict_copy;
  c.evict_copy = no_task;
  stop_evicting(chunk);
  make_resident(chunk);
  ++stats_.evictions_cancelled;
}

void ChunkEngine::bring_back(uint64_t chunk)
{
  Chunk& c = chunks_[chunk];
  c.ready = sim_.copy(CopyWay::h2d, policy::chunk_bytes, {}, std::nullopt);
  make_resident(chunk);
  use_memory();
  stats_.bytes_h2d += policy::chunk_bytes;
  ++stats_.prefetches;
}

bool ChunkEngine::bring_back_ahead(uint64_t chunk)
{
  reclaim();
  if (chunks_[chunk].state != State::host || used_ >= budget_) return false;
  bring_back(chunk);
  ++stats_.prefetches_ahead;
  return true;
}

void ChunkEngine::candidates(bool include_planned, std::vector<policy::ChunkCandidate>* out) const
{
  out->reserve(out->size() + resident_.size());
  for (uint64_t c : resident_) {
    if (include_planned || plan_gen_ == 0 || chunks_[c].planned_gen != plan_gen_) {
      // Note [Victims that wait] in policy/residency_policy.h: known exactly here.
      const Chunk& chunk = chunks_[c];
      out->push_back({c, chunk.last_use_tick, !sim_.done(chunk.last_use) || !sim_.done(chunk.ready)});
    }
  }
}

// Note [Victims of one op]
// ~~~~~~~~~~~~~~~~~~~~~~~~~
// The shim asks the policy for one victim at a time, and each question ranks every
// resident chunk: O(resident) per chunk, which for an op bringing back hundreds of
// chunks makes a replay take minutes. The replay asks once per op for as many victims
// as the op has chunks to place, and takes them in the policy's order, skipping any
// that no longer qualify (no longer resident, used by this op, or needed by a plan
// made since). Within one op the policies' rankings do not change (their inputs, the
// last-use ticks and the planner's predictions, only change between ops), so the
// victims are the ones the shim would choose, found in one pass.
bool ChunkEngine::obtain(uint64_t tick, policy::ResidencyPolicy& policy)
{
  reclaim();
  if (used_ < budget_) return true;
  if (const std::optional<uint64_t> oldest = oldest_eviction()) {  // its copy is the closest to done
    finish_eviction(*oldest, true);
    return true;
  }
  const auto usable = [&](uint64_t c, bool include_planned) {
    return chunks_[c].state == State::device && chunks_[c].last_use_tick < tick &&
           (include_planned || plan_gen_ == 0 || chunks_[c].planned_gen != plan_gen_);
  };
  been_short_ = true;  // Note [Headroom once short] in shim/engine/residency.cpp
  if (victims_tick_ != tick || victims_plan_gen_ != plan_gen_) victims_.clear();
  while (!victims_.empty() && !usable(victims_.back(), true)) victims_.pop_back();
  if (victims_.empty()) {
    victims_tick_ = tick;
    victims_plan_gen_ = plan_gen_;
    std::vector<policy::ChunkCandidate> resident;
    candidates(false, &resident);
    policy.choose_victims(resident, victims_wanted_, tick, &victims_);
    if (victims_.empty()) {  // everything left is planned: the op that asks now comes first
      resident.clear();
      candidates(true, &resident);
      policy.choose_victims(resident, victims_wanted_, tick, &victims_);
    }
    std::reverse(victims_.begin(), victims_.end());
  }
  if (victims_.empty()) return false;
  const uint64_t victim = victims_.back();
  victims_.pop_back();
  start_eviction(victim);
  finish_eviction(victim, true);
  return true;
}

bool ChunkEngine::prepare(std::span<const Touch> touches, uint64_t tick, uint64_t stream,
                          policy::ResidencyPolicy& policy, std::vector<TaskId>* deps)
{
  // First the op's own chunks: none of them may be chosen as a victim for another.
  victims_wanted_ = 1;
  last_prepare_slow_ = false;
  for (const Touch& t : touches) {
    const Chunk& c = chunks_[t.chunk];
    last_prepare_slow_ |= c.state != State::device || (c.ready != no_task && !sim_.done(c.ready));
  }
  for (const Touch& t : touches) {
    if (chunks_[t.chunk].state == State::evicting) cancel_eviction(t.chunk);
    chunks_[t.chunk].last_use_tick = tick;
    victims_wanted_ += chunks_[t.chunk].state == State::unbacked || chunks_[t.chunk].state == State::host;
  }
  for (const Touch& t : touches) {
    Chunk& c = chunks_[t.chunk];
    if (c.state == State::unbacked || c.state == State::host) {
      if (!obtain(tick, policy)) return false;
      if (c.state == State::host) {
        bring_back(t.chunk);
      } else {
        make_resident(t.chunk);
        use_memory();
      }
    }
    if (c.ready != no_task) {
      if (sim_.done(c.ready)) {
        c.ready = no_task;
      } else {
        deps->push_back(c.ready);
      }
    }
    // The program orders a use on another stream after the write (it must, to be correct).
    if (c.last_write != no_task && c.last_write_stream != stream) deps->push_back(c.last_write);
  }
  return true;
}

void ChunkEngine::used_by(std::span<const Touch> touches, TaskId task, uint64_t stream)
{
  for (const Touch& t : touches) {
    Chunk& c = chunks_[t.chunk];
    c.last_use = task;
    if (t.writes) {
      c.last_write = task;
      c.last_write_stream = stream;
    }
  }
}

void ChunkEngine::keep_headroom(uint64_t tick, policy::ResidencyPolicy& policy)
{
  if (!been_short_) return;  // as the shim: Note [Headroom once short] in shim/engine/residency.cpp
  reclaim();
  const uint64_t want = std::max<uint64_t>(2, budget_ / 16);
  std::vector<policy::ChunkCandidate> resident;
  std::vector<uint64_t> victims;
  if (const uint64_t available = free_chunks() + evicting_count_; available < want) {
    const uint64_t count = policy.proactive_evictions(want - available, budget_);
    if (count == 0) return;  // nothing needs to move, early or not
    candidates(false, &resident);
    policy.choose_victims(resident, count, tick, &victims);
    start_background_evictions(victims);
  }
  // Note [Evicting early] in policy/lookahead.h.
  const policy::ResidencyPolicy::Rise rise = policy.predicted_rise(budget_);
  const uint64_t available = free_chunks() + evicting_count_;
  if (rise.chunks <= available) return;
  resident.clear();
  victims.clear();
  candidates(false, &resident);
  policy.choose_early_victims(resident, rise.chunks - available, tick, rise, &victims);
  start_background_evictions(victims);
}

void ChunkEngine::issued_upload(TaskId task, TaskId previous)
{
  const bool follows = previous != no_task && !uploads_.empty() && uploads_.back().task == previous;
  if (uploads_.size() == max_uploads) uploads_.erase(uploads_.begin());  // the shim's kMaxUploads
  uploads_.push_back({task, follows});
}

void ChunkEngine::uploads_to_yield_to(std::vector<TaskId>* out)
{
  out->clear();
  bool previous_waited = false;
  size_t kept = 0;
  for (Upload& u : uploads_) {
    if (sim_.done(u.task)) {
      previous_waited = false;
      continue;
    }
    // On the link (its stream's earlier work is done), or queued right behind one that is.
    if (!u.waited && (sim_.may_start(u.task) || (u.follows && previous_waited))) {
      u.waited = true;
      out->push_back(u.task);
      ++stats_.uploads_yielded_to;
    }
    previous_waited = u.waited;
    uploads_[kept++] = u;
  }
  uploads_.resize(kept);
}

void ChunkEngine::start_background_evictions(std::span<const uint64_t> victims)
{
  if (victims.empty()) return;
  std::vector<TaskId> after;
  uploads_to_yield_to(&after);
  // The device-to-host engine runs in order, as the shim's stream does after its one
  // wait: the first eviction started waits for the uploads, and the rest follow it.
  for (uint64_t v : victims) {
    if (start_eviction(v, after)) after.clear();
  }
}

void ChunkEngine::apply_plan(std::span<const uint64_t> upcoming, uint64_t tick, policy::ResidencyPolicy& policy)
{
  if (++plan_gen_ == 0) plan_gen_ = 1;
  for (uint64_t k : upcoming) {
    if (k < chunks_.size()) chunks_[k].planned_gen = plan_gen_;
  }
  reclaim();
  uint64_t reserved = 0;  // entries so far that will need device memory at their use
  for (uint64_t k : upcoming) {
    if (k >= chunks_.size()) {  // fresh: a buffer not allocated yet
      ++reserved;
      continue;
    }
    const State state = chunks_[k].state;
    if (state == State::evicting) {
      cancel_eviction(k);
      continue;
    }
    if (state == State::unbacked) ++reserved;
    if (state != State::host) continue;
    if (free_chunks() <= reserved) {
      ++reserved;
      continue;
    }
    bring_back(k);
    ++stats_.prefetches_ahead;
  }
  const uint64_t coming = free_chunks() + evicting_count_;
  if (reserved <= coming) return;
  constexpr uint64_t max_evictions_per_plan = 16;  // the shim's kMaxEvictionsPerPlan
  const uint64_t count = policy.proactive_evictions(std::min(reserved - coming, max_evictions_per_plan), budget_);
  if (count == 0) return;
  std::vector<policy::ChunkCandidate> resident;
  candidates(false, &resident);
  std::vector<uint64_t> victims;
  policy.choose_victims(resident, count, tick + 1, &victims);
  start_background_evictions(victims);
}

}  // namespace oversub::replay
