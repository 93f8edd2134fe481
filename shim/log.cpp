#include "log.h"

#include <cstdarg>
#include <cstdio>

#include "config.h"

namespace oversub {
namespace {
void emit(const char* format, va_list args) {
  char line[1024];
  std::vsnprintf(line, sizeof line, format, args);
  std::fprintf(stderr, "oversub: %s\n", line);
}
}  // namespace

void log_error(const char* format, ...) {
  va_list args;
  va_start(args, format);
  emit(format, args);
  va_end(args);
}

void log_info(const char* format, ...) {
  if (config().log_level < 1) return;
  va_list args;
  va_start(args, format);
  emit(format, args);
  va_end(args);
}

void log_debug(const char* format, ...) {
  if (config().log_level < 2) return;
  va_list args;
  va_start(args, format);
  emit(format, args);
  va_end(args);
}

}  // namespace oversub
