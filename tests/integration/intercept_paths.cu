// Reaches the driver three ways a real framework does, so a test can check in
// the trace that the shim saw all of them (issue: interposition layer, test c):
//  A. dlopen("libcuda.so.1") + dlsym(handle, "cuMemAlloc_v2")   (TensorFlow)
//  B. dlsym(handle, "cuGetProcAddress_v2") + cuGetProcAddress   (the runtime's own way)
//  C. cudaGetDriverEntryPoint                                    (PyTorch, CuPy)
// Each path allocates a distinct size, memsets it and frees it.
#include <cuda.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <cstdio>

using MemAlloc = CUresult (*)(CUdeviceptr*, size_t);
using MemFree = CUresult (*)(CUdeviceptr);
using MemsetD8 = CUresult (*)(CUdeviceptr, unsigned char, size_t);
using GetProc = CUresult (*)(const char*, void**, int, cuuint64_t, CUdriverProcAddressQueryResult*);

static int exercise(const char* path, MemAlloc alloc, MemFree release, MemsetD8 set, size_t bytes) {
  if (alloc == nullptr || release == nullptr || set == nullptr) {
    std::printf("%s: entry point missing\n", path);
    return 1;
  }
  CUdeviceptr p = 0;
  if (alloc(&p, bytes) != CUDA_SUCCESS || set(p, 0x11, bytes) != CUDA_SUCCESS || cudaDeviceSynchronize() != cudaSuccess ||
      release(p) != CUDA_SUCCESS) {
    std::printf("%s: driver call failed\n", path);
    return 1;
  }
  std::printf("%s: allocated, set and freed %zu bytes at 0x%llx\n", path, bytes, static_cast<unsigned long long>(p));
  return 0;
}

int main() {
  if (cudaFree(nullptr) != cudaSuccess) return 1;  // the runtime creates the primary context
  void* h = dlopen("libcuda.so.1", RTLD_NOW);
  if (h == nullptr) return 1;
  int failures = 0;
  failures += exercise("dlsym", reinterpret_cast<MemAlloc>(dlsym(h, "cuMemAlloc_v2")),
                       reinterpret_cast<MemFree>(dlsym(h, "cuMemFree_v2")),
                       reinterpret_cast<MemsetD8>(dlsym(h, "cuMemsetD8_v2")), 3u << 20);

  auto get_proc = reinterpret_cast<GetProc>(dlsym(h, "cuGetProcAddress_v2"));
  void *a = nullptr, *f = nullptr, *s = nullptr;
  CUdriverProcAddressQueryResult status{};
  if (get_proc == nullptr || get_proc("cuMemAlloc", &a, 13000, CU_GET_PROC_ADDRESS_DEFAULT, &status) != CUDA_SUCCESS ||
      get_proc("cuMemFree", &f, 13000, CU_GET_PROC_ADDRESS_DEFAULT, &status) != CUDA_SUCCESS ||
      get_proc("cuMemsetD8", &s, 13000, CU_GET_PROC_ADDRESS_DEFAULT, &status) != CUDA_SUCCESS) {
    std::printf("cuGetProcAddress failed\n");
    return 1;
  }
  failures += exercise("cuGetProcAddress", reinterpret_cast<MemAlloc>(a), reinterpret_cast<MemFree>(f),
                       reinterpret_cast<MemsetD8>(s), 5u << 20);

  cudaDriverEntryPointQueryResult query{};
  if (cudaGetDriverEntryPoint("cuMemAlloc", &a, cudaEnableDefault, &query) != cudaSuccess ||
      cudaGetDriverEntryPoint("cuMemFree", &f, cudaEnableDefault, &query) != cudaSuccess ||
      cudaGetDriverEntryPoint("cuMemsetD8", &s, cudaEnableDefault, &query) != cudaSuccess) {
    std::printf("cudaGetDriverEntryPoint failed\n");
    return 1;
  }
  failures += exercise("cudaGetDriverEntryPoint", reinterpret_cast<MemAlloc>(a), reinterpret_cast<MemFree>(f),
                       reinterpret_cast<MemsetD8>(s), 7u << 20);
  std::printf("%s\n", failures == 0 ? "PASS" : "FAIL");
  return failures == 0 ? 0 : 1;
}
