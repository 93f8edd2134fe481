// oversub-trace plot FILE -o OUT.png [--width PX] [--height PX]
#include <charconv>
#include <cstdio>
#include <optional>
#include <string>

#include "tracer/cli/commands.h"
#include "tracer/plot.h"
#include "tracer/png.h"
#include "tracer/reader.h"

namespace oversub::trace::cli {
namespace {

std::optional<uint32_t> parse_pixels(std::string_view text)
{
  uint32_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string basename_of(const std::string& path)
{
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

const Subcommand plot_command = {
    "plot",
    "FILE -o OUT.png [--width PX] [--height PX]",
    "memory timeline (live bytes, bytes on host, device memory) as a PNG",
    run_plot,
};

int run_plot(Arguments arguments)
{
  std::optional<std::string> path;
  std::optional<std::string> output;
  PlotOptions options;
  for (size_t i = 0; i < arguments.size(); ++i) {
    const std::string_view argument = arguments[i];
    if (argument == "--help" || argument == "-h") {
      std::printf("usage: oversub-trace plot FILE -o OUT.png [--width PX] [--height PX]\n\n"
                  "Draws the trace's memory timeline as a PNG (default %ux%u): live allocated bytes,\n"
                  "bytes evicted to the host and not yet prefetched, and the device's total memory,\n"
                  "against the events in seq order.\n",
                  options.width, options.height);
      return exit_ok;
    }
    if (argument == "-o" || argument == "--output" || argument == "--width" || argument == "--height") {
      if (i + 1 >= arguments.size()) return usage_error(plot_command, std::string(argument) + " needs a value");
      const std::string_view value = arguments[++i];
      if (argument == "-o" || argument == "--output") {
        if (value.empty()) return usage_error(plot_command, "empty output path");
        output = std::string(value);
        continue;
      }
      const bool width = argument == "--width";
      const uint32_t low = width ? min_plot_width : min_plot_height;
      const std::optional<uint32_t> pixels = parse_pixels(value);
      if (!pixels || *pixels < low || *pixels > max_plot_side) {
        return usage_error(plot_command, std::string(argument) + " must be a number of pixels from " +
                                             std::to_string(low) + " to " + std::to_string(max_plot_side));
      }
      (width ? options.width : options.height) = *pixels;
    } else if (argument.starts_with("-") && argument != "-") {
      return usage_error(plot_command, "unknown option '" + std::string(argument) + "'");
    } else if (path) {
      return usage_error(plot_command, "more than one FILE");
    } else {
      path = std::string(argument);
    }
  }
  if (!path) return usage_error(plot_command, "missing FILE");
  if (!output) return usage_error(plot_command, "missing -o OUT.png");

  Trace trace;
  if (std::optional<ParseError> error = read_trace(path == "-" ? "/dev/stdin" : *path, &trace)) {
    return failure(error->to_string());
  }
  const std::string name = trace.process && !trace.process->executable.empty()
                               ? basename_of(trace.process->executable)
                               : basename_of(*path);
  const Plot plot = render_plot(trace, name, options);
  if (std::optional<std::string> error = png::write_file(*output, plot.image)) return failure(*error);
  return exit_ok;
}

}  // namespace oversub::trace::cli
