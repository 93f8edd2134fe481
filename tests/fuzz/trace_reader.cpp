// Fuzz target: the trace reader (plain and gzip input) and every analysis that
// consumes whatever it accepts: the summary, the memory timeline and its plot, and
// the Perfetto export. tests/fuzz/README.md says how to run it.
//
// Beyond "no crash, no UB, no leak", it checks the reader's promises from
// reader.h: an error is one printable line with a line number inside the input,
// and an accepted trace has its events sorted by seq with every id in range.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "tracer/perfetto_export.h"
#include "tracer/plot.h"
#include "tracer/reader.h"
#include "tracer/summary.h"

namespace oversub::trace {
namespace {

void require(bool condition, const char* what)
{
  if (condition) return;
  std::fprintf(stderr, "trace_reader fuzz target: broken promise: %s\n", what);
  std::abort();
}

void check_error(const ParseError& error, std::string_view contents)
{
  const std::string text = error.to_string();
  require(!error.message.empty(), "an error has a message");
  require(text.find('\n') == std::string::npos, "an error is one line");
  // Line numbers count lines of the inflated text, which may be longer than the
  // input; only a plain input bounds them.
  if (contents.size() < 2 || static_cast<unsigned char>(contents[0]) != 0x1f) {
    uint64_t lines = 1;
    for (char c : contents) lines += c == '\n';
    require(error.line <= lines, "an error's line number is inside the file");
  }
}

void check_trace(const Trace& trace)
{
  for (size_t i = 1; i < trace.events.size(); ++i) {
    require(trace.events[i - 1].seq < trace.events[i].seq, "events are sorted by seq, each seq once");
  }
  for (const Event& event : trace.events) {
    if (const auto* op = std::get_if<OpEvent>(&event.body)) {
      require(op->name <= trace.names.size(), "an op's name id is defined");
    }
    if (const auto* alloc = std::get_if<AllocEvent>(&event.body)) {
      require(alloc->site <= trace.site_frames.size(), "an allocation's site id is defined");
    }
  }
  for (const auto& frames : trace.site_frames) {
    for (uint32_t frame : frames) require(frame <= trace.names.size(), "a frame's name id is defined");
  }
}

}  // namespace
}  // namespace oversub::trace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
  using namespace oversub::trace;
  const std::string_view contents(reinterpret_cast<const char*>(data), size);
  Trace trace;
  if (const std::optional<ParseError> error = parse_trace_file(contents, "fuzz.trace", &trace)) {
    check_error(*error, contents);
    return 0;
  }
  check_trace(trace);
  const Summary summary = summarize(trace);
  require(summary.events == trace.events.size(), "the summary counts every event");
  require(!render_summary_text(trace, summary).empty(), "the text summary is not empty");
  require(!render_summary_json(trace, summary).empty(), "the JSON summary is not empty");
  const Timeline timeline = compute_timeline(trace);
  require(timeline.live_bytes.size() == trace.events.size(), "the timeline has a point per event");
  // The plot at its smallest size: the scales and labels see every value the trace can hold.
  const Plot plot = render_plot(trace, "fuzz", {min_plot_width, min_plot_height});
  require(plot.layout.y_max_bytes > 0, "the plot has a y scale");

  // The export, JSON escaping included, into a sink that discards it.
  static std::FILE* const discard = std::fopen("/dev/null", "w");
  require(discard != nullptr, "/dev/null opens");
  trace_events::JsonWriter writer(discard);
  const ExportCounts counts = export_perfetto(trace, {}, writer);
  require(!writer.finish().has_value(), "writing to /dev/null succeeds");
  require(counts.op_slices == summary.ops, "the export has a slice per op");
  require(counts.move_slices == summary.evictions.count + summary.prefetches.count,
          "the export has a slice per eviction and prefetch");
  return 0;
}
