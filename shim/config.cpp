#include "config.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include <unistd.h>

namespace oversub {
namespace {

struct Setting {
  SettingInfo info;
  bool (*apply)(Config* config, std::string_view value);
};

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
      "a size such as 12GiB, 512MiB or a byte count, or a percentage of the card's memory such as 75%",
      "device memory oversub may use for the application's data"},
     [](Config* c, std::string_view v) {
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
       std::string text(v);
       c->budget_percent = 0;
       return parse_size(text.c_str(), &c->budget_bytes);
     }},
    {{"OVERSUB_HOST_LIMIT", "size", "half of the host's available memory",
      "a size such as 64GiB, 512MiB or a byte count",
      "pinned host memory oversub may use for evicted chunks"},
     [](Config* c, std::string_view v) {
       std::string text(v);
       return parse_size(text.c_str(), &c->host_limit_bytes);
     }},
    {{"OVERSUB_STRICT", "bool", "0", "0 or 1",
      "leave evicted ranges unmapped, so that an access oversub failed to predict faults (for tests)"},
     [](Config* c, std::string_view v) {
       if (v == "1") c->strict = true;
       else if (v == "0") c->strict = false;
       else return false;
       return true;
     }},
    {{"OVERSUB_POLICY", "enum", "lru", "lru or lookahead",
      "how chunks are chosen for eviction and prefetch: lru evicts the least recently used chunk on demand; "
      "lookahead (experimental, not yet better than lru) learns the training step, evicts the chunk used "
      "furthest in the future and brings chunks back ahead of use"},
     [](Config* c, std::string_view v) {
       if (v == "lookahead") c->policy = PolicyKind::lookahead;
       else if (v == "lru") c->policy = PolicyKind::lru;
       else return false;
       return true;
     }},
    {{"OVERSUB_LOOKAHEAD_OPS", "count", "256", "a whole number from 1 to 65536",
      "lookahead: how many ops ahead of the program chunks are brought back (limited by the budget)"},
     [](Config* c, std::string_view v) {
       if (v.empty() || v.size() > 5 || v.find_first_not_of("0123456789") != std::string_view::npos) return false;
       const unsigned long n = std::strtoul(std::string(v).c_str(), nullptr, 10);
       if (n < 1 || n > 65536) return false;
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

// A misspelt variable would otherwise be ignored silently.
void reject_unknown_variables() {
  for (char** env = environ; *env != nullptr; ++env) {
    std::string_view entry(*env);
    if (entry.rfind("OVERSUB_", 0) != 0) continue;
    std::string_view name = entry.substr(0, entry.find('='));
    bool known = false;
    for (const Setting& s : kSettings) known = known || name == s.info.name;
    if (known) continue;
    std::string list;
    for (const Setting& s : kSettings) list += std::string(list.empty() ? "" : ", ") + s.info.name;
    std::fprintf(stderr, "oversub: unknown variable %.*s: known variables are %s\n", static_cast<int>(name.size()),
                 name.data(), list.c_str());
    std::fflush(stderr);
    std::_Exit(2);
  }
}

Config load() {
  reject_unknown_variables();
  Config c = default_config();
  for (const Setting& s : kSettings) {
    const char* value = std::getenv(s.info.name);
    if (value == nullptr) continue;
    std::string error;
    if (!apply_setting(&c, s.info.name, value, &error)) {
      std::fprintf(stderr, "%s\n", error.c_str());
      std::fflush(stderr);
      std::_Exit(2);
    }
  }
  return c;
}

}  // namespace

Config default_config() { return Config{Mode::swap, {}, 1, 0, 0, 0, false, PolicyKind::lru, {}, 256}; }

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

bool parse_size(const char* text, std::uint64_t* bytes) {
  // Digits, an optional fraction, then the unit: strtod alone would also take
  // "1e3", "0x10" or " 5", which are not sizes anyone means.
  {
    const char* c = text == nullptr ? "" : text;
    if (*c < '0' || *c > '9') return false;
    while (*c >= '0' && *c <= '9') ++c;
    if (*c == '.') {
      ++c;
      if (*c < '0' || *c > '9') return false;
      while (*c >= '0' && *c <= '9') ++c;
    }
    for (; *c != '\0'; ++c)
      if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z'))) return false;
  }
  if (text == nullptr || *text == '\0' || *text == '-' || *text == '+') return false;
  errno = 0;
  char* end = nullptr;
  double value = std::strtod(text, &end);
  if (errno != 0 || end == text || !(value > 0) || value > 1.8e19) return false;
  std::string_view unit(end);
  struct Unit {
    std::string_view name;
    double scale;
  };
  constexpr Unit kUnits[] = {{"", 1},          {"B", 1},          {"KiB", 1024.0},   {"MiB", 1048576.0},
                             {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}, {"KB", 1e3}, {"MB", 1e6},
                             {"GB", 1e9},      {"TB", 1e12}};
  for (const Unit& u : kUnits) {
    if (unit != u.name) continue;
    if (u.scale == 1 && std::strchr(text, '.') != nullptr) return false;
    double scaled = value * u.scale;
    if (scaled < 1 || scaled > 1.8e19) return false;
    *bytes = static_cast<std::uint64_t>(scaled);
    return true;
  }
  return false;
}

bool apply_setting(Config* config, const char* name, const char* value, std::string* error) {
  for (const Setting& s : kSettings) {
    if (std::strcmp(s.info.name, name) != 0) continue;
    if (s.apply(config, value)) return true;
    *error = std::string("oversub: invalid ") + name + "='" + value + "': expected " + s.info.accepted;
    return false;
  }
  *error = std::string("oversub: unknown setting ") + name;
  return false;
}

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
