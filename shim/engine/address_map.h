// AddressMap: which tracked allocation holds a device address.
//
// Note [Address lookup on the hot path]
// Every intercepted launch looks up each 8-byte word of its parameter block,
// so a lookup must cost a few nanoseconds and take no lock. The map is a
// two-level page table over the 48-bit address space at 2 MiB granularity:
// a root of 2^18 leaf pointers (one per GiB) and leaves of 512 slots. A slot
// names the one allocation that overlaps its 2 MiB page, is empty, or says
// "shared" when several small allocations sit in the page; only then does a
// lookup fall back to an ordered map under a reader lock. Writers (alloc and
// free, rare next to launches) serialise on a mutex. Records are recycled, so a
// lookup racing with the free of the very allocation it names may see stale
// data; only a program that uses memory while freeing it can cause that.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "tracer/format.h"

namespace oversub {

using AllocKind = trace::AllocKind;

struct Allocation {
  std::uint64_t id;
  std::uint64_t base;
  std::uint64_t bytes;
  AllocKind kind;
  std::uint32_t site;  // trace call-site id, 0 when not traced
};

class AddressMap {
  struct Leaf;

 public:
  AddressMap();
  ~AddressMap();
  AddressMap(const AddressMap&) = delete;
  AddressMap& operator=(const AddressMap&) = delete;

  // Records [base, base+bytes). Returns the new allocation's id. Cost: a mutex
  // and one slot write per 2 MiB page.
  std::uint64_t insert(std::uint64_t base, std::uint64_t bytes, AllocKind kind, std::uint32_t site);
  // Forgets the allocation that starts at `base`; false when there is none.
  bool erase(std::uint64_t base, Allocation* erased);

  // Hot path: the allocation holding `address`, or nullptr. Cost: three
  // dependent loads (leaf, slot, record) when its page holds one allocation;
  // a reader lock when several small ones share the page. The record stays
  // readable after a free (records are recycled, never unmapped).
  const Allocation* lookup(std::uint64_t address) const {
    if (address - lowest_.load(std::memory_order_relaxed) >= span_.load(std::memory_order_relaxed)) return nullptr;
    const std::uint64_t page = address >> kPageShift;
    const Leaf* leaf = root_[page >> kLeafShift].load(std::memory_order_acquire);
    if (leaf == nullptr) return nullptr;
    const Allocation* a = leaf->slots[page & ((1u << kLeafShift) - 1)].load(std::memory_order_acquire);
    if (reinterpret_cast<std::uintptr_t>(a) <= kSharedValue) [[unlikely]]  // empty or shared: one test for both
      return a == nullptr ? nullptr : lookup_shared(address);
    return address - a->base < a->bytes ? a : nullptr;
  }
  // For a tight loop over many words (a launch's parameter block): the range
  // check and the root read once, then lookup_in() per word.
  struct View {
    std::uint64_t lowest;
    std::uint64_t span;
    const std::atomic<Leaf*>* root;
  };
  View view() const {
    return View{lowest_.load(std::memory_order_relaxed), span_.load(std::memory_order_acquire), root_};
  }
  const Allocation* lookup_in(const View& v, std::uint64_t address) const {
    if (address - v.lowest >= v.span) return nullptr;
    const std::uint64_t page = address >> kPageShift;
    const Leaf* leaf = v.root[page >> kLeafShift].load(std::memory_order_acquire);
    if (leaf == nullptr) return nullptr;
    const Allocation* a = leaf->slots[page & ((1u << kLeafShift) - 1)].load(std::memory_order_acquire);
    if (reinterpret_cast<std::uintptr_t>(a) <= kSharedValue) [[unlikely]]  // empty or shared: one test for both
      return a == nullptr ? nullptr : lookup_shared(address);
    return address - a->base < a->bytes ? a : nullptr;
  }
  bool find(std::uint64_t address, Allocation* hit) const {
    const Allocation* a = lookup(address);
    if (a != nullptr) *hit = *a;
    return a != nullptr;
  }

 private:
  static constexpr unsigned kPageShift = 21;   // 2 MiB
  static constexpr unsigned kLeafShift = 9;    // 512 pages per leaf: 1 GiB
  static constexpr unsigned kRootBits = 48 - kPageShift - kLeafShift;
  struct Leaf {
    std::atomic<const Allocation*> slots[1u << kLeafShift];
  };
  static_assert(sizeof(std::atomic<const Allocation*>) == sizeof(void*));
  // A slot holding this names no record: several allocations share the page.
  // (Not a real record's address: records are heap objects, so none sits at 1.)
  static constexpr std::uintptr_t kSharedValue = 1;
  static const Allocation* shared_marker() { return reinterpret_cast<const Allocation*>(kSharedValue); }

  std::atomic<const Allocation*>* slot_for(std::uint64_t page, bool create);
  void refresh_page(std::uint64_t page);  // recompute one slot from by_base_
  Allocation* new_record(const Allocation& a);
  const Allocation* lookup_shared(std::uint64_t address) const;

  // 2 MiB of leaf pointers, mapped lazily: untouched pages cost nothing, so
  // preloading the shim into a process that never uses CUDA stays cheap.
  std::atomic<Leaf*>* root_;
  // Records live in chunks that never move, so a slot can point at one.
  static constexpr std::size_t kChunkRecords = 4096;
  std::vector<std::unique_ptr<Allocation[]>> chunks_;
  std::vector<Allocation*> free_records_;
  std::size_t used_in_last_chunk_ = kChunkRecords;

  mutable std::shared_mutex mutex_;                  // writers exclusive; shared-page readers shared
  std::map<std::uint64_t, Allocation*> by_base_;
  std::uint64_t next_id_ = 1;
  // [lowest_, lowest_ + span_) holds every allocation seen so far; an empty
  // map has span 0, so the unsigned range check rejects everything.
  std::atomic<std::uint64_t> lowest_{0};
  std::atomic<std::uint64_t> span_{0};
};

}  // namespace oversub
