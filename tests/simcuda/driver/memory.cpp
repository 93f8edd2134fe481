// Simulated driver: device address space, capacity, linear allocations,
// pinned host memory and pointer queries.
#include "memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "../common/settings.h"
#include "driver.h"

namespace simcuda::driver {
namespace {

// 1 TiB of device virtual address space: room for the device, the host-located
// memory an oversubscribing caller maps beside it, and fragmentation.
constexpr std::uint64_t kRegionBytes = std::uint64_t{1} << 40;
// Sparse size of the memfd that backs physical (cuMemCreate) allocations; pages
// exist only once written, and are punched out again on release.
constexpr std::uint64_t kPhysicalFileBytes = std::uint64_t{1} << 40;

std::atomic<std::uint64_t> g_used_bytes{0};
std::atomic<std::uint64_t> g_peak_bytes{0};

[[noreturn]] void fatal(const char* what) {
  std::fprintf(stderr, "simcuda: %s: %s\n", what, std::strerror(errno));
  std::abort();
}

}  // namespace

AddressSpace& address_space() {
  static AddressSpace* space = new AddressSpace;  // never destroyed: workers may outlive statics
  return *space;
}

void initialise_address_space() {
  AddressSpace& as = address_space();
  std::lock_guard lock(as.mutex);
  // Tools that limit address space refuse 1 TiB: halve down to 8 GiB. Valgrind does,
  // and so does ThreadSanitizer, which gets 512 GiB (Note [Sanitizer builds]).
  // Either size is PROT_NONE until mapped, so an unmapped access faults the same.
  std::uint64_t bytes = kRegionBytes;
  void* p = MAP_FAILED;
  for (; bytes >= (std::uint64_t{8} << 30); bytes /= 2) {
    p = mmap(nullptr, bytes + kGranularityBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) break;
  }
  if (p == MAP_FAILED) fatal("cannot reserve the simulated device address space");
  as.region_base = round_up(reinterpret_cast<std::uint64_t>(p), kGranularityBytes);
  as.region_bytes = bytes;
  as.va.add(as.region_base, as.region_bytes);
  as.physical_fd = memfd_create("simcuda-physical", MFD_CLOEXEC);
  if (as.physical_fd < 0) fatal("memfd_create for simulated physical memory");
  if (ftruncate(as.physical_fd, static_cast<off_t>(kPhysicalFileBytes)) != 0)
    fatal("sizing the simulated physical memory file");
  // Offset 0 stays unused so that an allocator result of 0 can mean "full".
  as.physical_space.add(kGranularityBytes, kPhysicalFileBytes - kGranularityBytes);
}

void make_inaccessible(std::uint64_t base, std::uint64_t bytes) {
  void* p = mmap(reinterpret_cast<void*>(base), bytes, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
  if (p == MAP_FAILED) fatal("unmapping simulated device memory");
}

// ---- RangeAllocator ----

void RangeAllocator::add(std::uint64_t base, std::uint64_t bytes) { release(base, bytes); }

std::uint64_t RangeAllocator::allocate(std::uint64_t bytes, std::uint64_t align) {
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    std::uint64_t start = round_up(it->first, align);
    std::uint64_t end = it->first + it->second;
    if (start >= end || end - start < bytes) continue;
    std::uint64_t base = it->first;
    free_.erase(it);
    if (start > base) free_[base] = start - base;
    if (start + bytes < end) free_[start + bytes] = end - (start + bytes);
    return start;
  }
  return 0;
}

bool RangeAllocator::allocate_at(std::uint64_t start, std::uint64_t bytes) {
  auto it = free_.upper_bound(start);
  if (it == free_.begin()) return false;
  --it;
  std::uint64_t base = it->first, end = it->first + it->second;
  if (start + bytes > end) return false;
  free_.erase(it);
  if (start > base) free_[base] = start - base;
  if (start + bytes < end) free_[start + bytes] = end - (start + bytes);
  return true;
}

void RangeAllocator::release(std::uint64_t base, std::uint64_t bytes) {
  auto [it, inserted] = free_.emplace(base, bytes);
  if (!inserted) return;
  auto next = std::next(it);
  if (next != free_.end() && base + bytes == next->first) {
    it->second += next->second;
    free_.erase(next);
  }
  if (it != free_.begin()) {
    auto prev = std::prev(it);
    if (prev->first + prev->second == base) {
      prev->second += it->second;
      free_.erase(it);
    }
  }
}

// ---- capacity ----

std::uint64_t capacity_bytes() { return settings().memory_bytes; }
std::uint64_t used_bytes() { return g_used_bytes.load(); }
std::uint64_t peak_device_bytes() { return g_peak_bytes.load(); }

bool charge_device_bytes(std::uint64_t bytes) {
  std::uint64_t used = g_used_bytes.load();
  do {
    if (used + bytes > capacity_bytes()) return false;
  } while (!g_used_bytes.compare_exchange_weak(used, used + bytes));
  std::uint64_t now = used + bytes, peak = g_peak_bytes.load();
  while (now > peak && !g_peak_bytes.compare_exchange_weak(peak, now)) {}
  return true;
}

void refund_device_bytes(std::uint64_t bytes) { g_used_bytes.fetch_sub(bytes); }

bool is_device_address(std::uint64_t address, std::uint64_t bytes) {
  AddressSpace& as = address_space();
  return as.region_bytes != 0 && address >= as.region_base &&
         address + bytes <= as.region_base + as.region_bytes && address + bytes >= address;
}

bool is_pinned_host(const void* pointer, std::uint64_t bytes) {
  AddressSpace& as = address_space();
  std::lock_guard lock(as.mutex);
  auto it = find_containing(as.pinned, reinterpret_cast<std::uintptr_t>(pointer));
  return it != as.pinned.end() && reinterpret_cast<std::uintptr_t>(pointer) + bytes <= it->first + it->second.bytes;
}

// ---- linear allocations ----

namespace {

CUresult allocate_linear(CUdeviceptr* out, std::size_t bytes, bool from_pool) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (out == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  const std::uint64_t charged = round_up(bytes, kLinearAlignBytes);
  const std::uint64_t mapped = round_up(bytes, kPageBytes);
  if (!charge_device_bytes(charged)) return CUDA_ERROR_OUT_OF_MEMORY;
  AddressSpace& as = address_space();
  std::lock_guard lock(as.mutex);
  // Large allocations are 2 MiB aligned, as on a real device.
  const std::uint64_t align = bytes >= kGranularityBytes ? kGranularityBytes : kPageBytes;
  std::uint64_t base = as.va.allocate(mapped, align);
  if (base == 0) {
    refund_device_bytes(charged);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  void* p = mmap(reinterpret_cast<void*>(base), mapped, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
  if (p == MAP_FAILED) {
    as.va.release(base, mapped);
    refund_device_bytes(charged);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  // Note [Fresh memory is not zero]: a real device hands out recycled memory
  // without clearing it. Fresh pages here would read as zero and hide a
  // program (or an interposer) that reads memory before writing it, so new
  // allocations are filled with a quiet-NaN pattern instead.
  std::memset(p, 0xFF, mapped);
  as.linear[base] = LinearAllocation{bytes, mapped, charged, as.next_buffer_id++, from_pool, false};
  *out = base;
  return CUDA_SUCCESS;
}

// Unmaps and forgets a linear allocation. `refund` is false when the capacity
// was already returned (cuMemFreeAsync returns it at the call, see there).
void release_linear(std::uint64_t base, bool refund) {
  AddressSpace& as = address_space();
  std::lock_guard lock(as.mutex);
  auto it = as.linear.find(base);
  if (it == as.linear.end()) return;
  make_inaccessible(base, it->second.mapped_bytes);
  as.va.release(base, it->second.mapped_bytes);
  if (refund) refund_device_bytes(it->second.charged_bytes);
  as.linear.erase(it);
}

CUresult free_async(CUdeviceptr pointer, CUstream handle, DefaultStream mode) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  auto stream = resolve_stream(handle, mode);
  if (!stream) return CUDA_ERROR_INVALID_HANDLE;
  AddressSpace& as = address_space();
  {
    std::lock_guard lock(as.mutex);
    auto it = as.linear.find(pointer);
    if (it == as.linear.end() || it->second.freeing) return CUDA_ERROR_INVALID_VALUE;
    it->second.freeing = true;
    // The stream-ordered allocator may hand these bytes to the next allocation
    // ordered after this point, so capacity returns now; the address itself
    // stays mapped until the stream reaches the free.
    refund_device_bytes(it->second.charged_bytes);
  }
  enqueue(stream, [pointer] { release_linear(pointer, false); });
  return CUDA_SUCCESS;
}

CUresult alloc_async(CUdeviceptr* out, std::size_t bytes, CUstream handle, DefaultStream mode, bool pool) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (!resolve_stream(handle, mode)) return CUDA_ERROR_INVALID_HANDLE;
  return allocate_linear(out, bytes, pool);
}

// One default pool object: pools only change where the simulated allocator's
// bytes are counted, not how memory behaves.
struct Pool {
  int unused;
};
Pool g_default_pool{0};

}  // namespace
}  // namespace simcuda::driver

using namespace simcuda::driver;

SIMCU_EXPORT CUresult cuMemGetInfo_v2(size_t* free_bytes, size_t* total_bytes) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (free_bytes == nullptr || total_bytes == nullptr) return CUDA_ERROR_INVALID_VALUE;
  std::uint64_t used = used_bytes(), capacity = capacity_bytes();
  *free_bytes = used < capacity ? capacity - used : 0;
  *total_bytes = capacity;
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr* out, size_t bytes) { return allocate_linear(out, bytes, false); }

