#include "settings.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string_view>

namespace simcuda {
namespace {

struct Variable {
  const char* name;
  const char* accepted;     // the accepted form, shown in errors
  const char* description;  // one line, for docs
  bool (*apply)(const char* text, Settings* out);
};

bool parse_bool(const char* text, bool* out) {
  std::string_view v(text);
  if (v == "1" || v == "true" || v == "yes" || v == "on") { *out = true; return true; }
  if (v == "0" || v == "false" || v == "no" || v == "off" || v.empty()) { *out = false; return true; }
  return false;
}

bool parse_u64(const char* text, std::uint64_t* out) {
  if (*text == '\0' || *text == '-') return false;
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

constexpr Variable kVariables[] = {
    {"SIMCUDA_MEMORY", "a size such as 256MiB, 2GiB or a byte count (default 1GiB)",
     "device memory capacity of the simulated GPU",
     [](const char* t, Settings* s) { return parse_size_bytes(t, &s->memory_bytes); }},
    {"SIMCUDA_REPORT", "0 or 1", "print 'simcuda: peak device bytes N capacity M' at exit",
     [](const char* t, Settings* s) { return parse_bool(t, &s->report); }},
    {"SIMCUDA_JITTER", "0 or 1", "add random delays to queued work to expose missing synchronisation",
     [](const char* t, Settings* s) { return parse_bool(t, &s->jitter); }},
    {"SIMCUDA_SEED", "a non-negative integer", "seed for the jitter delays",
     [](const char* t, Settings* s) { return parse_u64(t, &s->seed); }},
    {"SIMCUDA_JITTER_MAX_US", "an integer from 1 to 100000", "longest single jitter delay in microseconds",
     [](const char* t, Settings* s) {
       std::uint64_t v = 0;
       if (!parse_u64(t, &v) || v < 1 || v > 100000) return false;
       s->jitter_max_us = static_cast<std::uint32_t>(v);
       return true;
     }},
};

Settings load() {
  Settings s{};
  s.memory_bytes = std::uint64_t{1} << 30;
  s.report = false;
  s.jitter = false;
  s.seed = 1;
  s.jitter_max_us = 200;
  for (const Variable& v : kVariables) {
    const char* text = std::getenv(v.name);
    if (text == nullptr) continue;
    if (!v.apply(text, &s)) {
      std::fprintf(stderr, "simcuda: invalid %s='%s': expected %s\n", v.name, text, v.accepted);
      std::fflush(stderr);
      std::_Exit(2);
    }
  }
  return s;
}

}  // namespace

bool parse_size_bytes(const char* text, std::uint64_t* bytes) {
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
  if (errno != 0 || end == text || !std::isfinite(value) || value <= 0) return false;
  std::string_view unit(end);
  struct Unit { std::string_view name; double scale; };
  constexpr Unit kUnits[] = {{"", 1}, {"B", 1}, {"KiB", 1024.0}, {"MiB", 1024.0 * 1024},
                             {"GiB", 1024.0 * 1024 * 1024}, {"TiB", 1024.0 * 1024 * 1024 * 1024},
                             {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}};
  for (const Unit& u : kUnits) {
    if (unit != u.name) continue;
    if (u.scale == 1 && std::strchr(text, '.') != nullptr) return false;  // fractional bytes
    double scaled = value * u.scale;
    if (scaled < 1 || scaled > 1.8e19) return false;
    *bytes = static_cast<std::uint64_t>(scaled);
    return true;
  }
  return false;
}

const Settings& settings() {
  static Settings s = load();
  return s;
}

}  // namespace simcuda
