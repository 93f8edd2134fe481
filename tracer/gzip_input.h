// Reading gzip-compressed traces: read_trace() inflates a file that starts with the
// gzip magic bytes, so `oversub-trace summary run.trace.gz` works like the plain file.
// Offline analysis only; the shim's writer never compresses (Note [Trace format]).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace oversub::trace {

// True when `bytes` begins with the gzip magic number 1f 8b (RFC 1952).
bool looks_gzipped(std::string_view bytes);

// Inflates every gzip member in `compressed` (concatenated members are one stream, as
// gzip(1) reads them) and appends the text to *out. Returns nullopt on success, or why
// it failed: a corrupt stream, or one that ends early (a file cut short).
std::optional<std::string> gunzip(std::string_view compressed, std::string* out);

}  // namespace oversub::trace