SIMCU_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr* out, size_t* pitch, size_t width_bytes, size_t height,
                                          unsigned int element_bytes) {
  if (pitch == nullptr || (element_bytes != 4 && element_bytes != 8 && element_bytes != 16))
    return CUDA_ERROR_INVALID_VALUE;
  *pitch = round_up(width_bytes, 512);
  return allocate_linear(out, *pitch * height, false);
}

// Note [cuMemFree waits]: the real cuMemFree/cudaFree synchronise with the
// device before releasing memory (DESIGN.md: "the runtime's cudaFree
// synchronises the whole device"); programs rely on it, so we wait too.
SIMCU_EXPORT CUresult cuMemFree_v2(CUdeviceptr pointer) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (pointer == 0) return CUDA_SUCCESS;
  {
    AddressSpace& as = address_space();
    std::lock_guard lock(as.mutex);
    auto it = as.linear.find(pointer);
    if (it == as.linear.end() || it->second.freeing) return CUDA_ERROR_INVALID_VALUE;
  }
  synchronize_device();
  release_linear(pointer, true);
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuMemAllocAsync(CUdeviceptr* out, size_t bytes, CUstream stream) {
  return alloc_async(out, bytes, stream, DefaultStream::legacy, false);
}
SIMCU_EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr* out, size_t bytes, CUstream stream) {
  return alloc_async(out, bytes, stream, DefaultStream::per_thread, false);
}
SIMCU_EXPORT CUresult cuMemFreeAsync(CUdeviceptr pointer, CUstream stream) {
  return free_async(pointer, stream, DefaultStream::legacy);
}
SIMCU_EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr pointer, CUstream stream) {
  return free_async(pointer, stream, DefaultStream::per_thread);
}
SIMCU_EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr* out, size_t bytes, CUmemoryPool pool, CUstream stream) {
  if (pool == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return alloc_async(out, bytes, stream, DefaultStream::legacy, true);
}
SIMCU_EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr* out, size_t bytes, CUmemoryPool pool, CUstream stream) {
  if (pool == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return alloc_async(out, bytes, stream, DefaultStream::per_thread, true);
}

SIMCU_EXPORT CUresult cuDeviceGetDefaultMemPool(CUmemoryPool* pool, CUdevice device) {
  if (CUresult r = require_init(); r != CUDA_SUCCESS) return r;
  if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
  if (pool == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *pool = reinterpret_cast<CUmemoryPool>(&g_default_pool);
  return CUDA_SUCCESS;
}
SIMCU_EXPORT CUresult cuDeviceGetMemPool(CUmemoryPool* pool, CUdevice device) {
  return cuDeviceGetDefaultMemPool(pool, device);
}
SIMCU_EXPORT CUresult cuMemPoolCreate(CUmemoryPool* pool, const CUmemPoolProps* props) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (pool == nullptr || props == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *pool = reinterpret_cast<CUmemoryPool>(new Pool{0});
  return CUDA_SUCCESS;
}
SIMCU_EXPORT CUresult cuMemPoolDestroy(CUmemoryPool pool) {
  if (pool == nullptr || reinterpret_cast<Pool*>(pool) == &g_default_pool) return CUDA_ERROR_INVALID_VALUE;
  delete reinterpret_cast<Pool*>(pool);
  return CUDA_SUCCESS;
}
SIMCU_EXPORT CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t) {
  return pool == nullptr ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}
SIMCU_EXPORT CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute, void* value) {
  return pool == nullptr || value == nullptr ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}
