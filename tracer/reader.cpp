// The trace reader: one pass over the lines, every field checked against the
// layout table in format.cpp, ids checked against the definitions seen so far.
#include "tracer/reader.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "tracer/gzip_input.h"

namespace oversub::trace {
namespace {

// Shows a field in an error message: bounded length, control bytes escaped, so
// the message stays one printable line whatever the corruption.
std::string quote(std::string_view text)
{
  constexpr size_t max_shown = 24;
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < max_shown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c >= 0x7f || c == '\'') {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > max_shown) out += "...";
  return out + "'";
}

std::optional<uint64_t> parse_hex(std::string_view text)
{
  if (text.empty() || text.size() > 16) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else {
      return std::nullopt;
    }
    value = value << 4 | static_cast<uint64_t>(digit);
  }
  return value;
}

// The name of field `index` (0-based, after the tag) in a layout, for messages.
std::string field_name(const LineLayout& layout, size_t index)
{
  size_t position = 0;
  std::string_view rest = layout.fields;
  while (!rest.empty()) {
    const size_t space = rest.find(' ');
    const std::string_view word = rest.substr(0, space);
    if (position == index) return std::string(word);
    ++position;
    if (space == std::string_view::npos) break;
    rest.remove_prefix(space + 1);
  }
  return layout.tag == tag::op ? "range field" : "frame";  // the repeated tails
}

class Parser {
 public:
  Parser(std::string_view file, Trace& trace) : file_(file), trace_(trace) {}

  std::optional<ParseError> parse(std::string_view text);

 private:
  bool fail(std::string message)
  {
    error_ = ParseError{std::string(file_), line_, std::move(message)};
    return false;
  }
  bool parse_line(std::string_view line);
  bool split_fields(std::string_view rest);
  bool check_field_count(size_t expected);
  bool hex(size_t index, uint64_t* out);
  bool hex32(size_t index, uint32_t* out);
  bool name_ref(size_t index, uint32_t* out);
  template <class Enum>
  bool word(size_t index, std::optional<Enum> (*parse_word)(std::string_view), std::string_view accepted, Enum* out);
  bool parse_version();
  bool parse_name(std::string_view rest);
  bool parse_site();
  bool parse_process();
  bool parse_device();
  bool parse_event();
  bool parse_event_body(EventBody* body);
  bool parse_op(OpEvent* op);
  bool parse_end();
  bool parse_metadata();
  bool parse_flops(std::optional<size_t> op_before);
  bool check_sequence_numbers();

  std::string_view file_;
  Trace& trace_;
  uint64_t line_ = 0;
  const LineLayout* layout_ = nullptr;
  std::vector<std::string_view> fields_;  // after the tag
  bool seen_end_ = false;
  std::optional<size_t> op_on_previous_line_;  // index into trace_.events, for a `c` line
  std::optional<ParseError> error_;
};

std::optional<ParseError> Parser::parse(std::string_view text)
{
  if (text.empty()) {
    line_ = 1;
    fail(fmt::format("empty file: expected the version line 'v {:x} {}'", format_version, format_magic));
    return error_;
  }
  while (!text.empty()) {
    ++line_;
    const size_t newline = text.find('\n');
    if (newline == std::string_view::npos) {
      fail("truncated line: the file does not end with a newline (the trace was cut short; "
           "a complete trace ends with an 'x' line)");
      return error_;
    }
    if (!parse_line(text.substr(0, newline))) return error_;
    text.remove_prefix(newline + 1);
  }
  if (!check_sequence_numbers()) return error_;
  return std::nullopt;
}

