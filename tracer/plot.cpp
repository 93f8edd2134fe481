// The memory timeline: Note [Memory timeline] in plot.h.
#include "tracer/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <map>
#include <type_traits>
#include <unordered_map>

#include "tracer/font5x7.h"

namespace oversub::trace {
namespace {

namespace colour = plot_colour;

constexpr uint64_t KiB = 1024, MiB = KiB * 1024, GiB = MiB * 1024;
constexpr uint32_t margin_left = 78, margin_right = 24, margin_top = 62, margin_bottom = 46;
// The device line is drawn when it is at most this many times the largest data value.
constexpr uint64_t device_scale_factor = 4;

struct Unit {
  uint64_t bytes;
  const char* name;
};

Unit unit_for(uint64_t bytes)
{
  if (bytes >= GiB) return {GiB, "GiB"};
  if (bytes >= MiB) return {MiB, "MiB"};
  if (bytes >= KiB) return {KiB, "KiB"};
  return {1, "B"};
}

// The smallest of 1, 2, 5 x 10^k that is at least `raw`.
double nice_step(double raw)
{
  if (raw <= 0) return 1;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * magnitude >= raw * (1 - 1e-9)) return m * magnitude;
  }
  return 10 * magnitude;
}

std::string format_number(double value, int decimals)
{
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

png::Rgb blend(png::Rgb under, png::Rgb over)
{
  return {static_cast<uint8_t>((under.r + over.r) / 2), static_cast<uint8_t>((under.g + over.g) / 2),
          static_cast<uint8_t>((under.b + over.b) / 2)};
}

class Painter {
 public:
  Painter(png::Image& image, const PlotLayout& layout) : image_(image), layout_(layout) {}

  int64_t bottom() const { return layout_.top + layout_.height - 1; }
  int64_t right() const { return layout_.left + layout_.width - 1; }

  int64_t y_of(uint64_t bytes) const
  {
    const double fraction = static_cast<double>(bytes) / static_cast<double>(layout_.y_max_bytes);
    const int64_t up = std::llround(fraction * (layout_.height - 1));
    return std::clamp<int64_t>(bottom() - up, layout_.top, bottom());
  }

  void hline(int64_t x0, int64_t x1, int64_t y, png::Rgb c)
  {
    for (int64_t x = x0; x <= x1; ++x) image_.set(x, y, c);
  }
  void vline(int64_t x, int64_t y0, int64_t y1, png::Rgb c)
  {
    for (int64_t y = std::min(y0, y1); y <= std::max(y0, y1); ++y) image_.set(x, y, c);
  }
  void rect(int64_t x, int64_t y, int64_t w, int64_t h, png::Rgb c)
  {
    for (int64_t row = y; row < y + h; ++row) hline(x, x + w - 1, row, c);
  }

  // A stepped series: the fill under it (blended over what is there when
  // `blend_fill`), then its outline, two pixels thick, with vertical risers
  // between columns. With `skip_zero`, no outline where it is zero and was zero.
  void fill(const std::vector<uint64_t>& columns, png::Rgb colour, bool blend_fill)
  {
    for (size_t c = 0; c < columns.size(); ++c) {
      const int64_t x = layout_.left + static_cast<int64_t>(c);
      if (columns[c] == 0) continue;
      for (int64_t row = y_of(columns[c]); row <= bottom(); ++row) {
        image_.set(x, row,
                   blend_fill ? blend(image_.at(static_cast<uint32_t>(x), static_cast<uint32_t>(row)), colour) : colour);
      }
    }
  }

  void outline(const std::vector<uint64_t>& columns, png::Rgb line, bool skip_zero)
  {
    int64_t previous_y = bottom();
    uint64_t previous = 0;
    for (size_t c = 0; c < columns.size(); ++c) {
      const int64_t x = layout_.left + static_cast<int64_t>(c);
      const int64_t y = y_of(columns[c]);
      if (!(skip_zero && columns[c] == 0 && previous == 0)) {
        if (c > 0 && y != previous_y) vline(x, previous_y, y, line);
        vline(x, y, std::min(y + 1, bottom()), line);
      }
      previous_y = y;
      previous = columns[c];
    }
  }

 private:
  png::Image& image_;
  const PlotLayout& layout_;
};

// The largest value of `values` over the events that fall in each column.
std::vector<uint64_t> per_column(const std::vector<uint64_t>& values, uint32_t width)
{
  std::vector<uint64_t> columns(width, 0);
  const uint64_t n = values.size();
  if (n == 0) return columns;
  for (uint64_t c = 0; c < width; ++c) {
    // Events i with floor(i * width / n) == c.
    const uint64_t begin = (c * n + width - 1) / width;
    const uint64_t end = std::min(n, ((c + 1) * n + width - 1) / width);
    if (begin >= end) {
      columns[c] = values[std::min(n - 1, c * n / width)];  // one event spans several columns
      continue;
    }
    columns[c] = *std::max_element(values.begin() + static_cast<ptrdiff_t>(begin),
                                   values.begin() + static_cast<ptrdiff_t>(end));
  }
  return columns;
}

}  // namespace

