// The reader's validation: each class of malformed input gives its own message
// at the right line, as one printable "FILE:LINE: message" line.
#include <gtest/gtest.h>
#include <zlib.h>

#include "tests/unit/tracer_test_support.h"
#include "tracer/reader.h"

namespace oversub::trace {
namespace {

const std::string header = "v 1 oversub-trace\nn 1 k\nt 1 1 1\n";  // lines 1-3
const std::string alloc_line = "a 1 10 5 1 1000 100 0 1 malloc\n";    // valid at line 4
// Version 2 adds `m` and `c` lines (Note [Format versions]).
const std::string header2 = "v 2 oversub-trace\nn 1 model\nn 2 resnet50\n";  // lines 1-3
const std::string op_line = "o 5 50 5 cublas 2 0 - 1 1000 100 rw\n";

struct Malformed {
  const char* what;
  std::string text;
  uint64_t line;
  const char* message;  // a substring of the expected message
};

class TracerReaderMalformed : public ::testing::TestWithParam<Malformed> {};

TEST_P(TracerReaderMalformed, ReportsWhatWasExpectedAtTheRightLine)
{
  const Malformed& m = GetParam();
  Trace trace;
  const std::optional<ParseError> error = parse_trace(m.text, "in.trace", &trace);
  ASSERT_TRUE(error.has_value()) << m.what;
  EXPECT_EQ(error->file, "in.trace");
  EXPECT_EQ(error->line, m.line) << error->to_string();
  EXPECT_NE(error->message.find(m.message), std::string::npos) << error->to_string();
  EXPECT_EQ(error->to_string(), "in.trace:" + std::to_string(m.line) + ": " + error->message);
  EXPECT_EQ(error->message.find('\n'), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    EachErrorClass, TracerReaderMalformed,
    ::testing::Values(
        Malformed{"empty file", "", 1, "empty file"},
        Malformed{"no version line", alloc_line, 1, "expected the version line 'v 2 oversub-trace'"},
        Malformed{"future version", "v 3 oversub-trace\n", 1,
                  "unsupported trace format version 3: this reader reads versions 1 to 2"},
        Malformed{"version zero", "v 0 oversub-trace\n", 1, "unsupported trace format version 0"},
        Malformed{"wrong magic", "v 1 heaptrack\n", 1, "expected 'oversub-trace' after the version"},
        Malformed{"version twice", header + "v 1 oversub-trace\n", 4, "may only be the first line"},
        Malformed{"unknown tag", header + "q 1 2\n", 4, "unknown tag 'q'"},
        Malformed{"long tag", header + "ab 1 2\n", 4, "unknown tag 'ab'"},
        Malformed{"empty line", header + "\n", 4, "empty line"},
        Malformed{"too few fields", header + "a 1 10 5 1 1000\n", 4, "has 5 fields, expected 9"},
        Malformed{"too many fields", header + "s 1 10 5 device 0 0\n", 4, "has 6 fields, expected 5"},
        Malformed{"double space", header + "s 1 10  device 0\n", 4, "empty field 3"},
        Malformed{"bad hex", header + "a 1 10 zz 1 1000 100 0 1 malloc\n", 4,
                  "field 3 (tid) of the 'a' line: expected a hex number of 1 to 16 digits, got 'zz'"},
        Malformed{"hex overflow", header + "a 1 10 5 1 11112222333344445 100 0 1 malloc\n", 4,
                  "field 5 (address)"},
        Malformed{"id over 32 bits", header + "a 1 10 5 1 1000 100 0 100000000 malloc\n", 4,
                  "does not fit in 32 bits"},
        Malformed{"bad alloc kind", header + "a 1 10 5 1 1000 100 0 1 calloc\n", 4,
                  "expected one of malloc|async|pool|vmm|managed|host, got 'calloc'"},
        Malformed{"undefined site", header + "a 1 10 5 1 1000 100 0 2 malloc\n", 4, "call site id 2 is not defined"},
        Malformed{"undefined name in op", header + "o 1 10 5 kernel 7 0 - 0\n", 4, "name id 7 is not defined"},
        Malformed{"undefined frame name", "v 1 oversub-trace\nt 1 1 3\n", 2, "name id 3 is not defined"},
        Malformed{"undefined evict reason", header + "e 1 10 5 1000 200000 0 2\n", 4, "name id 2 is not defined"},
        Malformed{"name out of order", "v 1 oversub-trace\nn 2 k\n", 2, "name id 2 out of order: expected 1"},
        Malformed{"site out of order", header + "t 3 1 1\n", 4, "call site id 3 out of order: expected 2"},
        Malformed{"site frame count", header + "t 2 2 1\n", 4, "says 2 frames but has 1"},
        Malformed{"name without text separator", header + "n 2\n", 4, "needs an id, one space, then the text"},
        Malformed{"bad escape", header + "n 2 a\\qb\n", 4, "bad escape '\\q'"},
        Malformed{"op range count", header + "o 1 10 5 kernel 1 0 - 2 1000 10 r\n", 4, "says 2 ranges but has 3"},
        Malformed{"op bad access", header + "o 1 10 5 kernel 1 0 - 1 1000 10 x\n", 4, "expected one of r|w|rw"},
        Malformed{"copy without direction", header + "o 1 10 5 copy 1 0 - 0\n", 4, "a copy op needs a direction"},
        Malformed{"kernel with direction", header + "o 1 10 5 kernel 1 0 h2d 0\n", 4, "must have direction '-'"},
        Malformed{"bad sync kind", header + "s 1 10 5 context 0\n", 4, "expected one of device|stream|event"},
        Malformed{"second process", "v 1 oversub-trace\nn 1 x\nP 1 2 3 1 1 1 1 1\nP 1 2 3 1 1 1 1 1\n", 4,
                  "a second 'P' (process) line"},
        Malformed{"line after end", header + "x 10 0\n" + alloc_line, 5, "line after the end line"},
        Malformed{"truncated last line", header + alloc_line + "a 2 20 5 2 2000 10", 5, "truncated line"},
        Malformed{"duplicate seq", header + alloc_line + "s 2 10 5 device 0\ns 1 11 6 device 0\n", 6,
                  "sequence number 1 repeats the one on line 4"},
        Malformed{"metadata in a version 1 file", header + "m 1 1\n", 4,
                  "the 'm' (metadata) line needs trace format version 2, but this file is version 1"},
        Malformed{"flops in a version 1 file", header + "o 1 10 5 kernel 1 0 - 0\nc 1 10\n", 5,
                  "the 'c' (flops) line needs trace format version 2"},
        Malformed{"metadata field count", header2 + "m 1\n", 4, "the 'm' (metadata) line has 1 fields, expected 2: key value"},
        Malformed{"metadata undefined value", header2 + "m 1 3\n", 4,
                  "field 2 (value) of the 'm' line: name id 3 is not defined"},
        Malformed{"metadata without key", header2 + "m 0 2\n", 4, "field 1 (key) of the 'm' line: expected a name id, got 0"},
        Malformed{"metadata key twice", header2 + "m 1 2\nm 1 1\n", 5, "metadata key 'model' appears twice"},
        Malformed{"metadata after an event", header2 + "s 1 10 5 device 0\nm 1 2\n", 5,
                  "the 'm' (metadata) line must come before the first event (line 4)"},
        Malformed{"flops field count", header2 + op_line + "c 5\n", 5, "the 'c' (flops) line has 1 fields, expected 2: seq flops"},
        Malformed{"flops bad hex", header2 + op_line + "c 5 1g\n", 5,
                  "field 2 (flops) of the 'c' line: expected a hex number of 1 to 16 digits, got '1g'"},
        Malformed{"flops not after an op", header2 + "s 5 50 5 device 0\nc 5 10\n", 5,
                  "the 'c' (flops) line for seq 5 must directly follow the 'o' (op) line it describes"},
        Malformed{"flops twice", header2 + op_line + "c 5 10\nc 5 10\n", 6, "must directly follow the 'o' (op) line"},
        Malformed{"flops for another op", header2 + op_line + "c 6 10\n", 5,
                  "the 'c' (flops) line names seq 6, but the 'o' line before it has seq 5"},
        Malformed{"control bytes shown escaped", header + "s 1 10 5 dev\x01" "ce 0\n", 4, "'dev\\x01ce'"}));

TEST(TracerReader, AcceptsAMinimalTraceAndSortsBySeq)
{
  const std::string text = header + "s 3 30 6 stream 7\n" + alloc_line + "s 2 20 5 device 0\nn 2 \n" +
                           "o 4 40 5 copy 2 9 h2d 2 1000 10 r 2000 10 w\nx 50 3\n";
  Trace trace;
  const std::optional<ParseError> error = parse_trace(text, "ok.trace", &trace);
  ASSERT_FALSE(error.has_value()) << error->to_string();
  ASSERT_EQ(trace.events.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(trace.events[i].seq, i + 1);
  EXPECT_EQ(trace.events[2].line, 4u);  // "s 3" was the first event line
  EXPECT_EQ(trace.name(2), "");                         // empty names are legal
  EXPECT_TRUE(trace.complete);
  EXPECT_EQ(trace.dropped_events, 3u);
  EXPECT_EQ(trace.end_ns, 0x50u);
}

TEST(TracerReader, VersionTwoCarriesMetadataAndFlops)
{
  const std::string text = header2 + "n 3 batch\nn 4 256\nm 1 2\nm 3 4\nn 5 aten::relu\n" +
                           "o 6 60 5 kernel 5 0 - 1 1000 100 rw\n" + op_line + "c 5 2a\nx 70 0\n";
  Trace trace;
  const std::optional<ParseError> error = parse_trace(text, "v2.trace", &trace);
  ASSERT_FALSE(error.has_value()) << error->to_string();
  EXPECT_EQ(trace.version, 2u);
  ASSERT_EQ(trace.metadata.size(), 2u);
  EXPECT_EQ(trace.metadata[0].key, "model");
  EXPECT_EQ(trace.metadata[0].value, "resnet50");
  EXPECT_EQ(trace.metadata[1].key, "batch");
  ASSERT_NE(trace.metadata_value("batch"), nullptr);
  EXPECT_EQ(*trace.metadata_value("batch"), "256");
  EXPECT_EQ(trace.metadata_value("steps"), nullptr);
  ASSERT_EQ(trace.events.size(), 2u);  // sorted by seq: the cublas op (seq 5) first
  const auto& with_flops = std::get<OpEvent>(trace.events[0].body);
  ASSERT_TRUE(with_flops.flops.has_value());
  EXPECT_EQ(*with_flops.flops, 0x2au);
  EXPECT_FALSE(std::get<OpEvent>(trace.events[1].body).flops.has_value());
}

TEST(TracerReader, VersionOneTracesStillRead)
{
  Trace trace;
  ASSERT_FALSE(parse_trace(header + alloc_line, "v1.trace", &trace).has_value());
  EXPECT_EQ(trace.version, 1u);
  EXPECT_TRUE(trace.metadata.empty());
}

// gzip-compresses `text` the way gzip(1) does (the gzip wrapper around deflate).
std::string gzip(const std::string& text)
{
  z_stream stream{};
  EXPECT_EQ(deflateInit2(&stream, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&stream, text.size()), '\0');
  stream.next_in = reinterpret_cast<unsigned char*>(const_cast<char*>(text.data()));
  stream.avail_in = static_cast<uInt>(text.size());
  stream.next_out = reinterpret_cast<unsigned char*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&stream, Z_FINISH), Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

TEST(TracerReader, GzipCompressedTracesReadLikePlainOnes)
{
  const std::string text = header2 + "m 1 2\n" + op_line + "c 5 2a\nx 70 0\n";
  testing::TempPath path(".trace.gz");
  testing::write_file(path.str(), gzip(text));
  Trace trace;
  std::optional<ParseError> error = read_trace(path.str(), &trace);
  ASSERT_FALSE(error.has_value()) << error->to_string();
  EXPECT_EQ(*trace.metadata_value("model"), "resnet50");
  ASSERT_EQ(trace.events.size(), 1u);
  EXPECT_EQ(std::get<OpEvent>(trace.events[0].body).flops, 0x2au);
  EXPECT_TRUE(trace.complete);

  // Two members, as `cat a.gz b.gz` makes: one text.
  const size_t split = header2.size() + 6;
  testing::write_file(path.str(), gzip(text.substr(0, split)) + gzip(text.substr(split)));
  error = read_trace(path.str(), &trace);
  ASSERT_FALSE(error.has_value()) << error->to_string();
  EXPECT_TRUE(trace.complete);

  // Errors in the text name lines of the inflated text.
  testing::write_file(path.str(), gzip(header2 + "c 5 2a\n"));
  error = read_trace(path.str(), &trace);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->line, 4u);
}

TEST(TracerReader, DamagedGzipIsAFileLevelError)
{
  const std::string compressed = gzip(header2 + op_line + "x 70 0\n");
  testing::TempPath path(".trace.gz");
  testing::write_file(path.str(), compressed.substr(0, compressed.size() - 12));
  Trace trace;
  std::optional<ParseError> error = read_trace(path.str(), &trace);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->to_string(), path.str() + ": cannot decompress (gzip): the gzip stream ends early (the file was cut short)");

  std::string corrupt = compressed;
  corrupt[12] = static_cast<char>(corrupt[12] ^ 0xff);
  corrupt[13] = static_cast<char>(corrupt[13] ^ 0xff);
  testing::write_file(path.str(), corrupt);
  error = read_trace(path.str(), &trace);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->line, 0u);
  EXPECT_NE(error->message.find("cannot decompress (gzip): corrupt gzip data: "), std::string::npos)
      << error->to_string();
  // Every cut of the file is an error, never a crash or a silently shorter trace.
  for (size_t size = 0; size < compressed.size(); ++size) {
    testing::write_file(path.str(), compressed.substr(0, size));
    EXPECT_TRUE(read_trace(path.str(), &trace).has_value()) << "cut at " << size;
  }
}

TEST(TracerReader, ATraceWithoutEndLineParsesButIsMarkedIncomplete)
{
  Trace trace;
  ASSERT_FALSE(parse_trace(header + alloc_line, "cut.trace", &trace).has_value());
  EXPECT_FALSE(trace.complete);
  EXPECT_EQ(trace.events.size(), 1u);
}

TEST(TracerReader, MissingFileIsAFileLevelError)
{
  Trace trace;
  const std::optional<ParseError> error = read_trace("/nonexistent-oversub/x.trace", &trace);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->line, 0u);
  EXPECT_EQ(error->to_string(), "/nonexistent-oversub/x.trace: cannot open: No such file or directory");
}

TEST(TracerReader, DirectoryIsAFileLevelError)
{
  Trace trace;
  const std::optional<ParseError> error = read_trace("/", &trace);
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->message.find("Is a directory"), std::string::npos) << error->to_string();
}

TEST(TracerReader, SampleMalformedFilesInTestData)
{
  Trace trace;
  const std::string truncated = testing::source_path("tests/data/traces/malformed-truncated.trace");
  std::optional<ParseError> error = read_trace(truncated, &trace);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->line, 6u);
  EXPECT_NE(error->message.find("truncated line"), std::string::npos);
  error = read_trace(testing::source_path("tests/data/traces/malformed-undefined-name.trace"), &trace);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->line, 4u);
  EXPECT_NE(error->message.find("name id 9 is not defined"), std::string::npos) << error->to_string();
}

}  // namespace
}  // namespace oversub::trace