bool Parser::parse_line(std::string_view line)
{
  if (seen_end_) return fail("line after the end line 'x' (the end line must be last)");
  if (line.empty()) return fail("empty line: every line starts with a one-letter tag");
  const size_t space = line.find(' ');
  const std::string_view tag_text = line.substr(0, space);
  layout_ = tag_text.size() == 1 ? find_layout(tag_text[0]) : nullptr;
  if (line_ == 1 && (layout_ == nullptr || layout_->tag != tag::version)) {
    return fail(fmt::format("expected the version line 'v {:x} {}' (is this an oversub trace?)", format_version,
                            format_magic));
  }
  if (layout_ == nullptr) {
    std::string known;
    for (const LineLayout& layout : line_layouts()) known += layout.tag;
    return fail(fmt::format("unknown tag {}: expected one of the tags '{}'", quote(tag_text), known));
  }
  if (layout_->since_version > trace_.version && layout_->tag != tag::version) {
    return fail(fmt::format("the '{}' ({}) line needs trace format version {:x}, but this file is version {:x}",
                            layout_->tag, layout_->what, layout_->since_version, trace_.version));
  }
  const std::optional<size_t> op_before = op_on_previous_line_;
  op_on_previous_line_.reset();
  const std::string_view rest = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
  if (layout_->tag == tag::name) return parse_name(rest);
  if (!split_fields(rest)) return false;
  switch (layout_->tag) {
    case tag::version: return parse_version();
    case tag::site: return parse_site();
    case tag::process: return parse_process();
    case tag::device: return parse_device();
    case tag::end: return parse_end();
    case tag::metadata: return parse_metadata();
    case tag::flops: return parse_flops(op_before);
    default: return parse_event();
  }
}

bool Parser::split_fields(std::string_view rest)
{
  fields_.clear();
  if (rest.empty()) return true;
  while (true) {
    const size_t space = rest.find(' ');
    const std::string_view field = rest.substr(0, space);
    if (field.empty()) {
      return fail(fmt::format("empty field {} in the '{}' ({}) line: fields are separated by exactly one space",
                              fields_.size() + 1, layout_->tag, layout_->what));
    }
    fields_.push_back(field);
    if (space == std::string_view::npos) return true;
    rest.remove_prefix(space + 1);
  }
}

bool Parser::check_field_count(size_t expected)
{
  if (fields_.size() == expected) return true;
  return fail(fmt::format("the '{}' ({}) line has {} fields, expected {}: {}", layout_->tag, layout_->what,
                          fields_.size(), expected, layout_->fields));
}

bool Parser::hex(size_t index, uint64_t* out)
{
  const std::optional<uint64_t> value = parse_hex(fields_[index]);
  if (!value) {
    return fail(fmt::format("field {} ({}) of the '{}' line: expected a hex number of 1 to 16 digits, got {}",
                            index + 1, field_name(*layout_, index), layout_->tag, quote(fields_[index])));
  }
  *out = *value;
  return true;
}

bool Parser::hex32(size_t index, uint32_t* out)
{
  uint64_t value = 0;
  if (!hex(index, &value)) return false;
  if (value > UINT32_MAX) {
    return fail(fmt::format("field {} ({}) of the '{}' line: {} does not fit in 32 bits", index + 1,
                            field_name(*layout_, index), layout_->tag, quote(fields_[index])));
  }
  *out = static_cast<uint32_t>(value);
  return true;
}

bool Parser::name_ref(size_t index, uint32_t* out)
{
  if (!hex32(index, out)) return false;
  if (*out > trace_.names.size()) {
    return fail(fmt::format("field {} ({}) of the '{}' line: name id {:x} is not defined (an 'n' line must "
                            "define it earlier)",
                            index + 1, field_name(*layout_, index), layout_->tag, *out));
  }
  return true;
}

template <class Enum>
bool Parser::word(size_t index, std::optional<Enum> (*parse_word)(std::string_view), std::string_view accepted,
                  Enum* out)
{
  const std::optional<Enum> value = parse_word(fields_[index]);
  if (!value) {
    return fail(fmt::format("field {} ({}) of the '{}' line: expected one of {}, got {}", index + 1,
                            field_name(*layout_, index), layout_->tag, accepted, quote(fields_[index])));
  }
  *out = *value;
  return true;
}

bool Parser::parse_version()
{
  if (line_ != 1) return fail("the version line 'v' may only be the first line");
  if (!check_field_count(layout_->fixed_field_count)) return false;
  uint64_t version = 0;
  if (!hex(0, &version)) return false;
  if (version < oldest_format_version || version > format_version) {
    return fail(fmt::format("unsupported trace format version {:x}: this reader reads versions {:x} to {:x}",
                            version, oldest_format_version, format_version));
  }
  if (fields_[1] != format_magic) {
    return fail(fmt::format("expected '{}' after the version, got {}", format_magic, quote(fields_[1])));
  }
  trace_.version = static_cast<uint32_t>(version);
  return true;
}