std::string format_bytes_short(uint64_t bytes)
{
  const Unit unit = unit_for(bytes);
  const double value = static_cast<double>(bytes) / static_cast<double>(unit.bytes);
  std::string text = format_number(value, unit.bytes == 1 || std::fmod(value, 1.0) < 0.05 ? 0 : 1);
  return text + " " + unit.name;
}

Timeline compute_timeline(const Trace& trace)
{
  Timeline timeline;
  if (!trace.devices.empty()) timeline.device_total_bytes = trace.devices.front().total_bytes;
  timeline.live_bytes.reserve(trace.events.size());
  timeline.on_host_bytes.reserve(trace.events.size());
  struct Live {
    uint64_t address;
    uint64_t bytes;
  };
  std::unordered_map<uint64_t, Live> live;      // alloc_id -> allocation
  std::map<uint64_t, uint64_t> live_ranges;     // address -> end, of live allocations
  std::map<uint64_t, uint64_t> on_host_chunks;  // chunk address -> bytes
  uint64_t live_bytes = 0;
  uint64_t on_host = 0;
  auto forget = [&](std::unordered_map<uint64_t, Live>::iterator it) {
    live_bytes -= it->second.bytes;
    const Live gone = it->second;
    if (auto range = live_ranges.find(gone.address); range != live_ranges.end()) live_ranges.erase(range);
    live.erase(it);
    // Chunks on the host that no live allocation overlaps any more are dropped.
    auto chunk = on_host_chunks.upper_bound(gone.address);
    if (chunk != on_host_chunks.begin()) --chunk;
    while (chunk != on_host_chunks.end() && chunk->first < gone.address + gone.bytes) {
      const uint64_t chunk_end = chunk->first + chunk->second;
      bool used = false;
      if (auto after = live_ranges.lower_bound(chunk_end); after != live_ranges.begin()) {
        used = std::prev(after)->second > chunk->first;  // live ranges are disjoint: the last one decides
      }
      if (chunk_end > gone.address && !used) {
        on_host -= chunk->second;
        chunk = on_host_chunks.erase(chunk);
      } else {
        ++chunk;
      }
    }
  };
  for (const Event& event : trace.events) {
    std::visit(
        [&](const auto& body) {
          using T = std::decay_t<decltype(body)>;
          if constexpr (std::is_same_v<T, AllocEvent>) {
            // A reused live id: the old allocation is gone (as in the summary).
            if (auto it = live.find(body.alloc_id); it != live.end()) forget(it);
            live.emplace(body.alloc_id, Live{body.address, body.bytes});
            live_ranges[body.address] = body.address + body.bytes;
            live_bytes += body.bytes;
          } else if constexpr (std::is_same_v<T, FreeCompletedEvent>) {
            if (auto it = live.find(body.alloc_id); it != live.end()) forget(it);
          } else if constexpr (std::is_same_v<T, EvictEvent>) {
            uint64_t& bytes = on_host_chunks[body.address];  // evicted again: counted once
            on_host += body.bytes - bytes;
            bytes = body.bytes;
          } else if constexpr (std::is_same_v<T, PrefetchEvent>) {
            if (auto it = on_host_chunks.find(body.address); it != on_host_chunks.end()) {
              on_host -= it->second;
              on_host_chunks.erase(it);
            }
          }
        },
        event.body);
    timeline.live_bytes.push_back(live_bytes);
    timeline.on_host_bytes.push_back(on_host);
    timeline.peak_live_bytes = std::max(timeline.peak_live_bytes, live_bytes);
    timeline.peak_on_host_bytes = std::max(timeline.peak_on_host_bytes, on_host);
  }
  return timeline;
}

