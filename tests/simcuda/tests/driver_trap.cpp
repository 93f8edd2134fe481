// Preloaded into a program to prove that the simulated runtime never binds a
// driver function by symbol: if it did, these definitions (which come first in
// the global lookup order) would be called and abort the program. The
// runtime's cuGetProcAddress path resolves inside libcuda.so.1 and never sees them.
#include <cstdio>
#include <cstdlib>

#define TRAP(name)                                                                           \
  extern "C" __attribute__((visibility("default"))) int name() {                             \
    std::fprintf(stderr, "driver_trap: %s was bound by symbol, not via cuGetProcAddress\n", #name); \
    std::abort();                                                                            \
  }

TRAP(cuInit)
TRAP(cuMemAlloc_v2)
TRAP(cuMemFree_v2)
TRAP(cuMemcpyHtoD_v2)
TRAP(cuMemcpyDtoH_v2)
TRAP(cuMemcpyAsync)
TRAP(cuMemHostAlloc)
TRAP(cuLaunchKernel)
TRAP(cuStreamCreate)
TRAP(cuStreamSynchronize)
TRAP(cuEventRecord)
TRAP(cuStreamWaitEvent)
TRAP(cuCtxSynchronize)
TRAP(cuModuleLoadData)