bool Parser::parse_name(std::string_view rest)
{
  // "n ID TEXT": the text is the rest of the line, so split off the id only.
  const size_t space = rest.find(' ');
  if (space == std::string_view::npos) {
    return fail("the 'n' (name) line needs an id, one space, then the text: n id text");
  }
  fields_.assign({rest.substr(0, space)});
  uint32_t id = 0;
  if (!hex32(0, &id)) return false;
  const uint64_t expected = trace_.names.size() + 1;
  if (id != expected) {
    return fail(fmt::format("name id {:x} out of order: expected {:x} (names are numbered from 1, each once)", id,
                            expected));
  }
  std::string text;
  const std::string_view escaped = rest.substr(space + 1);
  for (size_t i = 0; i < escaped.size(); ++i) {
    if (escaped[i] != '\\') {
      text += escaped[i];
      continue;
    }
    const char next = i + 1 < escaped.size() ? escaped[i + 1] : '\0';
    if (next == '\\') {
      text += '\\';
    } else if (next == 'n') {
      text += '\n';
    } else if (next == 'r') {
      text += '\r';
    } else {
      return fail(fmt::format("bad escape {} in name text: expected \\\\, \\n or \\r",
                              quote(escaped.substr(i, 2))));
    }
    ++i;
  }
  trace_.names.push_back(std::move(text));
  return true;
}

bool Parser::parse_site()
{
  if (fields_.size() < layout_->fixed_field_count) return check_field_count(layout_->fixed_field_count);
  uint32_t id = 0;
  uint64_t frame_count = 0;
  if (!hex32(0, &id) || !hex(1, &frame_count)) return false;
  const uint64_t expected = trace_.site_frames.size() + 1;
  if (id != expected) {
    return fail(fmt::format("call site id {:x} out of order: expected {:x} (sites are numbered from 1, each once)",
                            id, expected));
  }
  if (frame_count != fields_.size() - 2) {
    return fail(fmt::format("the 't' (call site) line says {:x} frames but has {} frame fields", frame_count,
                            fields_.size() - 2));
  }
  std::vector<uint32_t> frames(fields_.size() - 2);
  for (size_t i = 0; i < frames.size(); ++i) {
    if (!name_ref(i + 2, &frames[i])) return false;
  }
  trace_.site_frames.push_back(std::move(frames));
  return true;
}

bool Parser::parse_process()
{
  if (trace_.process) return fail("a second 'P' (process) line: a trace describes one process");
  if (!check_field_count(layout_->fixed_field_count)) return false;
  ProcessInfo info;
  uint32_t strings[5] = {};
  if (!hex(0, &info.pid) || !hex(1, &info.start_unix_ns) || !hex(2, &info.start_monotonic_ns)) return false;
  for (size_t i = 0; i < 5; ++i) {
    if (!name_ref(3 + i, &strings[i])) return false;
  }
  info.executable = trace_.name(strings[0]);
  info.command_line = trace_.name(strings[1]);
  info.oversub_version = trace_.name(strings[2]);
  info.mode = trace_.name(strings[3]);
  info.policy = trace_.name(strings[4]);
  trace_.process = std::move(info);
  return true;
}

bool Parser::parse_device()
{
  if (!check_field_count(layout_->fixed_field_count)) return false;
  DeviceInfo info;
  uint32_t name = 0;
  if (!hex32(0, &info.ordinal) || !name_ref(1, &name) || !hex(2, &info.total_bytes) ||
      !hex32(3, &info.compute_major) || !hex32(4, &info.compute_minor)) {
    return false;
  }
  info.name = trace_.name(name);
  trace_.devices.push_back(std::move(info));
  return true;
}

bool Parser::parse_end()
{
  if (!check_field_count(layout_->fixed_field_count)) return false;
  if (!hex(0, &trace_.end_ns) || !hex(1, &trace_.dropped_events)) return false;
  trace_.complete = true;
  seen_end_ = true;
  return true;
}

