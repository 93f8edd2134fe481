// The memory timeline of tests/data/traces/small.trace: its series, and where
// they land in the PNG (decoded by the test reader, not read from memory).
#include "tracer/plot.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "tests/unit/png_test_support.h"
#include "tests/unit/tracer_test_support.h"
#include "tracer/summary.h"

namespace oversub::trace {
namespace {

constexpr uint64_t KiB = 1024, MiB = 1024 * KiB;

Trace small_trace(const std::string& replace_from = "", const std::string& replace_to = "")
{
  std::string text = testing::read_file(testing::source_path("tests/data/traces/small.trace"));
  if (!replace_from.empty()) {
    const size_t at = text.find(replace_from);
    EXPECT_NE(at, std::string::npos);
    if (at != std::string::npos) text.replace(at, replace_from.size(), replace_to);
  }
  Trace trace;
  const std::optional<ParseError> error = parse_trace(text, "small.trace", &trace);
  EXPECT_FALSE(error.has_value()) << error->to_string();
  return trace;
}

std::array<uint8_t, 3> rgb(png::Rgb c) { return {c.r, c.g, c.b}; }

// Row of the top of a series at `bytes` (the formula in plot.h).
int64_t row_of(const PlotLayout& layout, uint64_t bytes)
{
  return layout.top + (layout.height - 1) -
         std::llround(static_cast<double>(bytes) * (layout.height - 1) / static_cast<double>(layout.y_max_bytes));
}

// The middle pixel column of events [first, last].
uint32_t column_of(const PlotLayout& layout, uint64_t first, uint64_t last)
{
  return layout.left + static_cast<uint32_t>((first + last + 1) * layout.width / (2 * layout.events));
}

TEST(TracerPlot, TimelineOfSmallTrace)
{
  const Trace trace = small_trace();
  const Timeline timeline = compute_timeline(trace);
  // Events in seq order: a a o a f a f F o s F a(host 2 KiB) o e p s f F.
  const std::vector<uint64_t> live = {1 * MiB,  3 * MiB,  3 * MiB,  7 * MiB,  7 * MiB,  15 * MiB, 15 * MiB,
                                      14 * MiB, 14 * MiB, 14 * MiB, 6 * MiB,  6 * MiB + 2 * KiB,
                                      6 * MiB + 2 * KiB,  6 * MiB + 2 * KiB,  6 * MiB + 2 * KiB,
                                      6 * MiB + 2 * KiB,  6 * MiB + 2 * KiB,  4 * MiB + 2 * KiB};
  EXPECT_EQ(timeline.live_bytes, live);
  std::vector<uint64_t> on_host(18, 0);
  on_host[13] = 2 * MiB;  // evicted at seq e, prefetched at seq f
  EXPECT_EQ(timeline.on_host_bytes, on_host);
  EXPECT_EQ(timeline.peak_live_bytes, summarize(trace).peak_live_bytes);
  EXPECT_EQ(timeline.peak_on_host_bytes, 2 * MiB);
  EXPECT_EQ(timeline.device_total_bytes, 0x1400000000u);
}

TEST(TracerPlot, ChunksLeaveTheHostWhenFreed)
{
  // Evict a chunk of allocation 2 (live until seq 12) and never prefetch it:
  // it stops counting when allocation 2 is free-completed.
  const Trace trace = small_trace("e e 3b9acae0 65 7f0000300000", "e e 3b9acae0 65 7f0000100000");
  const Timeline timeline = compute_timeline(trace);
  EXPECT_EQ(timeline.on_host_bytes[13], 2 * MiB);
  EXPECT_EQ(timeline.on_host_bytes[14], 2 * MiB);  // the prefetch names another chunk
  EXPECT_EQ(timeline.on_host_bytes[16], 2 * MiB);  // free requested: still there
  EXPECT_EQ(timeline.on_host_bytes[17], 0u);       // free completed
}

TEST(TracerPlot, LiveBytesPlateauInThePng)
{
  const Trace trace = small_trace();
  const Plot plot = render_plot(trace, "python3");
  const PlotLayout& layout = plot.layout;
  const testing::DecodedPng png = testing::decode_png(png::encode(plot.image));
  ASSERT_EQ(png.error, "");
  EXPECT_EQ(png.width, 1000u);
  EXPECT_EQ(png.height, 500u);
  EXPECT_EQ(layout.events, 18u);
  EXPECT_EQ(layout.y_max_bytes, 20 * MiB);  // 15 MiB peak, ticks of 5 MiB
  EXPECT_FALSE(layout.device_line_drawn);   // 80 GiB is off the 20 MiB scale

  // Events 5 and 6 hold the 15 MiB peak.
  const uint32_t x = column_of(layout, 5, 6);
  const int64_t top = row_of(layout, 15 * MiB);
  EXPECT_EQ(png.pixel(x, uint32_t(top)), rgb(plot_colour::live_line));
  EXPECT_EQ(png.pixel(x, uint32_t(top + 6)), rgb(plot_colour::live_fill));
  EXPECT_EQ(png.pixel(x, layout.top + layout.height - 1), rgb(plot_colour::live_fill));
  EXPECT_NE(png.pixel(x, uint32_t(top - 2)), rgb(plot_colour::live_fill));
  EXPECT_NE(png.pixel(x, uint32_t(top - 2)), rgb(plot_colour::live_line));
  // Events 10..16 hold about 6 MiB: the same column height rule, lower down.
  const uint32_t x6 = column_of(layout, 10, 16);
  const int64_t top6 = row_of(layout, 6 * MiB + 2 * KiB);
  EXPECT_EQ(png.pixel(x6, uint32_t(top6)), rgb(plot_colour::live_line));
  EXPECT_EQ(png.pixel(x6, uint32_t(top6 - 2)), rgb(plot_colour::background));

  // Event 13: 2 MiB on the host, drawn half-transparent over the live fill.
  const uint32_t xh = column_of(layout, 13, 13);
  const int64_t top_host = row_of(layout, 2 * MiB);
  EXPECT_EQ(png.pixel(xh, uint32_t(top_host)), rgb(plot_colour::host_line));
  const png::Rgb f = plot_colour::live_fill, h = plot_colour::host_fill;
  EXPECT_EQ(png.pixel(xh, uint32_t(top_host + 6)),
            (std::array<uint8_t, 3>{uint8_t((f.r + h.r) / 2), uint8_t((f.g + h.g) / 2), uint8_t((f.b + h.b) / 2)}));

  // The title is drawn: text pixels in its band, none in the blank band above it.
  size_t title_pixels = 0, blank_pixels = 0;
  for (uint32_t px = 0; px < png.width; ++px) {
    for (uint32_t py = 0; py < 8; ++py) blank_pixels += png.pixel(px, py) != rgb(plot_colour::background);
    for (uint32_t py = 10; py < 24; ++py) title_pixels += png.pixel(px, py) == rgb(plot_colour::text);
  }
  EXPECT_GT(title_pixels, 300u);
  EXPECT_EQ(blank_pixels, 0u);
}

TEST(TracerPlot, DeviceLineWhenOnScale)
{
  // A 16 MiB card: on the same scale as the 15 MiB peak, so the dashed line is drawn.
  const Trace trace = small_trace("d 0 6 1400000000 9 0", "d 0 6 1000000 9 0");
  const Plot plot = render_plot(trace, "python3", {.width = 640, .height = 300});
  const testing::DecodedPng png = testing::decode_png(png::encode(plot.image));
  ASSERT_EQ(png.error, "");
  EXPECT_EQ(png.width, 640u);
  EXPECT_EQ(png.height, 300u);
  ASSERT_TRUE(plot.layout.device_line_drawn);
  const int64_t y = row_of(plot.layout, 16 * MiB);
  EXPECT_EQ(png.pixel(plot.layout.left + 2, uint32_t(y)), rgb(plot_colour::device_line));
  EXPECT_NE(png.pixel(plot.layout.left + 10, uint32_t(y)), rgb(plot_colour::device_line));  // a gap in the dashes
}

TEST(TracerPlot, EmptyTraceStillPlots)
{
  Trace trace;
  ASSERT_FALSE(parse_trace("v 1 oversub-trace\nx 0 0\n", "empty", &trace).has_value());
  const Plot plot = render_plot(trace, "empty");
  EXPECT_EQ(plot.layout.events, 0u);
  EXPECT_EQ(testing::decode_png(png::encode(plot.image)).error, "");
}

TEST(TracerPlot, FormatBytesShort)
{
  EXPECT_EQ(format_bytes_short(15 * MiB), "15 MiB");
  EXPECT_EQ(format_bytes_short(0x1400000000u), "80 GiB");
  EXPECT_EQ(format_bytes_short(248121088), "236.6 MiB");
  EXPECT_EQ(format_bytes_short(12), "12 B");
}

}  // namespace
}  // namespace oversub::trace
