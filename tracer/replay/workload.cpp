// Building the replay's workload from a parsed trace: see workload.h.
#include "tracer/replay/workload.h"

#include <algorithm>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "policy/events.h"
#include "tracer/replay/chunks.h"

namespace oversub::replay {
namespace {

bool is_device_memory(trace::AllocKind kind)
{
  return kind == trace::AllocKind::malloc || kind == trace::AllocKind::async || kind == trace::AllocKind::pool ||
         kind == trace::AllocKind::vmm;
}

class Builder {
public:
  Builder(std::string_view file_label, Workload* out) : label_(file_label), w_(*out) {}

  std::optional<trace::ParseError> add(const trace::Event& event)
  {
    if (const auto* a = std::get_if<trace::AllocEvent>(&event.body)) return alloc(event.line, *a);
    if (const auto* f = std::get_if<trace::FreeCompletedEvent>(&event.body)) return free(event.line, *f);
    if (const auto* o = std::get_if<trace::OpEvent>(&event.body)) {
      op(event.line, *o);
    } else if (const auto* s = std::get_if<trace::SyncEvent>(&event.body)) {
      w_.items.push_back({ItemKind::sync, static_cast<uint32_t>(w_.syncs.size())});
      w_.syncs.push_back({s->kind, s->handle});
    }
    // `f` (free requested) changes nothing until its `F`; the trace's own `e` and `p`
    // lines are what its engine did, and the replay decides afresh.
    return std::nullopt;
  }

private:
  struct Live {
    uint32_t index;  // into w_.allocs; unused for host memory
    uint64_t address;
    uint64_t bytes;
    bool device;
    uint64_t line;
  };

  trace::ParseError error(uint64_t line, std::string message) const
  {
    return trace::ParseError{std::string(label_), line, std::move(message)};
  }

  std::optional<trace::ParseError> alloc(uint64_t line, const trace::AllocEvent& a)
  {
    if (const auto it = live_.find(a.alloc_id); it != live_.end()) {
      return error(line, fmt::format("allocation id {:x} is already live (allocated at line {}); expected a new id",
                                     a.alloc_id, it->second.line));
    }
    const bool device = is_device_memory(a.kind);
    Live live{0, a.address, a.bytes, device, line};
    if (device && a.bytes > 0) {
      const auto next = by_address_.lower_bound(a.address);
      if ((next != by_address_.end() && next->first < a.address + a.bytes) ||
          (next != by_address_.begin() && std::prev(next)->first + live_.at(std::prev(next)->second).bytes > a.address)) {
        const uint64_t other = next != by_address_.end() && next->first < a.address + a.bytes
                                   ? next->second
                                   : std::prev(next)->second;
        return error(line, fmt::format("allocation id {:x} at {:x} ({} bytes) overlaps live allocation id {:x} "
                                       "(line {}); expected disjoint live device allocations",
                                       a.alloc_id, a.address, a.bytes, other, live_.at(other).line));
      }
      by_address_[a.address] = a.alloc_id;
    }
    if (device) {
      live.index = static_cast<uint32_t>(w_.allocs.size());
      w_.allocs.push_back({a.bytes, a.site});
      w_.items.push_back({ItemKind::alloc, live.index});
    }
    live_.emplace(a.alloc_id, live);
    return std::nullopt;
  }

  std::optional<trace::ParseError> free(uint64_t line, const trace::FreeCompletedEvent& f)
  {
    const auto it = live_.find(f.alloc_id);
    if (it == live_.end()) {
      return error(line, fmt::format("free of allocation id {:x}, which is not live; expected its `a` line before",
                                     f.alloc_id));
    }
    if (it->second.device) {
      if (it->second.bytes > 0) by_address_.erase(it->second.address);
      w_.items.push_back({ItemKind::free, it->second.index});
    }
    live_.erase(it);
    return std::nullopt;
  }

  void op(uint64_t line, const trace::OpEvent& o)
  {
    Op op;
    op.kind = o.kind;
    op.name = o.name;
    op.stream = o.stream;
    op.direction = o.direction;
    op.flops = o.flops;
    op.line = line;
    for (const trace::Range& r : o.ranges) {
      op.bytes_touched += r.bytes;
      if (o.kind == trace::OpKind::copy && r.access != trace::Access::read) op.copy_bytes += r.bytes;
      if (r.bytes == 0) continue;
      auto it = by_address_.upper_bound(r.address);
      if (it == by_address_.begin()) continue;
      --it;
      const Live& live = live_.at(it->second);
      const uint64_t offset = r.address - live.address;
      if (offset >= live.bytes) continue;  // Note [Device allocations]
      const uint64_t end = std::min(live.bytes, offset + r.bytes);
      const auto first = static_cast<uint32_t>(offset / policy::chunk_bytes);
      const auto last = static_cast<uint32_t>((end - 1) / policy::chunk_bytes);
      op.accesses.push_back({live.index, first, last - first + 1, r.access});
    }
    w_.items.push_back({ItemKind::op, static_cast<uint32_t>(w_.ops.size())});
    w_.ops.push_back(std::move(op));
  }

