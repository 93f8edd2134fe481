// The format tables: enum words round-trip, and docs/trace-format.md documents
// every line layout exactly as the reader enforces it.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "tests/unit/tracer_test_support.h"
#include "tracer/format.h"
#include "tracer/line_format.h"
#include "tracer/reader.h"

namespace oversub::trace {
namespace {

template <class Enum, class Parse>
void expect_words_round_trip(size_t count, Parse parse)
{
  std::set<std::string_view> seen;
  for (size_t i = 0; i < count; ++i) {
    const auto value = static_cast<Enum>(i);
    const std::string_view word = to_word(value);
    EXPECT_NE(word, "?");
    EXPECT_EQ(word.find(' '), std::string_view::npos) << word;
    EXPECT_TRUE(seen.insert(word).second) << "duplicate word " << word;
    ASSERT_TRUE(parse(word).has_value()) << word;
    EXPECT_EQ(*parse(word), value) << word;
  }
  EXPECT_FALSE(parse("no-such-word").has_value());
}

TEST(TracerFormat, EnumWordsRoundTrip)
{
  expect_words_round_trip<OpKind>(op_kind_count, parse_op_kind);
  expect_words_round_trip<AllocKind>(alloc_kind_count, parse_alloc_kind);
  expect_words_round_trip<SyncKind>(sync_kind_count, parse_sync_kind);
  expect_words_round_trip<CopyDirection>(copy_direction_count, parse_copy_direction);
  for (Access a : {Access::read, Access::write, Access::read_write}) EXPECT_EQ(parse_access(to_word(a)), a);
  EXPECT_FALSE(parse_access("x").has_value());
}

TEST(TracerFormat, TagsAreUniqueAndFindable)
{
  std::set<char> tags;
  for (const LineLayout& layout : line_layouts()) {
    EXPECT_TRUE(tags.insert(layout.tag).second) << layout.tag;
    EXPECT_EQ(find_layout(layout.tag), &layout);
  }
  EXPECT_EQ(find_layout('q'), nullptr);
}

TEST(TracerFormat, DocumentationListsEveryLayoutVerbatim)
{
  const std::string doc = testing::read_file(testing::source_path("docs/trace-format.md"));
  ASSERT_FALSE(doc.empty()) << "docs/trace-format.md not found";
  for (const LineLayout& layout : line_layouts()) {
    const std::string shape = "`" + std::string(1, layout.tag) + " " + std::string(layout.fields) + "`";
    EXPECT_NE(doc.find(shape), std::string::npos) << "docs/trace-format.md lacks " << shape;
  }
}

TEST(TracerFormat, DocumentationExampleIsAValidTrace)
{
  const std::string doc = testing::read_file(testing::source_path("docs/trace-format.md"));
  const size_t section = doc.find("## Example");
  ASSERT_NE(section, std::string::npos) << "docs/trace-format.md has no '## Example' section";
  const size_t begin = doc.find("```\n", section);
  const size_t end = doc.find("```", begin + 4);
  ASSERT_TRUE(begin != std::string::npos && end != std::string::npos);
  const std::string example = doc.substr(begin + 4, end - begin - 4);
  Trace trace;
  const std::optional<ParseError> error = parse_trace(example, "docs/trace-format.md example", &trace);
  ASSERT_FALSE(error.has_value()) << error->to_string();
  EXPECT_EQ(trace.version, format_version);
  EXPECT_TRUE(trace.complete);
  EXPECT_FALSE(trace.metadata.empty());
  const bool some_op_has_flops = std::any_of(trace.events.begin(), trace.events.end(), [](const Event& e) {
    const auto* op = std::get_if<OpEvent>(&e.body);
    return op != nullptr && op->flops.has_value();
  });
  EXPECT_TRUE(some_op_has_flops) << "the example should show a 'c' line";
}

TEST(TracerFormat, HexFormattingIsLowercaseWithoutLeadingZeros)
{
  char buffer[line_format::max_hex_bytes];
  auto hex = [&](uint64_t v) { return std::string(buffer, line_format::put_hex(buffer, v)); };
  EXPECT_EQ(hex(0), "0");
  EXPECT_EQ(hex(1), "1");
  EXPECT_EQ(hex(0xf), "f");
  EXPECT_EQ(hex(0x10), "10");
  EXPECT_EQ(hex(0xdeadbeef), "deadbeef");
  EXPECT_EQ(hex(UINT64_MAX), "ffffffffffffffff");
  std::string escaped;
  line_format::append_escaped(escaped, "a\\b\nc\rd");
  EXPECT_EQ(escaped, "a\\\\b\\nc\\rd");
}

}  // namespace
}  // namespace oversub::trace
