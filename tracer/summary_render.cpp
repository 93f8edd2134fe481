// Text and JSON renderings of a Summary (what `oversub-trace summary` prints).
#include <fmt/format.h>

#include <algorithm>

#include "tracer/summary.h"
#include "tracer/trace_event_json.h"

namespace oversub::trace {
namespace {

// `value` in the largest of `units` (each `step` times the one before) that keeps it >= 1.
template <size_t N>
std::string with_unit(uint64_t value, uint64_t step, const char* const (&units)[N])
{
  if (value < step) return fmt::format("{} {}", value, units[0]);
  double scaled = static_cast<double>(value);
  size_t unit = 0;
  while (scaled >= static_cast<double>(step) && unit + 1 < N) {
    scaled /= static_cast<double>(step);
    ++unit;
  }
  return fmt::format("{:.2f} {}", scaled, units[unit]);
}

std::string human_bytes(uint64_t bytes)
{
  constexpr const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  return with_unit(bytes, 1024, units);
}

// Decimal prefixes, as FLOP counts are quoted (4.1 GFLOP, not GiFLOP).
std::string human_flops(uint64_t flops)
{
  constexpr const char* units[] = {"FLOP", "kFLOP", "MFLOP", "GFLOP", "TFLOP", "PFLOP", "EFLOP"};
  return with_unit(flops, 1000, units);
}

std::string human_duration(uint64_t ns)
{
  if (ns < 1000) return fmt::format("{} ns", ns);
  if (ns < 1000'000) return fmt::format("{:.2f} us", static_cast<double>(ns) / 1e3);
  if (ns < 1000'000'000) return fmt::format("{:.2f} ms", static_cast<double>(ns) / 1e6);
  return fmt::format("{:.3f} s", static_cast<double>(ns) / 1e9);
}

std::string count_and_bytes(const CountAndBytes& c) { return fmt::format("{} ({})", c.count, human_bytes(c.bytes)); }

// "kernel 80, copy 10": the non-zero entries of a per-kind table.
template <class Enum, class Value, size_t N, class Show>
std::string breakdown(const std::array<Value, N>& table, Show show)
{
  std::string out;
  for (size_t i = 0; i < N; ++i) {
    const std::string shown = show(table[i]);
    if (shown.empty()) continue;
    if (!out.empty()) out += ", ";
    out += fmt::format("{} {}", to_word(static_cast<Enum>(i)), shown);
  }
  return out.empty() ? "none" : out;
}

std::string show_count(uint64_t count) { return count == 0 ? std::string() : fmt::format("{}", count); }
std::string show_count_and_bytes(const CountAndBytes& c) { return c.count == 0 ? std::string() : count_and_bytes(c); }


std::string json_count_and_bytes(const CountAndBytes& c)
{
  return fmt::format("{{\"count\": {}, \"bytes\": {}}}", c.count, c.bytes);
}

// {"kernel": 3, ...} with every kind present, zeros included, so consumers can
// index without checking.
template <class Enum, class Value, size_t N, class Show>
std::string json_table(const std::array<Value, N>& table, Show show, size_t skip_index = N)
{
  std::string out = "{";
  for (size_t i = 0; i < N; ++i) {
    if (i == skip_index) continue;
    if (out.size() > 1) out += ", ";
    out += fmt::format("{}: {}", json_string(to_word(static_cast<Enum>(i))), show(table[i]));
  }
  return out + "}";
}

}  // namespace

// Names are raw bytes from the trace: the shared escaper also turns bytes that
// are not UTF-8 into U+FFFD, so the output is always valid JSON.
std::string json_string(std::string_view text)
{
  std::string out;
  trace_events::append_json_string(out, text);
  return out;
}

std::string render_summary_text(const Trace& trace, const Summary& s)
{
  std::string out;
  auto line = [&out](std::string_view label, const std::string& value) {
    out += fmt::format("{:<20}{}\n", label, value);
  };
  if (trace.process) {
    const ProcessInfo& p = *trace.process;
    line("process", fmt::format("pid {} {}", p.pid, p.executable));
    line("command line", p.command_line);
    line("oversub", fmt::format("{} mode {} policy {}", p.oversub_version, p.mode, p.policy));
  }
  for (const DeviceInfo& d : trace.devices) {
    line(fmt::format("device {}", d.ordinal),
         fmt::format("{}, {}, compute {}.{}", d.name, human_bytes(d.total_bytes), d.compute_major, d.compute_minor));
  }
  line("events", fmt::format("{} over {}{}", s.events, human_duration(s.duration_ns),
                             trace.complete ? "" : " (incomplete: no end line)"));
  if (trace.dropped_events != 0) line("dropped events", fmt::format("{}", trace.dropped_events));
  if (!trace.metadata.empty()) {
    // Aligned like the other lines, except that a long key keeps one space before its value.
    size_t key_width = 17;
    for (const MetadataEntry& entry : trace.metadata) key_width = std::max(key_width, entry.key.size());
    out += "metadata\n";
    for (const MetadataEntry& entry : trace.metadata) out += fmt::format("  {:<{}} {}\n", entry.key, key_width, entry.value);
  }
  out += '\n';
  line("allocations", count_and_bytes(s.allocations));
  line("  by kind", breakdown<AllocKind>(s.allocations_by_kind, show_count_and_bytes));
  line("frees", fmt::format("requested {}, completed {}, unmatched {}", s.frees_requested,
                            count_and_bytes(s.frees_completed), s.unmatched_frees));
  line("peak live bytes", fmt::format("{} ({}) at seq {:x}; device memory only {}", s.peak_live_bytes,
                                      human_bytes(s.peak_live_bytes), s.peak_live_seq,
                                      human_bytes(s.peak_live_device_bytes)));
  line("live at end", count_and_bytes(s.live_at_end));
  if (s.duplicate_alloc_ids != 0) line("reused alloc ids", fmt::format("{} (frees missing)", s.duplicate_alloc_ids));
  line("ops", fmt::format("{}", s.ops));
  line("  by kind", breakdown<OpKind>(s.ops_by_kind, show_count));
  line("FLOPs", s.ops_with_flops == 0 ? std::string("unknown (no op has a 'c' line)")
                                      : fmt::format("{} ({}) in {} ops", s.flops, human_flops(s.flops),
                                                    s.ops_with_flops));
  line("bytes copied", fmt::format("{} ({}) in {} copies", s.copies.bytes, human_bytes(s.copies.bytes), s.copies.count));
  line("  by direction", breakdown<CopyDirection>(s.copies_by_direction, show_count_and_bytes));
  line("syncs", fmt::format("{}", s.syncs));
  line("  by kind", breakdown<SyncKind>(s.syncs_by_kind, show_count));
  line("evictions", count_and_bytes(s.evictions));
  line("prefetches", count_and_bytes(s.prefetches));

  out += fmt::format("\ntop {} call sites by allocated bytes:\n", s.top_call_sites.size());
  for (size_t i = 0; i < s.top_call_sites.size(); ++i) {
    const CallSiteTotal& site = s.top_call_sites[i];
    out += fmt::format("  #{} {}: {} in {} allocations\n", i + 1,
                       site.site == no_site ? std::string("(no call site captured)") : fmt::format("site {:x}", site.site),
                       human_bytes(site.bytes), site.allocations);
    if (site.site == no_site) continue;
    for (uint32_t frame : trace.site_frames[site.site - 1]) out += fmt::format("      {}\n", trace.name(frame));
  }
  return out;
}

std::string render_summary_json(const Trace& trace, const Summary& s)
{
  std::string out = "{\n";
  auto field = [&out](std::string_view key, const std::string& value) {
    if (out.size() > 2) out += ",\n";
    out += fmt::format("  {}: {}", json_string(key), value);
  };
  field("format_version", fmt::format("{}", trace.version));
  field("complete", trace.complete ? "true" : "false");
  field("dropped_events", fmt::format("{}", trace.dropped_events));
  std::string metadata = "{";
  for (const MetadataEntry& entry : trace.metadata) {
    if (metadata.size() > 1) metadata += ", ";
    metadata += fmt::format("{}: {}", json_string(entry.key), json_string(entry.value));
  }
  field("metadata", metadata + "}");
  if (trace.process) {
    const ProcessInfo& p = *trace.process;
    field("process", fmt::format("{{\"pid\": {}, \"executable\": {}, \"command_line\": {}, \"oversub_version\": {}, "
                                 "\"mode\": {}, \"policy\": {}}}",
                                 p.pid, json_string(p.executable), json_string(p.command_line),
                                 json_string(p.oversub_version), json_string(p.mode), json_string(p.policy)));
  }
  std::string devices = "[";
  for (const DeviceInfo& d : trace.devices) {
    if (devices.size() > 1) devices += ", ";
    devices += fmt::format("{{\"ordinal\": {}, \"name\": {}, \"total_bytes\": {}, \"compute_capability\": \"{}.{}\"}}",
                           d.ordinal, json_string(d.name), d.total_bytes, d.compute_major, d.compute_minor);
  }
  field("devices", devices + "]");
  field("events", fmt::format("{}", s.events));
  field("duration_ns", fmt::format("{}", s.duration_ns));
  field("allocations", fmt::format("{}", s.allocations.count));
  field("allocated_bytes", fmt::format("{}", s.allocations.bytes));
  field("allocations_by_kind", json_table<AllocKind>(s.allocations_by_kind, json_count_and_bytes));
  field("frees", fmt::format("{}", s.frees_requested));
  field("frees_completed", fmt::format("{}", s.frees_completed.count));
  field("freed_bytes", fmt::format("{}", s.frees_completed.bytes));
  field("unmatched_frees", fmt::format("{}", s.unmatched_frees));
  field("peak_live_bytes", fmt::format("{}", s.peak_live_bytes));
  field("peak_live_seq", fmt::format("{}", s.peak_live_seq));
  field("peak_live_device_bytes", fmt::format("{}", s.peak_live_device_bytes));
  field("live_at_end", json_count_and_bytes(s.live_at_end));
  field("ops", fmt::format("{}", s.ops));
  field("ops_by_kind", json_table<OpKind>(s.ops_by_kind, [](uint64_t c) { return fmt::format("{}", c); }));
  field("flops", fmt::format("{}", s.flops));
  field("ops_with_flops", fmt::format("{}", s.ops_with_flops));
  field("copies", fmt::format("{}", s.copies.count));
  field("copy_bytes", fmt::format("{}", s.copies.bytes));
  field("copies_by_direction", json_table<CopyDirection>(s.copies_by_direction, json_count_and_bytes,
                                                         static_cast<size_t>(CopyDirection::none)));
  field("syncs", fmt::format("{}", s.syncs));
  field("syncs_by_kind", json_table<SyncKind>(s.syncs_by_kind, [](uint64_t c) { return fmt::format("{}", c); }));
  field("evictions", json_count_and_bytes(s.evictions));
  field("prefetches", json_count_and_bytes(s.prefetches));
  std::string sites = "[";
  for (const CallSiteTotal& site : s.top_call_sites) {
    if (sites.size() > 1) sites += ",";
    std::string frames = "[";
    if (site.site != no_site) {
      for (uint32_t frame : trace.site_frames[site.site - 1]) {
        if (frames.size() > 1) frames += ", ";
        frames += json_string(trace.name(frame));
      }
    }
    sites += fmt::format("\n    {{\"site\": {}, \"allocations\": {}, \"bytes\": {}, \"frames\": {}]}}", site.site,
                         site.allocations, site.bytes, frames);
  }
  field("top_call_sites", sites + (s.top_call_sites.empty() ? "]" : "\n  ]"));
  return out + "\n}\n";
}

}  // namespace oversub::trace
