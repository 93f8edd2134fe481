// A size such as "12GiB", "512MiB", "1.5GB" or "4096" (bytes), parsed the same way by
// the shim (OVERSUB_* sizes) and the simulated GPU (SIMCUDA_MEMORY). Header-only and
// dependency-free, so both can include it without linking each other.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace oversub::common {

// False when malformed or zero.
inline bool parse_size(const char* text, std::uint64_t* bytes) {
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

}  // namespace oversub::common
