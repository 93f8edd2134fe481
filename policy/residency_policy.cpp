#include "policy/residency_policy.h"

#include <algorithm>

namespace oversub::policy {

void LruPolicy::choose_victims(std::span<const ChunkCandidate> resident, std::size_t count, std::uint64_t op_tick,
                               std::vector<std::uint64_t>* victims) {
  std::vector<ChunkCandidate> eligible;
  eligible.reserve(resident.size());
  for (const ChunkCandidate& c : resident)
    if (c.last_use_tick < op_tick) eligible.push_back(c);
  count = std::min(count, eligible.size());
  // Oldest first; ties broken by chunk index so that the choice is deterministic.
  std::partial_sort(eligible.begin(), eligible.begin() + static_cast<std::ptrdiff_t>(count), eligible.end(),
                    [](const ChunkCandidate& a, const ChunkCandidate& b) {
                      return a.last_use_tick != b.last_use_tick ? a.last_use_tick < b.last_use_tick : a.chunk < b.chunk;
                    });
  for (std::size_t i = 0; i < count; ++i) victims->push_back(eligible[i].chunk);
}

std::unique_ptr<ResidencyPolicy> make_policy(std::string_view name) {
  if (name == "lru") return std::make_unique<LruPolicy>();
  return nullptr;
}

}  // namespace oversub::policy
