// Simulated driver: finite capacity, VMM semantics and faults.
// Runs with SIMCUDA_MEMORY=64MiB (see meson.build).
#include <sys/mman.h>

#include <vector>

#include "driver_fixture.h"

namespace simcuda::test {
namespace {

constexpr std::uint64_t MiB = 1 << 20;
constexpr std::uint64_t kCapacity = 64 * MiB;

using MemoryTest = DriverTest;
using MemoryDeathTest = DriverTest;

TEST_F(MemoryTest, ReportsConfiguredCapacity) {
  size_t free_bytes = 0, total = 0, dev_total = 0;
  CU_OK(cuMemGetInfo(&free_bytes, &total));
  CU_OK(cuDeviceTotalMem(&dev_total, 0));
  EXPECT_EQ(total, kCapacity);
  EXPECT_EQ(dev_total, kCapacity);
  EXPECT_EQ(free_bytes, kCapacity);
}

TEST_F(MemoryTest, AllocatesUntilFullThenFailsWithOutOfMemory) {
  std::vector<CUdeviceptr> buffers;
  CUdeviceptr p = 0;
  CUresult r;
  while ((r = cuMemAlloc(&p, 2 * MiB)) == CUDA_SUCCESS) {
    buffers.push_back(p);
    ASSERT_LE(buffers.size(), kCapacity / (2 * MiB)) << "allocated past capacity";
  }
  EXPECT_EQ(r, CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(buffers.size(), kCapacity / (2 * MiB));
  size_t free_bytes = 1, total = 0;
  CU_OK(cuMemGetInfo(&free_bytes, &total));
  EXPECT_EQ(free_bytes, 0u);
  // Every buffer is usable: fill each with its index and read it back.
  for (size_t i = 0; i < buffers.size(); ++i) CU_OK(fill(buffers[i], static_cast<std::uint32_t>(i), 2 * MiB / 4));
  for (size_t i = 0; i < buffers.size(); ++i) {
    std::uint32_t last = 0;
    CU_OK(cuMemcpyDtoH(&last, buffers[i] + 2 * MiB - 4, 4));
    EXPECT_EQ(last, i);
  }
  for (CUdeviceptr b : buffers) CU_OK(cuMemFree(b));
  CU_OK(cuMemGetInfo(&free_bytes, &total));
  EXPECT_EQ(free_bytes, kCapacity);
  CU_OK(cuMemAlloc(&p, 2 * MiB));
  CU_OK(cuMemFree(p));
}

TEST_F(MemoryTest, VmmDeviceMemoryCountsAgainstCapacity) {
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location = {CU_MEM_LOCATION_TYPE_DEVICE, 0};
  size_t granularity = 0;
  CU_OK(cuMemGetAllocationGranularity(&granularity, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  EXPECT_EQ(granularity, 2 * MiB);
  CUmemGenericAllocationHandle all = 0, more = 0;
  CU_OK(cuMemCreate(&all, kCapacity, &prop, 0));
  EXPECT_EQ(cuMemCreate(&more, 2 * MiB, &prop, 0), CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(cuMemCreate(&more, MiB, &prop, 0), CUDA_ERROR_INVALID_VALUE) << "not a granularity multiple";
  // Host-located memory does not use device capacity.
  CUmemAllocationProp host = prop;
  host.location = {CU_MEM_LOCATION_TYPE_HOST, 0};
  CU_OK(cuMemCreate(&more, 8 * MiB, &host, 0));
  CU_OK(cuMemRelease(more));
  CU_OK(cuMemRelease(all));
  CU_OK(cuMemCreate(&all, 2 * MiB, &prop, 0));
  CU_OK(cuMemRelease(all));
}

struct Vmm {
  CUdeviceptr va = 0;
  std::uint64_t bytes = 0;
};

CUmemAllocationProp prop_at(CUmemLocationType type) {
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location = {type, 0};
  return prop;
}

void map_rw(CUdeviceptr at, std::uint64_t bytes, CUmemGenericAllocationHandle h) {
  ASSERT_EQ(cuMemMap(at, bytes, 0, h, 0), CUDA_SUCCESS);
  CUmemAccessDesc access{{CU_MEM_LOCATION_TYPE_DEVICE, 0}, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
  ASSERT_EQ(cuMemSetAccess(at, bytes, &access, 1), CUDA_SUCCESS);
}

TEST_F(MemoryTest, UnmapAndRemapKeepsContents) {
  const std::uint64_t bytes = 4 * MiB;
  CUdeviceptr va = 0;
  CU_OK(cuMemAddressReserve(&va, 2 * bytes, 0, 0, 0));
  auto prop = prop_at(CU_MEM_LOCATION_TYPE_DEVICE);
  CUmemGenericAllocationHandle h = 0;
  CU_OK(cuMemCreate(&h, bytes, &prop, 0));
  map_rw(va, bytes, h);
  CU_OK(fill(va, 0xC0FFEE, bytes / 4));
  CU_OK(cuCtxSynchronize());
  CU_OK(cuMemUnmap(va, bytes));
  // Map the same physical memory at the other half of the reservation.
  map_rw(va + bytes, bytes, h);
  std::vector<std::uint32_t> host(bytes / 4);
  CU_OK(cuMemcpyDtoH(host.data(), va + bytes, bytes));
  for (std::uint32_t v : host) ASSERT_EQ(v, 0xC0FFEEu);
  // Released while mapped: stays alive until unmapped.
  CU_OK(cuMemRelease(h));
  CU_OK(cuMemcpyDtoH(host.data(), va + bytes, 4));
  EXPECT_EQ(host[0], 0xC0FFEEu);
  CU_OK(cuMemUnmap(va + bytes, bytes));
  size_t free_bytes = 0, total = 0;
  CU_OK(cuMemGetInfo(&free_bytes, &total));
  EXPECT_EQ(free_bytes, total) << "physical memory freed once released and unmapped";
  CU_OK(cuMemAddressFree(va, 2 * bytes));
}

TEST_F(MemoryTest, HostLocatedMemoryIsDeviceAccessible) {
  const std::uint64_t bytes = 2 * MiB;
  CUdeviceptr va = 0;
  CU_OK(cuMemAddressReserve(&va, bytes, 0, 0, 0));
  auto prop = prop_at(CU_MEM_LOCATION_TYPE_HOST);
  CUmemGenericAllocationHandle h = 0;
  CU_OK(cuMemCreate(&h, bytes, &prop, 0));
  map_rw(va, bytes, h);
  CU_OK(fill(va, 7, bytes / 4));
  std::uint32_t v = 0;
  CU_OK(cuMemcpyDtoH(&v, va + bytes - 4, 4));
  EXPECT_EQ(v, 7u);
  CU_OK(cuMemUnmap(va, bytes));
  CU_OK(cuMemRelease(h));
  CU_OK(cuMemAddressFree(va, bytes));
}

TEST_F(MemoryTest, VmmRejectsMisuse) {
  CUdeviceptr va = 0;
  CU_OK(cuMemAddressReserve(&va, 4 * MiB, 0, 0, 0));
  auto prop = prop_at(CU_MEM_LOCATION_TYPE_DEVICE);
  CUmemGenericAllocationHandle h = 0;
  CU_OK(cuMemCreate(&h, 2 * MiB, &prop, 0));
  EXPECT_EQ(cuMemMap(va, 4 * MiB, 0, h, 0), CUDA_ERROR_INVALID_VALUE) << "larger than the allocation";
  EXPECT_EQ(cuMemMap(va + 4096, 2 * MiB, 0, h, 0), CUDA_ERROR_INVALID_VALUE) << "unaligned";
  CU_OK(cuMemMap(va, 2 * MiB, 0, h, 0));
  EXPECT_EQ(cuMemMap(va, 2 * MiB, 0, h, 0), CUDA_ERROR_ALREADY_MAPPED);
  CUmemAccessDesc access{{CU_MEM_LOCATION_TYPE_DEVICE, 0}, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
  EXPECT_EQ(cuMemSetAccess(va, 4 * MiB, &access, 1), CUDA_ERROR_INVALID_VALUE) << "half unmapped";
  EXPECT_EQ(cuMemAddressFree(va, 4 * MiB), CUDA_ERROR_INVALID_VALUE) << "still mapped";
  CU_OK(cuMemUnmap(va, 2 * MiB));
  EXPECT_EQ(cuMemUnmap(va, 2 * MiB), CUDA_ERROR_INVALID_VALUE);
  CU_OK(cuMemRelease(h));
  EXPECT_EQ(cuMemRelease(h), CUDA_ERROR_INVALID_VALUE);
  CU_OK(cuMemAddressFree(va, 4 * MiB));
}

TEST_F(MemoryTest, PinnedHostMemoryIsTracked) {
  void* pinned = nullptr;
  CU_OK(cuMemHostAlloc(&pinned, MiB, 0));
  CUdeviceptr alias = 0;
  CU_OK(cuMemHostGetDevicePointer(&alias, pinned, 0));
  EXPECT_EQ(alias, reinterpret_cast<CUdeviceptr>(pinned));
  unsigned type = 0;
  CU_OK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, alias));
  EXPECT_EQ(type, CU_MEMORYTYPE_HOST);
  std::vector<char> pageable(4096);
  CU_OK(cuMemHostRegister(pageable.data(), pageable.size(), 0));
  EXPECT_EQ(cuMemHostRegister(pageable.data(), pageable.size(), 0), CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
  CU_OK(cuMemHostUnregister(pageable.data()));
  EXPECT_EQ(cuMemHostUnregister(pageable.data()), CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED);
  CU_OK(cuMemFreeHost(pinned));
}

TEST_F(MemoryTest, PointerAttributesDescribeAllocations) {
  CUdeviceptr p = 0;
  CU_OK(cuMemAlloc(&p, 3 * MiB));
  CUdeviceptr base = 0;
  size_t size = 0;
  CU_OK(cuMemGetAddressRange(&base, &size, p + MiB));
  EXPECT_EQ(base, p);
  EXPECT_EQ(size, 3 * MiB);
  unsigned type = 0;
  CU_OK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, p + 5));
  EXPECT_EQ(type, CU_MEMORYTYPE_DEVICE);
  CU_OK(cuMemFree(p));
  EXPECT_EQ(cuMemGetAddressRange(&base, &size, p), CUDA_ERROR_NOT_FOUND);
}

TEST_F(MemoryDeathTest, MemsetIntoUnmappedRangeFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  CUdeviceptr va = 0;
  CU_OK(cuMemAddressReserve(&va, 2 * MiB, 0, 0, 0));
  auto prop = prop_at(CU_MEM_LOCATION_TYPE_DEVICE);
  CUmemGenericAllocationHandle h = 0;
  CU_OK(cuMemCreate(&h, 2 * MiB, &prop, 0));
  map_rw(va, 2 * MiB, h);
  CU_OK(cuMemsetD8(va, 1, 2 * MiB));
  CU_OK(cuCtxSynchronize());
  CU_OK(cuMemUnmap(va, 2 * MiB));
  EXPECT_EXIT(
      {
        cuMemsetD8(va + 4096, 0, 16);
        cuCtxSynchronize();
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGSEGV), "");
  CU_OK(cuMemRelease(h));
  CU_OK(cuMemAddressFree(va, 2 * MiB));
}

TEST_F(MemoryDeathTest, MappedButNotAccessibleFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  CUdeviceptr va = 0;
  CU_OK(cuMemAddressReserve(&va, 2 * MiB, 0, 0, 0));
  auto prop = prop_at(CU_MEM_LOCATION_TYPE_DEVICE);
  CUmemGenericAllocationHandle h = 0;
  CU_OK(cuMemCreate(&h, 2 * MiB, &prop, 0));
  CU_OK(cuMemMap(va, 2 * MiB, 0, h, 0));  // no cuMemSetAccess
  EXPECT_EXIT(
      {
        fill(va, 1, 4);
        cuCtxSynchronize();
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGSEGV), "");
  CU_OK(cuMemUnmap(va, 2 * MiB));
  CU_OK(cuMemRelease(h));
  CU_OK(cuMemAddressFree(va, 2 * MiB));
}

TEST_F(MemoryDeathTest, KernelTouchingFreedMemoryFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  CUdeviceptr p = 0;
  CU_OK(cuMemAlloc(&p, MiB));
  CU_OK(cuMemFree(p));
  EXPECT_EXIT(
      {
        fill(p, 1, 16);
        cuCtxSynchronize();
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGSEGV), "");
}

TEST_F(MemoryDeathTest, UnmapDoesNotWaitForQueuedWork) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // A queued kernel that still needs the range when it is unmapped faults: the
  // caller, not the driver, must order unmap after the last use.
  CUdeviceptr va = 0;
  CU_OK(cuMemAddressReserve(&va, 2 * MiB, 0, 0, 0));
  auto prop = prop_at(CU_MEM_LOCATION_TYPE_DEVICE);
  CUmemGenericAllocationHandle h = 0;
  CU_OK(cuMemCreate(&h, 2 * MiB, &prop, 0));
  map_rw(va, 2 * MiB, h);
  EXPECT_EXIT(
      {
        CUstream s{};
        cuStreamCreate(&s, CU_STREAM_NON_BLOCKING);
        slow_increment(va + 64, 0, s);                   // fine
        slow_increment(va + 128, 200000, s);             // reads now, writes after 200 ms
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        cuMemUnmap(va, 2 * MiB);
        cuStreamSynchronize(s);
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGSEGV), "");
  CU_OK(cuMemUnmap(va, 2 * MiB));
  CU_OK(cuMemRelease(h));
  CU_OK(cuMemAddressFree(va, 2 * MiB));
}

}  // namespace
}  // namespace simcuda::test
