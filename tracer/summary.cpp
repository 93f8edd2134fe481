// Computing the summary numbers: one pass over the events in seq order.
#include "tracer/summary.h"

#include <algorithm>
#include <type_traits>
#include <unordered_map>

namespace oversub::trace {
namespace {

struct LiveAllocation {
  uint64_t bytes;
  bool host;
};

class Summarizer {
 public:
  explicit Summarizer(Summary& summary) : summary_(summary) {}

  void add(const AllocEvent& e)
  {
    summary_.allocations.count++;
    summary_.allocations.bytes += e.bytes;
    CountAndBytes& by_kind = summary_.allocations_by_kind[static_cast<size_t>(e.kind)];
    by_kind.count++;
    by_kind.bytes += e.bytes;
    CallSiteTotal& site = sites_[e.site];
    site.site = e.site;
    site.allocations++;
    site.bytes += e.bytes;

    const bool host = e.kind == AllocKind::host;
    auto [it, inserted] = live_.try_emplace(e.alloc_id, LiveAllocation{e.bytes, host});
    if (!inserted) {
      // A reused id while the old allocation is live: the trace lost its free.
      // Count it and treat the old allocation as gone, so live bytes stay sane.
      summary_.duplicate_alloc_ids++;
      remove_live(it->second);
      it->second = LiveAllocation{e.bytes, host};
    }
    live_bytes_ += e.bytes;
    if (!host) live_device_bytes_ += e.bytes;
    if (live_bytes_ > summary_.peak_live_bytes) {
      summary_.peak_live_bytes = live_bytes_;
      summary_.peak_live_seq = seq_;
    }
    summary_.peak_live_device_bytes = std::max(summary_.peak_live_device_bytes, live_device_bytes_);
  }

  void add(const FreeRequestedEvent& e)
  {
    summary_.frees_requested++;
    if (!live_.contains(e.alloc_id)) summary_.unmatched_frees++;
  }

  void add(const FreeCompletedEvent& e)
  {
    auto it = live_.find(e.alloc_id);
    if (it == live_.end()) {
      summary_.unmatched_frees++;
      return;
    }
    summary_.frees_completed.count++;
    summary_.frees_completed.bytes += it->second.bytes;
    remove_live(it->second);
    live_.erase(it);
  }

  void add(const OpEvent& e)
  {
    summary_.ops++;
    summary_.ops_by_kind[static_cast<size_t>(e.kind)]++;
    if (e.flops) {
      summary_.ops_with_flops++;
      summary_.flops += *e.flops;
    }
    if (e.kind != OpKind::copy) return;
    // Bytes moved = what was written: a copy's destination ranges.
    uint64_t bytes = 0;
    for (const Range& range : e.ranges) {
      if (range.access == Access::write || range.access == Access::read_write) bytes += range.bytes;
    }
    summary_.copies.count++;
    summary_.copies.bytes += bytes;
    CountAndBytes& by_direction = summary_.copies_by_direction[static_cast<size_t>(e.direction)];
    by_direction.count++;
    by_direction.bytes += bytes;
  }

  void add(const SyncEvent& e)
  {
    summary_.syncs++;
    summary_.syncs_by_kind[static_cast<size_t>(e.kind)]++;
  }

  void add(const EvictEvent& e)
  {
    summary_.evictions.count++;
    summary_.evictions.bytes += e.bytes;
  }

  void add(const PrefetchEvent& e)
  {
    summary_.prefetches.count++;
    summary_.prefetches.bytes += e.bytes;
  }

  void set_seq(uint64_t seq) { seq_ = seq; }

  void finish(size_t top_call_sites)
  {
    summary_.live_at_end.count = live_.size();
    summary_.live_at_end.bytes = live_bytes_;
    std::vector<CallSiteTotal> sites;
    sites.reserve(sites_.size());
    for (const auto& [id, total] : sites_) sites.push_back(total);
    // Ties broken by site id so the output is deterministic.
    std::sort(sites.begin(), sites.end(), [](const CallSiteTotal& a, const CallSiteTotal& b) {
      return a.bytes != b.bytes ? a.bytes > b.bytes : a.site < b.site;
    });
    if (sites.size() > top_call_sites) sites.resize(top_call_sites);
    summary_.top_call_sites = std::move(sites);
  }

 private:
  void remove_live(const LiveAllocation& allocation)
  {
    live_bytes_ -= allocation.bytes;
    if (!allocation.host) live_device_bytes_ -= allocation.bytes;
  }

  Summary& summary_;
  std::unordered_map<uint64_t, LiveAllocation> live_;
  std::unordered_map<uint32_t, CallSiteTotal> sites_;
  uint64_t live_bytes_ = 0;
  uint64_t live_device_bytes_ = 0;
  uint64_t seq_ = 0;
};

}  // namespace

Summary summarize(const Trace& trace, size_t top_call_sites)
{
  Summary summary;
  summary.events = trace.events.size();
  if (!trace.events.empty()) {
    // Timestamps are monotonic per thread but threads interleave, so take the span.
    const auto [first, last] = std::minmax_element(trace.events.begin(), trace.events.end(),
                                                   [](const Event& a, const Event& b) { return a.ts_ns < b.ts_ns; });
    summary.duration_ns = last->ts_ns - first->ts_ns;
  }
  Summarizer summarizer(summary);
  for (const Event& event : trace.events) {  // sorted by seq (reader.h)
    summarizer.set_seq(event.seq);
    std::visit([&](const auto& body) { summarizer.add(body); }, event.body);
  }
  summarizer.finish(top_call_sites);
  return summary;
}

}  // namespace oversub::trace
