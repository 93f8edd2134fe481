// `oversub-trace plot`: a memory timeline of a trace, as an RGB image.
//
// Note [Memory timeline]
// ~~~~~~~~~~~~~~~~~~~~~~
// The x axis is the events in seq order (the reader's order), one slot per event,
// so gaps in time do not squash bursts. Each pixel column shows the largest value
// reached by the events that fall in it, so a one-event peak is never lost when
// there are more events than columns. Three series:
//   - live allocated bytes, exactly as the summary's peak live bytes counts them
//     (Note [Live bytes] in summary.h): from `a` until `F`;
//   - "on host": bytes the residency engine evicted (`e`) and has not brought
//     back (`p`), chunk by chunk. The trace has no "first touch" of a chunk, so
//     device-resident bytes cannot be derived; what sits on the host can. A chunk
//     also leaves the host, without an event, when the allocations on it are
//     freed: when an `F` leaves no live allocation overlapping an evicted chunk,
//     the chunk no longer counts. A chunk evicted twice counts once; a prefetch
//     of a chunk not on the host changes nothing, so the sum never goes below 0;
//   - the card's total memory from the first `d` record, as a dashed line. It is
//     drawn only when it is on the same scale as the data (at most 4x the largest
//     value); otherwise the legend gives it and says "off scale".
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tracer/png.h"
#include "tracer/reader.h"

namespace oversub::trace {

struct Timeline {
  std::vector<uint64_t> live_bytes;     // after each event, in seq order
  std::vector<uint64_t> on_host_bytes;  // after each event (Note [Memory timeline])
  uint64_t peak_live_bytes = 0;
  uint64_t peak_on_host_bytes = 0;
  std::optional<uint64_t> device_total_bytes;  // the first device's total memory
};

Timeline compute_timeline(const Trace& trace);

struct PlotOptions {
  uint32_t width = 1000;
  uint32_t height = 500;
};
inline constexpr uint32_t min_plot_width = 320;
inline constexpr uint32_t min_plot_height = 200;
inline constexpr uint32_t max_plot_side = 16384;

// Where the data went, so that tests can find it. The plot area is columns
// [left, left + width) and rows [top, top + height). Event i falls in column
// left + i * width / events. Bytes b are drawn up to row
//   top + (height - 1) - round(b * (height - 1) / y_max_bytes).
struct PlotLayout {
  uint32_t left = 0;
  uint32_t top = 0;
  uint32_t width = 0;
  uint32_t height = 0;
  uint64_t y_max_bytes = 1;
  size_t events = 0;
  bool device_line_drawn = false;
};

struct Plot {
  png::Image image;
  PlotLayout layout;
};

// The colours, for the legend and the tests.
namespace plot_colour {
inline constexpr png::Rgb background{255, 255, 255};
inline constexpr png::Rgb text{20, 20, 20};
inline constexpr png::Rgb axis{60, 60, 60};
inline constexpr png::Rgb grid{225, 225, 225};
inline constexpr png::Rgb live_fill{158, 202, 237};
inline constexpr png::Rgb live_line{31, 100, 180};
inline constexpr png::Rgb host_fill{250, 190, 120};  // drawn half-transparent over the live fill
inline constexpr png::Rgb host_line{220, 110, 0};
inline constexpr png::Rgb device_line{200, 30, 30};  // also the replayed plot's budget
inline constexpr png::Rgb resident_fill{140, 210, 140};  // drawn half-transparent over the live fill
inline constexpr png::Rgb resident_line{30, 140, 50};
inline constexpr png::Rgb evict_mark{220, 110, 0};
inline constexpr png::Rgb prefetch_mark{120, 60, 170};
}  // namespace plot_colour

// `title_name` goes after "memory timeline: " (the CLI passes the executable's
// basename). Options must be within the min/max above.
Plot render_plot(const Trace& trace, const std::string& title_name, const PlotOptions& options = {});

// Note [Replayed memory timeline]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// `oversub-trace plot FILE --budget B --policy P`: the replay's own timeline (Note
// [Replay timeline] in tracer/replay/replay.h), one point per replayed item, in the
// same frame as the live plot: live bytes, resident bytes (chunks holding device
// memory, evicting ones included) half-transparent over them, the budget dashed, and
// a mark at the top in each column where an eviction (upper strip) or a bring-back
// (lower strip) started. A grey line marks where the measured step begins. The
// tracer library does not depend on the replay, so the CLI copies the series here.
struct ReplayedTimeline {
  std::vector<uint64_t> live_bytes;
  std::vector<uint64_t> device_bytes;
  std::vector<uint64_t> evictions;   // started so far
  std::vector<uint64_t> prefetches;  // brought back so far
  uint64_t budget_bytes = 0;
  size_t measured_from = 0;
};
// `settings` goes on the right of the title line.
Plot render_replayed_plot(const ReplayedTimeline& timeline, const std::string& title_name,
                          const std::string& settings, const PlotOptions& options = {});

// "1.5 GiB", "15 MiB", "800 KiB", "12 B": for axis labels and the legend.
std::string format_bytes_short(uint64_t bytes);

}  // namespace oversub::trace
