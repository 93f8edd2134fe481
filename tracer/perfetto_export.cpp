// From a parsed trace to trace-event JSON: Note [Exported timeline] in perfetto_export.h.
#include "tracer/perfetto_export.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "tracer/plot.h"

namespace oversub::trace {
namespace {

using trace_events::Arg;

constexpr uint32_t gpu_pid = 1;
constexpr uint32_t host_pid = 2;
// Track tids follow the pids and never repeat across processes (Note [Trace event JSON]).
constexpr uint32_t first_track_tid = host_pid + 1;
constexpr uint64_t sequence_slot_ns = 1000;  // one event per microsecond in the sequence layout
constexpr uint64_t unlimited_ns = UINT64_MAX;

// The copy tracks, top to bottom; indexed by CopyDirection (none has no track).
constexpr std::array<CopyDirection, 5> copy_track_order = {
    CopyDirection::host_to_device, CopyDirection::device_to_host, CopyDirection::device_to_device,
    CopyDirection::host_to_host, CopyDirection::unknown};

std::string hex(uint64_t value) { return fmt::format("0x{:x}", value); }

// A slice whose end is not known yet: it ends at the next op on its track or the
// first sync that waits for it.
struct OpenSlice {
  std::string name;
  std::string_view category;
  uint64_t start_ns = 0;
  uint64_t stream = 0;
  uint64_t seq = 0;
  uint64_t bytes = 0;  // copies and moves: bytes moved; other ops: bytes of their ranges
  std::string_view bytes_key;
  std::optional<uint64_t> flops;
  std::optional<uint64_t> ranges;   // ops only
  std::optional<uint64_t> address;  // evictions and prefetches
};

struct Track {
  uint32_t tid = 0;
  std::string name;
  std::optional<OpenSlice> open;
};

class Exporter {
 public:
  Exporter(const Trace& trace, TimelineLayout layout, trace_events::Sink& writer)
      : trace_(trace), layout_(layout), writer_(writer)
  {
    counts_.layout = layout;
    slot_cap_ns_ = layout == TimelineLayout::sequence ? sequence_slot_ns : unlimited_ns;
  }

  ExportCounts run()
  {
    collect_tracks();
    write_header();
    const Timeline memory = compute_timeline(trace_);
    bool any_alloc = false;
    bool any_evict = false;
    for (const Event& event : trace_.events) {
      any_alloc = any_alloc || std::holds_alternative<AllocEvent>(event.body);
      any_evict = any_evict || std::holds_alternative<EvictEvent>(event.body);
    }
    std::optional<uint64_t> last_live;
    std::optional<uint64_t> last_on_host;
    for (size_t i = 0; i < trace_.events.size(); ++i) {
      const Event& event = trace_.events[i];
      now_ns_ = std::max(now_ns_, time_of(event, i));  // never backwards (Note [Exported timeline])
      std::visit([&](const auto& body) { add(event, body); }, event.body);
      if (any_alloc) sample("live", memory.live_bytes[i], &last_live);
      if (any_evict) sample("on host", memory.on_host_bytes[i], &last_on_host);
    }
    const uint64_t end_ns = trace_end_ns();
    for (Track& track : gpu_tracks_) close(track, end_ns);
    return counts_;
  }

 private:
  uint64_t time_of(const Event& event, size_t index) const
  {
    if (layout_ == TimelineLayout::sequence) return index * sequence_slot_ns;
    return event.ts_ns - first_ts_ns_;
  }

  uint64_t trace_end_ns() const
  {
    if (layout_ == TimelineLayout::sequence) return trace_.events.size() * sequence_slot_ns;
    uint64_t end = now_ns_;
    if (trace_.complete && trace_.end_ns >= first_ts_ns_) end = std::max(end, trace_.end_ns - first_ts_ns_);
    return end;
  }

  void collect_tracks()
  {
    first_ts_ns_ = UINT64_MAX;
    std::array<bool, copy_direction_count> copies{};
    std::vector<uint64_t> streams;
    for (const Event& event : trace_.events) {
      first_ts_ns_ = std::min(first_ts_ns_, event.ts_ns);
      if (const auto* op = std::get_if<OpEvent>(&event.body)) {
        if (op->kind == OpKind::copy) {
          copies[static_cast<size_t>(op->direction)] = true;
        } else if (stream_tracks_.try_emplace(op->stream, streams.size()).second) {
          streams.push_back(op->stream);
        }
      } else if (std::holds_alternative<EvictEvent>(event.body)) {
        copies[static_cast<size_t>(CopyDirection::device_to_host)] = true;
      } else if (std::holds_alternative<PrefetchEvent>(event.body)) {
        copies[static_cast<size_t>(CopyDirection::host_to_device)] = true;
      } else if (std::holds_alternative<SyncEvent>(event.body)) {
        if (host_tracks_.try_emplace(event.tid, host_tids_.size()).second) {
          host_tids_.push_back(event.tid);
        }
      }
    }
    if (trace_.events.empty()) first_ts_ns_ = 0;
    for (uint64_t stream : streams) {
      gpu_tracks_.push_back({next_tid(), stream == 0 ? "stream 0 (default)" : "stream " + hex(stream), {}});
    }
    copy_tracks_.fill(SIZE_MAX);
    for (CopyDirection direction : copy_track_order) {
      if (!copies[static_cast<size_t>(direction)]) continue;
      copy_tracks_[static_cast<size_t>(direction)] = gpu_tracks_.size();
      gpu_tracks_.push_back({next_tid(), "copy " + std::string(to_word(direction)), {}});
    }
  }

