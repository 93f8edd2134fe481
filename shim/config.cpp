#include "config.h"

#include "common/parse_size.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace oversub {
namespace {

// Note [Configuration errors]
// A bad setting is a mistake in how the job was started. oversub stops the
// job rather than run it otherwise than asked: one line on stderr naming the
// variable, the value and the accepted form, and exit status 2 (the status of
// a usage error). Checked, in this order:
//   1. every OVERSUB_* name is one of the table's (a misspelt variable would
//      otherwise be ignored silently);
//   2. every value has its setting's accepted form;
//   3. the trace and stats paths can be written, so that a run does not
//      discover at exit that its statistics are lost;
//   4. no two settings contradict each other (Note [Contradicting settings]).
// The first failure is the one reported. The checks run when liboversub.so
// loads (load.cpp), before the program's main, and again when the settings are
// read for use at the first intercepted CUDA call: both come before any call
// reaches the driver. Only the budget's fit to the device needs the device;
// it is checked when swap mode starts (Note [Budget and device]).

// Note [Contradicting settings]
// A setting that another setting makes meaningless is an error, not silently
// ignored: whoever gave it expects something that would not happen.
//   - A swap-only setting (SettingInfo::swap_only) with OVERSUB_MODE=passthrough:
//     passthrough never limits, moves or unmaps memory.
//   - OVERSUB_TRACE and OVERSUB_STATS naming the same file: the statistics
//     would overwrite the trace at exit.
//   - A budget larger than the device (Note [Budget and device]).
// Not contradictions: OVERSUB_LOG=quiet with OVERSUB_STATS (quiet is about
// stderr; the file is still written), and a budget between the default and
// the card's memory (the user's choice; the budget falls to what the device
// gives if it runs out first, docs/configuration.md "The default budget").

struct Setting {
  SettingInfo info;
  bool (*apply)(Config* config, std::string_view value);
};

bool parse_size_at_least(std::string_view value, std::uint64_t minimum_bytes, std::uint64_t* bytes) {
  const std::string text(value);
  std::uint64_t parsed = 0;
  if (!parse_size(text.c_str(), &parsed) || parsed < minimum_bytes) return false;
  *bytes = parsed;
  return true;
}

constexpr Setting kSettings[] = {
    {{"OVERSUB_MODE", "enum", "swap", "swap or passthrough",
      "swap serves allocations from oversub's own address space and moves chunks between device and host; "
      "passthrough only watches and records, and never changes behaviour"},
     [](Config* c, std::string_view v) {
       if (v == "swap") c->mode = Mode::swap;
       else if (v == "passthrough") c->mode = Mode::passthrough;
       else return false;
       return true;
     }},
    {{"OVERSUB_DEVICE_BUDGET", "size or percent", "card memory minus a reserve (1/8, at most 1 GiB)",
      "a size from 4MiB to the card's memory such as 12GiB, 512MiB or a byte count, or a percentage of the "
      "card's memory above 0 and at most 100 such as 75%",
      "device memory oversub may use for the application's data", true},
     [](Config* c, std::string_view v) {
       c->budget_text = std::string(v);
       if (!v.empty() && v.back() == '%') {
         std::string number(v.substr(0, v.size() - 1));
         if (number.find_first_not_of("0123456789.") != std::string::npos || number.empty() || number[0] == '.' ||
             number.back() == '.' || number.find('.') != number.rfind('.'))
           return false;
         char* end = nullptr;
         double pct = std::strtod(number.c_str(), &end);
         if (number.empty() || *end != '\0' || !(pct > 0 && pct <= 100)) return false;
         c->budget_percent = pct;
         c->budget_bytes = 0;
         return true;
       }
       c->budget_percent = 0;
       return parse_size_at_least(v, kMinimumBudgetBytes, &c->budget_bytes);
     }},
    {{"OVERSUB_HOST_LIMIT", "size", "half of the host's available memory",
      "a size of at least 4MiB such as 64GiB, 512MiB or a byte count",
      "pinned host memory oversub may use for evicted chunks", true},
     [](Config* c, std::string_view v) { return parse_size_at_least(v, kMinimumHostLimitBytes, &c->host_limit_bytes); }},
    {{"OVERSUB_STRICT", "bool", "0", "0 or 1",
      "leave evicted ranges unmapped, so that an access oversub failed to predict faults (for tests)", true},
     [](Config* c, std::string_view v) {
       if (v == "1") c->strict = true;
       else if (v == "0") c->strict = false;
       else return false;
       return true;
     }},
    {{"OVERSUB_POLICY", "enum", "lookahead", "lookahead or lru",
      "how chunks are chosen for eviction: lookahead learns the training step from the op stream and evicts "
      "the chunk whose next use is furthest away (least recently used first until the step is learned), "
      "among chunks whose last use has finished before any still in use on the device; once the step's memory "
      "curve is known and its peak exceeds the budget, it times a step evicting ahead of the peak against one "
      "evicting on demand and keeps the faster; "
      "lru evicts the least recently used chunk", true},
     [](Config* c, std::string_view v) {
       if (v == "lookahead") c->policy = PolicyKind::lookahead;
       else if (v == "lru") c->policy = PolicyKind::lru;
       else return false;
       return true;
     }},
    {{"OVERSUB_LOOKAHEAD_OPS", "count", "0", "a whole number from 0 to 65536",
      "lookahead: how many ops ahead of the program chunks are brought back and room is made (limited by the "
      "budget); 0 brings chunks back on demand only (prefetching ahead does not yet pay off)", true},
     [](Config* c, std::string_view v) {
       if (v.empty() || v.size() > 5 || v.find_first_not_of("0123456789") != std::string_view::npos) return false;
       const unsigned long n = std::strtoul(std::string(v).c_str(), nullptr, 10);
       if (n > 65536) return false;
       c->lookahead_ops = static_cast<std::uint32_t>(n);
       return true;
     }},
    {{"OVERSUB_STATS", "path", "(none)", "a writable file path",
      "write the run's statistics as JSON to this file at exit (%p in the path becomes the process id)"},
     [](Config* c, std::string_view v) {
       if (v.empty()) return false;
       c->stats_path = std::string(v);
       return true;
     }},
    {{"OVERSUB_TRACE", "path", "(none)", "a writable file path",
      "write a trace of allocations, ops and sync points to this file (%p in the path becomes the process id)"},
     [](Config* c, std::string_view v) {
       if (v.empty()) return false;
       c->trace_path = std::string(v);
       return true;
     }},
    {{"OVERSUB_LOG", "enum", "info", "quiet, info or debug",
      "how much oversub prints on stderr: nothing, a summary at exit, or every decision"},
     [](Config* c, std::string_view v) {
       if (v == "quiet") c->log_level = 0;
       else if (v == "info") c->log_level = 1;
       else if (v == "debug") c->log_level = 2;
       else return false;
       return true;
     }},
};

const Setting* find_setting(std::string_view name) {
  for (const Setting& s : kSettings)
    if (name == s.info.name) return &s;
  return nullptr;
}

std::string_view name_of(std::string_view entry) { return entry.substr(0, entry.find('=')); }

// The value of `name` in the environment (the first entry, as getenv finds it).
const char* value_of(const Environment& environment, std::string_view name) {
  for (const std::string& entry : environment)
    if (name_of(entry) == name && entry.size() > name.size()) return entry.c_str() + name.size() + 1;
  return nullptr;
}

std::string quoted(const char* name, const char* value) { return std::string(name) + "='" + value + "'"; }

// Why `path` cannot be written as a file, or "" when it can. Nothing is created:
// a probe file could race with another process of the job opening the same path.
std::string unwritable_because(const std::string& path) {
  if (!path.empty() && path.back() == '/') return path + ": names a directory";
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return path + ": is a directory";
    if (::faccessat(AT_FDCWD, path.c_str(), W_OK, AT_EACCESS) != 0) return path + ": " + std::strerror(errno);
    return {};
  }
  if (errno != ENOENT) return path + ": " + std::strerror(errno);
  const std::size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  if (::stat(dir.c_str(), &st) != 0) return dir + ": " + std::strerror(errno);
  if (!S_ISDIR(st.st_mode)) return dir + ": not a directory";
  if (::faccessat(AT_FDCWD, dir.c_str(), W_OK | X_OK, AT_EACCESS) != 0) return dir + ": " + std::strerror(errno);
  return {};
}

