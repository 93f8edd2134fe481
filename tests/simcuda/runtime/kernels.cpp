// kernels.cpp — nvcc's registration entry points, simcudaRegisterTwin and module loading.
// See Note [Kernels on the simulated GPU] in kernels.h.
#include "kernels.h"

#include <cstdio>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "simcuda/image.h"

namespace simcudart {
namespace {

struct KernelRecord {
  void** fatbin = nullptr;              // the __cudaRegisterFatBinary handle it came with
  const char* device_name = nullptr;    // from __cudaRegisterFunction; lives in the program image
  const simcuda_kernel_desc* twin = nullptr;
  bool reported_missing = false;
  // Filled by the first launch. `image` and `loaded` are what the driver was handed, so the
  // record is never freed once a module exists (modules live until the process exits).
  simcuda_kernel_desc loaded{};
  simcuda_image image{};
  CUfunction function = nullptr;
};

struct KernelRegistry {
  std::mutex mutex;
  std::unordered_map<const void*, KernelRecord*> by_host_fun;
  // Every CUfunction we loaded: since CUDA 12 cudaLaunchKernel and friends also accept the
  // cudaKernel_t that cudaGetKernel returned in place of a host stub address.
  std::unordered_set<const void*> loaded_functions;
};

// Leaked on purpose: nvcc registers from static constructors and unregisters from atexit,
// possibly before our constructors or after our destructors.
KernelRegistry& registry() {
  static KernelRegistry* r = new KernelRegistry;
  return *r;
}

KernelRecord& record_for(KernelRegistry& r, const void* host_fun) {
  KernelRecord*& slot = r.by_host_fun[host_fun];
  if (slot == nullptr) slot = new KernelRecord;
  return *slot;
}

void report_missing_twin(KernelRecord& k, const void* host_fun) {
  if (k.reported_missing) return;
  k.reported_missing = true;
  if (k.device_name != nullptr) {
    std::fprintf(stderr, "simcuda: no CPU twin registered for kernel %s\n", k.device_name);
  } else {
    std::fprintf(stderr, "simcuda: no CPU twin registered for kernel at host address %p\n", host_fun);
  }
}

// Builds the one-kernel image for `k` and loads it. Called with the registry lock held.
cudaError_t load_kernel(const DriverApi& api, KernelRecord& k) {
  if (api.cuModuleLoadData == nullptr || api.cuModuleGetFunction == nullptr) return cudaErrorNotSupported;
  k.loaded = *k.twin;
  if (k.device_name != nullptr) k.loaded.name = k.device_name;
  k.image = simcuda_image{SIMCUDA_IMAGE_MAGIC, SIMCUDA_IMAGE_VERSION, 1, &k.loaded};
  CUmodule module = nullptr;
  if (CUresult r = api.cuModuleLoadData(&module, &k.image); r != CUDA_SUCCESS) return to_cuda_error(r);
  CUfunction fn = nullptr;
  if (CUresult r = api.cuModuleGetFunction(&fn, module, k.loaded.name); r != CUDA_SUCCESS) {
    // The image holds exactly this kernel, so "not found" means the driver disagrees with the
    // image format: report it as the real runtime reports an unusable kernel image.
    return r == CUDA_ERROR_NOT_FOUND ? cudaErrorInvalidDeviceFunction : to_cuda_error(r);
  }
  k.function = fn;
  return cudaSuccess;
}

}  // namespace

cudaError_t kernel_function(const DriverApi& api, const void* host_fun, CUfunction* out) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (r.loaded_functions.count(host_fun) != 0) {
    *out = reinterpret_cast<CUfunction>(const_cast<void*>(host_fun));
    return cudaSuccess;
  }
  KernelRecord& k = record_for(r, host_fun);
  if (k.function == nullptr) {
    if (k.twin == nullptr) {
      report_missing_twin(k, host_fun);
      return cudaErrorInvalidDeviceFunction;
    }
    if (cudaError_t err = load_kernel(api, k); err != cudaSuccess) return err;
    r.loaded_functions.insert(k.function);
  }
  *out = k.function;
  return cudaSuccess;
}

const char* kernel_name(const void* host_fun) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.by_host_fun.find(host_fun);
  if (it == r.by_host_fun.end()) return nullptr;
  const KernelRecord& k = *it->second;
  if (k.device_name != nullptr) return k.device_name;
  return k.twin != nullptr ? k.twin->name : nullptr;
}

}  // namespace simcudart

using namespace simcudart;

// --- simulated-runtime extension (simcuda/image.h) ------------------------------------------
SIMCUDART_EXPORT void simcudaRegisterTwin(const void* host_fun, const simcuda_kernel_desc* desc) {
  if (host_fun == nullptr || desc == nullptr) return;
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  KernelRecord& k = record_for(r, host_fun);
  if (k.function != nullptr && k.twin != desc) {
    std::fprintf(stderr, "simcuda: twin for kernel %s registered after its first launch; ignored\n",
                 k.loaded.name);
    return;
  }
  k.twin = desc;
}

// --- nvcc registration (crt/host_runtime.h) --------------------------------------------------
// The fatbin itself holds device code we cannot run; we only need a unique handle per module
// so that __cudaUnregisterFatBinary can drop that module's kernels.
SIMCUDART_EXPORT void** __cudaRegisterFatBinary(void* fat_cubin) { return new void*(fat_cubin); }

SIMCUDART_EXPORT void __cudaRegisterFatBinaryEnd(void** /*fatbin*/) {}

// Runs from nvcc's atexit handler (or dlclose of a CUDA library). It must not call the driver:
// by then libcuda's own destructors may have run. Unlinking the module's kernels matters for
// dlclose, where a later library may reuse the same host addresses.
SIMCUDART_EXPORT void __cudaUnregisterFatBinary(void** fatbin) {
  if (fatbin == nullptr) return;
  auto& r = registry();
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    for (auto it = r.by_host_fun.begin(); it != r.by_host_fun.end();) {
      KernelRecord* k = it->second;
      if (k->fatbin != fatbin) {
        ++it;
        continue;
      }
      if (k->function == nullptr) delete k;  // else the driver may still hold k->image
      it = r.by_host_fun.erase(it);
    }
  }
  delete fatbin;
}

SIMCUDART_EXPORT void __cudaRegisterFunction(void** fatbin, const char* host_fun, char* /*device_fun*/,
                                             const char* device_name, int /*thread_limit*/, uint3* /*tid*/,
                                             uint3* /*bid*/, dim3* /*block_dim*/, dim3* /*grid_dim*/,
                                             int* /*warp_size*/) {
  if (host_fun == nullptr) return;
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  KernelRecord& k = record_for(r, host_fun);
  k.fatbin = fatbin;
  k.device_name = device_name;
}

// __device__ / __constant__ / __managed__ variables live in device code, which never runs here
// (twins are host code), so there is nothing to bind them to.
SIMCUDART_EXPORT void __cudaRegisterVar(void** /*fatbin*/, char* /*host_var*/, char* /*device_address*/,
                                        const char* /*device_name*/, int /*ext*/, size_t /*size*/,
                                        int /*constant*/, int /*global*/) {}

SIMCUDART_EXPORT void __cudaRegisterManagedVar(void** /*fatbin*/, void** /*host_var_ptr_address*/,
                                               char* /*device_address*/, const char* /*device_name*/,
                                               int /*ext*/, size_t /*size*/, int /*constant*/, int /*global*/) {}

// Called for modules with managed variables; "initialised" is the only honest answer since
// there is no per-module device state to set up.
SIMCUDART_EXPORT char __cudaInitModule(void** /*fatbin*/) { return 1; }
