// oversub-trace: offline analysis of oversub trace files (docs/trace-format.md).
// A table of subcommands; each one adds a row here and a file.
#include <cstdio>
#include <string>
#include <vector>

#include "tracer/cli/commands.h"
#include "tracer/format.h"

#ifndef OVERSUB_VERSION
#define OVERSUB_VERSION "unknown"
#endif

namespace oversub::trace::cli {
namespace {

const Subcommand* const subcommands[] = {
    &summary_command,
    &export_command,
    &plot_command,
    &replay_command,
    &compare_command,
};

void print_help(std::FILE* out)
{
  std::fprintf(out, "usage: oversub-trace COMMAND [ARGS...]\n"
                    "       oversub-trace --help | --version\n\n"
                    "Analyses a trace written by liboversub.so (OVERSUB_TRACE=FILE).\n\ncommands:\n");
  for (const Subcommand* command : subcommands) {
    const std::string synopsis = std::string(command->name) + " " + std::string(command->synopsis);
    std::fprintf(out, "  %-28s %.*s\n", synopsis.c_str(), static_cast<int>(command->description.size()),
                 command->description.data());
  }
  std::fprintf(out, "\nRun 'oversub-trace COMMAND --help' for a command's options.\n"
                    "Exit status: 0 success, 1 unreadable or malformed trace, 2 usage error.\n");
}

int main_with(Arguments arguments)
{
  if (arguments.empty()) {
    std::fprintf(stderr, "oversub-trace: missing command\n");
    print_help(stderr);
    return exit_usage;
  }
  const std::string_view first = arguments[0];
  if (first == "--help" || first == "-h" || first == "help") {
    print_help(stdout);
    return exit_ok;
  }
  if (first == "--version") {
    std::printf("oversub-trace %s (trace format %u)\n", OVERSUB_VERSION, format_version);
    return exit_ok;
  }
  for (const Subcommand* command : subcommands) {
    if (command->name == first) return command->run(arguments.subspan(1));
  }
  std::fprintf(stderr, "oversub-trace: unknown command '%.*s'\n", static_cast<int>(first.size()), first.data());
  print_help(stderr);
  return exit_usage;
}

}  // namespace

int usage_error(const Subcommand& command, std::string_view problem)
{
  std::fprintf(stderr, "oversub-trace %.*s: %.*s\nusage: oversub-trace %.*s %.*s\n",
               static_cast<int>(command.name.size()), command.name.data(), static_cast<int>(problem.size()),
               problem.data(), static_cast<int>(command.name.size()), command.name.data(),
               static_cast<int>(command.synopsis.size()), command.synopsis.data());
  return exit_usage;
}

int take_file(const Subcommand& command, std::string_view argument, std::optional<std::string>* path)
{
  if (argument.starts_with("-") && argument != "-") {
    return usage_error(command, "unknown option '" + std::string(argument) + "'");
  }
  if (*path) return usage_error(command, "more than one FILE");
  *path = std::string(argument);
  return exit_ok;
}

int failure(std::string_view message)
{
  std::fprintf(stderr, "oversub-trace: %.*s\n", static_cast<int>(message.size()), message.data());
  return exit_failure;
}

}  // namespace oversub::trace::cli

int main(int argc, char** argv)
{
  std::vector<std::string_view> arguments(argv + 1, argv + argc);
  return oversub::trace::cli::main_with(arguments);
}
