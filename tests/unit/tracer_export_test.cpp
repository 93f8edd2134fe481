// `oversub-trace export --perfetto`: the JSON writer's escaping and numbers, the
// timeline built from a trace (Note [Exported timeline]) and the command's exit
// statuses. tests/integration/check_perfetto_export.py reads whole exports back
// with a JSON parser.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "tests/unit/tracer_test_support.h"
#include "tracer/perfetto_export.h"
#include "tracer/reader.h"
#include "tracer/trace_event_json.h"

namespace oversub::trace {
namespace {

using trace_events::append_json_string;
using trace_events::append_microseconds;

std::string json(std::string_view text)
{
  std::string out;
  append_json_string(out, text);
  return out;
}

std::string microseconds(uint64_t ns)
{
  std::string out;
  append_microseconds(out, ns);
  return out;
}

TEST(TraceEventJson, EscapesWhatJsonNeeds)
{
  EXPECT_EQ(json("plain name"), "\"plain name\"");
  EXPECT_EQ(json("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(json("\n\r\t"), "\"\\n\\r\\t\"");
  EXPECT_EQ(json(std::string("\x01\x1f\x00", 3)), "\"\\u0001\\u001f\\u0000\"");
  EXPECT_EQ(json("\x7f"), "\"\x7f\"");  // DEL needs no escape in JSON
}

TEST(TraceEventJson, KeepsUtf8AndReplacesEveryInvalidByte)
{
  EXPECT_EQ(json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  EXPECT_EQ(json("\xff"), "\"\\ufffd\"");
  EXPECT_EQ(json("\xc0\xaf"), "\"\\ufffd\\ufffd\"");              // overlong '/'
  EXPECT_EQ(json("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");  // a surrogate
  EXPECT_EQ(json("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // above U+10FFFF
  EXPECT_EQ(json("x\xe2\x82"), "\"x\\ufffd\\ufffd\"");           // cut short at the end
  EXPECT_EQ(json("\xe2\x82y"), "\"\\ufffd\\ufffdy\"");           // cut short by an ASCII byte
}

TEST(TraceEventJson, MicrosecondsAreExact)
{
  EXPECT_EQ(microseconds(0), "0.000");
  EXPECT_EQ(microseconds(7), "0.007");
  EXPECT_EQ(microseconds(1000), "1.000");
  EXPECT_EQ(microseconds(1234567), "1234.567");
  EXPECT_EQ(microseconds(UINT64_MAX), "18446744073709551.615");
}

TEST(TraceEventJson, WritesOneDocument)
{
  testing::TempPath path(".json");
  std::FILE* out = std::fopen(path.str().c_str(), "w");
  ASSERT_NE(out, nullptr);
  trace_events::JsonWriter writer(out);
  const std::pair<std::string_view, std::string_view> other[] = {{"layout", "time"}};
  writer.begin(other);
  writer.process(1, "GPU", 0);
  writer.thread(1, 2, "stream 0x5", 2);
  const trace_events::Arg args[] = {trace_events::Arg::of("seq", 3), trace_events::Arg::of("stream", "0x5")};
  writer.slice({1, 2, "gemm", "cublas", 1500, 250, args});
  writer.instant({2, 3, "sync device", "sync", 2000, {}});
  writer.counter({1, "live", "bytes", 2500, 4096});
  EXPECT_EQ(writer.finish(), std::nullopt);
  EXPECT_EQ(writer.events_written(), 7u);
  std::fclose(out);
  EXPECT_EQ(testing::read_file(path.str()),
            "{\"otherData\":{\"layout\":\"time\"},\n\"traceEvents\":[\n"
            "{\"ph\":\"M\",\"pid\":1,\"tid\":1,\"name\":\"process_name\",\"args\":{\"name\":\"GPU\"}},\n"
            "{\"ph\":\"M\",\"pid\":1,\"tid\":1,\"name\":\"process_sort_index\",\"args\":{\"sort_index\":0}},\n"
            "{\"ph\":\"M\",\"pid\":1,\"tid\":2,\"name\":\"thread_name\",\"args\":{\"name\":\"stream 0x5\"}},\n"
            "{\"ph\":\"M\",\"pid\":1,\"tid\":2,\"name\":\"thread_sort_index\",\"args\":{\"sort_index\":2}},\n"
            "{\"ph\":\"X\",\"pid\":1,\"tid\":2,\"name\":\"gemm\",\"cat\":\"cublas\",\"ts\":1.500,\"dur\":0.250,"
            "\"args\":{\"seq\":3,\"stream\":\"0x5\"}},\n"
            "{\"ph\":\"i\",\"pid\":2,\"tid\":3,\"name\":\"sync device\",\"cat\":\"sync\",\"s\":\"t\",\"ts\":2.000},\n"
            "{\"ph\":\"C\",\"pid\":1,\"tid\":1,\"name\":\"live\",\"ts\":2.500,\"args\":{\"bytes\":4096}}\n]}\n");
}

TEST(TraceEventJson, ReportsAFailedWrite)
{
  std::FILE* full = std::fopen("/dev/full", "w");
  if (full == nullptr) GTEST_SKIP() << "no /dev/full";
  trace_events::JsonWriter writer(full);
  writer.begin({});
  for (int i = 0; i < 10000; ++i) writer.slice({1, 1, "kernel", "kernel", 0, 1, {}});
  const std::optional<std::string> error = writer.finish();
  std::fclose(full);
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->find("No space left"), std::string::npos) << *error;
}

// Keeps what the exporter produced, as plain values.
class RecordingSink final : public trace_events::Sink {
 public:
  struct Recorded {
    std::string track;
    std::string name;
    std::string category;
    uint64_t start_ns;
    uint64_t duration_ns;
    std::map<std::string, std::string> args;
  };
  std::map<std::string, std::string> other_data;
  std::map<std::pair<uint32_t, uint32_t>, std::string> tracks;
  std::vector<std::string> processes;
  std::vector<Recorded> slices;
  std::vector<Recorded> instants;
  std::vector<std::pair<std::string, std::pair<uint64_t, uint64_t>>> counters;  // name, (ts, value)

  void begin(trace_events::OtherData data) override
  {
    for (const auto& [key, value] : data) other_data[std::string(key)] = value;
  }
  void process(uint32_t, std::string_view name, int32_t) override { processes.emplace_back(name); }
  void thread(uint32_t pid, uint32_t tid, std::string_view name, int32_t) override { tracks[{pid, tid}] = name; }
  void slice(const trace_events::Slice& s) override
  {
    slices.push_back({track(s.pid, s.tid), std::string(s.name), std::string(s.category), s.start_ns, s.duration_ns,
                      args(s.args)});
  }
  void instant(const trace_events::Instant& i) override
  {
    instants.push_back({track(i.pid, i.tid), std::string(i.name), std::string(i.category), i.ts_ns, 0, args(i.args)});
  }
  void counter(const trace_events::CounterSample& c) override
  {
    counters.push_back({std::string(c.name) + " " + std::string(c.series), {c.ts_ns, c.value}});
  }

 private:
  std::string track(uint32_t pid, uint32_t tid)
  {
    auto it = tracks.find({pid, tid});
    EXPECT_NE(it, tracks.end()) << "an event on the unnamed track " << pid << "/" << tid;
    return it == tracks.end() ? "?" : it->second;
  }
  static std::map<std::string, std::string> args(std::span<const trace_events::Arg> list)
  {
    std::map<std::string, std::string> out;
    for (const auto& arg : list) out[std::string(arg.key)] = arg.number ? std::to_string(*arg.number) : std::string(arg.text);
    return out;
  }
};

Trace parse(const std::string& text)
{
  Trace trace;
  const std::optional<ParseError> error = parse_trace(text, "test.trace", &trace);
  EXPECT_FALSE(error.has_value()) << error->to_string();
  return trace;
}

// Timestamps in ns from 0x1000: two compute streams, copies both ways, an
// eviction and a prefetch, a stream sync and a device sync.
const char* const timed_trace =
    "v 2 oversub-trace\n"
    "n 1 gemm\n"
    "n 2 relu\n"
    "n 3 budget\n"
    "a 1 1000 64 1 100 400 0 0 malloc\n"
    "o 2 1100 64 cublas 1 7 - 1 100 400 rw\n"
    "o 3 1200 64 kernel 2 7 - 0\n"
    "o 4 1250 65 kernel 0 9 - 0\n"
    "o 5 1300 64 copy 0 7 h2d 2 9000 10 r 100 10 w\n"
    "e 6 1400 66 100 200 a 3\n"
    "s 7 1500 64 stream 7\n"
    "p 8 1600 66 100 200 b 3\n"
    "o 9 1700 65 kernel 1 9 - 0\n"
    "F a 1800 64 1 100 0\n"
    "s b 1900 64 device 0\n"
    "x 2000 0\n";

TEST(PerfettoExport, TimeLayoutTracksAndSliceBounds)
{
  const Trace trace = parse(timed_trace);
  EXPECT_EQ(choose_layout(trace), TimelineLayout::time);
  RecordingSink sink;
  const ExportCounts counts = export_perfetto(trace, {}, sink);
  EXPECT_EQ(counts.layout, TimelineLayout::time);
  EXPECT_EQ(counts.op_slices, 5u);
  EXPECT_EQ(counts.move_slices, 2u);
  EXPECT_EQ(counts.sync_instants, 2u);
  EXPECT_EQ(counts.tracks, 5u);  // stream 7, stream 9, copy h2d, copy d2h, host thread 64
  EXPECT_EQ(sink.other_data["layout"], "time");

  std::map<std::string, std::vector<std::tuple<std::string, uint64_t, uint64_t>>> by_track;
  for (const auto& s : sink.slices) by_track[s.track].emplace_back(s.name, s.start_ns, s.duration_ns);
  using Slices = std::vector<std::tuple<std::string, uint64_t, uint64_t>>;
  // gemm ends when relu is enqueued on its stream; relu at the stream sync (0x1500).
  EXPECT_EQ(by_track["stream 0x7"], (Slices{{"gemm", 0x100, 0x100}, {"relu", 0x200, 0x300}}));
  // The unnamed kernel on stream 9 is named by its kind and lasts until the next
  // op there; the last one ends at the device sync.
  EXPECT_EQ(by_track["stream 0x9"], (Slices{{"kernel", 0x250, 0x4b0}, {"gemm", 0x700, 0x200}}));
  // The copy (stream 7) ends at the stream sync; the prefetch (shim stream b) at the device sync.
  EXPECT_EQ(by_track["copy h2d"], (Slices{{"copy h2d", 0x300, 0x200}, {"prefetch (budget)", 0x600, 0x300}}));
  // The eviction's stream a is never synced alone: it lasts until the device sync.
  EXPECT_EQ(by_track["copy d2h"], (Slices{{"evict (budget)", 0x400, 0x500}}));
  EXPECT_EQ(sink.slices.size(), 7u);

  for (const auto& s : sink.slices) {
    if (s.name == "copy h2d") {
      EXPECT_EQ(s.args.at("bytes"), "16");  // the destination range only
      EXPECT_EQ(s.args.at("stream"), "0x7");
    }
    if (s.name == "evict (budget)") {
      EXPECT_EQ(s.args.at("address"), "0x100");
    }
  }
  ASSERT_EQ(sink.instants.size(), 2u);
  EXPECT_EQ(sink.instants[0].track, "thread 100");  // tid 0x64
  EXPECT_EQ(sink.instants[0].name, "sync stream 0x7");
  EXPECT_EQ(sink.instants[1].name, "sync device");

  // Live bytes: 0x400 from the allocation until its free completes; no change, no sample.
  using Samples = std::vector<std::pair<std::string, std::pair<uint64_t, uint64_t>>>;
  Samples live;
  Samples on_host;
  for (const auto& c : sink.counters) (c.first == "live bytes" ? live : on_host).push_back(c);
  EXPECT_EQ(live, (Samples{{"live bytes", {0, 0x400}}, {"live bytes", {0x800, 0}}}));
  EXPECT_EQ(on_host, (Samples{{"on host bytes", {0, 0}}, {"on host bytes", {0x400, 0x200}},
                              {"on host bytes", {0x600, 0}}}));
}

TEST(PerfettoExport, TraceWithoutTimestampsIsLaidOutBySequence)
{
  // As scripts/trace_from_torch.py writes them: ts_ns equals seq.
  const Trace trace = parse(
      "v 2 oversub-trace\n"
      "n 1 aten::mm\n"
      "a 1 1 1 1 100 400 0 0 malloc\n"
      "o 2 2 1 cublas 1 0 - 1 100 400 rw\n"
      "o 3 3 1 cublas 1 0 - 1 100 400 rw\n"
      "s 4 4 1 device 0\n"
      "o 5 5 1 copy 0 0 h2d 0\n");
  EXPECT_EQ(choose_layout(trace), TimelineLayout::sequence);
  RecordingSink sink;
  EXPECT_EQ(export_perfetto(trace, {}, sink).layout, TimelineLayout::sequence);
  EXPECT_EQ(sink.other_data["layout"], "sequence");
  EXPECT_NE(sink.other_data["slice_length"].find("by sequence"), std::string::npos);
  ASSERT_EQ(sink.slices.size(), 3u);
  // Event i (counting every event) starts at i microseconds and lasts one.
  EXPECT_EQ(sink.slices[0].start_ns, 1000u);
  EXPECT_EQ(sink.slices[1].start_ns, 2000u);
  EXPECT_EQ(sink.slices[2].start_ns, 4000u);
  for (const auto& s : sink.slices) EXPECT_EQ(s.duration_ns, 1000u) << s.name;
  EXPECT_EQ(sink.slices[2].track, "copy h2d");
}

TEST(PerfettoExport, ForcedLayoutAndEqualTimestamps)
{
  const Trace same_time = parse("v 2 oversub-trace\no 1 5 1 kernel 0 0 - 0\no 2 5 1 kernel 0 0 - 0\n");
  EXPECT_EQ(choose_layout(same_time), TimelineLayout::sequence);
  RecordingSink sink;
  EXPECT_EQ(export_perfetto(same_time, {TimelineLayout::time}, sink).layout, TimelineLayout::time);
  ASSERT_EQ(sink.slices.size(), 2u);
  EXPECT_EQ(sink.slices[0].duration_ns, 0u);  // the next op came at the same instant
  EXPECT_EQ(sink.other_data["trace_complete"], "no: the trace has no end line");
}

TEST(PerfettoExport, StartsNeverGoBackOnATrack)
{
  // Two threads whose clocks disagree with seq order: seq wins, times are raised.
  const Trace trace = parse(
      "v 2 oversub-trace\n"
      "o 1 500 1 kernel 0 3 - 0\n"
      "o 2 400 2 kernel 0 3 - 0\n"
      "o 3 600 1 kernel 0 3 - 0\n"
      "x 700 0\n");
  RecordingSink sink;
  export_perfetto(trace, {}, sink);
  ASSERT_EQ(sink.slices.size(), 3u);
  EXPECT_EQ(sink.slices[0].start_ns, 0x100u);  // the first event (ts 0x400) is time 0
  EXPECT_EQ(sink.slices[1].start_ns, 0x100u);
  EXPECT_EQ(sink.slices[2].start_ns, 0x200u);
  EXPECT_EQ(sink.slices[2].duration_ns, 0x100u);  // until the end line
  for (size_t i = 1; i < sink.slices.size(); ++i) {
    EXPECT_LE(sink.slices[i - 1].start_ns + sink.slices[i - 1].duration_ns, sink.slices[i].start_ns);
  }
}

TEST(PerfettoExport, EmptyTrace)
{
  RecordingSink sink;
  const ExportCounts counts = export_perfetto(parse("v 2 oversub-trace\nx 0 0\n"), {}, sink);
  EXPECT_EQ(counts.op_slices + counts.tracks + counts.counter_samples, 0u);
  EXPECT_EQ(sink.processes, std::vector<std::string>{"GPU"});
}

// --- the command ---

using testing::CliRun;
using testing::run_cli;

std::string data(const std::string& name) { return testing::data_trace(name); }

TEST(ExportCommand, WritesJsonAndSaysWhat)
{
  testing::TempPath out(".json");
  const CliRun run = run_cli("export --perfetto " + data("small.trace") + " -o " + out.str());
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_EQ(run.output, out.str() + ": 3 ops and 2 evictions or prefetches on 4 tracks, 11 counter samples, layout time\n");
  const std::string json_text = testing::read_file(out.str());
  EXPECT_EQ(json_text.rfind("{\"otherData\":{", 0), 0u);
  EXPECT_NE(json_text.find("\"name\":\"gemm_kernel\""), std::string::npos);
  EXPECT_EQ(json_text.substr(json_text.size() - 4), "\n]}\n");
}

TEST(ExportCommand, LayoutOptionAndStdout)
{
  const CliRun run = run_cli("export --perfetto --layout sequence " + data("small.trace") + " -o -");
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("\"layout\":\"sequence\""), std::string::npos) << run.output.substr(0, 300);
}

TEST(ExportCommand, Help)
{
  const CliRun run = run_cli("export --help");
  EXPECT_EQ(run.status, 0);
  EXPECT_EQ(run.output.rfind("usage: oversub-trace export --perfetto FILE -o OUT.json", 0), 0u) << run.output;
  EXPECT_NE(run_cli("--help").output.find("export --perfetto FILE"), std::string::npos);
}

TEST(ExportCommand, UsageErrorsExitTwo)
{
  const std::string trace = data("small.trace");
  for (const std::string& arguments : std::vector<std::string>{
           "export " + trace + " -o x.json", "export --perfetto -o x.json", "export --perfetto " + trace,
        "export --perfetto " + trace + " -o", "export --perfetto " + trace + " -o x.json --layout wall",
        "export --perfetto " + trace + " -o x.json --frobnicate", "export --perfetto " + trace + " " + trace +
                                                                     " -o x.json"}) {
    const CliRun run = run_cli(arguments);
    EXPECT_EQ(run.status, 2) << arguments << ": " << run.output;
    EXPECT_NE(run.output.find("usage: oversub-trace export"), std::string::npos) << run.output;
  }
}

TEST(ExportCommand, MalformedTraceExitsOneAndLeavesTheOutputAlone)
{
  testing::TempPath out(".json");
  testing::write_file(out.str(), "keep me");
  const std::string path = data("malformed-undefined-name.trace");
  const CliRun run = run_cli("export --perfetto " + path + " -o " + out.str());
  EXPECT_EQ(run.status, 1);
  EXPECT_EQ(run.output.rfind("oversub-trace: " + path + ":4: ", 0), 0u) << run.output;
  EXPECT_EQ(testing::read_file(out.str()), "keep me");
}

TEST(ExportCommand, UnwritableOutputExitsOne)
{
  const CliRun missing_dir = run_cli("export --perfetto " + data("small.trace") + " -o /nonexistent/dir/out.json");
  EXPECT_EQ(missing_dir.status, 1);
  EXPECT_EQ(missing_dir.output,
            "oversub-trace: /nonexistent/dir/out.json: cannot write: No such file or directory\n");
  const CliRun full = run_cli("export --perfetto " + data("torch/vgg16-b256-224.trace.gz") + " -o /dev/full");
  EXPECT_EQ(full.status, 1);
  EXPECT_EQ(full.output, "oversub-trace: /dev/full: cannot write: No space left on device\n");
}

}  // namespace
}  // namespace oversub::trace
