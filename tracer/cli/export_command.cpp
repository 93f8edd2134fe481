// oversub-trace export --perfetto FILE -o OUT.json [--layout auto|time|sequence]
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "tracer/cli/commands.h"
#include "tracer/perfetto_export.h"
#include "tracer/reader.h"
#include "tracer/trace_event_json.h"

namespace oversub::trace::cli {
namespace {

std::optional<TimelineLayout> parse_layout(std::string_view word)
{
  for (TimelineLayout layout : {TimelineLayout::automatic, TimelineLayout::time, TimelineLayout::sequence}) {
    if (word == to_word(layout)) return layout;
  }
  return std::nullopt;
}

}  // namespace

const Subcommand export_command = {
    "export",
    "--perfetto FILE -o OUT.json [--layout auto|time|sequence]",
    "Chrome trace-event JSON for Perfetto: a track per stream and copy direction",
    run_export,
};

int run_export(Arguments arguments)
{
  std::optional<std::string> path;
  std::optional<std::string> output;
  bool perfetto = false;
  ExportOptions options;
  for (size_t i = 0; i < arguments.size(); ++i) {
    const std::string_view argument = arguments[i];
    if (argument == "--help" || argument == "-h") {
      std::printf("usage: oversub-trace export --perfetto FILE -o OUT.json [--layout auto|time|sequence]\n\n"
                  "Writes the trace as Chrome trace-event JSON, which ui.perfetto.dev and chrome://tracing\n"
                  "open: a track per compute stream and per copy direction (evictions on 'copy d2h',\n"
                  "prefetches on 'copy h2d'), ops as slices named by kernel or library call, counters for\n"
                  "live bytes and bytes evicted to the host, and each host thread's syncs. -o - writes to\n"
                  "stdout.\n\n"
                  "A trace records when work was enqueued, not how long it ran. --layout time (the shim's\n"
                  "traces) starts each slice at its enqueue time and ends it at the next op on its track or\n"
                  "the next sync that waits for it; --layout sequence gives every event one microsecond, in\n"
                  "seq order, for traces without timestamps (scripts/trace_from_torch.py). auto (the\n"
                  "default) picks sequence when the timestamps are just the sequence numbers. The JSON's\n"
                  "otherData says which layout was used.\n");
      return exit_ok;
    }
    if (argument == "--perfetto") {
      perfetto = true;
    } else if (argument == "-o" || argument == "--output" || argument == "--layout") {
      if (i + 1 >= arguments.size()) return usage_error(export_command, std::string(argument) + " needs a value");
      const std::string_view value = arguments[++i];
      if (argument == "--layout") {
        const std::optional<TimelineLayout> layout = parse_layout(value);
        if (!layout) {
          return usage_error(export_command, "--layout must be auto, time or sequence, not '" + std::string(value) + "'");
        }
        options.layout = *layout;
      } else {
        if (value.empty()) return usage_error(export_command, "empty output path");
        output = std::string(value);
      }
    } else if (const int status = take_file(export_command, argument, &path); status != exit_ok) {
      return status;
    }
  }
  if (!perfetto) return usage_error(export_command, "missing --perfetto (the only export format so far)");
  if (!path) return usage_error(export_command, "missing FILE");
  if (!output) return usage_error(export_command, "missing -o OUT.json");

  Trace trace;
  if (std::optional<ParseError> error = read_trace(path == "-" ? "/dev/stdin" : *path, &trace)) {
    return failure(error->to_string());
  }
  // The output is opened only now, so that a bad trace leaves an existing file alone.
  const bool to_stdout = *output == "-";
  std::FILE* out = to_stdout ? stdout : std::fopen(output->c_str(), "w");
  if (out == nullptr) return failure(*output + ": cannot write: " + std::strerror(errno));
  struct stat status {};
  const bool regular_file = !to_stdout && ::fstat(::fileno(out), &status) == 0 && S_ISREG(status.st_mode);
  trace_events::JsonWriter writer(out);
  const ExportCounts counts = export_perfetto(trace, options, writer);
  std::optional<std::string> error = writer.finish();
  if (!to_stdout && std::fclose(out) != 0 && !error) error = std::strerror(errno);
  if (error) {
    // No half-written JSON left behind; a device or pipe (/dev/full) is not ours to remove.
    if (regular_file) std::remove(output->c_str());
    return failure(*output + ": cannot write: " + *error);
  }
  if (!to_stdout) {
    std::printf("%s: %llu ops and %llu evictions or prefetches on %llu tracks, %llu counter samples, layout %s\n",
                output->c_str(), static_cast<unsigned long long>(counts.op_slices),
                static_cast<unsigned long long>(counts.move_slices), static_cast<unsigned long long>(counts.tracks),
                static_cast<unsigned long long>(counts.counter_samples), std::string(to_word(counts.layout)).c_str());
  }
  return exit_ok;
}

}  // namespace oversub::trace::cli
