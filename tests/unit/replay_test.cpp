// oversub-trace replay's library: the event simulation on tiny traces whose times are
// worked out by hand, the workload built from a trace, and policy sanity.
#include <gtest/gtest.h>

#include <string>

#include "policy/events.h"
#include "tracer/reader.h"
#include "tracer/replay/compare.h"
#include "tracer/replay/replay.h"
#include "tracer/replay/workload.h"

namespace oversub::replay {
namespace {

constexpr uint64_t chunk = policy::chunk_bytes;

// Round numbers so that every time below can be checked with a pencil: an op of F
// FLOPs takes F / 0.5e12 s + 3 us (memory is fast enough never to matter), and a copy
// takes 10 us, then 1 byte per ns, or 0.5 bytes per ns while the other way is busy.
DeviceProfile test_device()
{
  DeviceProfile d{};
  d.name = "test";
  d.description = "a device for hand-worked times";
  d.matrix_fp32_flops = 1e12;
  d.matrix_half_flops = 1e12;
  d.vector_fp32_flops = 1e12;  // times vector_efficiency 0.5: 0.5e12 FLOP/s
  d.memory_bytes_per_s = 1e18;
  d.memory_bytes = 1ull << 40;
  d.link_bytes_per_s = 1e9;
  d.link_efficiency = 1.0;
  d.two_way_efficiency = 0.5;
  d.copy_latency_ns = 10'000;
  return d;
}

// A version 2 trace: `body` holds event lines whose seq fields are in file order.
Workload workload_of(const std::string& body, uint32_t extra_steps = 0)
{
  const std::string text = "v 2 oversub-trace\nn 1 k\n" + body + "x ffffff 0\n";
  trace::Trace trace;
  const std::optional<trace::ParseError> parse = trace::parse_trace(text, "test.trace", &trace);
  EXPECT_FALSE(parse.has_value()) << parse->to_string();
  Workload w;
  const std::optional<trace::ParseError> error = build_workload(trace, "test.trace", extra_steps, &w);
  EXPECT_FALSE(error.has_value()) << error->to_string();
  return w;
}

ReplayResult replay(const Workload& w, PolicyKind policy, uint64_t budget_bytes, const DeviceProfile& device)
{
  ReplayOptions options;
  options.device = &device;
  options.policy = policy;
  options.budget_bytes = budget_bytes;
  return run_replay(w, options);
}

// Two 2 MiB buffers, A and B, each written by an op: A's of `a_flops` (hex), B's of 1e6.
std::string write_a_then_b(const std::string& a_flops = "f4240")
{
  return "a 1 1 1 1 100000 200000 0 0 malloc\n"
         "a 2 2 1 2 400000 200000 0 0 malloc\n"
         "o 3 3 1 kernel 1 0 - 1 100000 200000 w\n"
         "c 3 " + a_flops + "\n"
         "o 4 4 1 kernel 1 0 - 1 400000 200000 w\n"
         "c 4 f4240\n";
}

// 1e6 FLOPs: 2 us of compute, so 5 us in all with the op overhead.
constexpr int64_t op_ns = 2'000 + op_overhead_ns;
constexpr int64_t copy_ns = 10'000 + static_cast<int64_t>(chunk);  // one chunk, one way alone

TEST(ReplaySimulation, OneOpTakesTheHostIssueThenItsRoofline)
{
  const Workload w = workload_of(
    "a 1 1 1 1 100000 200000 0 0 malloc\n"
    "o 2 2 1 kernel 1 0 - 1 100000 200000 w\n"
    "c 2 f4240\n"
    "s 3 3 1 device 0\n");
  const DeviceProfile d = test_device();
  const ReplayResult r = replay(w, PolicyKind::unlimited, 0, d);
  ASSERT_TRUE(r.ran);
  EXPECT_EQ(r.step_ns, host_issue_ns + op_ns);
  EXPECT_EQ(r.bytes_h2d + r.bytes_d2h, 0u);
  EXPECT_EQ(r.peak_device_bytes, chunk);
}

TEST(ReplaySimulation, OneEvictionCostsLatencyPlusBytesOverBandwidth)
{
  // Two 2 MiB buffers, a budget of one chunk: the second op must evict the first
  // buffer, after the first op, and the host waits for that copy (lru, on demand).
  const Workload w = workload_of(write_a_then_b() +
    "s 5 5 1 device 0\n");
  const DeviceProfile d = test_device();
  const ReplayResult r = replay(w, PolicyKind::lru, chunk, d);
  ASSERT_TRUE(r.ran) << r.failure;
  // op 1 runs [5, 10] us; the host asks for memory for op 2 at 10 us, when op 1 is done,
  // so the copy runs [10 us, 10 us + copy_ns]; op 2 follows it.
  const int64_t copy_end = 2 * host_issue_ns + copy_ns;
  EXPECT_EQ(r.step_ns, copy_end + op_ns);
  EXPECT_EQ(r.bytes_d2h, chunk);
  EXPECT_EQ(r.bytes_h2d, 0u);
  EXPECT_EQ(r.host_stall_ns, copy_ns);
  EXPECT_EQ(r.evictions, 1u);
  EXPECT_EQ(r.peak_device_bytes, chunk);
}

TEST(ReplaySimulation, AnEvictionWaitsForTheChunksLastUse)
{
  // As above, but the first op takes 1e8 FLOPs (200 us + 3 us): when the host asks for
  // memory at 10 us it is still running, and the copy may only start once it is done.
  const Workload w = workload_of(write_a_then_b("5f5e100") + "s 5 5 1 device 0\n");
  const DeviceProfile d = test_device();
  const ReplayResult r = replay(w, PolicyKind::lru, chunk, d);
  ASSERT_TRUE(r.ran) << r.failure;
  const int64_t first_op_end = host_issue_ns + 200'000 + op_overhead_ns;
  EXPECT_EQ(r.step_ns, first_op_end + copy_ns + op_ns);
  EXPECT_EQ(r.host_stall_ns, first_op_end + copy_ns - 2 * host_issue_ns);
}

TEST(ReplaySimulation, ABroughtBackChunkDelaysItsOpByTheCopy)
{
  // A is written, evicted for B, then read again: it comes back on the host-to-device
  // engine while B goes out, and the third op waits for A's copy.
  const Workload w = workload_of(write_a_then_b() +
    "o 5 5 1 kernel 1 0 - 1 100000 200000 r\n"
    "c 5 f4240\n"
    "s 6 6 1 device 0\n");
  const DeviceProfile d = test_device();
  const ReplayResult r = replay(w, PolicyKind::lru, chunk, d);
  ASSERT_TRUE(r.ran) << r.failure;
  // Op 2 runs [e1, e1 + 5 us] where e1 = 10 us + copy_ns. The host issues op 3 at e1
  // and must evict B: that copy waits for op 2 and takes copy_ns alone; then A comes
  // back (copy_ns alone) and op 3 runs.
  const int64_t e1 = 2 * host_issue_ns + copy_ns;
  const int64_t b_out = e1 + op_ns + copy_ns;
  EXPECT_EQ(r.step_ns, b_out + copy_ns + op_ns);
  EXPECT_EQ(r.bytes_d2h, 2 * chunk);
  EXPECT_EQ(r.bytes_h2d, chunk);
  EXPECT_EQ(r.stream_stall_ns, copy_ns) << "op 3 waited for A's copy, nothing else";
}

TEST(ReplaySimulation, CopiesBothWaysShareTheLink)
{
  // The program's own copies: 2 MiB up on stream 1, 2 MiB down on stream 2 issued 5 us
  // later. Both flow at half rate while both are in flight (Note [Two-way copies]).
  const Workload w = workload_of(
    "a 1 1 1 1 100000 200000 0 0 malloc\n"
    "a 2 2 1 2 400000 200000 0 0 malloc\n"
    "o 3 3 1 copy 0 1 h2d 2 900000000 200000 r 100000 200000 w\n"
    "o 4 4 1 copy 0 2 d2h 2 400000 200000 r 990000000 200000 w\n"
    "s 5 5 1 device 0\n");
  const DeviceProfile d = test_device();
  const ReplayResult r = replay(w, PolicyKind::unlimited, 0, d);
  ASSERT_TRUE(r.ran);
  // Up: issued at 5 us, bytes from 15 us. Down: issued at 10 us, bytes from 20 us.
  // Both are in flight from 10 us, so up flows at 0.5 B/ns from 15 us and ends at
  // 15 us + 2 * chunk ns; down has then moved (that - 20 us) * 0.5 bytes and moves
  // the rest at 1 B/ns.
  const int64_t up_end = 15'000 + 2 * static_cast<int64_t>(chunk);
  const int64_t down_left = static_cast<int64_t>(chunk) - (up_end - 20'000) / 2;
  EXPECT_EQ(r.step_ns, up_end + down_left);
  EXPECT_EQ(r.bytes_h2d + r.bytes_d2h, 0u) << "the program's copies are not the policy's";
}

TEST(ReplaySimulation, StreamsRunSideBySideAndADeviceSyncWaitsForAll)
{
  const Workload w = workload_of(
    "a 1 1 1 1 100000 200000 0 0 malloc\n"
    "a 2 2 1 2 400000 200000 0 0 malloc\n"
    "o 3 3 1 kernel 1 1 - 1 100000 200000 w\n"
    "c 3 3d0900\n"
    "o 4 4 1 kernel 1 2 - 1 400000 200000 w\n"
    "c 4 f4240\n"
    "s 5 5 1 device 0\n");
  const DeviceProfile d = test_device();
  const ReplayResult r = replay(w, PolicyKind::unlimited, 0, d);
  // Op 1 (4e6 FLOPs: 8 us + 3 us) from 5 us; op 2 from 10 us does not wait for it.
  EXPECT_EQ(r.step_ns, host_issue_ns + 8'000 + op_overhead_ns);
}

TEST(ReplaySimulation, AnOpLargerThanTheBudgetDoesNotRun)
{
  const Workload w = workload_of(
    "a 1 1 1 1 100000 400000 0 0 malloc\n"
    "o 2 2 1 kernel 1 0 - 1 100000 400000 w\n"
    "s 3 3 1 device 0\n");
  const DeviceProfile d = test_device();
  const ReplayResult r = replay(w, PolicyKind::lru, chunk, d);
  EXPECT_FALSE(r.ran);
  EXPECT_NE(r.failure.find("line 4 needs 2 chunks"), std::string::npos) << r.failure;
}

// Note [Background evictions yield to uploads] in shim/engine/residency.cpp, with lru
// (which keeps headroom as the shim does: two chunks here) and a budget of six chunks.
// The first step writes six 2 MiB buffers and then a seventh, H, which evicts A on
// demand and then B and C ahead of demand; a device sync. The second step, measured,
// frees D, so three chunks are free, and runs `body`, whose seqs start at 0x20.
Workload upload_steps(const std::string& body)
{
  std::string text =
    "a 1 1 1 1 100000 200000 0 0 malloc\n"   // A
    "a 2 2 1 2 400000 200000 0 0 malloc\n"   // B
    "a 3 3 1 3 700000 200000 0 0 malloc\n"   // C
    "a 4 4 1 4 a00000 200000 0 0 malloc\n"   // D
    "a 5 5 1 5 d00000 200000 0 0 malloc\n"   // E
    "a 6 6 1 6 1000000 200000 0 0 malloc\n"  // G
    "a 7 7 1 7 1300000 200000 0 0 malloc\n"  // H
    "a 8 8 1 8 1600000 200000 0 0 malloc\n"  // F: the upload's destination
    "a 9 9 1 9 1900000 200000 0 0 malloc\n"  // J
    "a a a 1 a 1c00000 200000 0 0 malloc\n"  // K: a second upload's
    "o b b 1 kernel 1 0 - 1 100000 200000 w\nc b f4240\n"
    "o c c 1 kernel 1 0 - 1 400000 200000 w\nc c f4240\n"
    "o d d 1 kernel 1 0 - 1 700000 200000 w\nc d f4240\n"
    "o e e 1 kernel 1 0 - 1 a00000 200000 w\nc e f4240\n"
    "o f f 1 kernel 1 0 - 1 d00000 200000 w\nc f f4240\n"
    "o 10 10 1 kernel 1 0 - 1 1000000 200000 w\nc 10 f4240\n"
    "o 11 11 1 kernel 1 0 - 1 1300000 200000 w\nc 11 f4240\n"
    "s 12 12 1 device 0\n"
    "F 13 13 1 4 a00000 0\n";
  return workload_of(text + body);
}

// The upload into F, stream 0.
const char* upload_f = "o 20 20 1 copy 0 0 h2d 2 900000000 200000 r 1600000 200000 w\n";
// A kernel on stream 1 writing J: it takes a free chunk, which leaves one, so lru evicts
// one more (E, the least recently used) ahead of demand.
const char* write_j = "o 22 22 1 kernel 1 1 - 1 1900000 200000 w\nc 22 f4240\n";
// A kernel on stream 0 reading F, after the upload: 5e9 FLOPs, 10 ms + 3 us.
const char* read_f = "o 23 23 1 kernel 1 0 - 1 1600000 200000 r\nc 23 12a05f200\n";

TEST(ReplayYieldToUploads, ABackgroundEvictionWaitsForTheProgramsUploadOnTheLink)
{
  const Workload w = upload_steps(std::string(upload_f) + write_j + read_f + "s 24 24 1 device 0\n");
  const DeviceProfile d = test_device();
  const ReplayResult r = replay(w, PolicyKind::lru, 6 * chunk, d);
  ASSERT_TRUE(r.ran) << r.failure;
  // The upload goes at 5 us, with the link to itself; E's eviction waits for it instead
  // of halving its rate, and the kernel reading F starts as soon as the upload is done.
  const int64_t upload_end = host_issue_ns + copy_ns;
  EXPECT_EQ(r.step_ns, upload_end + 10'000'000 + op_overhead_ns)
      << "sharing the link with E's eviction, the upload would end " << chunk - host_issue_ns << " ns later";
  EXPECT_EQ(r.uploads_yielded_to, 1u);
  EXPECT_EQ(r.evictions, 1u);
  EXPECT_EQ(r.host_stall_ns, 0);
}

TEST(ReplayYieldToUploads, AnUploadStillBehindItsStreamsWorkIsNotWaitedFor)
{
  // A 10 ms kernel on stream 0 first: when E is evicted the upload still waits for it,
  // off the link, and E's eviction goes at once.
  const std::string long_kernel = "o 1f 1f 1 kernel 1 0 - 1 1000000 200000 r\nc 1f 12a05f200\n";
  const Workload w = upload_steps(long_kernel + upload_f + write_j + read_f + "s 24 24 1 device 0\n");
  const DeviceProfile d = test_device();
  const ReplayResult r = replay(w, PolicyKind::lru, 6 * chunk, d);
  ASSERT_TRUE(r.ran) << r.failure;
  EXPECT_EQ(r.uploads_yielded_to, 0u);
  EXPECT_EQ(r.evictions, 1u);
}

TEST(ReplayYieldToUploads, AnUploadQueuedRightBehindOneOnTheLinkIsWaitedForToo)
{
  // Two uploads back to back on stream 0 (a batch and its labels), into F and K. K's
  // chunk leaves one free, so its headroom evicts E, behind the first upload (the second
  // is not submitted yet, in the shim, when an op's headroom is kept); J's then evicts G,
  // behind both.
  const std::string upload_k = "o 21 21 1 copy 0 0 h2d 2 900000000 200000 r 1c00000 200000 w\n";
  const Workload w = upload_steps(std::string(upload_f) + upload_k + write_j + read_f + "s 24 24 1 device 0\n");
  const DeviceProfile d = test_device();
  const ReplayResult r = replay(w, PolicyKind::lru, 6 * chunk, d);
  ASSERT_TRUE(r.ran) << r.failure;
  EXPECT_EQ(r.uploads_yielded_to, 2u);
  EXPECT_EQ(r.evictions, 2u);
}

// One step: a persistent weight, then a forward that piles up two activations and a
// backward that reads them in reverse and frees them.
const char* training_step =
  "a 1 1 1 1 1000000 200000 0 0 malloc\n"   // weight, persistent
  "s 2 2 1 device 0\n"
  "a 3 3 1 2 2000000 400000 0 0 malloc\n"   // act 1
  "o 4 4 1 cublas 1 0 - 2 1000000 200000 r 2000000 400000 w\n"
  "c 4 f4240\n"
  "a 5 5 1 3 3000000 400000 0 0 malloc\n"   // act 2
  "o 6 6 1 cublas 1 0 - 2 2000000 400000 r 3000000 400000 w\n"
  "c 6 f4240\n"
  "o 7 7 1 cublas 1 0 - 2 3000000 400000 r 1000000 200000 rw\n"
  "c 7 f4240\n"
  "F 8 8 1 3 3000000 0\n"
  "o 9 9 1 cublas 1 0 - 2 2000000 400000 r 1000000 200000 rw\n"
  "c 9 f4240\n"
  "F a a 1 2 2000000 0\n"
  "s b b 1 device 0\n";

TEST(ReplayWorkload, StepsEndAtDeviceSyncsAndTheLastOneIsRepeated)
{
  const Workload w = workload_of(training_step, 3);
  EXPECT_EQ(w.trace_steps, 2u);
  EXPECT_EQ(w.repeated_steps, 3u);
  EXPECT_EQ(w.measured_step, 4u);
  EXPECT_EQ(w.ops.size(), 4u * 4u);
  EXPECT_EQ(w.allocs.size(), 3u + 2u * 3u) << "each copy of the step allocates afresh";
  EXPECT_EQ(w.peak_live_bytes, 5 * chunk);
  EXPECT_EQ(w.step_peak_live_bytes, 5 * chunk);
  EXPECT_EQ(w.footprint_chunks, 5u);
}

TEST(ReplayWorkload, RangesBecomeChunksOfTheirAllocation)
{
  const Workload w = workload_of(
    "a 1 1 1 1 100000 a00000 0 0 malloc\n"
    "o 2 2 1 kernel 1 0 - 2 500000 300000 r 900000000 1000 w\n"
    "s 3 3 1 device 0\n");
  ASSERT_EQ(w.ops.size(), 1u);
  ASSERT_EQ(w.ops[0].accesses.size(), 1u) << "the second range is in no allocation";
  EXPECT_EQ(w.ops[0].accesses[0].chunk_first, 2u);  // offset 4 MiB
  EXPECT_EQ(w.ops[0].accesses[0].chunk_count, 2u);  // 4 MiB .. 7 MiB
  EXPECT_EQ(w.ops[0].bytes_touched, 0x301000u);
}

void expect_error(const std::string& body, const std::string& expected)
{
  trace::Trace trace;
  ASSERT_FALSE(trace::parse_trace("v 2 oversub-trace\nn 1 k\n" + body, "bad.trace", &trace).has_value());
  Workload w;
  const std::optional<trace::ParseError> error = build_workload(trace, "bad.trace", 0, &w);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->to_string(), expected);
}

TEST(ReplayWorkload, RejectsWhatCannotBeReplayedWithTheLine)
{
  expect_error("F 1 1 1 7 100000 0\n",
               "bad.trace:3: free of allocation id 7, which is not live; expected its `a` line before");
  expect_error("a 1 1 1 7 100000 10 0 0 malloc\na 2 2 1 7 200000 10 0 0 malloc\n",
               "bad.trace:4: allocation id 7 is already live (allocated at line 3); expected a new id");
  expect_error("a 1 1 1 7 100000 1000 0 0 malloc\na 2 2 1 8 100800 10 0 0 malloc\n",
               "bad.trace:4: allocation id 8 at 100800 (16 bytes) overlaps live allocation id 7 (line 3); "
               "expected disjoint live device allocations");
  expect_error("a 1 1 1 7 100000 10 0 0 malloc\n", "bad.trace: no ops to replay; expected `o` lines");
}

// The policies on the small step above, repeated: sanity that any cost model must keep.
TEST(ReplayPolicies, NoPolicyBeatsUnlimitedOrTheBoundAndAFittingBudgetMovesNothing)
{
  const Workload w = workload_of(training_step, 3);
  const DeviceProfile d = test_device();
  const ReplayResult unlimited = replay_unlimited(w, d);
  for (const PolicyInfo& p : replay_policies()) {
    for (uint64_t budget_chunks : {5, 4}) {
      SCOPED_TRACE(std::string(p.name) + " at " + std::to_string(budget_chunks) + " chunks");
      const Row row = make_row("t", w, d, budget_chunks * chunk, p.kind, unlimited);
      ASSERT_TRUE(row.result.ran) << row.result.failure;
      EXPECT_GE(row.result.step_ns, unlimited.step_ns);
      if (p.kind != PolicyKind::unlimited) {
        EXPECT_GE(row.result.step_ns, row.bound.bound_ns);
      }
      if (budget_chunks == 5 && p.kind != PolicyKind::lru && p.kind != PolicyKind::lookahead) {
        EXPECT_EQ(row.result.bytes_h2d + row.result.bytes_d2h, 0u);
      }
      if (budget_chunks < 5 && p.kind != PolicyKind::unlimited) {
        EXPECT_GT(row.result.bytes_d2h, 0u) << "the step does not fit: something must leave";
        EXPECT_LE(row.result.peak_device_bytes, budget_chunks * chunk);
      }
    }
  }
}

TEST(ReplayBudget, SizesAndPercentagesOfTheFootprint)
{
  const Workload w = workload_of(training_step, 0);
  ASSERT_TRUE(parse_budget("50%").has_value());
  EXPECT_EQ(budget_bytes_of(*parse_budget("40%"), w), 2 * chunk);
  EXPECT_EQ(budget_bytes_of(*parse_budget("4MiB"), w), 2 * chunk);
  EXPECT_EQ(budget_bytes_of(*parse_budget("12.5%"), w), static_cast<uint64_t>(5 * chunk / 8));
  for (const char* bad : {"", "%", "-5%", "0%", "abc", "5 GiB", "1e3", "50%%"}) {
    EXPECT_FALSE(parse_budget(bad).has_value()) << bad;
  }
}

TEST(ReplayLowerBound, IsTheLargerOfComputeAndTheBytesThatMustCross)
{
  const Workload w = workload_of(training_step, 0);
  const DeviceProfile d = test_device();
  const LowerBound fits = lower_bound(w, d, 5 * chunk, 123);
  EXPECT_EQ(fits.bytes_each_way, 0u);
  EXPECT_EQ(fits.bound_ns, 123);
  const LowerBound tight = lower_bound(w, d, 3 * chunk, 123);
  EXPECT_EQ(tight.bytes_each_way, 2 * chunk);
  EXPECT_EQ(tight.bound_ns, static_cast<int64_t>(2 * chunk));  // 1 byte per ns
}

}  // namespace
}  // namespace oversub::replay