// The same file: one inode when both exist, else one canonical name.
bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  if (::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  auto canonical = [](const std::string& path) {
    const std::size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    char resolved[PATH_MAX];
    if (::realpath(dir.c_str(), resolved) == nullptr) return path;
    return std::string(resolved) + "/" + path.substr(slash == std::string::npos ? 0 : slash + 1);
  };
  return canonical(a) == canonical(b);
}

std::string describe_bytes(std::uint64_t bytes) {
  char text[64];
  std::snprintf(text, sizeof text, "%.1f MiB (%" PRIu64 " bytes)", double(bytes) / double(1 << 20), bytes);
  return text;
}

// Every setting of type "path" names a file oversub writes.
bool check_paths(const Environment& environment, std::string* error) {
  for (const Setting& s : kSettings) {
    const char* value = value_of(environment, s.info.name);
    if (std::strcmp(s.info.type, "path") != 0 || value == nullptr) continue;
    const std::string why = unwritable_because(expand_process_id(value));
    if (why.empty()) continue;
    *error = "oversub: invalid " + quoted(s.info.name, value) + ": expected " + s.info.accepted + " (" + why + ")";
    return false;
  }
  return true;
}

bool check_agreement(const Environment& environment, const Config& c, std::string* error) {
  if (c.mode == Mode::passthrough) {
    for (const Setting& s : kSettings) {
      const char* value = value_of(environment, s.info.name);
      if (!s.info.swap_only || value == nullptr) continue;
      *error = "oversub: " + quoted(s.info.name, value) +
               " conflicts with OVERSUB_MODE='passthrough', which never limits, moves or unmaps memory: expected " +
               s.info.name + " unset, or OVERSUB_MODE=swap";
      return false;
    }
  }
  if (!c.trace_path.empty() && !c.stats_path.empty() &&
      same_file(expand_process_id(c.trace_path), expand_process_id(c.stats_path))) {
    *error = "oversub: " + quoted("OVERSUB_STATS", c.stats_path.c_str()) + " and " +
             quoted("OVERSUB_TRACE", c.trace_path.c_str()) +
             " name the same file, which the statistics would overwrite at exit: expected two different files";
    return false;
  }
  return true;
}

