// oversub-trace summary FILE [--json]
#include <cstdio>
#include <optional>
#include <string>

#include "tracer/cli/commands.h"
#include "tracer/reader.h"
#include "tracer/summary.h"

namespace oversub::trace::cli {

const Subcommand summary_command = {
    "summary",
    "FILE [--json]",
    "allocations, frees, peak live bytes, ops, copies, top call sites",
    run_summary,
};

int run_summary(Arguments arguments)
{
  std::optional<std::string> path;
  bool json = false;
  for (std::string_view argument : arguments) {
    if (argument == "--help" || argument == "-h") {
      std::printf("usage: oversub-trace summary FILE [--json]\n\n"
                  "Prints what the traced process allocated and did. --json prints one JSON object\n"
                  "(keys: allocations, frees, ops, peak_live_bytes, ops_by_kind, ...).\n");
      return exit_ok;
    }
    if (argument == "--json") {
      json = true;
    } else if (const int status = take_file(summary_command, argument, &path); status != exit_ok) {
      return status;
    }
  }
  if (!path) return usage_error(summary_command, "missing FILE");

  Trace trace;
  if (std::optional<ParseError> error = read_trace(path == "-" ? "/dev/stdin" : *path, &trace)) {
    return failure(error->to_string());
  }
  const Summary summary = summarize(trace);
  const std::string text = json ? render_summary_json(trace, summary) : render_summary_text(trace, summary);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return exit_ok;
}

}  // namespace oversub::trace::cli
