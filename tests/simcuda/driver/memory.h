// Internal: the simulated device's address space and allocations (see
// Note [Simulated device memory] in driver.h).
#pragma once

#include <cuda.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>

namespace simcuda::driver {

struct LinearAllocation {  // cuMemAlloc*, cuMemAllocAsync, pool allocations
  std::uint64_t bytes;          // as requested
  std::uint64_t mapped_bytes;   // page-rounded span we map
  std::uint64_t charged_bytes;  // counted against capacity
  std::uint64_t buffer_id;
  bool from_pool;
  bool freeing;                 // cuMemFreeAsync queued
};

struct Reservation {  // cuMemAddressReserve
  std::uint64_t bytes;
};

struct Physical {  // cuMemCreate
  std::uint64_t bytes;
  std::uint64_t file_offset;  // where its pages live in the physical memfd
  CUmemAllocationProp prop;
  bool on_device;
  int refs;  // create + retains - releases
  int maps;  // live cuMemMap ranges
};

struct Mapping {  // cuMemMap
  std::uint64_t bytes;
  std::uint64_t handle;
  std::uint64_t offset;  // into the physical allocation
  CUmemAccess_flags access;
};

struct PinnedRange {
  std::uint64_t bytes;
  unsigned flags;
  bool owned;  // cuMemHostAlloc (we free it) vs cuMemHostRegister (caller's)
};

// First-fit allocator of address ranges; free ranges coalesce on release.
class RangeAllocator {
 public:
  void add(std::uint64_t base, std::uint64_t bytes);
  // 0 when no free range fits.
  std::uint64_t allocate(std::uint64_t bytes, std::uint64_t align);
  bool allocate_at(std::uint64_t base, std::uint64_t bytes);
  void release(std::uint64_t base, std::uint64_t bytes);

 private:
  std::map<std::uint64_t, std::uint64_t> free_;  // base -> bytes
};

struct AddressSpace {
  std::mutex mutex;
  std::uint64_t region_base = 0;
  std::uint64_t region_bytes = 0;
  RangeAllocator va;
  std::map<std::uint64_t, LinearAllocation> linear;    // by base address
  std::map<std::uint64_t, Reservation> reservations;   // by base address
  std::map<std::uint64_t, Mapping> mappings;           // by base address
  std::unordered_map<std::uint64_t, Physical> physicals;
  std::uint64_t next_handle = 1;
  std::uint64_t next_buffer_id = 1;
  int physical_fd = -1;        // one sparse memfd backs every cuMemCreate
  RangeAllocator physical_space;
  std::map<std::uintptr_t, PinnedRange> pinned;        // by host base address
};

AddressSpace& address_space();

// Replaces [base, base+bytes) with an inaccessible reservation (PROT_NONE).
void make_inaccessible(std::uint64_t base, std::uint64_t bytes);

// Finds the entry of `map` whose [key, key+bytes) holds `address`; map.end() if none.
template <typename Map>
auto find_containing(Map& map, std::uint64_t address) {
  auto it = map.upper_bound(address);
  if (it == map.begin()) return map.end();
  --it;
  return address < it->first + it->second.bytes ? it : map.end();
}

constexpr std::uint64_t round_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

}  // namespace simcuda::driver