  std::string_view label_;
  Workload& w_;
  std::unordered_map<uint64_t, Live> live_;       // by trace allocation id
  std::map<uint64_t, uint64_t> by_address_;       // live device allocations: address -> trace id
};

// Note [Replay steps]: whether items [begin, end) free exactly what they allocate.
bool self_contained(const Workload& w, size_t begin, size_t end)
{
  std::unordered_set<uint32_t> open;
  for (size_t i = begin; i < end; ++i) {
    const Item& item = w.items[i];
    if (item.kind == ItemKind::alloc) open.insert(item.index);
    if (item.kind == ItemKind::free && open.erase(item.index) == 0) return false;
  }
  return open.empty();
}

// Appends a copy of items [begin, end) with fresh allocations.
void repeat_step(Workload* w, size_t begin, size_t end)
{
  std::unordered_map<uint32_t, uint32_t> fresh;
  for (size_t i = begin; i < end; ++i) {
    Item item = w->items[i];
    switch (item.kind) {
      case ItemKind::alloc: {
        const auto index = static_cast<uint32_t>(w->allocs.size());
        w->allocs.push_back(w->allocs[item.index]);
        fresh[item.index] = index;
        item.index = index;
        break;
      }
      case ItemKind::free:
        item.index = fresh.at(item.index);
        break;
      case ItemKind::op: {
        Op copy = w->ops[item.index];
        for (ChunkAccess& a : copy.accesses) {
          if (const auto it = fresh.find(a.alloc); it != fresh.end()) a.alloc = it->second;
        }
        item.index = static_cast<uint32_t>(w->ops.size());
        w->ops.push_back(std::move(copy));
        break;
      }
      case ItemKind::sync:
        break;
    }
    w->items.push_back(item);
  }
}

}  // namespace

std::optional<trace::ParseError> build_workload(const trace::Trace& trace, std::string_view file_label,
                                                uint32_t extra_steps, Workload* out)
{
  Workload w;
  Builder builder(file_label, &w);
  for (const trace::Event& event : trace.events) {
    if (std::optional<trace::ParseError> error = builder.add(event)) return error;
  }
  if (w.ops.empty()) {
    return trace::ParseError{std::string(file_label), 0, "no ops to replay; expected `o` lines"};
  }
  if (const std::string* dtype = trace.metadata_value("dtype")) {
    w.half_precision = *dtype == "float16" || *dtype == "bfloat16" || *dtype == "half";
  }

  // Steps end at device syncs; what follows the last one is a step only if it has ops.
  std::vector<size_t> starts{0};
  for (size_t i = 0; i < w.items.size(); ++i) {
    const Item& item = w.items[i];
    if (item.kind == ItemKind::sync && w.syncs[item.index].kind == trace::SyncKind::device) starts.push_back(i + 1);
  }
  const bool tail_has_ops = std::any_of(w.items.begin() + static_cast<std::ptrdiff_t>(starts.back()), w.items.end(),
                                        [](const Item& item) { return item.kind == ItemKind::op; });
  if (tail_has_ops) starts.push_back(w.items.size());
  w.trace_steps = static_cast<uint32_t>(starts.size() - 1);

  const size_t last_begin = starts[starts.size() - 2];
  const size_t last_end = starts.back();
  if (extra_steps > 0 && w.trace_steps > 0 && self_contained(w, last_begin, last_end)) {
    std::vector<Item> trailing(w.items.begin() + static_cast<std::ptrdiff_t>(last_end), w.items.end());
    w.items.resize(last_end);
    for (uint32_t r = 0; r < extra_steps; ++r) {
      repeat_step(&w, last_begin, last_end);
      starts.push_back(w.items.size());
    }
    w.repeated_steps = extra_steps;
    w.items.insert(w.items.end(), trailing.begin(), trailing.end());
  }
  w.step_starts = std::move(starts);
  w.measured_step = w.step_starts.size() - 2;

  // Peak live device bytes: over the trace as recorded, and over the measured step.
  uint64_t live = 0;
  const size_t measured_begin = w.step_starts[w.measured_step];
  const size_t measured_end = w.step_starts[w.measured_step + 1];
  const size_t recorded_end = w.repeated_steps > 0 ? last_end : w.items.size();
  for (size_t i = 0; i < w.items.size(); ++i) {
    const Item& item = w.items[i];
    if (i == measured_begin) w.step_peak_live_bytes = live;
    if (item.kind == ItemKind::alloc) live += w.allocs[item.index].bytes;
    if (item.kind == ItemKind::free) live -= w.allocs[item.index].bytes;
    if (i < recorded_end || i >= w.step_starts.back()) w.peak_live_bytes = std::max(w.peak_live_bytes, live);
    if (i >= measured_begin && i < measured_end) w.step_peak_live_bytes = std::max(w.step_peak_live_bytes, live);
  }
  w.footprint_chunks = footprint_chunks(w);
  *out = std::move(w);
  return std::nullopt;
}

}  // namespace oversub::replay
