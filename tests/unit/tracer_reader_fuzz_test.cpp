// Random corruption of a valid trace never crashes the reader (or the summary of
// whatever still parses); errors stay one printable line with a sane line number.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "tests/unit/tracer_test_support.h"
#include "tracer/reader.h"
#include "tracer/summary.h"
#include "tracer/writer.h"

namespace oversub::trace {
namespace {

// A realistic trace from the writer itself, with every record kind.
std::string make_valid_trace()
{
  testing::TempPath path;
  std::string error;
  auto writer = Writer::open(path.str(), &error);
  EXPECT_NE(writer, nullptr) << error;
  writer->process(ProcessInfo{1, "/bin/x", "x -y", 1, 2, "0.1.0", "swap", "lru"});
  writer->device(DeviceInfo{0, "gpu", 1 << 30, 8, 0});
  const uintptr_t frames[] = {0x1234, 0x5678};
  const uint32_t site = writer->site_id(frames, 2);
  const Range ranges[] = {{0x1000, 0x100, Access::read}, {0x2000, 0x100, Access::write}};
  for (uint64_t i = 0; i < 20; ++i) {
    writer->alloc(i, 0x1000 * i, 0x100, 0, i % 2 ? site : no_site, AllocKind::async);
    writer->op(OpKind::cudnn, writer->name_id("conv" + std::to_string(i % 3)), 1, ranges, 2);
    writer->copy(no_name, 2, CopyDirection::host_to_device, ranges, 2);
    writer->sync(SyncKind::stream, 1);
    if (i % 4 == 0) writer->evict(0x1000, 0x200000, 3, writer->name_id("budget"));
    if (i % 4 == 1) writer->prefetch(0x1000, 0x200000, 3, writer->name_id("next-use"));
    writer->free_requested(i, 0x1000 * i, 0);
    writer->free_completed(i, 0x1000 * i, 0);
  }
  writer->close();
  return testing::read_file(path.str());
}

std::string corrupt(std::string text, std::mt19937_64& random)
{
  auto pick = [&](size_t n) { return n == 0 ? 0 : static_cast<size_t>(random() % n); };
  const int edits = 1 + static_cast<int>(random() % 3);
  for (int e = 0; e < edits && !text.empty(); ++e) {
    const size_t at = pick(text.size());
    switch (random() % 8) {
      case 0: text[at] = static_cast<char>(random()); break;                        // any byte
      case 1: text[at] = " \n0f\\-"[pick(6)]; break;                                // a structural byte
      case 2: text.erase(at, 1 + pick(8)); break;                                    // delete bytes
      case 3: text.insert(at, 1, static_cast<char>(random())); break;                // insert a byte
      case 4: text.resize(at); break;                                                // truncate
      case 5: {                                                                      // duplicate a line
        const size_t start = text.rfind('\n', at) == std::string::npos ? 0 : text.rfind('\n', at) + 1;
        const size_t end = text.find('\n', at);
        if (end != std::string::npos) text.insert(start, text.substr(start, end - start + 1));
        break;
      }
      case 6: text.insert(at, "ffffffffffffffff"); break;                            // huge numbers
      default: text[at] = static_cast<char>('0' + pick(10)); break;                  // a plausible digit
    }
  }
  return text;
}

TEST(TracerReaderFuzz, RandomCorruptionsNeverCrash)
{
  const std::string valid = make_valid_trace();
  Trace trace;
  ASSERT_FALSE(parse_trace(valid, "valid.trace", &trace).has_value());
  const auto line_count = static_cast<uint64_t>(std::count(valid.begin(), valid.end(), '\n'));

  std::mt19937_64 random(20240611);
  size_t rejected = 0;
  size_t accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    const std::string bad = corrupt(valid, random);
    const std::optional<ParseError> error = parse_trace(bad, "fuzz.trace", &trace);
    if (error) {
      ++rejected;
      ASSERT_GE(error->line, 1u) << error->to_string();
      ASSERT_LE(error->line, 2 * line_count + 1) << error->to_string();
      ASSERT_FALSE(error->message.empty());
      ASSERT_EQ(error->to_string().find('\n'), std::string::npos) << error->to_string();
    } else {
      ++accepted;
      const Summary summary = summarize(trace);  // must not crash on what parses
      ASSERT_FALSE(render_summary_text(trace, summary).empty());
      ASSERT_FALSE(render_summary_json(trace, summary).empty());
    }
  }
  // Most corruptions must be caught; a few (a digit changed in an address) are
  // indistinguishable from a valid trace.
  EXPECT_GT(rejected, 15000u);
  EXPECT_GT(accepted, 0u);
}

}  // namespace
}  // namespace oversub::trace
