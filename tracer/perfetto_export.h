// `oversub-trace export --perfetto`: a recorded trace as a timeline of tracks for
// Perfetto, written through trace_event_json.h.
//
// Note [Exported timeline]
// ~~~~~~~~~~~~~~~~~~~~~~~~
// Tracks (process "GPU", pid 1), top to bottom:
//   - one per compute stream, in order of first use: every op that is not a copy,
//     as a slice named by its kernel or library call (its kind when unnamed);
//   - one per copy direction that occurs: "copy h2d", "copy d2h", "copy d2d",
//     "copy h2h", "copy default" (cudaMemcpyDefault). The residency engine's
//     evictions are device-to-host copies and go on "copy d2h" as
//     "evict (REASON)"; its prefetches go on "copy h2d" as "prefetch (REASON)";
//   - counters "live bytes" (Note [Live bytes] in summary.h) and, when the trace
//     has evictions, "on host bytes" (Note [Memory timeline] in plot.h): the same
//     series `oversub-trace plot` draws. Device-resident bytes are not derivable
//     from a trace (plot.h says why), so there is no such counter.
// Process "host threads" (pid 2) has a track per traced thread, with each sync as
// an instant event.
//
// A trace records when work was enqueued, not how long the GPU ran it. Two layouts:
//   - time: the shim's own timestamps. A slice starts when its op was enqueued
//     (relative to the first event) and lasts until the next op on its track is
//     enqueued, a sync that waits for it (device, or its stream) is called, or
//     the trace ends, whichever comes first. So slices on a track never overlap,
//     and a slice covers at most the time the op can have been queued or running.
//   - sequence: event number i (in seq order, counting every event) is at i
//     microseconds and every slice lasts one microsecond. For traces without
//     real timestamps: scripts/trace_from_torch.py writes ts_ns = seq.
// Automatic choice: sequence when every event's ts_ns equals its seq or all
// timestamps are equal, time otherwise. The output's metadata (otherData) names
// the layout and says what a slice's length means.
// Times never go back in seq order, so start times on a track never decrease:
// where threads' clocks interleave (ts_ns is monotonic per thread only, seq is the
// authority), an event's time is raised to the latest time before it.
#pragma once

#include <cstdint>
#include <string_view>

#include "tracer/reader.h"
#include "tracer/trace_event_json.h"

namespace oversub::trace {

enum class TimelineLayout { automatic, time, sequence };

struct ExportOptions {
  TimelineLayout layout = TimelineLayout::automatic;
};

// What export_perfetto() wrote, for the CLI and the tests.
struct ExportCounts {
  TimelineLayout layout = TimelineLayout::time;  // the one used, never automatic
  uint64_t tracks = 0;       // stream, copy and host-thread tracks
  uint64_t op_slices = 0;    // one per op
  uint64_t move_slices = 0;  // one per eviction or prefetch
  uint64_t sync_instants = 0;
  uint64_t counter_samples = 0;
};

// The layout `automatic` picks for `trace` (Note [Exported timeline]).
TimelineLayout choose_layout(const Trace& trace);

// Feeds the whole timeline (begin to the last event) to `writer`; with a
// JsonWriter, the caller then calls its finish().
ExportCounts export_perfetto(const Trace& trace, const ExportOptions& options, trace_events::Sink& writer);

std::string_view to_word(TimelineLayout layout);

}  // namespace oversub::trace
