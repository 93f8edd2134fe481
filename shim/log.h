// oversub's messages on stderr, each prefixed "oversub: ". Never on a hot path.
#pragma once

namespace oversub {

void log_error(const char* format, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char* format, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char* format, ...) __attribute__((format(printf, 1, 2)));

}  // namespace oversub
