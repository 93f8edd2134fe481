// The live side of the lookahead policy: the engine hands every op, allocation
// and free to a ring; a planner thread feeds them to policy::LookaheadPlanner and
// asks the engine to bring back what the next ops need.
//
// Note [Planning off the hot path]
// Learning the step costs hash lookups per op: too much for an intercepted launch,
// which must stay at tens of nanoseconds. So the engine only copies the op's ranges
// into a ring (a few stores per range, under the engine lock it already holds, so
// there is one producer at a time), and a thread of ours drains the ring, learns,
// and plans. It lags the program by a few ops; the plan accounts for that by
// starting from the engine's current op (LookaheadPlanner::upcoming). If the ring
// is full, records are dropped and the learner relearns: a lost record costs
// prediction quality, never correctness (every op still makes its own chunks
// resident on demand).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <thread>

#include <sys/types.h>
#include <vector>

#include "engine.h"
#include "policy/lookahead.h"

namespace oversub {

class Residency;

class Planner {
 public:
  Planner(Residency* engine, std::uint64_t slot_capacity, std::uint64_t arena_base, std::uint32_t window_ops);
  ~Planner();
  Planner(const Planner&) = delete;
  Planner& operator=(const Planner&) = delete;

  void start(CUcontext context);  // the thread runs with `context` current
  void stop();  // joins the thread (at exit)

  // Producer side: call with the engine lock held.
  void push_op(std::uint64_t tick, std::uint64_t stream, const RangeList& ranges, std::uint64_t arena_bytes) {
    const std::size_t n = ranges.size() < kMaxRanges ? ranges.size() : kMaxRanges;
    std::uint64_t head = head_.load(std::memory_order_relaxed);
    if (!has_room(head, 1 + n)) return;
    std::uint32_t count = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const Range& r = ranges.data()[i];
      if (r.address - base_ >= arena_bytes || r.bytes == 0) continue;
      ring_[(head + 1 + count) & kMask] = Record{kRange, static_cast<std::uint8_t>(r.access), 0, r.address, r.bytes};
      ++count;
    }
    ring_[head & kMask] = Record{kOp, 0, count, tick, stream};
    head_.store(head + 1 + count, std::memory_order_release);
  }
  void push_alloc(std::uint64_t base, std::uint64_t bytes, std::uint64_t first_slot, std::uint32_t slots, bool shared);
  void push_free(std::uint64_t base);

  const policy::LookaheadPlanner& planner() const { return planner_; }
  bool plans() const { return window_ops_ > 0; }  // OVERSUB_LOOKAHEAD_OPS > 0

 private:
  enum Kind : std::uint8_t { kOp, kRange, kAlloc, kAllocPlace, kFree };
  struct Record {
    Kind kind;
    std::uint8_t access;
    std::uint32_t count;  // op: ranges that follow; alloc place: slot count (| shared << 31)
    std::uint64_t a, b;   // op: tick, stream; range: address, bytes; alloc: base, bytes; place: first slot
  };
  static constexpr std::size_t kCapacity = std::size_t{1} << 16;
  static constexpr std::size_t kMask = kCapacity - 1;
  static constexpr std::size_t kMaxRanges = policy::AccessList::inline_capacity;

  void push(const Record* records, std::size_t n);
  // Producer side: room for `n` records after `head`? Reads the consumer's
  // tail only when the copy seen last says the ring is full, so that a push
  // does not pull the consumer's cache line on every op.
  bool has_room(std::uint64_t head, std::size_t n) {
    if (head + n - tail_seen_ <= kCapacity) return true;
    tail_seen_ = tail_.load(std::memory_order_acquire);
    if (head + n - tail_seen_ <= kCapacity) return true;
    dropped_.store(true, std::memory_order_relaxed);
    return false;
  }
  void run();
  std::size_t drain();  // ops consumed
  void report_early_choice();

  Residency* engine_;
  std::uint64_t base_;
  std::uint32_t window_ops_;
  std::unique_ptr<Record[]> ring_;
  alignas(64) std::atomic<std::uint64_t> head_{0};
  std::uint64_t tail_seen_ = 0;  // producer's copy of tail_ (engine lock)
  alignas(64) std::atomic<std::uint64_t> tail_{0};
  std::atomic<bool> dropped_{false};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  pid_t owner_pid_ = 0;

  // Consumer side (the planner thread only).
  policy::LookaheadPlanner planner_;
  struct Live {
    policy::AllocId id;
    std::uint64_t bytes;
  };
  std::map<std::uint64_t, Live> live_;  // by base address
  policy::AllocId next_id_ = 1;
  std::vector<std::uint64_t> upcoming_;
  policy::LookaheadPlanner::EarlyChoice reported_choice_ = policy::LookaheadPlanner::EarlyChoice::none;
  bool was_ready_ = false;
};

}  // namespace oversub
