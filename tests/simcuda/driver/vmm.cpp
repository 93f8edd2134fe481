// Simulated driver: the virtual memory management API (cuMemAddressReserve,
// cuMemCreate, cuMemMap, cuMemSetAccess, ...). See Note [Simulated device memory].
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>

#include <cstring>

#include "driver.h"
#include "memory.h"

namespace simcuda::driver {
namespace {

bool valid_location(const CUmemLocation& location, bool* on_device) {
  switch (location.type) {
    case CU_MEM_LOCATION_TYPE_DEVICE:
      *on_device = true;
      return location.id == 0;
    case CU_MEM_LOCATION_TYPE_HOST:
    case CU_MEM_LOCATION_TYPE_HOST_NUMA:
    case CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT:
      *on_device = false;
      return true;
    default:
      return false;
  }
}

// Frees a physical allocation's pages once nothing refers to it any more: the
// real driver keeps memory alive while it is mapped, even after cuMemRelease.
void destroy_if_unused(AddressSpace& as, std::uint64_t handle) {
  auto it = as.physicals.find(handle);
  if (it == as.physicals.end() || it->second.refs > 0 || it->second.maps > 0) return;
  const Physical& p = it->second;
  fallocate(as.physical_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(p.file_offset),
            static_cast<off_t>(p.bytes));
  as.physical_space.release(p.file_offset, p.bytes);
  if (p.on_device) refund_device_bytes(p.bytes);
  as.physicals.erase(it);
}

// The reservation that wholly holds [base, base+bytes), or end().
auto find_reservation(AddressSpace& as, std::uint64_t base, std::uint64_t bytes) {
  auto it = find_containing(as.reservations, base);
  if (it != as.reservations.end() && base + bytes > it->first + it->second.bytes) return as.reservations.end();
  return it;
}

}  // namespace
}  // namespace simcuda::driver

using namespace simcuda::driver;

SIMCU_EXPORT CUresult cuMemGetAllocationGranularity(size_t* granularity, const CUmemAllocationProp* prop,
                                                    CUmemAllocationGranularity_flags) {
  if (CUresult r = require_init(); r != CUDA_SUCCESS) return r;
  bool on_device = false;
  if (granularity == nullptr || prop == nullptr || prop->type != CU_MEM_ALLOCATION_TYPE_PINNED ||
      !valid_location(prop->location, &on_device))
    return CUDA_ERROR_INVALID_VALUE;
  *granularity = kGranularityBytes;
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle* handle, size_t bytes, const CUmemAllocationProp* prop,
                                  unsigned long long flags) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  bool on_device = false;
  if (handle == nullptr || prop == nullptr || flags != 0 || bytes == 0 || bytes % kGranularityBytes != 0 ||
      prop->type != CU_MEM_ALLOCATION_TYPE_PINNED || !valid_location(prop->location, &on_device))
    return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = injected_failure(FailableCall::mem_create); r != CUDA_SUCCESS) return r;
  if (on_device && !charge_device_bytes(bytes)) return CUDA_ERROR_OUT_OF_MEMORY;
  AddressSpace& as = address_space();
  std::lock_guard lock(as.mutex);
  std::uint64_t offset = as.physical_space.allocate(bytes, kGranularityBytes);
  if (offset == 0) {
    if (on_device) refund_device_bytes(bytes);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  std::uint64_t id = as.next_handle++;
  as.physicals[id] = Physical{bytes, offset, *prop, on_device, 1, 0};
  *handle = id;
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  AddressSpace& as = address_space();
  std::lock_guard lock(as.mutex);
  auto it = as.physicals.find(handle);
  if (it == as.physicals.end() || it->second.refs <= 0) return CUDA_ERROR_INVALID_VALUE;
  --it->second.refs;
  destroy_if_unused(as, handle);
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle* handle, void* address) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (handle == nullptr) return CUDA_ERROR_INVALID_VALUE;
  AddressSpace& as = address_space();
  std::lock_guard lock(as.mutex);
  auto m = find_containing(as.mappings, reinterpret_cast<std::uint64_t>(address));
  if (m == as.mappings.end()) return CUDA_ERROR_INVALID_VALUE;
  ++as.physicals.at(m->second.handle).refs;
  *handle = m->second.handle;
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp* prop,
                                                             CUmemGenericAllocationHandle handle) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (prop == nullptr) return CUDA_ERROR_INVALID_VALUE;
  AddressSpace& as = address_space();
  std::lock_guard lock(as.mutex);
  auto it = as.physicals.find(handle);
  if (it == as.physicals.end()) return CUDA_ERROR_INVALID_VALUE;
  *prop = it->second.prop;
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuMemAddressReserve(CUdeviceptr* out, size_t bytes, size_t alignment, CUdeviceptr hint,
                                          unsigned long long flags) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (out == nullptr || bytes == 0 || bytes % kGranularityBytes != 0 || flags != 0 ||
      (alignment != 0 && (alignment & (alignment - 1)) != 0))
    return CUDA_ERROR_INVALID_VALUE;
  std::uint64_t align = alignment < kGranularityBytes ? kGranularityBytes : alignment;
  AddressSpace& as = address_space();
  std::lock_guard lock(as.mutex);
  std::uint64_t base = 0;
  if (hint != 0 && hint % align == 0 && as.va.allocate_at(hint, bytes)) base = hint;
  if (base == 0) base = as.va.allocate(bytes, align);
  if (base == 0) return CUDA_ERROR_OUT_OF_MEMORY;
  as.reservations[base] = Reservation{bytes};
  *out = base;
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuMemAddressFree(CUdeviceptr base, size_t bytes) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  AddressSpace& as = address_space();
  std::lock_guard lock(as.mutex);
  auto it = as.reservations.find(base);
  if (it == as.reservations.end() || it->second.bytes != bytes) return CUDA_ERROR_INVALID_VALUE;
  auto m = as.mappings.lower_bound(base);
  if (m != as.mappings.end() && m->first < base + bytes) return CUDA_ERROR_INVALID_VALUE;  // still mapped
  as.reservations.erase(it);
  as.va.release(base, bytes);
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuMemMap(CUdeviceptr base, size_t bytes, size_t offset, CUmemGenericAllocationHandle handle,
                               unsigned long long flags) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (flags != 0 || bytes == 0 || bytes % kGranularityBytes != 0 || base % kGranularityBytes != 0 ||
      offset % kGranularityBytes != 0)
    return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = injected_failure(FailableCall::mem_map); r != CUDA_SUCCESS) return r;
  AddressSpace& as = address_space();
  std::lock_guard lock(as.mutex);
  auto physical = as.physicals.find(handle);
  if (physical == as.physicals.end() || physical->second.refs <= 0) return CUDA_ERROR_INVALID_HANDLE;
  if (offset + bytes > physical->second.bytes) return CUDA_ERROR_INVALID_VALUE;
  if (find_reservation(as, base, bytes) == as.reservations.end()) return CUDA_ERROR_INVALID_VALUE;
  auto next = as.mappings.lower_bound(base);
  if (next != as.mappings.end() && next->first < base + bytes) return CUDA_ERROR_ALREADY_MAPPED;
  if (find_containing(as.mappings, base) != as.mappings.end()) return CUDA_ERROR_ALREADY_MAPPED;
  // Mapped but not yet accessible: a real device needs cuMemSetAccess first.
  void* p = mmap(reinterpret_cast<void*>(base), bytes, PROT_NONE, MAP_SHARED | MAP_FIXED, as.physical_fd,
                 static_cast<off_t>(physical->second.file_offset + offset));
  if (p == MAP_FAILED) return CUDA_ERROR_OUT_OF_MEMORY;
  ++physical->second.maps;
  as.mappings[base] = Mapping{bytes, handle, offset, CU_MEM_ACCESS_FLAGS_PROT_NONE};
  return CUDA_SUCCESS;
}

