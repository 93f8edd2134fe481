#include "config.h"

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

// Note [Default mode]: `swap` (the residency engine) is not built yet, so the
// default is `passthrough`, which watches and records without changing
// behaviour. Asking for `swap` says so instead of silently passing through.
constexpr Setting kSettings[] = {
    {{"OVERSUB_MODE", "enum", "passthrough", "passthrough",
      "what the shim does: passthrough watches and records without changing behaviour"},
     [](Config* c, std::string_view v) {
       if (v == "passthrough") {
         c->mode = Mode::passthrough;
         return true;
       }
       return false;
     }},
    {{"OVERSUB_TRACE", "path", "(none)", "a writable file path",
      "write a trace of allocations, ops and sync points to this file"},
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

Config default_config() { return Config{Mode::passthrough, {}, 1}; }

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
