#include "address_map.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>

namespace oversub {

namespace {
constexpr std::size_t root_bytes(unsigned bits) { return (std::size_t{1} << bits) * sizeof(void*); }
}  // namespace

// LeakSanitizer finds live blocks through pointers held in the heap, globals,
// stacks and thread-locals, but not in memory we mmap: the leaves would look
// leaked. When it is loaded (a sanitizer build, Note [Sanitizer builds] in
// meson.build) we register the root table with it; otherwise these are null.
extern "C" __attribute__((weak)) void __lsan_register_root_region(const void* begin, std::size_t bytes);
extern "C" __attribute__((weak)) void __lsan_unregister_root_region(const void* begin, std::size_t bytes);

// Anonymous memory reads as zero, which is a null pointer in every slot.
AddressMap::AddressMap()
    : root_(static_cast<std::atomic<Leaf*>*>(
          mmap(nullptr, root_bytes(kRootBits), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))) {
  if (root_ == MAP_FAILED) std::abort();
  if (__lsan_register_root_region != nullptr) __lsan_register_root_region(root_, root_bytes(kRootBits));
}

AddressMap::~AddressMap() {
  for (std::size_t i = 0; i < (std::size_t{1} << kRootBits); ++i) delete root_[i].load();
  if (__lsan_unregister_root_region != nullptr) __lsan_unregister_root_region(root_, root_bytes(kRootBits));
  munmap(root_, root_bytes(kRootBits));
}

std::atomic<const Allocation*>* AddressMap::slot_for(std::uint64_t page, bool create) {
  const std::uint64_t root_index = page >> kLeafShift;
  if (root_index >= (std::uint64_t{1} << kRootBits)) return nullptr;
  Leaf* leaf = root_[root_index].load(std::memory_order_acquire);
  if (leaf == nullptr) {
    if (!create) return nullptr;
    leaf = new Leaf{};
    root_[root_index].store(leaf, std::memory_order_release);
  }
  return &leaf->slots[page & ((1u << kLeafShift) - 1)];
}

Allocation* AddressMap::new_record(const Allocation& a) {
  Allocation* record;
  if (!free_records_.empty()) {
    record = free_records_.back();
    free_records_.pop_back();
  } else {
    if (used_in_last_chunk_ == kChunkRecords) {
      chunks_.emplace_back(new Allocation[kChunkRecords]);
      used_in_last_chunk_ = 0;
    }
    record = &chunks_.back()[used_in_last_chunk_++];
  }
  *record = a;
  return record;
}

void AddressMap::refresh_page(std::uint64_t page) {
  const std::uint64_t start = page << kPageShift, end = start + (std::uint64_t{1} << kPageShift);
  const Allocation* found = nullptr;
  int count = 0;
  auto it = by_base_.upper_bound(start);
  if (it != by_base_.begin()) --it;
  for (; it != by_base_.end() && it->first < end; ++it) {
    const Allocation& a = *it->second;
    if (a.base + a.bytes <= start) continue;
    found = &a;
    if (++count > 1) break;
  }
  std::atomic<const Allocation*>* slot = slot_for(page, count > 0);
  if (slot != nullptr) slot->store(count > 1 ? shared_marker() : found, std::memory_order_release);
}

std::uint64_t AddressMap::insert(std::uint64_t base, std::uint64_t bytes, AllocKind kind, std::uint32_t site) {
  std::unique_lock lock(mutex_);
  Allocation* record = new_record(Allocation{next_id_++, base, bytes == 0 ? 1 : bytes, kind, site});
  by_base_[base] = record;
  for (std::uint64_t page = base >> kPageShift; page <= (base + record->bytes - 1) >> kPageShift; ++page)
    refresh_page(page);
  // Widen the range check before any lookup can need it (publication order:
  // the slot stores above happen under the lock; readers tolerate a stale range
  // only for an allocation whose pointer they cannot have been given yet).
  const std::uint64_t low = span_.load() == 0 ? base : std::min(lowest_.load(), base);
  const std::uint64_t high = std::max(lowest_.load() + span_.load(), base + record->bytes);
  lowest_.store(low, std::memory_order_relaxed);
  span_.store(high - low, std::memory_order_release);
  return record->id;
}

bool AddressMap::erase(std::uint64_t base, Allocation* erased) {
  std::unique_lock lock(mutex_);
  auto it = by_base_.find(base);
  if (it == by_base_.end()) return false;
  Allocation* record = it->second;
  const Allocation a = *record;
  by_base_.erase(it);
  for (std::uint64_t page = base >> kPageShift; page <= (base + a.bytes - 1) >> kPageShift; ++page) refresh_page(page);
  free_records_.push_back(record);
  if (erased != nullptr) *erased = a;
  return true;
}

const Allocation* AddressMap::lookup_shared(std::uint64_t address) const {
  std::shared_lock lock(mutex_);
  auto it = by_base_.upper_bound(address);
  if (it == by_base_.begin()) return nullptr;
  --it;
  const Allocation* a = it->second;
  return address - a->base < a->bytes ? a : nullptr;
}

}  // namespace oversub
