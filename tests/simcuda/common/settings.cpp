#include "settings.h"

#include "common/parse_size.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string_view>

#include <unistd.h>

namespace simcuda {
namespace {

// Note [simcuda settings]
// The simulated GPU keeps the rule oversub's own settings follow
// (docs/configuration.md): a test that sets SIMCUDA_JITTER=2 or misspells
// SIMCUDA_MEMORY must not run on defaults and pass for the wrong reason. At
// cuInit, in this order: every SIMCUDA_* name is the table's, every value has
// its accepted form, and no setting is switched off by another (a jitter-only
// variable without SIMCUDA_JITTER=1 would be ignored). The first failure is
// reported on one line and the program exits with status 2.

struct Variable {
  VariableInfo info;
  bool (*apply)(const char* text, Settings* out);
};

bool parse_bool(const char* text, bool* out) {
  std::string_view v(text);
  if (v == "1") { *out = true; return true; }
  if (v == "0") { *out = false; return true; }
  return false;
}

bool parse_u64(const char* text, std::uint64_t* out) {
  if (*text < '0' || *text > '9') return false;
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

// "off", or CALL:N (Note [Injected faults] in driver/faults.cpp).
bool parse_failure(const char* text, Settings* out) {
  const std::string_view v(text);
  if (v == "off") {
    out->fail_call.clear();
    return true;
  }
  const std::size_t colon = v.find(':');
  if (colon == std::string_view::npos) return false;
  const std::string_view call = v.substr(0, colon);
  bool known = false;
  for (const char* c : kFailableCalls) known = known || call == c;
  std::uint64_t nth = 0;
  const std::string count(v.substr(colon + 1));
  if (!known || !parse_u64(count.c_str(), &nth) || nth == 0) return false;
  out->fail_call = std::string(call);
  out->fail_nth = nth;
  return true;
}

constexpr Variable kVariables[] = {
    {{"SIMCUDA_MEMORY", "1GiB", "a size such as 256MiB, 2GiB or a byte count",
      "device memory capacity of the simulated GPU", false},
     [](const char* t, Settings* s) { return parse_size_bytes(t, &s->memory_bytes); }},
    {{"SIMCUDA_REPORT", "0", "0 or 1", "print 'simcuda: peak device bytes N capacity M' at exit", false},
     [](const char* t, Settings* s) { return parse_bool(t, &s->report); }},
    {{"SIMCUDA_JITTER", "0", "0 or 1", "add random delays to queued work to expose missing synchronisation", false},
     [](const char* t, Settings* s) { return parse_bool(t, &s->jitter); }},
    {{"SIMCUDA_SEED", "1", "a non-negative integer", "seed for the jitter delays", true},
     [](const char* t, Settings* s) { return parse_u64(t, &s->seed); }},
    {{"SIMCUDA_JITTER_MAX_US", "200", "an integer from 1 to 100000", "longest single jitter delay in microseconds",
      true},
     [](const char* t, Settings* s) {
       std::uint64_t v = 0;
       if (!parse_u64(t, &v) || v < 1 || v > 100000) return false;
       s->jitter_max_us = static_cast<std::uint32_t>(v);
       return true;
     }},
    {{"SIMCUDA_FAIL", "off", "off, or CALL:N with CALL one of cuMemCreate, cuMemMap, cuMemcpyDtoDAsync_v2 and N >= 1",
      "fault injection: the Nth call of CALL fails as a real driver's would", false},
     [](const char* t, Settings* s) { return parse_failure(t, s); }},
};

std::string_view name_of(std::string_view entry) { return entry.substr(0, entry.find('=')); }

const char* value_of(const std::vector<std::string>& environment, std::string_view name) {
  for (const std::string& entry : environment)
    if (name_of(entry) == name && entry.size() > name.size()) return entry.c_str() + name.size() + 1;
  return nullptr;
}

Settings load() {
  Settings s{};
  std::string error;
  if (!read_settings(simcuda_environment(), &s, &error)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    std::fflush(stderr);
    std::_Exit(2);
  }
  return s;
}

}  // namespace

bool parse_size_bytes(const char* text, std::uint64_t* bytes) { return oversub::common::parse_size(text, bytes); }

std::vector<std::string> simcuda_environment() {
  std::vector<std::string> out;
  for (char** env = environ; *env != nullptr; ++env)
    if (std::strncmp(*env, "SIMCUDA_", 8) == 0) out.emplace_back(*env);
  return out;
}

bool read_settings(const std::vector<std::string>& environment, Settings* out, std::string* error) {
  for (const std::string& entry : environment) {
    const std::string_view name = name_of(entry);
    bool known = false;
    for (const Variable& v : kVariables) known = known || name == v.info.name;
    if (known || name.rfind("SIMCUDA_", 0) != 0) continue;
    std::string list;
    for (const Variable& v : kVariables) list += std::string(list.empty() ? "" : ", ") + v.info.name;
    *error = "simcuda: unknown variable " + entry.substr(0, name.size()) + "='" +
             (entry.size() > name.size() ? entry.substr(name.size() + 1) : "") + "': expected one of " + list;
    return false;
  }
  Settings s{};
  s.memory_bytes = std::uint64_t{1} << 30;
  s.report = false;
  s.jitter = false;
  s.seed = 1;
  s.jitter_max_us = 200;
  s.fail_nth = 0;
  for (const Variable& v : kVariables) {
    const char* text = value_of(environment, v.info.name);
    if (text == nullptr || v.apply(text, &s)) continue;
    *error = std::string("simcuda: invalid ") + v.info.name + "='" + text + "': expected " + v.info.accepted;
    return false;
  }
  for (const Variable& v : kVariables) {
    const char* text = value_of(environment, v.info.name);
    if (!v.info.jitter_only || text == nullptr || s.jitter) continue;
    *error = std::string("simcuda: ") + v.info.name + "='" + text +
             "' has no effect without SIMCUDA_JITTER=1: expected " + v.info.name + " unset, or SIMCUDA_JITTER=1";
    return false;
  }
  *out = s;
  return true;
}

const VariableInfo* variables_table(std::size_t* count) {
  static VariableInfo infos[std::size(kVariables)];
  for (std::size_t i = 0; i < std::size(kVariables); ++i) infos[i] = kVariables[i].info;
  *count = std::size(kVariables);
  return infos;
}

const Settings& settings() {
  static Settings s = load();
  return s;
}

}  // namespace simcuda
