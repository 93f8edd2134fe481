// Writer -> reader round trips on one thread: every event kind, interning,
// call-site symbolization, close() semantics, oversized lines, open errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "tests/unit/tracer_test_support.h"
#include "tracer/reader.h"
#include "tracer/writer.h"

// Outside any anonymous namespace and linked with -rdynamic, so dladdr can name it.
__attribute__((noinline)) size_t oversub_test_capture_here(uintptr_t* frames, size_t max)
{
  const size_t n = oversub::trace::capture_call_site(frames, max, 0);
  asm volatile("" ::: "memory");  // keep this a real call frame (no tail call)
  return n;
}

namespace oversub::trace {
namespace {

using testing::TempPath;

std::unique_ptr<Writer> open_or_fail(const std::string& path)
{
  std::string error;
  std::unique_ptr<Writer> writer = Writer::open(path, &error);
  EXPECT_NE(writer, nullptr) << error;
  return writer;
}

Trace read_or_fail(const std::string& path)
{
  Trace trace;
  const std::optional<ParseError> error = read_trace(path, &trace);
  EXPECT_FALSE(error.has_value()) << error->to_string();
  return trace;
}

TEST(TracerWriter, RoundTripsEveryRecordKind)
{
  TempPath path;
  auto writer = open_or_fail(path.str());
  ProcessInfo process{42, "/bin/app", "app --flag x", 111, 222, "0.1.0", "swap", "next-use"};
  writer->process(process);
  writer->device(DeviceInfo{1, "GPU one", 80ull << 30, 9, 0});
  const uint32_t gemm = writer->name_id("gemm");
  const uint32_t reason = writer->name_id("budget");
  const uintptr_t frames[] = {0x1000, 0x2000};
  const uint32_t site = writer->site_id(frames, 2);
  const Range ranges[] = {{0xa000, 0x100, Access::read}, {0xb000, 0x200, Access::write},
                          {0xc000, 0x300, Access::read_write}};
  std::vector<uint64_t> seqs;
  seqs.push_back(writer->alloc(7, 0xa000, 0x100, 3, site, AllocKind::vmm));
  seqs.push_back(writer->op(OpKind::cublas, gemm, 3, ranges, 3));
  seqs.push_back(writer->copy(no_name, 4, CopyDirection::device_to_host, ranges, 2));
  seqs.push_back(writer->op(OpKind::copy, no_name, 4, ranges, 0));
  seqs.push_back(writer->sync(SyncKind::event, 0xe1));
  seqs.push_back(writer->evict(0xa000, 0x200000, 5, reason));
  seqs.push_back(writer->prefetch(0xa000, 0x200000, 6, reason));
  seqs.push_back(writer->free_requested(7, 0xa000, 3));
  seqs.push_back(writer->free_completed(7, 0xa000, 3));
  writer->close();

  for (size_t i = 1; i < seqs.size(); ++i) EXPECT_GT(seqs[i], seqs[i - 1]);
  const Trace trace = read_or_fail(path.str());
  EXPECT_EQ(trace.version, format_version);
  EXPECT_TRUE(trace.complete);
  EXPECT_EQ(trace.dropped_events, 0u);
  ASSERT_TRUE(trace.process.has_value());
  EXPECT_EQ(trace.process->pid, 42u);
  EXPECT_EQ(trace.process->executable, "/bin/app");
  EXPECT_EQ(trace.process->command_line, "app --flag x");
  EXPECT_EQ(trace.process->start_unix_ns, 111u);
  EXPECT_EQ(trace.process->start_monotonic_ns, 222u);
  EXPECT_EQ(trace.process->policy, "next-use");
  ASSERT_EQ(trace.devices.size(), 1u);
  EXPECT_EQ(trace.devices[0].name, "GPU one");
  EXPECT_EQ(trace.devices[0].total_bytes, 80ull << 30);
  EXPECT_EQ(trace.devices[0].compute_major, 9u);
  ASSERT_EQ(trace.events.size(), seqs.size());
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(trace.events[i].seq, seqs[i]);

  const auto& alloc = std::get<AllocEvent>(trace.events[0].body);
  EXPECT_EQ(alloc.alloc_id, 7u);
  EXPECT_EQ(alloc.bytes, 0x100u);
  EXPECT_EQ(alloc.stream, 3u);
  EXPECT_EQ(alloc.kind, AllocKind::vmm);
  EXPECT_EQ(trace.site_frames.at(alloc.site - 1).size(), 2u);
  const auto& op = std::get<OpEvent>(trace.events[1].body);
  EXPECT_EQ(op.kind, OpKind::cublas);
  EXPECT_EQ(trace.name(op.name), "gemm");
  EXPECT_EQ(op.direction, CopyDirection::none);
  ASSERT_EQ(op.ranges.size(), 3u);
  EXPECT_EQ(op.ranges[2].address, 0xc000u);
  EXPECT_EQ(op.ranges[2].bytes, 0x300u);
  EXPECT_EQ(op.ranges[2].access, Access::read_write);
  const auto& copy = std::get<OpEvent>(trace.events[2].body);
  EXPECT_EQ(copy.kind, OpKind::copy);
  EXPECT_EQ(copy.direction, CopyDirection::device_to_host);
  EXPECT_EQ(copy.ranges.size(), 2u);
  EXPECT_EQ(std::get<OpEvent>(trace.events[3].body).direction, CopyDirection::unknown);
  EXPECT_EQ(std::get<SyncEvent>(trace.events[4].body).handle, 0xe1u);
  EXPECT_EQ(std::get<SyncEvent>(trace.events[4].body).kind, SyncKind::event);
  EXPECT_EQ(trace.name(std::get<EvictEvent>(trace.events[5].body).reason), "budget");
  EXPECT_EQ(std::get<PrefetchEvent>(trace.events[6].body).stream, 6u);
  EXPECT_EQ(std::get<FreeRequestedEvent>(trace.events[7].body).alloc_id, 7u);
  EXPECT_EQ(std::get<FreeCompletedEvent>(trace.events[8].body).address, 0xa000u);
  for (const Event& e : trace.events) EXPECT_NE(e.tid, 0u);
  for (size_t i = 1; i < trace.events.size(); ++i) EXPECT_GE(trace.events[i].ts_ns, trace.events[i - 1].ts_ns);
}

TEST(TracerWriter, InternsNamesOncePerString)
{
  TempPath path;
  auto writer = open_or_fail(path.str());
  const uint32_t a = writer->name_id("kernel_a");
  const uint32_t b = writer->name_id("kernel_b");
  const std::string tricky = "with space\\and\nnewline\r";
  const uint32_t c = writer->name_id(tricky);
  EXPECT_NE(a, no_name);
  EXPECT_NE(a, b);
  EXPECT_EQ(writer->name_id("kernel_a"), a);
  EXPECT_EQ(writer->name_id(std::string("kernel_") + "b"), b);
  writer->close();

  const std::string text = testing::read_file(path.str());
  size_t lines_for_a = 0;
  for (size_t at = text.find("kernel_a"); at != std::string::npos; at = text.find("kernel_a", at + 1)) ++lines_for_a;
  EXPECT_EQ(lines_for_a, 1u);
  const Trace trace = read_or_fail(path.str());
  EXPECT_EQ(trace.name(a), "kernel_a");
  EXPECT_EQ(trace.name(c), tricky);
}

TEST(TracerWriter, InternsCallSitesAndSymbolizesFrames)
{
  TempPath path;
  auto writer = open_or_fail(path.str());
  uintptr_t frames[16];
  const size_t count = oversub_test_capture_here(frames, 16);
  ASSERT_GE(count, 2u);
  const uint32_t site = writer->site_id(frames, count);
  EXPECT_EQ(writer->site_id(frames, count), site);
  EXPECT_NE(writer->site_id(frames + 1, count - 1), site);
  EXPECT_EQ(writer->site_id(frames, 0), no_site);
  writer->alloc(1, 0x1000, 0x10, 0, site, AllocKind::malloc);
  writer->close();

  const Trace trace = read_or_fail(path.str());
  ASSERT_EQ(trace.site_frames.size(), 2u);  // two distinct stacks, each written once
  const std::vector<uint32_t>& site_frames = trace.site_frames[site - 1];
  ASSERT_EQ(site_frames.size(), count);
  // Frame 0 is inside oversub_test_capture_here; frame 1 is this test body.
  const std::string_view innermost = trace.name(site_frames[0]);
  EXPECT_NE(innermost.find("oversub_test_capture_here("), std::string_view::npos) << innermost;
  EXPECT_NE(innermost.find("+0x"), std::string_view::npos) << innermost;
  // The module is this test program (dladdr names the main program as it was started).
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").filename().string();
  EXPECT_NE(innermost.substr(0, innermost.find("+0x")).find(self), std::string_view::npos) << innermost;
  // The shorter stack shares its frames' names instead of re-symbolizing them.
  EXPECT_EQ(trace.site_frames[1][0], site_frames[1]);
}

TEST(TracerWriter, CloseIsIdempotentAndLaterEventsAreDropped)
{
  TempPath path;
  auto writer = open_or_fail(path.str());
  EXPECT_NE(writer->alloc(1, 0x1000, 0x10, 0, no_site, AllocKind::malloc), 0u);
  writer->close();
  const std::string closed_text = testing::read_file(path.str());
  writer->close();
  EXPECT_EQ(writer->alloc(2, 0x2000, 0x10, 0, no_site, AllocKind::malloc), 0u);
  EXPECT_EQ(writer->sync(SyncKind::device, 0), 0u);
  EXPECT_EQ(writer->name_id("late"), no_name);
  EXPECT_EQ(writer->dropped_events(), 2u);
  writer.reset();  // the destructor's close() is a no-op too
  EXPECT_EQ(testing::read_file(path.str()), closed_text);
  const Trace trace = read_or_fail(path.str());
  ASSERT_EQ(trace.events.size(), 1u);
  EXPECT_TRUE(trace.complete);
}

TEST(TracerWriter, OpLinesLargerThanABufferRoundTrip)
{
  TempPath path;
  auto writer = open_or_fail(path.str());
  std::vector<Range> ranges;
  for (uint64_t i = 0; i < 5000; ++i) ranges.push_back({0x7f0000000000 + i * 0x1000, 0x1000, Access::read});
  writer->alloc(1, 0x1000, 0x10, 0, no_site, AllocKind::malloc);  // a partly used buffer first
  writer->op(OpKind::kernel, writer->name_id("multi_tensor_apply"), 0, ranges.data(), ranges.size());
  writer->close();
  const Trace trace = read_or_fail(path.str());
  ASSERT_EQ(trace.events.size(), 2u);
  const auto& op = std::get<OpEvent>(trace.events[1].body);
  ASSERT_EQ(op.ranges.size(), ranges.size());
  EXPECT_EQ(op.ranges.back().address, ranges.back().address);
}

TEST(TracerWriter, OpenFailureNamesTheFileAndTheOsError)
{
  std::string error;
  const std::string path = "/nonexistent-oversub-dir/out.trace";
  EXPECT_EQ(Writer::open(path, &error), nullptr);
  EXPECT_NE(error.find(path), std::string::npos) << error;
  EXPECT_NE(error.find("No such file or directory"), std::string::npos) << error;
}

TEST(TracerWriter, TwoWritersOnOneThreadKeepTheirEventsApart)
{
  TempPath first_path, second_path;
  auto first = open_or_fail(first_path.str());
  auto second = open_or_fail(second_path.str());
  for (uint64_t i = 0; i < 100; ++i) {
    first->alloc(i, 0x1000 + i, 1, 0, no_site, AllocKind::malloc);
    second->alloc(1000 + i, 0x9000 + i, 1, 0, no_site, AllocKind::async);
  }
  first->close();
  second->close();
  for (const auto& [path, base] : {std::pair{first_path.str(), 0u}, std::pair{second_path.str(), 1000u}}) {
    const Trace trace = read_or_fail(path);
    ASSERT_EQ(trace.events.size(), 100u);
    for (size_t i = 0; i < 100; ++i) EXPECT_EQ(std::get<AllocEvent>(trace.events[i].body).alloc_id, base + i);
  }
}

}  // namespace
}  // namespace oversub::trace
