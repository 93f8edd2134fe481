// What `oversub-trace replay` simulates: a trace's allocations, ops and syncs, with
// every op's ranges resolved to chunks of device allocations, cut into steps.
//
// Note [Replay steps]
// ~~~~~~~~~~~~~~~~~~~
// A device sync ends a step (the traces of scripts/trace_from_torch.py end each
// training step with one, where a loop calls `loss.item()`); a trace with none is one
// step. The measured step is the last complete one. A trace holds few steps (the torch
// traces: four), but the lookahead policy, like the live shim, first learns the step
// and only predicts from the step after (Note [Predicted next use] in
// policy/lookahead.h), and a real job runs thousands of them. So the replay appends
// `extra_steps` copies of the trace's last step, with fresh allocation ids, and
// measures the last copy: every policy sees the same op sequence, and the step it is
// judged on is the steady state. Eight copies by default: the lookahead policy times a
// step on demand and two evicting early once its step's memory curve is known (Note
// [Early or on demand] in policy/lookahead.h), and the step after its choice still
// carries the other mode's memory; on the torch traces the last of that ends a step
// before the measured one. The copy is only made when the last step is
// self-contained (it frees exactly what it allocates); otherwise the trace is replayed
// as it is and `repeated_steps` says 0.
//
// Note [Device allocations]
// ~~~~~~~~~~~~~~~~~~~~~~~~~
// Allocations of kind malloc, async, pool and vmm are device memory: the budget
// applies to them and their chunks move. Pinned host (`host`) and managed memory are
// not: an op's ranges there count towards the bytes it touches (the roofline) but not
// towards residency. A range that lies in no live allocation is counted the same way.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tracer/format.h"
#include "tracer/reader.h"

namespace oversub::replay {

struct Allocation {
  uint64_t bytes = 0;
  uint32_t site = trace::no_site;
};

// Chunks [chunk_first, chunk_first + chunk_count) of allocation `alloc` (an index
// into Workload::allocs); chunk k covers bytes [k * 2 MiB, (k + 1) * 2 MiB).
struct ChunkAccess {
  uint32_t alloc = 0;
  uint32_t chunk_first = 0;
  uint32_t chunk_count = 0;
  trace::Access access = trace::Access::read;
};

struct Op {
  trace::OpKind kind = trace::OpKind::kernel;
  uint32_t name = trace::no_name;
  uint64_t stream = 0;
  trace::CopyDirection direction = trace::CopyDirection::none;
  std::optional<uint64_t> flops;
  uint64_t bytes_touched = 0;  // every range's bytes (the roofline's memory traffic)
  uint64_t copy_bytes = 0;     // a copy's destination bytes
  std::vector<ChunkAccess> accesses;  // device allocations only
  uint64_t line = 0;
};

struct Sync {
  trace::SyncKind kind = trace::SyncKind::device;
  uint64_t handle = 0;
};

enum class ItemKind : uint8_t { alloc, free, op, sync };
struct Item {
  ItemKind kind;
  uint32_t index;  // into allocs (alloc, free), ops or syncs
};

struct Workload {
  std::vector<Allocation> allocs;
  std::vector<Op> ops;
  std::vector<Sync> syncs;
  std::vector<Item> items;  // in seq order, repeated steps included
  // Step i is items [step_starts[i], step_starts[i + 1]); the last entry is an end.
  std::vector<size_t> step_starts;
  size_t measured_step = 0;  // the last complete step
  uint32_t trace_steps = 0;
  uint32_t repeated_steps = 0;
  uint64_t peak_live_bytes = 0;  // device allocations, over the trace as recorded
  uint64_t step_peak_live_bytes = 0;  // over the measured step
  uint64_t footprint_chunks = 0;  // Note [Footprint] in chunks.h
  bool half_precision = false;  // metadata dtype is 16-bit: the matrix peak is BF16/FP16
};

inline constexpr uint32_t default_extra_steps = 8;

// Builds the workload of a parsed trace (Note [Replay steps]). A trace the reader
// accepted can still make no sense to replay; the error then names `file_label`, the
// line and what was expected there, as the reader's do.
std::optional<trace::ParseError> build_workload(const trace::Trace& trace, std::string_view file_label,
                                                uint32_t extra_steps, Workload* out);

}  // namespace oversub::replay