  uint32_t next_tid() const { return first_track_tid + static_cast<uint32_t>(gpu_tracks_.size()); }
  uint32_t host_tid(size_t index) const { return next_tid() + static_cast<uint32_t>(index); }

  void write_header()
  {
    std::vector<std::pair<std::string, std::string>> entries;
    entries.emplace_back("exported_by", "oversub-trace export --perfetto");
    entries.emplace_back("layout", std::string(to_word(layout_)));
    entries.emplace_back("slice_length",
                         layout_ == TimelineLayout::sequence
                             ? "none recorded: ops are laid out by sequence, one event per microsecond, "
                               "each slice one microsecond long"
                             : "from enqueue to the next op enqueued on the same track, a sync that waits for "
                               "it, or the end of the trace: the trace records no GPU execution times");
    entries.emplace_back("trace_complete", trace_.complete ? "yes" : "no: the trace has no end line");
    entries.emplace_back("dropped_events", std::to_string(trace_.dropped_events));
    if (trace_.process) {
      entries.emplace_back("pid", std::to_string(trace_.process->pid));
      entries.emplace_back("executable", trace_.process->executable);
      entries.emplace_back("command_line", trace_.process->command_line);
      entries.emplace_back("oversub_mode", trace_.process->mode);
      entries.emplace_back("oversub_policy", trace_.process->policy);
    }
    for (const DeviceInfo& device : trace_.devices) {
      entries.emplace_back(fmt::format("device_{}", device.ordinal),
                           fmt::format("{}, {} bytes, compute capability {}.{}", device.name, device.total_bytes,
                                       device.compute_major, device.compute_minor));
    }
    for (const MetadataEntry& entry : trace_.metadata) entries.emplace_back("trace." + entry.key, entry.value);
    std::vector<std::pair<std::string_view, std::string_view>> other_data;
    other_data.reserve(entries.size());
    for (const auto& [key, value] : entries) other_data.emplace_back(key, value);
    writer_.begin(other_data);

    const std::string gpu_name =
        trace_.devices.empty() ? std::string("GPU") : fmt::format("GPU {}: {}", trace_.devices.front().ordinal,
                                                                  trace_.devices.front().name);
    writer_.process(gpu_pid, gpu_name, 0);
    for (size_t i = 0; i < gpu_tracks_.size(); ++i) {
      writer_.thread(gpu_pid, gpu_tracks_[i].tid, gpu_tracks_[i].name, static_cast<int32_t>(i));
    }
    if (!host_tids_.empty()) {
      writer_.process(host_pid, "host threads", 1);
      for (size_t i = 0; i < host_tids_.size(); ++i) {
        writer_.thread(host_pid, host_tid(i), fmt::format("thread {}", host_tids_[i]), static_cast<int32_t>(i));
      }
    }
    counts_.tracks = gpu_tracks_.size() + host_tids_.size();
  }

  void open(Track& track, OpenSlice slice)
  {
    close(track, slice.start_ns);
    track.open = std::move(slice);
  }

  void close(Track& track, uint64_t end_ns)
  {
    if (!track.open) return;
    const OpenSlice& open = *track.open;
    const uint64_t duration = std::min(end_ns >= open.start_ns ? end_ns - open.start_ns : 0, slot_cap_ns_);
    std::vector<Arg> args;
    args.push_back(Arg::of("seq", open.seq));
    const std::string stream = hex(open.stream);
    args.push_back(Arg::of("stream", stream));
    args.push_back(Arg::of(open.bytes_key, open.bytes));
    if (open.ranges) args.push_back(Arg::of("ranges", *open.ranges));
    if (open.flops) args.push_back(Arg::of("flops", *open.flops));
    std::string address;
    if (open.address) {
      address = hex(*open.address);
      args.push_back(Arg::of("address", address));
    }
    writer_.slice({gpu_pid, track.tid, open.name, open.category, open.start_ns, duration, args});
    track.open.reset();
  }