Config load() {
  Config c;
  std::string error;
  if (!read_environment(oversub_environment(), &c, &error)) exit_with_configuration_error(error);
  return c;
}

}  // namespace

Config default_config() { return Config{Mode::swap, {}, 1, 0, 0, 0, false, PolicyKind::lookahead, {}, 0, {}}; }

std::string expand_process_id(const std::string& path) {
  std::string out;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '%' && i + 1 < path.size() && path[i + 1] == 'p') {
      out += std::to_string(getpid());
      ++i;
    } else {
      out += path[i];
    }
  }
  return out;
}

bool parse_size(const char* text, std::uint64_t* bytes) { return common::parse_size(text, bytes); }

bool apply_setting(Config* config, const char* name, const char* value, std::string* error) {
  const Setting* s = find_setting(name);
  if (s == nullptr) {
    *error = std::string("oversub: unknown setting ") + name;
    return false;
  }
  if (s->apply(config, value)) return true;
  *error = "oversub: invalid " + quoted(name, value) + ": expected " + s->info.accepted;
  return false;
}

Environment oversub_environment() {
  Environment out;
  for (char** env = environ; *env != nullptr; ++env)
    if (std::strncmp(*env, "OVERSUB_", 8) == 0) out.emplace_back(*env);
  return out;
}

bool read_environment(const Environment& environment, Config* config, std::string* error) {
  for (const std::string& entry : environment) {
    const std::string_view name = name_of(entry);
    if (name.rfind("OVERSUB_", 0) != 0 || find_setting(name) != nullptr) continue;
    std::string known;
    for (const Setting& s : kSettings) known += std::string(known.empty() ? "" : ", ") + s.info.name;
    const std::string_view value = entry.size() > name.size() ? std::string_view(entry).substr(name.size() + 1) : "";
    *error = "oversub: unknown variable " + std::string(name) + "='" + std::string(value) + "': expected one of " +
             known;
    return false;
  }
  Config c = default_config();
  for (const Setting& s : kSettings) {
    const char* value = value_of(environment, s.info.name);
    if (value != nullptr && !apply_setting(&c, s.info.name, value, error)) return false;
  }
  if (!check_paths(environment, error) || !check_agreement(environment, c, error)) return false;
  *config = c;
  return true;
}

// Note [Budget and device]
// A budget in bytes larger than the device is an error, not a clamp: the job
// would run with less device memory than its settings say, and whoever wrote
// it probably meant the oversubscribed total (budget + host limit) or another
// card. Only the device knows its size, so this is checked when swap mode
// starts, at the first allocation or memory query and before oversub serves
// it. A percentage cannot exceed the device, but on a small device it can
// leave less than the minimum budget.
bool check_budget_fits_device(const Config& config, std::uint64_t device_bytes, std::uint64_t minimum_bytes,
                              std::string* error) {
  const std::string given = quoted("OVERSUB_DEVICE_BUDGET", config.budget_text.c_str());
  if (config.budget_bytes > device_bytes) {
    *error = "oversub: invalid " + given + ": the budget is " + describe_bytes(config.budget_bytes) +
             " but the device has " + describe_bytes(device_bytes) +
             ": expected a size no larger than the device, or a percentage of it such as 75%";
    return false;
  }
  if (config.budget_percent > 0) {
    const auto bytes = static_cast<std::uint64_t>(double(device_bytes) * config.budget_percent / 100.0);
    if (bytes < minimum_bytes) {
      *error = "oversub: invalid " + given + ": that is " + describe_bytes(bytes) + " of the device's " +
               describe_bytes(device_bytes) + ": expected a percentage that leaves at least " +
               describe_bytes(minimum_bytes);
      return false;
    }
  }
  return true;
}

void exit_with_configuration_error(const std::string& line) {
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
  std::_Exit(2);
}

void check_environment() { (void)load(); }

const Config& config() {
  static const Config c = load();
  return c;
}

const SettingInfo* settings_table(std::size_t* count) {
  static SettingInfo infos[std::size(kSettings)];
  for (std::size_t i = 0; i < std::size(kSettings); ++i) infos[i] = kSettings[i].info;
  *count = std::size(kSettings);
  return infos;
}

}  // namespace oversub
