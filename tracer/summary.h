// What `oversub-trace summary` reports, computed from a parsed trace.
//
// Note [Live bytes]
// ~~~~~~~~~~~~~~~~~
// An allocation is live from its `a` event until its `F` (free completed) event,
// not its `f` (free requested): after cudaFreeAsync the memory stays in use until
// the stream's queued work is done, exactly as PyTorch's allocator trace keeps
// free_requested apart from free_completed. Peak live bytes is the maximum, over
// events in seq order, of the sum of live allocations' bytes. Host (pinned)
// allocations count in peak_live_bytes but not in peak_live_device_bytes.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tracer/format.h"
#include "tracer/reader.h"

namespace oversub::trace {

struct CountAndBytes {
  uint64_t count = 0;
  uint64_t bytes = 0;
};

struct CallSiteTotal {
  uint32_t site = no_site;
  uint64_t allocations = 0;
  uint64_t bytes = 0;
};

struct Summary {
  uint64_t events = 0;
  uint64_t duration_ns = 0;  // last event ts - first event ts

  CountAndBytes allocations;
  std::array<CountAndBytes, alloc_kind_count> allocations_by_kind{};
  uint64_t frees_requested = 0;
  CountAndBytes frees_completed;  // bytes: of the allocations they completed
  uint64_t unmatched_frees = 0;    // free events naming no live allocation id
  uint64_t duplicate_alloc_ids = 0;  // an `a` reusing the id of a still-live allocation
  uint64_t peak_live_bytes = 0;
  uint64_t peak_live_seq = 0;  // the event that reached the peak (0: no allocation)
  uint64_t peak_live_device_bytes = 0;
  CountAndBytes live_at_end;  // allocated and never free-completed

  uint64_t ops = 0;
  std::array<uint64_t, op_kind_count> ops_by_kind{};
  uint64_t flops = 0;           // sum over the ops that have a `c` line
  uint64_t ops_with_flops = 0;  // how many ops have one
  CountAndBytes copies;  // bytes: destination (write) range bytes of copy ops
  std::array<CountAndBytes, copy_direction_count> copies_by_direction{};

  uint64_t syncs = 0;
  std::array<uint64_t, sync_kind_count> syncs_by_kind{};
  CountAndBytes evictions;
  CountAndBytes prefetches;

  std::vector<CallSiteTotal> top_call_sites;  // by allocated bytes, largest first
};

inline constexpr size_t default_top_call_sites = 10;

Summary summarize(const Trace& trace, size_t top_call_sites = default_top_call_sites);

// Renderings for the CLI; `trace` supplies names and frames.
std::string render_summary_text(const Trace& trace, const Summary& summary);
std::string render_summary_json(const Trace& trace, const Summary& summary);

// `text` as a JSON string literal, quotes included (for every JSON the CLI prints).
std::string json_string(std::string_view text);

}  // namespace oversub::trace
