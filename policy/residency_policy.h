// The narrow interface between the residency engine (shim/engine) and a
// policy: the engine reports what it holds and asks for decisions; the policy
// never touches CUDA, memory or clocks (CONVENTIONS.md 8), so the same code
// runs live and in offline replay.
//
// Note [Policy decisions]
// Two questions, asked by the engine:
//  - choose_victims: the engine needs `count` device chunks for the op it is
//    submitting (its tick); which resident chunks go? Chunks the op itself uses
//    carry last_use_tick == op_tick and must not be chosen.
//  - proactive_evictions: the engine would start `wanted` evictions ahead of demand
//    (its headroom, or room a plan reserves); how many are worth it? A policy that
//    knows the program's live memory never exceeds the budget answers 0: nothing
//    needs to move, and an eviction would only have to come back.
//  - after_op (only when plans_ahead()): the op with this tick was submitted
//    using these chunks; which chunks should be evicted after it, and which
//    brought back before a later op? The on-demand lru policy plans nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace oversub::policy {

// Note [Victims that wait]
// An eviction's copy runs after the chunk's last use and after the copy that
// brought it back (Note [Ordering an eviction after the last use]). A chunk
// whose last use may still be running is `busy`: its copy waits for that op,
// and our device-to-host stream runs in order, so every eviction queued behind
// it waits too, and so does the host when it needs the memory now. When the
// host runs ahead of the device (long kernels, or ops waiting for chunks
// coming back), the chunks used most recently are all busy, and a policy that
// ranks by next use alone picks exactly those: the furthest next use is often
// a chunk the op just submitted wrote. In the replay that made lookahead wait
// several times as long as lru for the same bytes on fast links (3D U-Net at
// 75% on v100-32gb-nvlink: host stall 219 ms against 55 ms).
// So the engine says which candidates are busy, as far as it knows cheaply
// (the live engine: last use after the newest epoch known complete, or a
// bring-back not yet known done; the replay: exactly), and the lookahead policy
// takes idle chunks first; among busy ones, the least recently used, whose op
// is the first to finish.
struct ChunkCandidate {
  std::uint64_t chunk;          // the engine's chunk index
  std::uint64_t last_use_tick;  // tick of the last op that used it
  bool busy = false;            // its eviction would wait for work on the device (Note [Victims that wait])
};

struct Decisions {
  std::vector<std::uint64_t> evict;     // after the op just submitted
  std::vector<std::uint64_t> prefetch;  // ahead of the ops that follow
};

class ResidencyPolicy {
 public:
  virtual ~ResidencyPolicy() = default;
  virtual std::string_view name() const = 0;
  // Appends at most `count` victims to `victims`, best first.
  virtual void choose_victims(std::span<const ChunkCandidate> resident, std::size_t count, std::uint64_t op_tick,
                              std::vector<std::uint64_t>* victims) = 0;
  // Note [Policy decisions]. `budget_chunks`: the engine's device budget. Not on the hot
  // path: asked only when the engine would evict ahead of demand.
  virtual std::uint64_t proactive_evictions(std::uint64_t wanted, std::uint64_t /*budget_chunks*/) const
  {
    return wanted;
  }
  // Note [Evicting early] in policy/lookahead.h: how many chunks the engine should have
  // free or on their way now, ahead of a predicted rise of live memory that the budget
  // cannot hold; the tick of the peak it rises to, and the first tick after it at which
  // live memory fits the budget again. None by default: only a policy that learned the
  // step's memory curve knows.
  struct Rise {
    std::uint64_t chunks = 0;
    std::uint64_t peak_tick = 0;
    std::uint64_t fits_tick = 0;
  };
  virtual Rise predicted_rise(std::uint64_t /*budget_chunks*/) const { return {}; }
  // Appends at most `count` victims for the rise, best first: only chunks not needed
  // again before live memory fits the budget (or freed, unused, after the peak).
  virtual void choose_early_victims(std::span<const ChunkCandidate> /*resident*/, std::size_t /*count*/,
                                    std::uint64_t /*op_tick*/, const Rise& /*rise*/,
                                    std::vector<std::uint64_t>* /*victims*/)
  {
  }
  // Whether after_op is worth calling (it is on the hot path otherwise).
  virtual bool plans_ahead() const { return false; }
  virtual void after_op(std::uint64_t /*op_tick*/, std::span<const std::uint64_t> /*chunks*/, Decisions* /*out*/) {}
};

// `lru`: on demand, the least recently used chunks first (the behaviour of
// fault-driven Unified Memory, and the baseline the learned policy must beat).
class LruPolicy final : public ResidencyPolicy {
 public:
  std::string_view name() const override { return "lru"; }
  void choose_victims(std::span<const ChunkCandidate> resident, std::size_t count, std::uint64_t op_tick,
                      std::vector<std::uint64_t>* victims) override;
};

// The policy named `name`, or nullptr for a name no policy has.
std::unique_ptr<ResidencyPolicy> make_policy(std::string_view name);

}  // namespace oversub::policy
