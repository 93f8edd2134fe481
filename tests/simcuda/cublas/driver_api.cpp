// The simulated cuBLAS's only way to the driver: dlopen + cuGetProcAddress_v2.
// See Note [How cuBLAS reaches the driver] in driver_api.h.
#include "driver_api.h"

#include <dlfcn.h>

#include <mutex>

namespace simcublas {
namespace {

constexpr int kBuiltForCudaVersion = 13000;  // what the real libcublas.so.13 asks for

// Fills `api`; false when the driver or any entry point is missing.
bool resolve(DriverApi& api) {
  // RTLD_GLOBAL like the real runtime: later dlopen()s of libcuda see the same instance.
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
  if (lib == nullptr) return false;
  auto get_proc = reinterpret_cast<decltype(&::cuGetProcAddress_v2)>(dlsym(lib, "cuGetProcAddress_v2"));
  if (get_proc == nullptr) return false;
  bool complete = true;
#define SIMCUBLAS_RESOLVE(name)                                                                    \
  {                                                                                                \
    void* fn = nullptr;                                                                            \
    CUdriverProcAddressQueryResult status{};                                                       \
    if (get_proc(#name, &fn, kBuiltForCudaVersion, CU_GET_PROC_ADDRESS_DEFAULT, &status) == CUDA_SUCCESS) \
      api.name = reinterpret_cast<decltype(api.name)>(fn);                                         \
    complete = complete && api.name != nullptr;                                                    \
  }
  SIMCUBLAS_DRIVER_FUNCTIONS(SIMCUBLAS_RESOLVE)
#undef SIMCUBLAS_RESOLVE
  return complete;
}

}  // namespace

const DriverApi* driver() {
  static const DriverApi* loaded = [] {
    static DriverApi api;
    if (!resolve(api)) return static_cast<const DriverApi*>(nullptr);
    // The runtime inside cuBLAS initialises the driver before anything else.
    if (api.cuInit(0) != CUDA_SUCCESS) return static_cast<const DriverApi*>(nullptr);
    return static_cast<const DriverApi*>(&api);
  }();
  return loaded;
}

CUresult bind_context(const DriverApi& api, CUcontext* out) {
  CUcontext current = nullptr;
  if (CUresult r = api.cuCtxGetCurrent(&current); r != CUDA_SUCCESS) return r;
  if (current == nullptr) {
    // Retain the primary context once per process (as the runtime does), then only bind it.
    static std::mutex mutex;
    static CUcontext primary = nullptr;
    std::lock_guard lock(mutex);
    if (primary == nullptr) {
      CUdevice device = 0;
      if (CUresult r = api.cuDeviceGet(&device, 0); r != CUDA_SUCCESS) return r;
      if (CUresult r = api.cuDevicePrimaryCtxRetain(&primary, device); r != CUDA_SUCCESS) return r;
    }
    if (CUresult r = api.cuCtxSetCurrent(primary); r != CUDA_SUCCESS) return r;
    current = primary;
  }
  *out = current;
  return CUDA_SUCCESS;
}

}  // namespace simcublas
