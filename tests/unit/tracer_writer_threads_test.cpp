// The writer under concurrency: many appending threads, threads that exit before
// close(), close() racing with appends, and tracing from thread_local destructors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "tests/unit/tracer_test_support.h"
#include "tracer/reader.h"
#include "tracer/writer.h"

namespace oversub::trace {
namespace {

using testing::TempPath;

Trace read_or_fail(const std::string& path)
{
  Trace trace;
  const std::optional<ParseError> error = read_trace(path, &trace);
  EXPECT_FALSE(error.has_value()) << error->to_string();
  return trace;
}

TEST(TracerWriterThreads, EveryEventOfManyThreadsIsPresentExactlyOnce)
{
  constexpr uint64_t thread_count = 16;
  constexpr uint64_t events_per_thread = 20000;  // ~20 buffer switches per thread
  TempPath path;
  std::string error;
  auto writer = Writer::open(path.str(), &error);
  ASSERT_NE(writer, nullptr) << error;

  std::vector<std::vector<uint64_t>> returned_seqs(thread_count);
  std::vector<std::thread> threads;
  for (uint64_t t = 0; t < thread_count; ++t) {
    threads.emplace_back([&, t] {
      const uint32_t own_name = writer->name_id("thread_" + std::to_string(t));
      const uint32_t shared_name = writer->name_id("shared");
      for (uint64_t i = 0; i < events_per_thread; ++i) {
        const uint64_t alloc_id = t << 32 | i;
        const Range range{alloc_id, 8, Access::write};
        const uint64_t seq = i % 2 == 0 ? writer->alloc(alloc_id, alloc_id, 8, t, no_site, AllocKind::malloc)
                                        : writer->op(OpKind::kernel, i % 4 == 1 ? own_name : shared_name, t, &range, 1);
        returned_seqs[t].push_back(seq);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  writer->close();

  const Trace trace = read_or_fail(path.str());  // also checks seqs are unique
  ASSERT_EQ(trace.events.size(), thread_count * events_per_thread);
  std::set<uint64_t> expected_seqs;
  for (const auto& seqs : returned_seqs) expected_seqs.insert(seqs.begin(), seqs.end());
  EXPECT_EQ(expected_seqs.size(), thread_count * events_per_thread);
  EXPECT_EQ(expected_seqs.count(0), 0u) << "an event was dropped";

  std::vector<uint64_t> next_index(thread_count, 0);
  for (const Event& event : trace.events) {
    ASSERT_EQ(expected_seqs.count(event.seq), 1u) << event.seq;
    uint64_t key = 0;
    uint64_t stream = 0;
    if (const auto* alloc = std::get_if<AllocEvent>(&event.body)) {
      key = alloc->alloc_id;
      stream = alloc->stream;
    } else {
      const auto& op = std::get<OpEvent>(event.body);
      ASSERT_EQ(op.ranges.size(), 1u);
      key = op.ranges[0].address;
      stream = op.stream;
      const std::string_view name = trace.name(op.name);
      EXPECT_TRUE(name == "shared" || name == "thread_" + std::to_string(stream)) << name;
    }
    const uint64_t t = key >> 32;
    ASSERT_LT(t, thread_count);
    EXPECT_EQ(stream, t);
    // In seq order, each thread's events appear in the order it appended them.
    EXPECT_EQ(key & 0xffffffff, next_index[t]++);
  }
  for (uint64_t t = 0; t < thread_count; ++t) EXPECT_EQ(next_index[t], events_per_thread);
  EXPECT_EQ(trace.names.size(), thread_count + 1);  // each string written once
}

TEST(TracerWriterThreads, EventsOfThreadsThatExitedBeforeCloseAreKept)
{
  TempPath path;
  std::string error;
  auto writer = Writer::open(path.str(), &error);
  ASSERT_NE(writer, nullptr) << error;
  for (uint64_t t = 0; t < 50; ++t) {
    // A few events, far from filling a buffer, then the thread is gone.
    std::thread([&, t] {
      for (uint64_t i = 0; i < 3; ++i) writer->alloc(t * 3 + i, 0x1000, 1, 0, no_site, AllocKind::malloc);
    }).join();
  }
  writer->close();
  const Trace trace = read_or_fail(path.str());
  ASSERT_EQ(trace.events.size(), 150u);
  for (size_t i = 0; i < trace.events.size(); ++i) {
    EXPECT_EQ(std::get<AllocEvent>(trace.events[i].body).alloc_id, i);
  }
}

TEST(TracerWriterThreads, CloseWhileThreadsAppendLeavesAWholeTrace)
{
  TempPath path;
  std::string error;
  auto writer = Writer::open(path.str(), &error);
  ASSERT_NE(writer, nullptr) << error;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> appended_before_close{0};
  std::atomic<uint64_t> dropped{0};
  std::mutex seqs_mutex;
  std::set<uint64_t> returned;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      std::vector<uint64_t> mine;
      while (!stop.load()) {
        const uint32_t name = writer->name_id("k" + std::to_string(mine.size() % 50));
        const uint64_t seq = writer->op(OpKind::kernel, name, 0, nullptr, 0);
        if (seq == 0) {
          dropped++;
        } else {
          appended_before_close++;
          mine.push_back(seq);
        }
      }
      std::lock_guard lock(seqs_mutex);
      returned.insert(mine.begin(), mine.end());
    });
  }
  while (appended_before_close.load() < 20000) std::this_thread::yield();
  writer->close();  // as an atexit handler would, with the threads still running
  while (dropped.load() < 1000) std::this_thread::yield();
  stop = true;
  for (std::thread& thread : threads) thread.join();

  const Trace trace = read_or_fail(path.str());  // no torn lines, every name id defined
  EXPECT_TRUE(trace.complete);
  EXPECT_GE(trace.events.size(), 20000u);
  for (const Event& event : trace.events) EXPECT_EQ(returned.count(event.seq), 1u) << event.seq;
  EXPECT_GE(writer->dropped_events(), 1000u);
}

// Traces from its destructor, which runs after the writer's own thread_local slot
// was destroyed when it was first touched before the slot existed.
struct TracesAtThreadExit {
  Writer* writer = nullptr;
  ~TracesAtThreadExit()
  {
    if (writer) writer->free_completed(99, 0x9900, 0);
  }
};

TEST(TracerWriterThreads, EventsFromLaterThreadLocalDestructorsAreKept)
{
  TempPath path;
  std::string error;
  auto writer = Writer::open(path.str(), &error);
  ASSERT_NE(writer, nullptr) << error;
  std::thread([&] {
    thread_local TracesAtThreadExit guard;  // constructed first, so destroyed last
    guard.writer = writer.get();
    writer->alloc(99, 0x9900, 1, 0, no_site, AllocKind::malloc);
  }).join();
  writer->close();
  const Trace trace = read_or_fail(path.str());
  ASSERT_EQ(trace.events.size(), 2u);
  EXPECT_TRUE(std::holds_alternative<AllocEvent>(trace.events[0].body));
  EXPECT_EQ(std::get<FreeCompletedEvent>(trace.events[1].body).alloc_id, 99u);
}

TEST(TracerWriterThreads, AForkedChildThatExitsLeavesTheParentsTraceIntact)
{
  TempPath path;
  std::string error;
  auto writer = Writer::open(path.str(), &error);
  ASSERT_NE(writer, nullptr) << error;
  writer->alloc(1, 0x1000, 1, 0, no_site, AllocKind::malloc);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // What a child that calls exit() does through the shim's atexit handler:
    // without the pid check close() would join a thread that does not exist
    // here (hang) and write an 'x' line into the parent's file.
    writer->alloc(2, 0x2000, 1, 0, no_site, AllocKind::malloc);
    writer->close();
    const bool dropped = writer->alloc(3, 0x3000, 1, 0, no_site, AllocKind::malloc) == 0;
    // Leaked, as the shim leaks it: destroying it here would destroy a
    // condition variable that the parent's writer thread was waiting on at
    // fork time, and pthread_cond_destroy would wait for that waiter forever.
    (void)writer.release();
    _exit(dropped ? 0 : 3);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  writer->alloc(4, 0x4000, 1, 0, no_site, AllocKind::malloc);
  writer->close();
  const Trace trace = read_or_fail(path.str());
  EXPECT_TRUE(trace.complete);
  ASSERT_EQ(trace.events.size(), 2u);
  EXPECT_EQ(std::get<AllocEvent>(trace.events[0].body).alloc_id, 1u);
  EXPECT_EQ(std::get<AllocEvent>(trace.events[1].body).alloc_id, 4u);
}

}  // namespace
}  // namespace oversub::trace