bool Parser::parse_metadata()
{
  if (!check_field_count(layout_->fixed_field_count)) return false;
  if (!trace_.events.empty()) {
    return fail(fmt::format("the 'm' (metadata) line must come before the first event (line {}): metadata "
                            "describes the whole trace",
                            trace_.events.front().line));
  }
  uint32_t key = 0;
  uint32_t value = 0;
  if (!name_ref(0, &key) || !name_ref(1, &value)) return false;
  if (key == no_name) return fail("field 1 (key) of the 'm' line: expected a name id, got 0 (a key needs a name)");
  const std::string_view key_text = trace_.name(key);
  if (trace_.metadata_value(key_text) != nullptr) {
    return fail(fmt::format("metadata key {} appears twice (each key once)", quote(key_text)));
  }
  trace_.metadata.push_back({std::string(key_text), std::string(trace_.name(value))});
  return true;
}

bool Parser::parse_flops(std::optional<size_t> op_before)
{
  if (!check_field_count(layout_->fixed_field_count)) return false;
  uint64_t seq = 0;
  uint64_t flops = 0;
  if (!hex(0, &seq) || !hex(1, &flops)) return false;
  if (!op_before) {
    return fail(fmt::format("the 'c' (flops) line for seq {:x} must directly follow the 'o' (op) line it describes",
                            seq));
  }
  Event& op = trace_.events[*op_before];
  if (op.seq != seq) {
    return fail(fmt::format("the 'c' (flops) line names seq {:x}, but the 'o' line before it has seq {:x}", seq,
                            op.seq));
  }
  std::get<OpEvent>(op.body).flops = flops;
  return true;
}

bool Parser::parse_event()
{
  if (!layout_->variable && !check_field_count(layout_->fixed_field_count)) return false;
  if (layout_->variable && fields_.size() < layout_->fixed_field_count) {
    return check_field_count(layout_->fixed_field_count);
  }
  Event event{};
  event.line = line_;
  if (!hex(0, &event.seq) || !hex(1, &event.ts_ns) || !hex(2, &event.tid)) return false;
  if (!parse_event_body(&event.body)) return false;
  if (layout_->tag == tag::op) op_on_previous_line_ = trace_.events.size();
  trace_.events.push_back(std::move(event));
  return true;
}

bool Parser::parse_event_body(EventBody* body)
{
  constexpr size_t f = event_header_fields;  // index of the first field after seq ts_ns tid
  switch (layout_->tag) {
    case tag::alloc: {
      AllocEvent e{};
      if (!hex(f, &e.alloc_id) || !hex(f + 1, &e.address) || !hex(f + 2, &e.bytes) || !hex(f + 3, &e.stream) ||
          !hex32(f + 4, &e.site) ||
          !word(f + 5, parse_alloc_kind, "malloc|async|pool|vmm|managed|host", &e.kind)) {
        return false;
      }
      if (e.site > trace_.site_frames.size()) {
        return fail(fmt::format("field {} (site) of the 'a' line: call site id {:x} is not defined (a 't' line "
                                "must define it earlier)",
                                f + 5, e.site));
      }
      *body = e;
      return true;
    }
    case tag::free_requested:
    case tag::free_completed: {
      FreeFields e{};
      if (!hex(f, &e.alloc_id) || !hex(f + 1, &e.address) || !hex(f + 2, &e.stream)) return false;
      if (layout_->tag == tag::free_requested) {
        *body = FreeRequestedEvent{e};
      } else {
        *body = FreeCompletedEvent{e};
      }
      return true;
    }
    case tag::op: {
      OpEvent e{};
      if (!parse_op(&e)) return false;
      *body = std::move(e);
      return true;
    }
    case tag::sync: {
      SyncEvent e{};
      if (!word(f, parse_sync_kind, "device|stream|event", &e.kind) || !hex(f + 1, &e.handle)) return false;
      *body = e;
      return true;
    }
    case tag::evict:
    case tag::prefetch: {
      ChunkMoveFields e{};
      if (!hex(f, &e.address) || !hex(f + 1, &e.bytes) || !hex(f + 2, &e.stream) || !name_ref(f + 3, &e.reason)) {
        return false;
      }
      if (layout_->tag == tag::evict) {
        *body = EvictEvent{e};
      } else {
        *body = PrefetchEvent{e};
      }
      return true;
    }
    default: return fail(fmt::format("internal error: no parser for tag '{}'", layout_->tag));
  }
}

