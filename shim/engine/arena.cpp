#include "arena.h"

#include <iterator>

namespace oversub {
namespace {

// First fit in an ordered free map; splits the range it takes.
std::optional<std::uint64_t> take_first_fit(std::map<std::uint64_t, std::uint64_t>& free, std::uint64_t size) {
  for (auto it = free.begin(); it != free.end(); ++it) {
    if (it->second < size) continue;
    const std::uint64_t start = it->first, left = it->second - size;
    free.erase(it);
    if (left > 0) free[start + size] = left;
    return start;
  }
  return std::nullopt;
}

void give_and_merge(std::map<std::uint64_t, std::uint64_t>& free, std::uint64_t start, std::uint64_t size) {
  auto it = free.emplace(start, size).first;
  auto next = std::next(it);
  if (next != free.end() && start + size == next->first) {
    it->second += next->second;
    free.erase(next);
  }
  if (it != free.begin()) {
    auto prev = std::prev(it);
    if (prev->first + prev->second == it->first) {
      prev->second += it->second;
      free.erase(it);
    }
  }
}

}  // namespace

Arena::Arena(std::uint64_t chunk_count) : chunk_count_(chunk_count) {
  if (chunk_count > 0) free_chunks_[0] = chunk_count;
}

std::optional<std::uint64_t> Arena::take_chunks(std::uint64_t count) { return take_first_fit(free_chunks_, count); }

void Arena::give_chunks(std::uint64_t first, std::uint64_t count) { give_and_merge(free_chunks_, first, count); }

std::optional<Arena::SmallBlock> Arena::take_small(std::uint64_t bytes) {
  bytes = (bytes + kSmallAlignBytes - 1) / kSmallAlignBytes * kSmallAlignBytes;
  for (auto& [chunk, sc] : small_chunks_) {
    if (auto offset = take_first_fit(sc.free, bytes)) {
      sc.used_bytes += bytes;
      return SmallBlock{chunk, *offset, false};
    }
  }
  auto chunk = take_chunks(1);
  if (!chunk) return std::nullopt;
  SmallChunk& sc = small_chunks_[*chunk];
  sc.free[bytes] = kChunkBytes - bytes;
  sc.used_bytes = bytes;
  return SmallBlock{*chunk, 0, true};
}

bool Arena::give_small(std::uint64_t chunk, std::uint64_t offset_bytes, std::uint64_t bytes) {
  bytes = (bytes + kSmallAlignBytes - 1) / kSmallAlignBytes * kSmallAlignBytes;
  auto it = small_chunks_.find(chunk);
  if (it == small_chunks_.end()) return false;
  give_and_merge(it->second.free, offset_bytes, bytes);
  it->second.used_bytes -= bytes;
  if (it->second.used_bytes != 0) return false;
  small_chunks_.erase(it);  // the caller gives the chunk back once its last use is over
  return true;
}

}  // namespace oversub
