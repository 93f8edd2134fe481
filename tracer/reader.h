// Reading a trace file back into memory, validating every line.
//
// Errors are values: a malformed trace gives a ParseError naming the file, the
// 1-based line and what was expected there; nothing throws out of the reader and
// no input, however corrupt, crashes it (tests/unit/tracer_reader_fuzz_test.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "tracer/format.h"

namespace oversub::trace {

struct AllocEvent {
  uint64_t alloc_id;
  uint64_t address;
  uint64_t bytes;
  uint64_t stream;
  uint32_t site;  // no_site or a defined call-site id
  AllocKind kind;
};

struct FreeFields {
  uint64_t alloc_id;
  uint64_t address;
  uint64_t stream;
};
struct FreeRequestedEvent : FreeFields {};
struct FreeCompletedEvent : FreeFields {};

struct OpEvent {
  OpKind kind;
  uint32_t name;  // no_name or a defined name id
  uint64_t stream;
  CopyDirection direction;  // CopyDirection::none unless kind == OpKind::copy
  std::vector<Range> ranges;
  std::optional<uint64_t> flops;  // from the `c` line after the op; nullopt when unknown
};

struct SyncEvent {
  SyncKind kind;
  uint64_t handle;  // stream or event; 0 for a device sync
};

struct ChunkMoveFields {
  uint64_t address;
  uint64_t bytes;
  uint64_t stream;
  uint32_t reason;  // a name id
};
struct EvictEvent : ChunkMoveFields {};
struct PrefetchEvent : ChunkMoveFields {};

using EventBody = std::variant<AllocEvent, FreeRequestedEvent, FreeCompletedEvent, OpEvent, SyncEvent, EvictEvent,
                               PrefetchEvent>;

struct Event {
  uint64_t seq;
  uint64_t ts_ns;
  uint64_t tid;
  uint64_t line;  // where it was in the file, for diagnostics
  EventBody body;
};

// One `m` line (Note [Metadata and FLOPs lines] in format.h), its strings resolved.
struct MetadataEntry {
  std::string key;
  std::string value;
};

struct Trace {
  uint32_t version = 0;
  std::vector<MetadataEntry> metadata;  // in file order; keys are unique
  std::optional<ProcessInfo> process;
  std::vector<DeviceInfo> devices;
  std::vector<std::string> names;                 // names[id - 1]
  std::vector<std::vector<uint32_t>> site_frames;  // site_frames[id - 1]: frame name ids, innermost first
  std::vector<Event> events;                       // sorted by seq
  bool complete = false;  // the `x` end line was present
  uint64_t end_ns = 0;
  uint64_t dropped_events = 0;

  // "" for no_name; ids come from a validated trace, so they are in range.
  std::string_view name(uint32_t id) const { return id == no_name ? std::string_view() : names[id - 1]; }
  // The value of metadata `key`, or nullptr when the trace has none.
  const std::string* metadata_value(std::string_view key) const;
};

struct ParseError {
  std::string file;
  uint64_t line = 0;  // 0: the error is about the file as a whole (cannot open it)
  std::string message;
  std::string to_string() const;  // "FILE:LINE: message" (or "FILE: message")
};

// Parses `text` (a whole trace); `file_label` names it in errors. On success
// fills *trace and returns nullopt.
std::optional<ParseError> parse_trace(std::string_view text, std::string_view file_label, Trace* trace);

// Parses the bytes of a whole trace file as read_trace() does: inflated first when
// they start with the gzip magic. The fuzz target's entry (tests/fuzz/trace_reader.cpp).
std::optional<ParseError> parse_trace_file(std::string_view contents, std::string_view file_label, Trace* trace);

// Reads and parses a file, plain or gzip-compressed (recognised by its magic bytes;
// line numbers in errors count lines of the inflated text).
std::optional<ParseError> read_trace(const std::string& path, Trace* trace);

}  // namespace oversub::trace