// Does not wait for queued work: see Note [Simulated device memory].
SIMCU_EXPORT CUresult cuMemUnmap(CUdeviceptr base, size_t bytes) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  AddressSpace& as = address_space();
  std::lock_guard lock(as.mutex);
  // The range must consist of whole mappings.
  if (find_containing(as.mappings, base) != as.mappings.end() && as.mappings.find(base) == as.mappings.end())
    return CUDA_ERROR_INVALID_VALUE;
  std::uint64_t end = base + bytes, covered = 0;
  for (auto it = as.mappings.lower_bound(base); it != as.mappings.end() && it->first < end; ++it) {
    if (it->first + it->second.bytes > end) return CUDA_ERROR_INVALID_VALUE;
    covered += it->second.bytes;
  }
  if (covered == 0) return CUDA_ERROR_INVALID_VALUE;
  for (auto it = as.mappings.lower_bound(base); it != as.mappings.end() && it->first < end;) {
    make_inaccessible(it->first, it->second.bytes);
    std::uint64_t handle = it->second.handle;
    --as.physicals.at(handle).maps;
    it = as.mappings.erase(it);
    destroy_if_unused(as, handle);
  }
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuMemSetAccess(CUdeviceptr base, size_t bytes, const CUmemAccessDesc* desc, size_t count) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (desc == nullptr || count == 0 || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  AddressSpace& as = address_space();
  std::lock_guard lock(as.mutex);
  // Every byte of the range must be mapped.
  std::uint64_t end = base + bytes, cursor = base;
  auto it = find_containing(as.mappings, base);
  if (it == as.mappings.end()) return CUDA_ERROR_INVALID_VALUE;
  for (; it != as.mappings.end() && it->first < end; ++it) {
    if (it->first != cursor && it->first > cursor) return CUDA_ERROR_INVALID_VALUE;
    cursor = it->first + it->second.bytes;
  }
  if (cursor < end) return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 0; i < count; ++i) {
    bool on_device = false;
    if (!valid_location(desc[i].location, &on_device)) return CUDA_ERROR_INVALID_DEVICE;
    if (!on_device) continue;  // host access to device memory is not simulated
    int prot = PROT_NONE;
    if (desc[i].flags == CU_MEM_ACCESS_FLAGS_PROT_READ) prot = PROT_READ;
    else if (desc[i].flags == CU_MEM_ACCESS_FLAGS_PROT_READWRITE) prot = PROT_READ | PROT_WRITE;
    else if (desc[i].flags != CU_MEM_ACCESS_FLAGS_PROT_NONE) return CUDA_ERROR_INVALID_VALUE;
    if (mprotect(reinterpret_cast<void*>(base), bytes, prot) != 0) return CUDA_ERROR_INVALID_VALUE;
    for (auto m = find_containing(as.mappings, base); m != as.mappings.end() && m->first < end; ++m)
      m->second.access = desc[i].flags;
  }
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuMemGetAccess(unsigned long long* flags, const CUmemLocation* location, CUdeviceptr pointer) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (flags == nullptr || location == nullptr) return CUDA_ERROR_INVALID_VALUE;
  AddressSpace& as = address_space();
  std::lock_guard lock(as.mutex);
  auto m = find_containing(as.mappings, pointer);
  if (m == as.mappings.end()) return CUDA_ERROR_INVALID_VALUE;
  *flags = m->second.access;
  return CUDA_SUCCESS;
}