bool Parser::parse_op(OpEvent* op)
{
  constexpr size_t f = event_header_fields;
  if (!word(f, parse_op_kind, "kernel|cublas|cudnn|copy|memset|host_func|graph|other", &op->kind) ||
      !name_ref(f + 1, &op->name) || !hex(f + 2, &op->stream) ||
      !word(f + 3, parse_copy_direction, "h2d|d2h|d2d|h2h|default|-", &op->direction)) {
    return false;
  }
  if ((op->kind == OpKind::copy) != (op->direction != CopyDirection::none)) {
    return fail(op->kind == OpKind::copy
                    ? std::string("a copy op needs a direction (h2d|d2h|d2d|h2h|default), got '-'")
                    : fmt::format("an op of kind {} must have direction '-', got {}", to_word(op->kind),
                                  quote(fields_[f + 3])));
  }
  uint64_t range_count = 0;
  if (!hex(f + 4, &range_count)) return false;
  const size_t range_fields = fields_.size() - layout_->fixed_field_count;
  if (range_fields % 3 != 0 || range_count != range_fields / 3) {
    return fail(fmt::format("the 'o' (op) line says {:x} ranges but has {} range fields (expected 3 per range: "
                            "address bytes access)",
                            range_count, range_fields));
  }
  op->ranges.resize(range_fields / 3);
  for (size_t i = 0; i < op->ranges.size(); ++i) {
    const size_t at = layout_->fixed_field_count + 3 * i;
    Range& range = op->ranges[i];
    if (!hex(at, &range.address) || !hex(at + 1, &range.bytes) || !word(at + 2, parse_access, "r|w|rw", &range.access)) {
      return false;
    }
  }
  return true;
}

bool Parser::check_sequence_numbers()
{
  // Per-thread buffers reach the file in runs (Note [Per-thread trace buffers]),
  // so restore the global order here; equal seqs mean a corrupt trace.
  std::stable_sort(trace_.events.begin(), trace_.events.end(),
                   [](const Event& a, const Event& b) { return a.seq < b.seq; });
  for (size_t i = 1; i < trace_.events.size(); ++i) {
    if (trace_.events[i].seq == trace_.events[i - 1].seq) {
      const auto [first, second] = std::minmax(trace_.events[i - 1].line, trace_.events[i].line);
      line_ = second;
      return fail(fmt::format("sequence number {:x} repeats the one on line {}", trace_.events[i].seq, first));
    }
  }
  return true;
}

}  // namespace

const std::string* Trace::metadata_value(std::string_view key) const
{
  for (const MetadataEntry& entry : metadata) {
    if (entry.key == key) return &entry.value;
  }
  return nullptr;
}

std::string ParseError::to_string() const
{
  return line == 0 ? fmt::format("{}: {}", file, message) : fmt::format("{}:{}: {}", file, line, message);
}

std::optional<ParseError> parse_trace(std::string_view text, std::string_view file_label, Trace* trace)
{
  *trace = Trace{};
  try {
    return Parser(file_label, *trace).parse(text);
  } catch (const std::exception& e) {  // std::bad_alloc on a huge file: still a value
    return ParseError{std::string(file_label), 0, std::string("cannot parse: ") + e.what()};
  }
}

std::optional<ParseError> read_trace(const std::string& path, Trace* trace)
{
  // POSIX I/O rather than iostreams: it reports why (ENOENT, EISDIR, EACCES).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ParseError{path, 0, std::string("cannot open: ") + std::strerror(errno)};
  std::string contents;
  char chunk[64 * 1024];
  while (true) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      return ParseError{path, 0, std::string("cannot read: ") + std::strerror(error)};
    }
    if (n == 0) break;
    contents.append(chunk, static_cast<size_t>(n));
  }
  ::close(fd);
  return parse_trace_file(contents, path, trace);
}

std::optional<ParseError> parse_trace_file(std::string_view contents, std::string_view file_label, Trace* trace)
{
  if (!looks_gzipped(contents)) return parse_trace(contents, file_label, trace);
  std::string text;
  if (std::optional<std::string> error = gunzip(contents, &text)) {
    *trace = Trace{};
    return ParseError{std::string(file_label), 0, "cannot decompress (gzip): " + *error};
  }
  return parse_trace(text, file_label, trace);
}

}  // namespace oversub::trace
