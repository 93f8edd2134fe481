// Enum words and line layouts of the trace format (see Note [Trace format] in format.h).
#include "tracer/format.h"

#include <array>

namespace oversub::trace {
namespace {

constexpr std::array<std::string_view, op_kind_count> op_kind_words = {
    "kernel", "cublas", "cudnn", "copy", "memset", "host_func", "graph", "other"};
constexpr std::array<std::string_view, alloc_kind_count> alloc_kind_words = {
    "malloc", "async", "pool", "vmm", "managed", "host"};
constexpr std::array<std::string_view, sync_kind_count> sync_kind_words = {"device", "stream", "event"};
constexpr std::array<std::string_view, copy_direction_count> copy_direction_words = {
    "h2d", "d2h", "d2d", "h2h", "default", "-"};

template <class Enum, size_t N>
std::optional<Enum> parse_word(const std::array<std::string_view, N>& words, std::string_view word)
{
  for (size_t i = 0; i < N; ++i) {
    if (words[i] == word) return static_cast<Enum>(i);
  }
  return std::nullopt;
}

template <size_t N>
std::string_view word_at(const std::array<std::string_view, N>& words, size_t index)
{
  return index < N ? words[index] : std::string_view("?");
}

// The single source of truth for line shapes; docs/trace-format.md mirrors it and
// tests/unit/tracer_format_test.cpp checks the two agree.
constexpr std::array<LineLayout, 15> layouts = {{
    {tag::version, "version", "version magic", 2, false, 1},
    {tag::process, "process", "pid start_unix_ns start_monotonic_ns executable command_line oversub_version mode policy", 8, false, 1},
    {tag::device, "device", "ordinal name total_bytes cc_major cc_minor", 5, false, 1},
    {tag::name, "name", "id text", 1, true, 1},
    {tag::site, "call site", "id frame_count frame...", 2, true, 1},
    {tag::alloc, "alloc", "seq ts_ns tid alloc_id address bytes stream site kind", 9, false, 1},
    {tag::free_requested, "free requested", "seq ts_ns tid alloc_id address stream", 6, false, 1},
    {tag::free_completed, "free completed", "seq ts_ns tid alloc_id address stream", 6, false, 1},
    {tag::op, "op", "seq ts_ns tid kind name stream direction range_count [address bytes access]...", 8, true, 1},
    {tag::sync, "sync", "seq ts_ns tid kind handle", 5, false, 1},
    {tag::evict, "evict", "seq ts_ns tid address bytes stream reason", 7, false, 1},
    {tag::prefetch, "prefetch", "seq ts_ns tid address bytes stream reason", 7, false, 1},
    {tag::end, "end", "end_ns dropped_events", 2, false, 1},
    {tag::metadata, "metadata", "key value", 2, false, 2},
    {tag::flops, "flops", "seq flops", 2, false, 2},
}};

}  // namespace

std::string_view to_word(Access access)
{
  switch (access) {
    case Access::read: return "r";
    case Access::write: return "w";
    case Access::read_write: return "rw";
  }
  return "?";
}
std::string_view to_word(OpKind kind) { return word_at(op_kind_words, static_cast<size_t>(kind)); }
std::string_view to_word(AllocKind kind) { return word_at(alloc_kind_words, static_cast<size_t>(kind)); }
std::string_view to_word(SyncKind kind) { return word_at(sync_kind_words, static_cast<size_t>(kind)); }
std::string_view to_word(CopyDirection direction)
{
  return word_at(copy_direction_words, static_cast<size_t>(direction));
}

std::optional<Access> parse_access(std::string_view word)
{
  if (word == "r") return Access::read;
  if (word == "w") return Access::write;
  if (word == "rw") return Access::read_write;
  return std::nullopt;
}
std::optional<OpKind> parse_op_kind(std::string_view word) { return parse_word<OpKind>(op_kind_words, word); }
std::optional<AllocKind> parse_alloc_kind(std::string_view word)
{
  return parse_word<AllocKind>(alloc_kind_words, word);
}
std::optional<SyncKind> parse_sync_kind(std::string_view word) { return parse_word<SyncKind>(sync_kind_words, word); }
std::optional<CopyDirection> parse_copy_direction(std::string_view word)
{
  return parse_word<CopyDirection>(copy_direction_words, word);
}

std::span<const LineLayout> line_layouts() { return layouts; }

const LineLayout* find_layout(char tag)
{
  for (const LineLayout& layout : layouts) {
    if (layout.tag == tag) return &layout;
  }
  return nullptr;
}

}  // namespace oversub::trace