  void add(const Event& event, const OpEvent& op)
  {
    OpenSlice slice;
    slice.start_ns = now_ns_;
    slice.stream = op.stream;
    slice.seq = event.seq;
    slice.category = to_word(op.kind);
    slice.flops = op.flops;
    slice.ranges = op.ranges.size();
    for (const Range& range : op.ranges) {
      // A copy moves its destination bytes (docs/trace-format.md); other ops touch all of theirs.
      if (op.kind != OpKind::copy || range.access != Access::read) slice.bytes += range.bytes;
    }
    slice.bytes_key = op.kind == OpKind::copy ? "bytes" : "range_bytes";
    slice.name = trace_.name(op.name);
    if (slice.name.empty()) {
      slice.name = op.kind == OpKind::copy ? "copy " + std::string(to_word(op.direction)) : std::string(to_word(op.kind));
    }
    Track& track = op.kind == OpKind::copy ? gpu_tracks_[copy_tracks_[static_cast<size_t>(op.direction)]]
                                           : gpu_tracks_[stream_tracks_.at(op.stream)];
    open(track, std::move(slice));
    counts_.op_slices++;
  }

  void add_move(const Event& event, const ChunkMoveFields& move, std::string_view what, CopyDirection direction)
  {
    OpenSlice slice;
    slice.start_ns = now_ns_;
    slice.stream = move.stream;
    slice.seq = event.seq;
    slice.category = "oversub";
    slice.bytes = move.bytes;
    slice.bytes_key = "bytes";
    slice.address = move.address;
    const std::string_view reason = trace_.name(move.reason);
    slice.name = reason.empty() ? std::string(what) : fmt::format("{} ({})", what, reason);
    open(gpu_tracks_[copy_tracks_[static_cast<size_t>(direction)]], std::move(slice));
    counts_.move_slices++;
  }

  void add(const Event& event, const EvictEvent& evict)
  {
    add_move(event, evict, "evict", CopyDirection::device_to_host);
  }
  void add(const Event& event, const PrefetchEvent& prefetch)
  {
    add_move(event, prefetch, "prefetch", CopyDirection::host_to_device);
  }

  void add(const Event& event, const SyncEvent& sync)
  {
    // A device sync waits for everything queued; a stream sync for its stream's
    // work. An event sync waits for an unknown stream: it closes nothing.
    for (Track& track : gpu_tracks_) {
      if (track.open && (sync.kind == SyncKind::device ||
                         (sync.kind == SyncKind::stream && track.open->stream == sync.handle))) {
        close(track, now_ns_);
      }
    }
    const std::string name = sync.kind == SyncKind::device
                                 ? std::string("sync device")
                                 : fmt::format("sync {} {}", to_word(sync.kind), hex(sync.handle));
    const Arg args[] = {Arg::of("seq", event.seq)};
    writer_.instant({host_pid, host_tid(host_tracks_.at(event.tid)), name, "sync", now_ns_, args});
    counts_.sync_instants++;
  }

  template <class Body>
  void add(const Event&, const Body&)
  {
    // Allocations and frees show in the counters only.
  }

  void sample(std::string_view name, uint64_t value, std::optional<uint64_t>* last)
  {
    if (*last == value) return;
    *last = value;
    writer_.counter({gpu_pid, name, "bytes", now_ns_, value});
    counts_.counter_samples++;
  }

  const Trace& trace_;
  const TimelineLayout layout_;
  trace_events::Sink& writer_;
  ExportCounts counts_;
  uint64_t slot_cap_ns_ = unlimited_ns;
  uint64_t first_ts_ns_ = 0;
  uint64_t now_ns_ = 0;
  std::vector<Track> gpu_tracks_;                           // streams, then copy directions
  std::unordered_map<uint64_t, size_t> stream_tracks_;      // stream -> index in gpu_tracks_
  std::array<size_t, copy_direction_count> copy_tracks_{};  // direction -> index, SIZE_MAX: none
  std::unordered_map<uint64_t, size_t> host_tracks_;        // Linux tid -> index in host_tids_
  std::vector<uint64_t> host_tids_;
};

}  // namespace

TimelineLayout choose_layout(const Trace& trace)
{
  bool ts_is_seq = true;
  bool all_equal = true;
  for (const Event& event : trace.events) {
    ts_is_seq = ts_is_seq && event.ts_ns == event.seq;
    all_equal = all_equal && event.ts_ns == trace.events.front().ts_ns;
  }
  return ts_is_seq || all_equal ? TimelineLayout::sequence : TimelineLayout::time;
}

ExportCounts export_perfetto(const Trace& trace, const ExportOptions& options, trace_events::Sink& writer)
{
  const TimelineLayout layout = options.layout == TimelineLayout::automatic ? choose_layout(trace) : options.layout;
  return Exporter(trace, layout, writer).run();
}

std::string_view to_word(TimelineLayout layout)
{
  switch (layout) {
    case TimelineLayout::automatic: return "auto";
    case TimelineLayout::time: return "time";
    case TimelineLayout::sequence: return "sequence";
  }
  return "?";
}

}  // namespace oversub::trace
