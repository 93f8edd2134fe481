// The trace-event JSON writer (Note [Trace event JSON] in trace_event_json.h).
#include "tracer/trace_event_json.h"

#include <cerrno>
#include <cstring>

namespace oversub::trace::trace_events {
namespace {

// Output is written in pieces of about this size: large traces never sit in memory.
constexpr size_t flush_bytes = 64 * 1024;

void append_decimal(std::string& out, uint64_t value)
{
  char digits[20];
  size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (n > 0) out += digits[--n];
}

// The length of the valid UTF-8 sequence at the start of `text`, or 0 when it
// does not start with one (RFC 3629: no overlong forms, no surrogates, at most
// U+10FFFF).
size_t utf8_sequence_length(std::string_view text)
{
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  size_t length = 0;
  unsigned char low = 0x80;  // the range the second byte must fall in
  unsigned char high = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) low = 0xa0;   // overlong
    if (lead == 0xed) high = 0x9f;  // surrogates
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) low = 0x90;   // overlong
    if (lead == 0xf4) high = 0x8f;  // above U+10FFFF
  } else {
    return 0;
  }
  if (text.size() < length || byte(1) < low || byte(1) > high) return 0;
  for (size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xbf) return 0;
  }
  return length;
}

}  // namespace

void append_json_string(std::string& out, std::string_view text)
{
  static constexpr char hex_digits[] = "0123456789abcdef";
  out += '"';
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const size_t length = utf8_sequence_length(text.substr(i));
      if (length == 0) {
        out += "\\ufffd";  // not UTF-8: the replacement character, one per bad byte
        ++i;
      } else {
        out.append(text.substr(i, length));
        i += length;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex_digits[c >> 4];
          out += hex_digits[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
}

void append_microseconds(std::string& out, uint64_t ns)
{
  append_decimal(out, ns / 1000);
  const auto fraction = static_cast<unsigned>(ns % 1000);
  out += '.';
  out += static_cast<char>('0' + fraction / 100);
  out += static_cast<char>('0' + fraction / 10 % 10);
  out += static_cast<char>('0' + fraction % 10);
}

void JsonWriter::begin(OtherData other_data)
{
  buffer_ += "{\"otherData\":{";
  bool first = true;
  for (const auto& [key, value] : other_data) {
    if (!first) buffer_ += ',';
    first = false;
    append_json_string(buffer_, key);
    buffer_ += ':';
    append_json_string(buffer_, value);
  }
  buffer_ += "},\n\"traceEvents\":[\n";
}

void JsonWriter::start_event(char phase, uint32_t pid, uint32_t tid, std::string_view name)
{
  if (events_++ > 0) buffer_ += ",\n";
  buffer_ += "{\"ph\":\"";
  buffer_ += phase;
  buffer_ += "\",\"pid\":";
  append_decimal(buffer_, pid);
  buffer_ += ",\"tid\":";
  append_decimal(buffer_, tid);
  buffer_ += ",\"name\":";
  append_json_string(buffer_, name);
}

void JsonWriter::end_event()
{
  buffer_ += '}';
  flush_if_full();
}

void JsonWriter::append_args(std::span<const Arg> args)
{
  buffer_ += ",\"args\":{";
  for (size_t i = 0; i < args.size(); ++i) {
    if (i > 0) buffer_ += ',';
    append_json_string(buffer_, args[i].key);
    buffer_ += ':';
    if (args[i].number) {
      append_decimal(buffer_, *args[i].number);
    } else {
      append_json_string(buffer_, args[i].text);
    }
  }
  buffer_ += '}';
}

void JsonWriter::process(uint32_t pid, std::string_view name, int32_t sort_index)
{
  start_event('M', pid, pid, "process_name");
  buffer_ += ",\"args\":{\"name\":";
  append_json_string(buffer_, name);
  buffer_ += "}}";
  start_event('M', pid, pid, "process_sort_index");
  buffer_ += ",\"args\":{\"sort_index\":" + std::to_string(sort_index) + '}';
  end_event();
}

void JsonWriter::thread(uint32_t pid, uint32_t tid, std::string_view name, int32_t sort_index)
{
  start_event('M', pid, tid, "thread_name");
  buffer_ += ",\"args\":{\"name\":";
  append_json_string(buffer_, name);
  buffer_ += "}}";
  start_event('M', pid, tid, "thread_sort_index");
  buffer_ += ",\"args\":{\"sort_index\":" + std::to_string(sort_index) + '}';
  end_event();
}

void JsonWriter::slice(const Slice& slice)
{
  start_event('X', slice.pid, slice.tid, slice.name);
  buffer_ += ",\"cat\":";
  append_json_string(buffer_, slice.category);
  buffer_ += ",\"ts\":";
  append_microseconds(buffer_, slice.start_ns);
  buffer_ += ",\"dur\":";
  append_microseconds(buffer_, slice.duration_ns);
  if (!slice.args.empty()) append_args(slice.args);
  end_event();
}

void JsonWriter::instant(const Instant& instant)
{
  start_event('i', instant.pid, instant.tid, instant.name);
  buffer_ += ",\"cat\":";
  append_json_string(buffer_, instant.category);
  buffer_ += ",\"s\":\"t\",\"ts\":";
  append_microseconds(buffer_, instant.ts_ns);
  if (!instant.args.empty()) append_args(instant.args);
  end_event();
}

void JsonWriter::counter(const CounterSample& sample)
{
  start_event('C', sample.pid, sample.pid, sample.name);
  buffer_ += ",\"ts\":";
  append_microseconds(buffer_, sample.ts_ns);
  const Arg value = Arg::of(sample.series, sample.value);
  append_args({&value, 1});
  end_event();
}

std::optional<std::string> JsonWriter::finish()
{
  buffer_ += "\n]}\n";
  flush();
  if (error_ == 0 && std::fflush(out_) != 0) error_ = errno != 0 ? errno : EIO;
  if (error_ != 0) return std::string(std::strerror(error_));
  return std::nullopt;
}

void JsonWriter::flush_if_full()
{
  if (buffer_.size() >= flush_bytes) flush();
}

void JsonWriter::flush()
{
  if (error_ == 0 && !buffer_.empty()) {
    errno = 0;
    if (std::fwrite(buffer_.data(), 1, buffer_.size(), out_) != buffer_.size()) error_ = errno != 0 ? errno : EIO;
  }
  buffer_.clear();  // after a failure the rest is dropped: finish() reports it
}

}  // namespace oversub::trace::trace_events
