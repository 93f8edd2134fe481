// Arena: oversub's own device address space, handed out in 2 MiB chunks.
//
// Note [Small allocations share a chunk]
// Residency is tracked per 2 MiB chunk, the VMM granularity. An allocation of
// 1 MiB or more gets whole chunks of its own (its tail chunk is partly unused).
// Smaller ones are packed together into shared chunks, 512-byte aligned, so a
// program with thousands of small tensors (biases, norms, scalars) does not
// spend 2 MiB of budget on each. The price: a shared chunk moves as a whole,
// so touching one small tensor brings its neighbours along, and a chunk is
// only free once every allocation in it is. Small tensors are a small share of
// a training footprint, so the extra traffic is small; the budget saved is not.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace oversub {

constexpr std::uint64_t kChunkBytes = std::uint64_t{2} << 20;
constexpr std::uint64_t kSmallAllocationBytes = std::uint64_t{1} << 20;  // below: packed
constexpr std::uint64_t kSmallAlignBytes = 512;

// Chunk-index bookkeeping only: no CUDA here.
class Arena {
 public:
  explicit Arena(std::uint64_t chunk_count);

  // Whole chunks for a large allocation: the first chunk index, or nullopt.
  std::optional<std::uint64_t> take_chunks(std::uint64_t count);
  void give_chunks(std::uint64_t first, std::uint64_t count);

  struct SmallBlock {
    std::uint64_t chunk;
    std::uint64_t offset_bytes;  // inside the chunk
    bool new_chunk;              // the chunk was taken for this block
  };
  // A block in a shared chunk; takes a new chunk when none has room.
  std::optional<SmallBlock> take_small(std::uint64_t bytes);
  // Returns a block; true when its chunk became empty. The caller gives the
  // chunk back (give_chunks) once its last use has completed.
  bool give_small(std::uint64_t chunk, std::uint64_t offset_bytes, std::uint64_t bytes);

  std::uint64_t chunk_count() const { return chunk_count_; }

 private:
  std::uint64_t chunk_count_;
  std::map<std::uint64_t, std::uint64_t> free_chunks_;  // first -> count
  struct SmallChunk {
    std::map<std::uint64_t, std::uint64_t> free;  // offset -> bytes
    std::uint64_t used_bytes = 0;
  };
  std::map<std::uint64_t, SmallChunk> small_chunks_;
};

}  // namespace oversub