namespace {

// The frame every memory timeline shares: layout, y grid and labels, x ticks
// (item indices), axes, title and legend.
class Frame {
 public:
  Frame(Plot& plot, const PlotOptions& options, size_t events, uint64_t scale_max)
      : image_(plot.image), layout_(plot.layout), painter_(plot.image, plot.layout)
  {
    layout_.left = margin_left;
    layout_.top = margin_top;
    layout_.width = options.width - margin_left - margin_right;
    layout_.height = options.height - margin_top - margin_bottom;
    layout_.events = events;
    if (scale_max == 0) scale_max = MiB;
    const Unit unit = unit_for(scale_max);
    const double max_in_units = static_cast<double>(scale_max) * 1.04 / static_cast<double>(unit.bytes);
    const double step = nice_step(max_in_units / 5);
    const int ticks = std::max(1, static_cast<int>(std::ceil(max_in_units / step - 1e-9)));
    layout_.y_max_bytes = static_cast<uint64_t>(std::llround(ticks * step * static_cast<double>(unit.bytes)));
    const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
    for (int k = 0; k <= ticks; ++k) {
      const double value = k * step;
      const int64_t y = painter_.y_of(static_cast<uint64_t>(std::llround(value * static_cast<double>(unit.bytes))));
      if (k > 0) painter_.hline(layout_.left, painter_.right(), y, colour::grid);
      painter_.hline(layout_.left - 5, layout_.left - 2, y, colour::axis);
      const std::string label = format_number(value, decimals) + " " + unit.name;
      font::draw_text(image_, layout_.left - 8 - font::text_width(label), y - 3, label, colour::text);
    }
  }

  Painter& painter() { return painter_; }

  void x_axis(const std::string& x_label)
  {
    const uint64_t n = layout_.events;
    const int64_t bottom = painter_.bottom();
    if (n > 0) {
      const uint64_t x_step = std::max<uint64_t>(1, static_cast<uint64_t>(nice_step(static_cast<double>(n) / 8)));
      for (uint64_t i = 0; i <= n; i += x_step) {
        const int64_t x = layout_.left + static_cast<int64_t>(i * layout_.width / n);
        painter_.vline(x, bottom + 2, bottom + 5, colour::axis);
        const std::string label = std::to_string(i);
        font::draw_text(image_, x - font::text_width(label) / 2, bottom + 9, label, colour::text);
      }
    }
    font::draw_text(image_, layout_.left + (layout_.width - font::text_width(x_label)) / 2, bottom + 25, x_label,
                    colour::text);
  }

  void no_data()
  {
    const std::string none = "no events";
    font::draw_text(image_, layout_.left + (layout_.width - font::text_width(none, 2)) / 2,
                    layout_.top + layout_.height / 2 - 7, none, colour::text, 2);
  }

  void dashed(uint64_t bytes, png::Rgb c)
  {
    const int64_t y = painter_.y_of(bytes);
    for (int64_t x = layout_.left; x <= painter_.right(); ++x) {
      if ((x - layout_.left) % 12 < 8) painter_.vline(x, y, std::min(y + 1, painter_.bottom()), c);
    }
  }

