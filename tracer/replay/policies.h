// The policies `oversub-trace replay` compares (docs/replay.md defines each):
//   unlimited  no budget: the reference every overhead is measured against;
//   lru        on demand, least recently used victims: fault-driven Unified Memory,
//              and the live shim's OVERSUB_POLICY=lru (policy::LruPolicy);
//   vdnn       vDNN (Rhu et al., MICRO 2016): offload each layer's input in forward,
//              prefetch one layer ahead in backward (Note [Forward, backward, layers]);
//   tflms      TFLMS (Le et al., 2018): swap a tensor out after its last forward use,
//              in a fixed number of ops before its first backward use;
//   lookahead  ours: policy::LookaheadPlanner and policy::LookaheadPolicy, fed the
//              events the live shim feeds them (Note [Replaying lookahead]), as the
//              shim runs them by default (OVERSUB_LOOKAHEAD_OPS=0): victims by
//              predicted next use, chunks brought back on demand;
//   lookahead-prefetch  the same with plans 256 ops ahead (OVERSUB_LOOKAHEAD_OPS=256):
//              chunks also brought back, and room made, ahead of use.
//
// Note [Forward, backward, layers]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// A trace says nothing of layers or passes; vdnn and tflms need both, and read them
// from the step itself:
//  - forward is every op of the step before live device bytes reach their peak in it,
//    backward every op after (activations pile up until the loss, then backward
//    frees them);
//  - a layer starts at each cuBLAS or cuDNN op (a matrix product, a convolution, a
//    batch norm) and runs to the next one, taking the elementwise ops after it along;
//  - only buffers allocated during the step move: weights, gradients and optimizer
//    state (allocated before it) are what both systems keep on the device.
// Both know the whole step in advance (they are graph rewrites); the replay gives them
// that knowledge, exactly, for every step, the first included. They act only when the
// trace does not fit the budget (Note [Footprint] in chunks.h), as a user enables them
// (and as vDNN's dynamic mode first tries to run without offloading). When memory is still
// short they fall back to on-demand eviction of the least recently used chunk
// (policy::LruPolicy), where the published systems would stop with out-of-memory.
//
// Note [Replaying lookahead]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~
// The live shim (shim/engine/planner.cpp) numbers ops with the engine's tick, tells
// the planner each allocation (id, bytes, no call site, its first chunk, chunk count,
// whether it shares a chunk), each free, and each op (its stream and up to
// AccessList::inline_capacity ranges, each a run of chunks of one allocation), then
// asks LookaheadPlanner::upcoming from the current tick for at most plan_capacity
// entries and applies the plan (Note [Plans] in shim/engine/residency.cpp); with
// OVERSUB_LOOKAHEAD_OPS=0 it plans nothing and keeps headroom after each op instead
// (the shim's keep_headroom, after an op that took the slow path), choosing victims with
// LookaheadPolicy. The
// replay does the same, with the modelled duration in the OpEvent, after an op when
// plan_interval_ns of host time have passed since the last plan: the shim's planner
// thread sleeps that long when it finds nothing to do, and a plan is not free either
// (a few thousand hash lookups), so it does not plan after every op of a fast host.
// The replay's planner never lags behind the ops it is told. Victims come from
// LookaheadPolicy; while plans are made no headroom is kept (they keep it), as in the shim.
// Each op also carries the simulated host time, where the shim's planner thread gives its
// CLOCK_MONOTONIC reading, for the step timing of Note [Early or on demand] in
// policy/lookahead.h, and the planner is told the budget (Note [Evicting early]).
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "policy/residency_policy.h"
#include "tracer/replay/chunks.h"
#include "tracer/replay/workload.h"

namespace oversub::replay {

enum class PolicyKind : uint8_t { unlimited, lru, vdnn, tflms, lookahead, lookahead_prefetch };

struct PolicyInfo {
  PolicyKind kind;
  std::string_view name;
  std::string_view description;
};
std::span<const PolicyInfo> replay_policies();
std::optional<PolicyKind> parse_policy(std::string_view name);
std::string_view policy_name(PolicyKind kind);

// tflms brings a tensor back this many ops before its first backward use.
inline constexpr uint32_t default_tflms_ahead_ops = 8;
// OVERSUB_LOOKAHEAD_OPS: the shim's default (plans off), and the window of
// lookahead-prefetch (policy::LookaheadParams' default).
inline constexpr uint32_t default_lookahead_ops = 0;
inline constexpr uint32_t default_prefetch_lookahead_ops = 256;
// The shim's planner thread's pause (shim/engine/planner.cpp).
inline constexpr int64_t plan_interval_ns = 50'000;

struct PolicyParams {
  uint32_t tflms_ahead_ops = default_tflms_ahead_ops;
  uint32_t lookahead_ops = default_lookahead_ops;  // of `lookahead`
  uint32_t prefetch_lookahead_ops = default_prefetch_lookahead_ops;  // of `lookahead-prefetch`
};

class ReplayPolicy {
public:
  virtual ~ReplayPolicy() = default;
  // Chooses victims when the engine must make room.
  virtual policy::ResidencyPolicy& victims() = 0;
  virtual void on_alloc(uint32_t /*alloc*/) {}
  virtual void on_free(uint32_t /*alloc*/) {}
  virtual void on_sync(const Sync& /*sync*/) {}
  // `op` indexes Workload::ops; `tick` is the engine's number for it.
  virtual void before_op(uint32_t /*op*/, uint64_t /*tick*/) {}
  virtual void after_op(uint32_t /*op*/, uint64_t /*tick*/, int64_t /*duration_ns*/) {}
  // Whether it predicts from a learned step now (lookahead's planner is ready); nullopt
  // for policies that learn nothing.
  virtual std::optional<bool> learned() const { return std::nullopt; }
  // lookahead: ReplayResult::early_eviction; nullopt for the others.
  virtual std::optional<std::string> early_eviction() const { return std::nullopt; }
};

std::unique_ptr<ReplayPolicy> make_replay_policy(PolicyKind kind, const Workload& workload, ChunkEngine* engine,
                                                 const Simulator& sim, const PolicyParams& params);

}  // namespace oversub::replay
