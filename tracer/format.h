// The oversub trace format: tags, enum words and line layouts shared by the writer
// and the reader, so that the two can never disagree about a line's shape.
// The format itself is documented in docs/trace-format.md; this header is its
// machine-readable half.
//
// Note [Trace format]
// ~~~~~~~~~~~~~~~~~~~
// A trace is text, one record per line: a one-letter tag, then fields separated by
// exactly one space. Numbers are lowercase hex without a 0x prefix; enums are short
// words (`kernel`, `rw`, `h2d`); strings never appear inside event lines: they are
// interned by an `n` line (written once, referred to by id) so that every other
// line has a fixed shape that awk can split. Call sites are interned the same way
// by a `t` line listing frame-name ids. Definitions (`n`, `t`, `P`, `d`) always
// precede their first use in the file; events appear in the order their per-thread
// buffers were flushed, NOT in sequence order (see Note [Per-thread trace buffers]
// in writer.cpp), so an analysis sorts by the `seq` field. The first line is the
// version line `v 2 oversub-trace`; a complete trace ends with an `x` line.
//
// Note [Format versions]
// ~~~~~~~~~~~~~~~~~~~~~~
// Version 2 added two optional lines: `m` (a metadata key and value, header only) and
// `c` (an op's FLOPs, right after its `o` line). Everything else is as in version 1,
// so the reader accepts both versions; each layout records the version that
// introduced it, and a line newer than its file's version is an error (a version 1
// reader rejects such files at their version line rather than at an unknown tag).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace oversub::trace {

// Bumped on any change that an old reader would misread or reject (Note [Format
// versions]). Writers write `format_version`; readers accept every version from
// `oldest_format_version` up to it and reject the rest.
inline constexpr uint32_t format_version = 2;
inline constexpr uint32_t oldest_format_version = 1;
inline constexpr std::string_view format_magic = "oversub-trace";

// Id 0 means "none" for both names and call sites (an op without a name, an
// allocation whose stack was not captured). Real ids start at 1.
inline constexpr uint32_t no_name = 0;
inline constexpr uint32_t no_site = 0;

enum class Access : uint8_t { read = 1, write = 2, read_write = 3 };

struct Range {
  uint64_t address;
  uint64_t bytes;
  Access access;
};

enum class OpKind : uint8_t { kernel, cublas, cudnn, copy, memset, host_func, graph, other };
inline constexpr size_t op_kind_count = 8;

// Which API produced an allocation: cudaMalloc/cuMemAlloc (malloc), stream-ordered
// cudaMallocAsync (async), a cudaMemPool (pool), cuMemCreate+cuMemMap (vmm),
// cudaMallocManaged (managed), pinned host memory (host).
enum class AllocKind : uint8_t { malloc, async, pool, vmm, managed, host };
inline constexpr size_t alloc_kind_count = 6;

enum class SyncKind : uint8_t { device, stream, event };
inline constexpr size_t sync_kind_count = 3;

// `unknown` is cudaMemcpyDefault: the driver infers the direction from the
// unified address space. `none` is written for ops that are not copies.
enum class CopyDirection : uint8_t { host_to_device, device_to_host, device_to_device, host_to_host, unknown, none };
inline constexpr size_t copy_direction_count = 6;

// What the `P` and `d` lines hold, with their strings resolved.
struct ProcessInfo {
  uint64_t pid = 0;
  std::string executable;
  std::string command_line;  // argv joined by single spaces
  uint64_t start_unix_ns = 0;
  uint64_t start_monotonic_ns = 0;  // the same instant on the event clock
  std::string oversub_version;
  std::string mode;    // e.g. "swap", "trace-only"
  std::string policy;  // e.g. "lru", "next-use"
};

struct DeviceInfo {
  uint32_t ordinal = 0;
  std::string name;
  uint64_t total_bytes = 0;
  uint32_t compute_major = 0;
  uint32_t compute_minor = 0;
};

// Words as they appear in the file. Each table is indexed by the enum's value.
std::string_view to_word(Access access);
std::string_view to_word(OpKind kind);
std::string_view to_word(AllocKind kind);
std::string_view to_word(SyncKind kind);
std::string_view to_word(CopyDirection direction);

std::optional<Access> parse_access(std::string_view word);
std::optional<OpKind> parse_op_kind(std::string_view word);
std::optional<AllocKind> parse_alloc_kind(std::string_view word);
std::optional<SyncKind> parse_sync_kind(std::string_view word);
std::optional<CopyDirection> parse_copy_direction(std::string_view word);

// Every line kind with its field names (after the tag). The reader checks field
// counts and names fields in its error messages from this table; the docs list
// the same layouts. `variable` marks lines whose tail repeats (`t`, `o`) or is
// free text (`n`).
//
// Note [Metadata and FLOPs lines]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// `m key value` describes the whole trace (model, batch, dtype, how it was made): two
// name ids, so the text stays in `n` lines. It belongs to the header: it comes before
// the first event, and a key appears once. `c seq flops` gives the floating-point
// operations of one op: it repeats the op's seq and directly follows that op's `o`
// line, so a writer appends both at once and a reader never has to look ahead or back
// more than one line. An op has at most one `c` line; ops without one have unknown
// FLOPs (copies, or a writer that cannot count them).
struct LineLayout {
  char tag;
  std::string_view what;
  std::string_view fields;  // space-separated field names, as in the docs
  size_t fixed_field_count;
  bool variable;
  uint32_t since_version;  // the format version that introduced this line
};

namespace tag {
inline constexpr char version = 'v';
inline constexpr char process = 'P';
inline constexpr char device = 'd';
inline constexpr char name = 'n';
inline constexpr char site = 't';
inline constexpr char alloc = 'a';
inline constexpr char free_requested = 'f';
inline constexpr char free_completed = 'F';
inline constexpr char op = 'o';
inline constexpr char sync = 's';
inline constexpr char evict = 'e';
inline constexpr char prefetch = 'p';
inline constexpr char end = 'x';
inline constexpr char metadata = 'm';  // since version 2
inline constexpr char flops = 'c';     // since version 2
}  // namespace tag

std::span<const LineLayout> line_layouts();
const LineLayout* find_layout(char tag);  // nullptr for an unknown tag

// Fields every event line starts with, right after the tag.
inline constexpr size_t event_header_fields = 3;  // seq ts_ns tid

}  // namespace oversub::trace