  // Axes over everything; the title, and `settings` on the right of its line.
  void finish(const std::string& title, const std::string& settings)
  {
    painter_.vline(layout_.left - 1, layout_.top, painter_.bottom() + 1, colour::axis);
    painter_.hline(layout_.left - 1, painter_.right(), painter_.bottom() + 1, colour::axis);
    font::draw_text(image_, layout_.left, 10, title, colour::text, 2);
    if (!settings.empty()) {
      const int64_t x = painter_.right() - font::text_width(settings);
      if (x > layout_.left + font::text_width(title, 2) + 16) font::draw_text(image_, x, 17, settings, colour::text);
    }
  }

  enum class Swatch { block, dashed, marks };
  void legend(png::Rgb fill, png::Rgb line, Swatch swatch, const std::string& text)
  {
    const int64_t y = legend_y;
    if (swatch == Swatch::dashed) {
      for (int64_t dx = 0; dx < 22; ++dx) {
        if (dx % 12 < 8) painter_.vline(legend_x_ + dx, y + 3, y + 4, line);
      }
    } else if (swatch == Swatch::marks) {
      for (int64_t dx = 0; dx < 22; dx += 4) painter_.vline(legend_x_ + dx, y, y + 7, line);
    } else {
      painter_.rect(legend_x_, y, 22, 8, fill);
      painter_.rect(legend_x_, y, 22, 2, line);
    }
    font::draw_text(image_, legend_x_ + 28, y + 1, text, colour::text);
    legend_x_ += 28 + font::text_width(text) + 22;
  }

 private:
  static constexpr int64_t legend_y = 38;
  png::Image& image_;
  PlotLayout& layout_;
  Painter painter_;
  int64_t legend_x_ = margin_left;
};

}  // namespace

Plot render_plot(const Trace& trace, const std::string& title_name, const PlotOptions& options)
{
  const Timeline timeline = compute_timeline(trace);
  Plot plot{png::Image(options.width, options.height, colour::background), {}};

  // The y scale: the data, and the device line if it is on the same scale.
  const uint64_t data_max = std::max(timeline.peak_live_bytes, timeline.peak_on_host_bytes);
  uint64_t scale_max = data_max;
  bool device_line = false;
  if (timeline.device_total_bytes && *timeline.device_total_bytes > 0 &&
      *timeline.device_total_bytes / device_scale_factor <= data_max) {
    device_line = true;
    scale_max = std::max(scale_max, *timeline.device_total_bytes);
  }
  Frame frame(plot, options, trace.events.size(), scale_max);
  plot.layout.device_line_drawn = device_line;
  Painter& painter = frame.painter();
  frame.x_axis("events in seq order (" + std::to_string(trace.events.size()) + " events)");

  if (!trace.events.empty()) {
    // Both fills, then both outlines, so the live outline stays visible over the host fill.
    const std::vector<uint64_t> live = per_column(timeline.live_bytes, plot.layout.width);
    const std::vector<uint64_t> on_host = per_column(timeline.on_host_bytes, plot.layout.width);
    painter.fill(live, colour::live_fill, false);
    painter.fill(on_host, colour::host_fill, true);
    painter.outline(live, colour::live_line, false);
    painter.outline(on_host, colour::host_line, true);
  } else {
    frame.no_data();
  }
  if (device_line) frame.dashed(*timeline.device_total_bytes, colour::device_line);

  std::string settings;
  if (trace.process) {
    settings = "mode " + trace.process->mode;
    if (!trace.process->policy.empty()) settings += ", policy " + trace.process->policy;
    if (!trace.devices.empty()) settings += ", device " + trace.devices.front().name;
  }
  frame.finish("memory timeline: " + title_name, settings);

  using Swatch = Frame::Swatch;
  frame.legend(colour::live_fill, colour::live_line, Swatch::block,
               "live allocated (peak " + format_bytes_short(timeline.peak_live_bytes) + ")");
  frame.legend(blend(colour::live_fill, colour::host_fill), colour::host_line, Swatch::block,
               "on host: evicted, not prefetched or freed (peak " + format_bytes_short(timeline.peak_on_host_bytes) +
                   ")");
  if (timeline.device_total_bytes) {
    frame.legend(colour::device_line, colour::device_line, Swatch::dashed,
                 "device total " + format_bytes_short(*timeline.device_total_bytes) +
                     (device_line ? "" : " (off scale)"));
  }
  return plot;
}