SIMCU_EXPORT CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute, void* value) {
  if (pool == nullptr || value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *static_cast<cuuint64_t*>(value) = 0;
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuMemGetAddressRange_v2(CUdeviceptr* base, size_t* bytes, CUdeviceptr pointer) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  AddressSpace& as = address_space();
  std::lock_guard lock(as.mutex);
  if (auto it = find_containing(as.linear, pointer); it != as.linear.end()) {
    if (base) *base = it->first;
    if (bytes) *bytes = it->second.bytes;
    return CUDA_SUCCESS;
  }
  if (auto it = find_containing(as.mappings, pointer); it != as.mappings.end()) {
    if (base) *base = it->first;
    if (bytes) *bytes = it->second.bytes;
    return CUDA_SUCCESS;
  }
  return CUDA_ERROR_NOT_FOUND;
}

// ---- pinned host memory ----

namespace {
CUresult host_alloc(void** out, size_t bytes, unsigned flags) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (out == nullptr || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  std::uint64_t mapped = round_up(bytes, kPageBytes);
  void* p = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return CUDA_ERROR_OUT_OF_MEMORY;
  AddressSpace& as = address_space();
  std::lock_guard lock(as.mutex);
  as.pinned[reinterpret_cast<std::uintptr_t>(p)] = PinnedRange{mapped, flags, true};
  *out = p;
  return CUDA_SUCCESS;
}
}  // namespace

SIMCU_EXPORT CUresult cuMemHostAlloc(void** out, size_t bytes, unsigned int flags) { return host_alloc(out, bytes, flags); }
SIMCU_EXPORT CUresult cuMemAllocHost_v2(void** out, size_t bytes) { return host_alloc(out, bytes, 0); }

SIMCU_EXPORT CUresult cuMemFreeHost(void* pointer) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  AddressSpace& as = address_space();
  std::uint64_t mapped = 0;
  {
    std::lock_guard lock(as.mutex);
    auto it = as.pinned.find(reinterpret_cast<std::uintptr_t>(pointer));
    if (it == as.pinned.end() || !it->second.owned) return CUDA_ERROR_INVALID_VALUE;
    mapped = it->second.bytes;
  }
  synchronize_device();  // like cuMemFree: queued copies may still read or write it
  {
    std::lock_guard lock(as.mutex);
    as.pinned.erase(reinterpret_cast<std::uintptr_t>(pointer));
  }
  munmap(pointer, mapped);
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuMemHostRegister_v2(void* pointer, size_t bytes, unsigned int flags) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (pointer == nullptr || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  AddressSpace& as = address_space();
  std::lock_guard lock(as.mutex);
  auto base = reinterpret_cast<std::uintptr_t>(pointer);
  auto next = as.pinned.lower_bound(base);
  if (next != as.pinned.end() && next->first < base + bytes) return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
  if (find_containing(as.pinned, base) != as.pinned.end()) return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
  as.pinned[base] = PinnedRange{bytes, flags, false};
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuMemHostUnregister(void* pointer) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  AddressSpace& as = address_space();
  std::lock_guard lock(as.mutex);
  auto it = as.pinned.find(reinterpret_cast<std::uintptr_t>(pointer));
  if (it == as.pinned.end() || it->second.owned) return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
  as.pinned.erase(it);
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr* out, void* pointer, unsigned int flags) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (out == nullptr || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  if (!is_pinned_host(pointer, 1)) return CUDA_ERROR_INVALID_VALUE;
  *out = reinterpret_cast<CUdeviceptr>(pointer);  // unified addressing: same address
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuMemHostGetFlags(unsigned int* flags, void* pointer) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (flags == nullptr) return CUDA_ERROR_INVALID_VALUE;
  AddressSpace& as = address_space();
  std::lock_guard lock(as.mutex);
  auto it = find_containing(as.pinned, reinterpret_cast<std::uintptr_t>(pointer));
  if (it == as.pinned.end()) return CUDA_ERROR_INVALID_VALUE;
  *flags = it->second.flags;
  return CUDA_SUCCESS;
}

// ---- pointer attributes ----

SIMCU_EXPORT CUresult cuPointerGetAttribute(void* data, CUpointer_attribute attribute, CUdeviceptr pointer) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (data == nullptr) return CUDA_ERROR_INVALID_VALUE;
  AddressSpace& as = address_space();
  std::lock_guard lock(as.mutex);
  std::uint64_t range_base = 0, range_bytes = 0, buffer_id = 0;
  bool device = false, legacy_ipc = false;
  void* pool = nullptr;
  if (auto it = find_containing(as.linear, pointer); it != as.linear.end()) {
    device = true;
    range_base = it->first;
    range_bytes = it->second.bytes;
    buffer_id = it->second.buffer_id;
    legacy_ipc = !it->second.from_pool;
    if (it->second.from_pool) pool = &g_default_pool;
  } else if (auto m = find_containing(as.mappings, pointer); m != as.mappings.end()) {
    device = true;
    range_base = m->first;
    range_bytes = m->second.bytes;
    buffer_id = m->second.handle;
  } else if (auto h = find_containing(as.pinned, pointer); h != as.pinned.end()) {
    range_base = h->first;
    range_bytes = h->second.bytes;
  } else {
    return CUDA_ERROR_INVALID_VALUE;
  }
  switch (attribute) {
    case CU_POINTER_ATTRIBUTE_CONTEXT: {
      CUcontext c = nullptr;
      cuCtxGetCurrent(&c);
      *static_cast<CUcontext*>(data) = c;
      break;
    }
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
      *static_cast<unsigned*>(data) = device ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST;
      break;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER: *static_cast<CUdeviceptr*>(data) = pointer; break;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
      if (device) return CUDA_ERROR_INVALID_VALUE;
      *static_cast<void**>(data) = reinterpret_cast<void*>(pointer);
      break;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED: *static_cast<unsigned*>(data) = 0; break;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: *static_cast<int*>(data) = 0; break;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID: *static_cast<unsigned long long*>(data) = buffer_id; break;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR: *static_cast<CUdeviceptr*>(data) = range_base; break;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE: *static_cast<size_t*>(data) = range_bytes; break;
    case CU_POINTER_ATTRIBUTE_MAPPED: *static_cast<unsigned*>(data) = 1; break;
    case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE: *static_cast<unsigned*>(data) = legacy_ipc; break;
    case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES: *static_cast<unsigned long long*>(data) = 0; break;
    case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE: *static_cast<void**>(data) = pool; break;
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS: *static_cast<unsigned*>(data) = 1; break;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuPointerGetAttributes(unsigned int count, CUpointer_attribute* attributes, void** data,
                                             CUdeviceptr pointer) {
  if (attributes == nullptr || data == nullptr) return CUDA_ERROR_INVALID_VALUE;
  for (unsigned i = 0; i < count; ++i) {
    CUresult r = cuPointerGetAttribute(data[i], attributes[i], pointer);
    // Like the real call, an unknown pointer is not an error here: the memory
    // type reads as 0 ("not CUDA memory").
    if (r == CUDA_ERROR_INVALID_VALUE && attributes[i] == CU_POINTER_ATTRIBUTE_MEMORY_TYPE)
      *static_cast<unsigned*>(data[i]) = 0;
    else if (r == CUDA_ERROR_NOT_INITIALIZED || r == CUDA_ERROR_INVALID_CONTEXT)
      return r;
  }
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuPointerSetAttribute(const void*, CUpointer_attribute, CUdeviceptr) { return require_context(); }

// IPC: the handle names the allocation; opening it in another process is not
// simulated (one process, one device), so only export works.
SIMCU_EXPORT CUresult cuIpcGetMemHandle(CUipcMemHandle* handle, CUdeviceptr pointer) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (handle == nullptr) return CUDA_ERROR_INVALID_VALUE;
  AddressSpace& as = address_space();
  std::lock_guard lock(as.mutex);
  auto it = as.linear.find(pointer);
  if (it == as.linear.end() || it->second.from_pool) return CUDA_ERROR_INVALID_VALUE;
  std::memset(handle, 0, sizeof *handle);
  std::uint64_t words[3] = {0x5349'4d43'5544'4131ull, pointer, it->second.buffer_id};
  std::memcpy(handle->reserved, words, sizeof words);
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuIpcOpenMemHandle_v2(CUdeviceptr*, CUipcMemHandle, unsigned int) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  return CUDA_ERROR_NOT_SUPPORTED;
}

SIMCU_EXPORT CUresult cuIpcCloseMemHandle(CUdeviceptr) { return CUDA_ERROR_INVALID_VALUE; }
