// The planner thread: Note [Planning off the hot path] in planner.h.
#include "planner.h"

#include <time.h>
#include <unistd.h>

#include <cinttypes>

#include "../log.h"

#include "residency.h"

namespace oversub {

Planner::Planner(Residency* engine, std::uint64_t slot_capacity, std::uint64_t arena_base, std::uint32_t window_ops)
    : engine_(engine),
      base_(arena_base),
      window_ops_(window_ops),
      ring_(new Record[kCapacity]),
      planner_(slot_capacity, policy::LookaheadParams{{}, window_ops}) {}

Planner::~Planner() { stop(); }

void Planner::start(CUcontext context) {
  owner_pid_ = getpid();
  thread_ = std::thread([this, context] {
    real_driver().cuCtxSetCurrent(context);
    run();
  });
}

void Planner::stop() {
  stopping_.store(true, std::memory_order_release);
  if (!thread_.joinable()) return;
  // A child of fork() has no planner thread (threads do not survive fork), only
  // the object: joining it would wait forever.
  if (getpid() != owner_pid_) {
    thread_.detach();
    return;
  }
  thread_.join();
  log_debug("lookahead: %" PRIu64 " ops learned from, %" PRIu64 " predictions broken%s", planner_.ops_observed(),
            planner_.predictions_broken(), dropped_.load() ? "; some records were dropped (the ring was full)" : "");
}

void Planner::push(const Record* records, std::size_t n) {
  const std::uint64_t head = head_.load(std::memory_order_relaxed);
  if (!has_room(head, n)) return;
  for (std::size_t i = 0; i < n; ++i) ring_[(head + i) & kMask] = records[i];
  head_.store(head + n, std::memory_order_release);
}

void Planner::push_alloc(std::uint64_t base, std::uint64_t bytes, std::uint64_t first_slot, std::uint32_t slots,
                         bool shared) {
  const Record r[2] = {Record{kAlloc, 0, 0, base, bytes},
                       Record{kAllocPlace, 0, slots | (shared ? 1u << 31 : 0u), first_slot, 0}};
  push(r, 2);
}

void Planner::push_free(std::uint64_t base) {
  const Record r{kFree, 0, 0, base, 0};
  push(&r, 1);
}

std::size_t Planner::drain() {
  const std::uint64_t head = head_.load(std::memory_order_acquire);
  std::uint64_t tail = tail_.load(std::memory_order_relaxed);
  if (tail == head) return 0;  // an idle program: no clock reading, nothing to tell
  // Note [Early or on demand] in policy/lookahead.h: the planner times steps from when
  // it sees their first op. The ring is drained every 50 us at most, so one reading
  // per batch is as good as one per op at the scale of a step.
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const std::int64_t now_ns = std::int64_t(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
  planner_.set_budget_slots(engine_->budget_for_planner());  // Note [Evicting early]
  std::size_t ops = 0;
  while (tail < head) {
    const Record r = ring_[tail & kMask];
    switch (r.kind) {
      case kAlloc: {
        const Record place = ring_[(tail + 1) & kMask];
        const policy::AllocId id = next_id_++;
        live_[r.a] = Live{id, r.b};
        planner_.on_alloc(id, r.b, policy::no_site, place.a, place.count & 0x7fffffffu, (place.count >> 31) != 0);
        tail += 2;
        break;
      }
      case kFree: {
        if (auto it = live_.find(r.a); it != live_.end()) {
          planner_.on_free(it->second.id);
          live_.erase(it);
        }
        tail += 1;
        break;
      }
      case kOp: {
        policy::OpEvent op;
        op.stream = r.b;
        for (std::uint32_t i = 0; i < r.count; ++i) {
          const Record range = ring_[(tail + 1 + i) & kMask];
          auto it = live_.upper_bound(range.a);
          if (it == live_.begin()) continue;
          --it;
          const std::uint64_t offset = range.a - it->first;
          if (offset >= it->second.bytes) continue;
          const std::uint64_t end = std::min(offset + range.b, it->second.bytes);
          const auto first = static_cast<std::uint32_t>(offset / policy::chunk_bytes);
          const auto last = static_cast<std::uint32_t>((end - 1) / policy::chunk_bytes);
          op.accesses.add(policy::Access{it->second.id, first, last - first + 1,
                                         static_cast<policy::AccessMode>(range.access)});
        }
        planner_.on_op(r.a, op, now_ns);
        tail += 1 + r.count;
        ++ops;
        break;
      }
      default:
        tail += 1;  // a stray range: skip it
        break;
    }
  }
  tail_.store(tail, std::memory_order_release);
  return ops;
}

// Says what Note [Early or on demand] chose, with the step times it compared, when the
// choice changes.
void Planner::report_early_choice() {
  using Choice = policy::LookaheadPlanner::EarlyChoice;
  const policy::LookaheadPlanner::EarlyReport r = planner_.early_report();
  // Only a change of decision: a step learned again chooses again, mostly the same.
  if (r.choice == reported_choice_ || r.choice == Choice::none || r.choice == Choice::trying) return;
  reported_choice_ = r.choice;
  if (r.choice == Choice::early)
    log_info("lookahead: evicting ahead of the step's memory peak (a step took %.1f ms so, %.1f ms on demand)",
             double(r.early_step_ns) / 1e6, double(r.on_demand_step_ns) / 1e6);
  else if (r.choice == Choice::on_demand)
    log_info("lookahead: evicting on demand only (a step took %.1f ms so, %.1f ms evicting ahead of the peak)",
             double(r.on_demand_step_ns) / 1e6, double(r.early_step_ns) / 1e6);
}

void Planner::run() {
  std::size_t since_plan = 0;
  while (!stopping_.load(std::memory_order_acquire)) {
    const std::size_t ops = drain();
    since_plan += ops;
    const bool ready = planner_.ready();
    if (ready != was_ready_) {
      was_ready_ = ready;
      const policy::OpPosition& pos = planner_.learner().position();
      if (ready)
        log_info("lookahead: learned a step of %u ops by op %" PRIu64 "; planning from here", pos.period_ops,
                 planner_.ops_observed());
      else
        log_info("lookahead: lost the step at op %" PRIu64 "; on demand until it is learned again",
                 planner_.ops_observed());
    }
    report_early_choice();
    if (since_plan > 0 && ready && window_ops_ > 0) {
      upcoming_.clear();
      planner_.upcoming(engine_->current_tick(), engine_->plan_capacity(), &upcoming_);
      engine_->apply_plan(upcoming_);
      since_plan = 0;
    }
    if (ops == 0) {
      const timespec pause{0, 50'000};  // 50 us: the ring holds 64 Ki records
      nanosleep(&pause, nullptr);
    }
  }
}

}  // namespace oversub