Plot render_replayed_plot(const ReplayedTimeline& timeline, const std::string& title_name,
                          const std::string& settings, const PlotOptions& options)
{
  Plot plot{png::Image(options.width, options.height, colour::background), {}};
  const size_t n = timeline.live_bytes.size();
  const uint64_t peak_live = n ? *std::max_element(timeline.live_bytes.begin(), timeline.live_bytes.end()) : 0;
  const uint64_t peak_device =
      n ? *std::max_element(timeline.device_bytes.begin(), timeline.device_bytes.end()) : 0;
  Frame frame(plot, options, n, std::max({peak_live, peak_device, timeline.budget_bytes}));
  plot.layout.device_line_drawn = true;  // the budget line, always on scale
  Painter& painter = frame.painter();
  frame.x_axis("replayed items in order: allocations, frees, ops, syncs (" + std::to_string(n) + ")");

  const uint32_t width = plot.layout.width;
  if (n > 0) {
    const std::vector<uint64_t> live = per_column(timeline.live_bytes, width);
    const std::vector<uint64_t> device = per_column(timeline.device_bytes, width);
    painter.fill(live, colour::live_fill, false);
    painter.fill(device, colour::resident_fill, true);
    painter.outline(live, colour::live_line, false);
    painter.outline(device, colour::resident_line, false);
    // Evictions and bring-backs: a mark in each column where any started, in two
    // strips at the top of the plot area.
    auto marks = [&](const std::vector<uint64_t>& cumulative, int64_t y, png::Rgb c) {
      for (uint32_t col = 0; col < width; ++col) {
        const uint64_t first = (uint64_t{col} * n + width - 1) / width;
        const uint64_t last = std::min<uint64_t>(n, ((uint64_t{col} + 1) * n + width - 1) / width);
        if (first >= last) continue;
        const uint64_t before = first == 0 ? 0 : cumulative[first - 1];
        if (cumulative[last - 1] > before) painter.vline(plot.layout.left + col, y, y + 5, c);
      }
    };
    marks(timeline.evictions, plot.layout.top + 2, colour::evict_mark);
    marks(timeline.prefetches, plot.layout.top + 10, colour::prefetch_mark);
    if (timeline.measured_from < n) {
      const int64_t x = plot.layout.left + static_cast<int64_t>(timeline.measured_from * width / n);
      painter.vline(x, plot.layout.top + 18, painter.bottom(), colour::axis);
    }
  } else {
    frame.no_data();
  }
  frame.dashed(timeline.budget_bytes, colour::device_line);
  frame.finish("replayed memory timeline: " + title_name, settings);

  using Swatch = Frame::Swatch;
  frame.legend(colour::live_fill, colour::live_line, Swatch::block, "live (peak " + format_bytes_short(peak_live) + ")");
  frame.legend(blend(colour::live_fill, colour::resident_fill), colour::resident_line, Swatch::block,
               "resident (peak " + format_bytes_short(peak_device) + ")");
  frame.legend(colour::device_line, colour::device_line, Swatch::dashed,
               "budget " + format_bytes_short(timeline.budget_bytes));
  const uint64_t evictions = n ? timeline.evictions.back() : 0;
  const uint64_t prefetches = n ? timeline.prefetches.back() : 0;
  frame.legend(colour::evict_mark, colour::evict_mark, Swatch::marks, "evictions (" + std::to_string(evictions) + ")");
  frame.legend(colour::prefetch_mark, colour::prefetch_mark, Swatch::marks,
               "bring-backs (" + std::to_string(prefetches) + ")");
  return plot;
}

}  // namespace oversub::trace
