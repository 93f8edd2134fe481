// The oversub-trace subcommands. main.cpp holds the table; each command lives in
// its own file and gets the arguments after its name.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace oversub::trace::cli {

// Exit statuses shared by every subcommand.
inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;  // unreadable or malformed trace, failed analysis
inline constexpr int exit_usage = 2;    // bad command line

using Arguments = std::span<const std::string_view>;

struct Subcommand {
  std::string_view name;
  std::string_view synopsis;     // the arguments, for the usage line
  std::string_view description;  // one line, for --help
  int (*run)(Arguments arguments);
};

// Prints "usage: oversub-trace NAME SYNOPSIS" to stderr and returns exit_usage.
int usage_error(const Subcommand& command, std::string_view problem);
// An argument that no option of `command` took: an unknown option, or the command's one
// FILE ("-" reads standard input). Stores it in *path and returns exit_ok, or prints the
// usage error (unknown option, more than one FILE) and returns exit_usage.
int take_file(const Subcommand& command, std::string_view argument, std::optional<std::string>* path);
// Prints "oversub-trace: MESSAGE" to stderr and returns exit_failure.
int failure(std::string_view message);

int run_summary(Arguments arguments);
extern const Subcommand summary_command;

int run_export(Arguments arguments);
extern const Subcommand export_command;

int run_plot(Arguments arguments);
extern const Subcommand plot_command;

int run_replay(Arguments arguments);
extern const Subcommand replay_command;

int run_compare(Arguments arguments);
extern const Subcommand compare_command;

}  // namespace oversub::trace::cli
