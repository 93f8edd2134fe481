// Acceptance program: a cudaMemset into a range that was unmapped with
// cuMemUnmap must kill the program (SIGSEGV on the simulation, an illegal
// address on a real GPU). Before the unmap the same memset works.
// Linked against the toolkit's real libcudart.so.13 and its link-time libcuda
// (lib64/stubs/libcuda.so, which NVIDIA ships for linking without a driver);
// at run time libcuda.so.1 is whatever LD_LIBRARY_PATH finds: the simulation.
#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdio>

#define CHECK(x)                                                     \
  do {                                                               \
    if ((x) != 0) {                                                  \
      std::printf("unexpected failure: %s\n", #x);                   \
      return 1;                                                      \
    }                                                                \
  } while (0)

int main() {
  CHECK(cudaFree(nullptr));  // initialise the runtime and its primary context
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = 0;
  size_t granularity = 0;
  CHECK(cuMemGetAllocationGranularity(&granularity, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  CUdeviceptr va = 0;
  CHECK(cuMemAddressReserve(&va, granularity, 0, 0, 0));
  CUmemGenericAllocationHandle handle = 0;
  CHECK(cuMemCreate(&handle, granularity, &prop, 0));
  CHECK(cuMemMap(va, granularity, 0, handle, 0));
  CUmemAccessDesc access{};
  access.location = prop.location;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  CHECK(cuMemSetAccess(va, granularity, &access, 1));
  CHECK(cudaMemset(reinterpret_cast<void*>(va), 0x5A, granularity));
  unsigned char probe = 0;
  CHECK(cudaMemcpy(&probe, reinterpret_cast<void*>(va + 100), 1, cudaMemcpyDeviceToHost));
  std::printf("mapped memset ok: 0x%02x\n", probe);
  std::fflush(stdout);
  CHECK(cuMemUnmap(va, granularity));
  CHECK(cuMemRelease(handle));
  cudaMemset(reinterpret_cast<void*>(va), 0, granularity);  // must not survive this
  cudaDeviceSynchronize();
  std::printf("survived a memset into unmapped memory\n");
  return 0;
}
