// The replay policies: see policies.h.
#include "tracer/replay/policies.h"

#include <algorithm>
#include <array>
#include <unordered_map>

#include <fmt/format.h>

#include "policy/events.h"
#include "policy/lookahead.h"

namespace oversub::replay {
namespace {

constexpr std::array<PolicyInfo, 6> policies = {{
    {PolicyKind::unlimited, "unlimited", "no budget: the reference for overheads"},
    {PolicyKind::lru, "lru", "on demand, least recently used victims (fault-driven Unified Memory)"},
    {PolicyKind::vdnn, "vdnn", "offload each layer's input in forward, prefetch one layer ahead in backward"},
    {PolicyKind::tflms, "tflms", "swap out after the last forward use, swap in a fixed number of ops ahead"},
    {PolicyKind::lookahead, "lookahead", "ours, as the shim runs by default: learn the step, evict by next use"},
    {PolicyKind::lookahead_prefetch, "lookahead-prefetch",
     "ours with OVERSUB_LOOKAHEAD_OPS=256: also bring chunks back ahead of use"},
}};

// unlimited and lru: on demand; lru keeps headroom as the shim does.
class OnDemand final : public ReplayPolicy {
public:
  OnDemand(ChunkEngine* engine, bool keep_headroom) : engine_(*engine), keep_headroom_(keep_headroom) {}
  policy::ResidencyPolicy& victims() override { return lru_; }
  void after_op(uint32_t /*op*/, uint64_t tick, int64_t /*duration_ns*/) override
  {
    if (keep_headroom_ && engine_.last_prepare_was_slow()) engine_.keep_headroom(tick, lru_);
  }

private:
  ChunkEngine& engine_;
  bool keep_headroom_;
  policy::LruPolicy lru_;
};

// Note [Replaying lookahead] in policies.h.
class Lookahead final : public ReplayPolicy {
public:
  Lookahead(const Workload& workload, ChunkEngine* engine, const Simulator& sim, uint32_t window_ops)
    : workload_(workload),
      engine_(*engine),
      planner_(engine->chunk_capacity(), policy::LookaheadParams{{}, window_ops}),
      victims_(&planner_),
      window_ops_(window_ops),
      sim_(sim)
  {
    // The shim's plan capacity: the budget less room for new allocations and misses.
    const uint64_t budget = engine_.budget_chunks();
    planner_.set_budget_slots(budget);  // Note [Evicting early] in policy/lookahead.h
    plan_capacity_ = budget - std::min<uint64_t>(budget, std::max<uint64_t>(2, budget / 4));
  }
  policy::ResidencyPolicy& victims() override { return victims_; }
  std::optional<bool> learned() const override { return planner_.ready(); }
  std::optional<std::string> early_eviction() const override
  {
    using Choice = policy::LookaheadPlanner::EarlyChoice;
    const policy::LookaheadPlanner::EarlyReport r = planner_.early_report();
    const auto ms = [](int64_t ns) { return fmt::format("{:.2f} ms", static_cast<double>(ns) / 1e6); };
    switch (r.choice) {
      case Choice::none:
        return "not needed";
      case Choice::trying:
        return "still being timed";
      case Choice::early:
        return fmt::format("on (a step took {} evicting early, {} on demand)", ms(r.early_step_ns), ms(r.on_demand_step_ns));
      case Choice::on_demand:
        return fmt::format("off (a step took {} on demand, {} evicting early)", ms(r.on_demand_step_ns), ms(r.early_step_ns));
    }
    return std::nullopt;
  }
  void on_alloc(uint32_t alloc) override
  {
    const Placement& place = engine_.placement(alloc);
    planner_.on_alloc(alloc + 1, workload_.allocs[alloc].bytes, policy::no_site, place.first_chunk, place.chunk_count,
                      place.shared);
  }
  void on_free(uint32_t alloc) override { planner_.on_free(alloc + 1); }
  void on_sync(const Sync& sync) override
  {
    planner_.on_sync(policy::SyncEvent{static_cast<policy::SyncKind>(sync.kind), sync.handle});
  }
  void after_op(uint32_t op_index, uint64_t tick, int64_t duration_ns) override
  {
    const Op& op = workload_.ops[op_index];
    policy::OpEvent event;
    event.stream = op.stream;
    event.duration_ns = duration_ns;
    for (const ChunkAccess& a : op.accesses) {
      if (!event.accesses.add(policy::Access{a.alloc + 1, a.chunk_first, a.chunk_count,
                                             static_cast<policy::AccessMode>(a.access)})) {
        break;  // the shim's ring carries at most inline_capacity ranges of an op
      }
    }
    planner_.on_op(tick, event, sim_.now());
    if (window_ops_ == 0) {  // on demand only: victims by next use, and headroom kept
      if (engine_.last_prepare_was_slow()) engine_.keep_headroom(tick, victims_);
      return;
    }
    if (!planner_.ready()) return;
    // Note [Replaying lookahead]: the planner thread's cadence.
    if (planned_ && sim_.now() < last_plan_ns_ + plan_interval_ns) return;
    planned_ = true;
    last_plan_ns_ = sim_.now();
    upcoming_.clear();
    planner_.upcoming(tick, plan_capacity_, &upcoming_);
    engine_.apply_plan(upcoming_, tick, victims_);
  }

private:
  const Workload& workload_;
  ChunkEngine& engine_;
  policy::LookaheadPlanner planner_;
  policy::LookaheadPolicy victims_;
  uint32_t window_ops_;
  uint64_t plan_capacity_ = 0;
  std::vector<uint64_t> upcoming_;
  const Simulator& sim_;
  bool planned_ = false;
  int64_t last_plan_ns_ = 0;
};

// What a step-aware baseline (vdnn, tflms) does around each op, per allocation.
struct Schedule {
  std::unordered_map<uint32_t, std::vector<uint32_t>> evict_after;     // op -> allocations
  std::unordered_map<uint32_t, std::vector<uint32_t>> prefetch_before;  // op -> allocations
};

// One step as Note [Forward, backward, layers] reads it.
struct StepShape {
  std::vector<uint32_t> ops;           // Workload::ops indices, in order
  size_t backward_from = 0;            // position in `ops` of the first backward op
  std::vector<uint32_t> layer_of;      // per position: its layer number
  std::vector<size_t> layer_start;     // per layer: position of its first op
  // Allocations made during the step: their uses, as positions in `ops`.
  std::unordered_map<uint32_t, std::vector<uint32_t>> uses;
  std::unordered_map<uint32_t, std::vector<uint32_t>> reads;
};

StepShape shape_of(const Workload& w, size_t begin, size_t end)
{
  StepShape s;
  uint64_t live = 0;
  uint64_t peak = 0;
  bool peak_seen = false;
  for (size_t i = begin; i < end; ++i) {
    const Item& item = w.items[i];
    if (item.kind == ItemKind::alloc) {
      live += w.allocs[item.index].bytes;
      s.uses.try_emplace(item.index);
      s.reads.try_emplace(item.index);
      if (!peak_seen || live > peak) {
        peak = live;
        peak_seen = true;
        s.backward_from = s.ops.size();
      }
    } else if (item.kind == ItemKind::free) {
      live -= w.allocs[item.index].bytes;
    } else if (item.kind == ItemKind::op) {
      const Op& op = w.ops[item.index];
      const auto position = static_cast<uint32_t>(s.ops.size());
      const bool starts_layer = op.kind == trace::OpKind::cublas || op.kind == trace::OpKind::cudnn;
      if (starts_layer || s.layer_start.empty()) s.layer_start.push_back(position);
      s.layer_of.push_back(static_cast<uint32_t>(s.layer_start.size() - 1));
      s.ops.push_back(item.index);
      for (const ChunkAccess& a : op.accesses) {
        auto it = s.uses.find(a.alloc);
        if (it == s.uses.end()) continue;  // allocated before the step
        if (it->second.empty() || it->second.back() != position) it->second.push_back(position);
        if (a.access != trace::Access::write) {
          auto& r = s.reads[a.alloc];
          if (r.empty() || r.back() != position) r.push_back(position);
        }
      }
    }
  }
  return s;
}

// tflms: out after the last forward use, back `ahead` ops before the first backward use.
void schedule_tflms(const StepShape& s, uint32_t ahead, Schedule* out)
{
  if (s.backward_from >= s.ops.size()) return;  // no backward pass seen
  for (const auto& [alloc, uses] : s.uses) {
    const auto first_backward = std::lower_bound(uses.begin(), uses.end(), s.backward_from);
    if (first_backward == uses.begin() || first_backward == uses.end()) continue;
    const uint32_t last_forward = *std::prev(first_backward);
    const uint32_t back_at = std::max(last_forward + 1, *first_backward > ahead ? *first_backward - ahead : 0u);
    out->evict_after[s.ops[last_forward]].push_back(alloc);
    out->prefetch_before[s.ops[back_at]].push_back(alloc);
  }
}

// vdnn: a forward layer's inputs (read by it, made before it) whose next use is in
// backward go out after the layer; each comes back at the start of the backward layer
// before the one that uses it.
void schedule_vdnn(const StepShape& s, Schedule* out)
{
  if (s.backward_from >= s.ops.size()) return;  // no backward pass seen
  for (const auto& [alloc, reads] : s.reads) {
    const std::vector<uint32_t>& uses = s.uses.at(alloc);
    if (uses.empty()) continue;
    const uint32_t made_at = uses.front();
    for (uint32_t position : reads) {
      if (position >= s.backward_from) break;
      const uint32_t layer = s.layer_of[position];
      if (made_at >= s.layer_start[layer]) continue;  // made inside the layer: not its input
      const size_t layer_end = layer + 1 < s.layer_start.size() ? s.layer_start[layer + 1] : s.ops.size();
      const auto next = std::lower_bound(uses.begin(), uses.end(), static_cast<uint32_t>(layer_end));
      if (next == uses.end() || *next < s.backward_from) continue;  // used again in forward, or never
      out->evict_after[s.ops[layer_end - 1]].push_back(alloc);
      const uint32_t use_layer = s.layer_of[*next];
      const uint32_t backward_layer = s.layer_of[s.backward_from];
      const uint32_t at_layer = use_layer > backward_layer ? use_layer - 1 : backward_layer;
      const size_t at = std::max<size_t>(s.layer_start[at_layer], s.backward_from);
      out->prefetch_before[s.ops[std::min(at, static_cast<size_t>(*next))]].push_back(alloc);
      break;
    }
  }
}

class StepAware final : public ReplayPolicy {
public:
  StepAware(PolicyKind kind, const Workload& w, ChunkEngine* engine, const PolicyParams& params) : engine_(*engine)
  {
    if (w.footprint_chunks <= engine->budget_chunks()) return;  // it fits: nothing to schedule
    for (size_t s = 0; s + 1 < w.step_starts.size(); ++s) {
      const StepShape shape = shape_of(w, w.step_starts[s], w.step_starts[s + 1]);
      if (kind == PolicyKind::vdnn) {
        schedule_vdnn(shape, &schedule_);
      } else {
        schedule_tflms(shape, params.tflms_ahead_ops, &schedule_);
      }
    }
  }
  policy::ResidencyPolicy& victims() override { return lru_; }
  void before_op(uint32_t op, uint64_t tick) override
  {
    const auto it = schedule_.prefetch_before.find(op);
    if (it == schedule_.prefetch_before.end()) return;
    for (uint32_t alloc : it->second) {
      const Placement& place = engine_.placement(alloc);
      if (place.shared) continue;
      for (uint64_t c = place.first_chunk; c < place.first_chunk + place.chunk_count; ++c) {
        if (engine_.state(c) == ChunkEngine::State::evicting) {
          engine_.cancel_eviction(c);
        } else if (engine_.state(c) == ChunkEngine::State::host) {
          if (!engine_.obtain(tick, lru_)) return;
          engine_.bring_back_ahead(c);
        } else {
          continue;
        }
        // Just brought back: the most recent use but this op's, so not the next victim,
        // yet still one the op may take if nothing else is left.
        engine_.touch(c, tick - 1);
      }
    }
  }
  void after_op(uint32_t op, uint64_t /*tick*/, int64_t /*duration_ns*/) override
  {
    const auto it = schedule_.evict_after.find(op);
    if (it == schedule_.evict_after.end()) return;
    for (uint32_t alloc : it->second) {
      const Placement& place = engine_.placement(alloc);
      if (place.shared) continue;
      for (uint64_t c = place.first_chunk; c < place.first_chunk + place.chunk_count; ++c) engine_.start_eviction(c);
    }
  }

private:
  ChunkEngine& engine_;
  policy::LruPolicy lru_;
  Schedule schedule_;
};

}  // namespace

std::span<const PolicyInfo> replay_policies() { return policies; }

std::optional<PolicyKind> parse_policy(std::string_view name)
{
  for (const PolicyInfo& p : policies) {
    if (p.name == name) return p.kind;
  }
  return std::nullopt;
}

std::string_view policy_name(PolicyKind kind) { return policies[static_cast<size_t>(kind)].name; }

std::unique_ptr<ReplayPolicy> make_replay_policy(PolicyKind kind, const Workload& workload, ChunkEngine* engine,
                                                 const Simulator& sim, const PolicyParams& params)
{
  switch (kind) {
    case PolicyKind::unlimited:
      return std::make_unique<OnDemand>(engine, false);
    case PolicyKind::lru:
      return std::make_unique<OnDemand>(engine, true);
    case PolicyKind::lookahead:
      return std::make_unique<Lookahead>(workload, engine, sim, params.lookahead_ops);
    case PolicyKind::lookahead_prefetch:
      return std::make_unique<Lookahead>(workload, engine, sim, params.prefetch_lookahead_ops);
    case PolicyKind::vdnn:
    case PolicyKind::tflms:
      return std::make_unique<StepAware>(kind, workload, engine, params);
  }
  return nullptr;
}

}  // namespace oversub::replay
