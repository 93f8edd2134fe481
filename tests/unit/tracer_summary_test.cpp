// The summary numbers on the hand-written tests/data/traces/small.trace, whose
// events are stored in two per-thread runs out of seq order (as the writer does).
#include <gtest/gtest.h>

#include "tests/unit/tracer_test_support.h"
#include "tracer/reader.h"
#include "tracer/summary.h"

namespace oversub::trace {
namespace {

constexpr uint64_t MiB = 1 << 20;

class TracerSummary : public ::testing::Test {
 protected:
  void SetUp() override
  {
    const std::optional<ParseError> error = read_trace(testing::source_path("tests/data/traces/small.trace"), &trace);
    ASSERT_FALSE(error.has_value()) << error->to_string();
    summary = summarize(trace);
  }
  Trace trace;
  Summary summary;
};

TEST_F(TracerSummary, CountsAllocationsAndFrees)
{
  EXPECT_EQ(summary.events, 18u);
  EXPECT_EQ(summary.allocations.count, 5u);
  EXPECT_EQ(summary.allocations.bytes, 15 * MiB + 2048);
  EXPECT_EQ(summary.allocations_by_kind[static_cast<size_t>(AllocKind::pool)].bytes, 8 * MiB);
  EXPECT_EQ(summary.allocations_by_kind[static_cast<size_t>(AllocKind::host)].count, 1u);
  EXPECT_EQ(summary.frees_requested, 3u);
  EXPECT_EQ(summary.frees_completed.count, 3u);
  EXPECT_EQ(summary.frees_completed.bytes, 11 * MiB);
  EXPECT_EQ(summary.unmatched_frees, 0u);
  EXPECT_EQ(summary.live_at_end.count, 2u);
  EXPECT_EQ(summary.live_at_end.bytes, 4 * MiB + 2048);
  EXPECT_EQ(summary.duration_ns, 0x110u);
}

TEST_F(TracerSummary, PeakLiveBytesFollowsSeqOrderAndFreeCompleted)
{
  // In seq order, 1+2+4 MiB are live when thread 0x65's 8 MiB pool allocation
  // (seq 6) arrives: 15 MiB. Reading the file top to bottom would give 12 MiB,
  // and dropping bytes at free *requested* (id 1, seq 5) would give 14 MiB.
  EXPECT_EQ(summary.peak_live_bytes, 15 * MiB);
  EXPECT_EQ(summary.peak_live_seq, 6u);
  EXPECT_EQ(summary.peak_live_device_bytes, 15 * MiB);
}

TEST_F(TracerSummary, CountsOpsCopiesSyncsAndMoves)
{
  EXPECT_EQ(summary.ops, 3u);
  EXPECT_EQ(summary.ops_by_kind[static_cast<size_t>(OpKind::kernel)], 1u);
  EXPECT_EQ(summary.ops_by_kind[static_cast<size_t>(OpKind::copy)], 2u);
  EXPECT_EQ(summary.copies.bytes, 4 * MiB + 2048);  // destination bytes only
  EXPECT_EQ(summary.copies_by_direction[static_cast<size_t>(CopyDirection::device_to_host)].bytes, 4 * MiB);
  EXPECT_EQ(summary.copies_by_direction[static_cast<size_t>(CopyDirection::host_to_device)].bytes, 2048u);
  EXPECT_EQ(summary.syncs, 2u);
  EXPECT_EQ(summary.syncs_by_kind[static_cast<size_t>(SyncKind::device)], 1u);
  EXPECT_EQ(summary.evictions.bytes, 2 * MiB);
  EXPECT_EQ(summary.prefetches.count, 1u);
}

TEST_F(TracerSummary, RanksCallSitesByAllocatedBytes)
{
  ASSERT_EQ(summary.top_call_sites.size(), 3u);
  EXPECT_EQ(summary.top_call_sites[0].site, 2u);
  EXPECT_EQ(summary.top_call_sites[0].bytes, 12 * MiB);
  EXPECT_EQ(summary.top_call_sites[0].allocations, 2u);
  EXPECT_EQ(summary.top_call_sites[1].site, 1u);
  EXPECT_EQ(summary.top_call_sites[2].site, no_site);
  EXPECT_EQ(summarize(trace, 1).top_call_sites.size(), 1u);
  const std::string text = render_summary_text(trace, summary);
  EXPECT_NE(text.find("/usr/lib/libcupy.so+0x42 cupy_malloc"), std::string::npos) << text;
}

TEST_F(TracerSummary, JsonHasTheDocumentedKeys)
{
  const std::string json = render_summary_json(trace, summary);
  for (const char* expected : {"\"allocations\": 5,", "\"frees\": 3,", "\"ops\": 3,", "\"peak_live_bytes\": 15728640,",
                               "\"ops_by_kind\": {\"kernel\": 1, \"cublas\": 0, \"cudnn\": 0, \"copy\": 2,",
                               "\"copy_bytes\": 4196352,", "\"command_line\": \"python3 train.py --batch 8\""}) {
    EXPECT_NE(json.find(expected), std::string::npos) << expected << "\n" << json;
  }
}

TEST(TracerSummaryVersionTwo, AddsUpFlopsAndShowsMetadata)
{
  const std::string text =
      "v 2 oversub-trace\n"
      "n 1 model\nn 2 resnet50\nn 3 command\nn 4 python3 \"scripts/trace_from_torch.py\"\n"
      "m 1 2\nm 3 4\nn 5 storages_made_outside_capture\nn 6 0\nm 5 6\n"
      "o 1 1 1 cublas 0 0 - 0\nc 1 3b9aca00\n"  // 1e9
      "o 2 2 1 kernel 0 0 - 0\n"                   // no FLOPs known
      "o 3 3 1 kernel 0 0 - 0\nc 3 1dcd6500\n";  // 5e8
  Trace trace;
  const std::optional<ParseError> error = parse_trace(text, "v2.trace", &trace);
  ASSERT_FALSE(error.has_value()) << error->to_string();
  const Summary summary = summarize(trace);
  EXPECT_EQ(summary.ops, 3u);
  EXPECT_EQ(summary.ops_with_flops, 2u);
  EXPECT_EQ(summary.flops, 1'500'000'000u);
  const std::string rendered = render_summary_text(trace, summary);
  EXPECT_NE(rendered.find("FLOPs               1500000000 (1.50 GFLOP) in 2 ops"), std::string::npos) << rendered;
  // Values line up after the longest key, and a key never runs into its value.
  EXPECT_NE(rendered.find("  model                         resnet50\n"), std::string::npos) << rendered;
  EXPECT_NE(rendered.find("  storages_made_outside_capture 0\n"), std::string::npos) << rendered;
  const std::string json = render_summary_json(trace, summary);
  EXPECT_NE(json.find("\"metadata\": {\"model\": \"resnet50\", \"command\": \"python3 \\\"scripts/trace_from_torch.py\\\"\", "
                      "\"storages_made_outside_capture\": \"0\"}"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"flops\": 1500000000,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"ops_with_flops\": 2,"), std::string::npos) << json;
}

TEST(TracerSummaryVersionTwo, JsonStaysValidForNamesThatAreNotUtf8)
{
  // A metadata value with a byte that is not UTF-8 (0xff) and a control byte.
  Trace trace;
  ASSERT_FALSE(parse_trace("v 2 oversub-trace\nn 1 model\nn 2 bad \xff\x01 caf\xc3\xa9\nm 1 2\n", "odd.trace", &trace)
                   .has_value());
  const std::string json = render_summary_json(trace, summarize(trace));
  EXPECT_NE(json.find("\"metadata\": {\"model\": \"bad \\ufffd\\u0001 caf\xc3\xa9\"}"), std::string::npos) << json;
  EXPECT_EQ(json.find('\xff'), std::string::npos);
}

TEST(TracerSummaryVersionTwo, WithoutFlopsLinesTheTotalIsUnknown)
{
  Trace trace;
  ASSERT_FALSE(parse_trace("v 1 oversub-trace\no 1 1 1 kernel 0 0 - 0\n", "v1.trace", &trace).has_value());
  const Summary summary = summarize(trace);
  EXPECT_EQ(summary.ops_with_flops, 0u);
  EXPECT_NE(render_summary_text(trace, summary).find("FLOPs               unknown"), std::string::npos);
  EXPECT_NE(render_summary_json(trace, summary).find("\"metadata\": {},"), std::string::npos);
}

TEST(TracerSummaryEdgeCases, FreesOfUnknownIdsAndReusedIdsAreCountedNotFatal)
{
  const std::string text =
      "v 1 oversub-trace\n"
      "a 1 1 1 7 1000 100 0 0 malloc\n"
      "a 2 2 1 7 2000 200 0 0 malloc\n"  // id 7 again while live: its free was lost
      "F 3 3 1 8 3000 0\n"                // never allocated
      "F 4 4 1 7 2000 0\n";
  Trace trace;
  ASSERT_FALSE(parse_trace(text, "edge.trace", &trace).has_value());
  const Summary summary = summarize(trace);
  EXPECT_EQ(summary.duplicate_alloc_ids, 1u);
  EXPECT_EQ(summary.unmatched_frees, 1u);
  EXPECT_EQ(summary.peak_live_bytes, 0x200u);
  EXPECT_EQ(summary.live_at_end.bytes, 0u);
}

}  // namespace
}  // namespace oversub::trace
