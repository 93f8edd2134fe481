// Writing Chrome trace-event JSON: the "JSON Object Format" that Perfetto
// (ui.perfetto.dev) and chrome://tracing open. `oversub-trace export --perfetto`
// fills it from a recorded trace (perfetto_export.h); a simulated timeline can
// fill it the same way, since nothing here knows about trace files.
//
// Note [Trace event JSON]
// ~~~~~~~~~~~~~~~~~~~~~~~
// The output is one object, written front to back without holding the events:
//   {"otherData":{KEY:VALUE,...},"traceEvents":[EVENT,...]}
// `otherData` is the metadata both viewers show in their trace info. There is no
// "displayTimeUnit": Perfetto takes it as the unit of `ts` and `dur`, where
// chrome://tracing takes it as a display setting only; without it both read
// microseconds. Events:
//   - "M" metadata: process_name, process_sort_index, thread_name,
//     thread_sort_index. A track is a (pid, tid) pair: name each before use.
//     Perfetto keys threads by tid alone (tids are system-wide on Linux), so a
//     tid must not repeat across processes nor equal another process's pid;
//     process-wide events (process names, counters) carry tid = pid.
//   - "X" complete events: a slice on a track, `ts` and `dur` in microseconds.
//     Slices on one track must not overlap unless one nests inside the other;
//     the caller keeps them apart.
//   - "i" instant events, thread-scoped ("s":"t"), for a moment on a track.
//   - "C" counters: one value per sample, on a counter track of a process.
//     Perfetto names the track "NAME SERIES" (the event name, then the key of
//     its one arg), so a counter named "live" with series "bytes" shows as
//     "live bytes".
// Times come in as nanoseconds and go out as microseconds with three decimals,
// exact. Strings are escaped for JSON; bytes that are not valid UTF-8 (trace
// names are raw bytes) become U+FFFD, so the file always parses.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace oversub::trace::trace_events {

// An argument shown with an event: a number or a string.
struct Arg {
  std::string_view key;
  std::optional<uint64_t> number;  // set: a number; unset: `text`
  std::string_view text;

  static Arg of(std::string_view key, uint64_t value) { return {key, value, {}}; }
  static Arg of(std::string_view key, std::string_view value) { return {key, std::nullopt, value}; }
};

struct Slice {
  uint32_t pid = 0;
  uint32_t tid = 0;
  std::string_view name;
  std::string_view category;
  uint64_t start_ns = 0;
  uint64_t duration_ns = 0;
  std::span<const Arg> args;
};

struct Instant {
  uint32_t pid = 0;
  uint32_t tid = 0;
  std::string_view name;
  std::string_view category;
  uint64_t ts_ns = 0;
  std::span<const Arg> args;
};

struct CounterSample {
  uint32_t pid = 0;
  std::string_view name;    // the counter
  std::string_view series;  // the arg key: Perfetto's track is "NAME SERIES"
  uint64_t ts_ns = 0;
  uint64_t value = 0;
};

using OtherData = std::span<const std::pair<std::string_view, std::string_view>>;

// Where a timeline goes: JsonWriter writes it out; a test can record it. The
// producer calls begin() once, then names processes and tracks before their
// events (Note [Trace event JSON]).
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void begin(OtherData other_data) = 0;
  virtual void process(uint32_t pid, std::string_view name, int32_t sort_index) = 0;
  virtual void thread(uint32_t pid, uint32_t tid, std::string_view name, int32_t sort_index) = 0;
  virtual void slice(const Slice& slice) = 0;
  virtual void instant(const Instant& instant) = 0;
  virtual void counter(const CounterSample& sample) = 0;
};

// Streams one JSON document to `out` (not owned, not closed). Writes are
// buffered; the first failure is remembered and reported by finish().
class JsonWriter final : public Sink {
 public:
  explicit JsonWriter(std::FILE* out) : out_(out) {}
  JsonWriter(const JsonWriter&) = delete;
  JsonWriter& operator=(const JsonWriter&) = delete;

  void begin(OtherData other_data) override;
  void process(uint32_t pid, std::string_view name, int32_t sort_index) override;
  void thread(uint32_t pid, uint32_t tid, std::string_view name, int32_t sort_index) override;
  void slice(const Slice& slice) override;
  void instant(const Instant& instant) override;
  void counter(const CounterSample& sample) override;
  // Closes the document and flushes `out`. nullopt, or why a write failed.
  std::optional<std::string> finish();

  uint64_t events_written() const { return events_; }

 private:
  void start_event(char phase, uint32_t pid, uint32_t tid, std::string_view name);
  void end_event();
  void append_args(std::span<const Arg> args);
  void flush_if_full();
  void flush();

  std::FILE* out_;
  std::string buffer_;
  uint64_t events_ = 0;
  int error_ = 0;  // errno of the first failed write
};

// Appends `text` as a JSON string literal, quotes included (Note [Trace event JSON]).
void append_json_string(std::string& out, std::string_view text);
// Appends `ns` as microseconds: "1234.567".
void append_microseconds(std::string& out, uint64_t ns);

}  // namespace oversub::trace::trace_events
