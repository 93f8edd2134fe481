// driver.cpp — dlopen + cuGetProcAddress_v2, the module of our kernels, and the launch.
// See Note [How cuDNN reaches the driver] in driver.h.
#include "driver.h"

#include <dlfcn.h>

#include <cblas.h>

#include <mutex>

#include "simcudnn.h"

namespace simcudnn {
namespace {

// Every driver entry point we use, declared once. In the X-macro, #name is the base name we ask
// for, while decltype(&::name) expands cuda.h's versioning macros to the matching _v2 type.
#define SIMCUDNN_DRIVER_FUNCTIONS(X) \
  X(cuInit)                          \
  X(cuDeviceGet)                     \
  X(cuDevicePrimaryCtxRetain)        \
  X(cuCtxGetCurrent)                 \
  X(cuCtxSetCurrent)                 \
  X(cuCtxSynchronize)                \
  X(cuModuleLoadData)                \
  X(cuModuleGetFunction)             \
  X(cuLaunchKernel)

struct Driver {
#define SIMCUDNN_DRIVER_FIELD(name) decltype(&::name) name = nullptr;
  SIMCUDNN_DRIVER_FUNCTIONS(SIMCUDNN_DRIVER_FIELD)
#undef SIMCUDNN_DRIVER_FIELD
  bool usable = false;
};

constexpr int kBuiltForCudaVersion = 13000;

struct State {
  std::once_flag driver_once;
  Driver driver;
  std::mutex module_mutex;  // guards the fields below
  bool module_loaded = false;
  CUfunction functions[static_cast<int>(KernelId::count)] = {};
};

State& state() {
  static State* s = new State;  // never destroyed: kernels may still run during exit
  return *s;
}

void load_driver(Driver& d) {
  void* handle = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
  if (handle == nullptr) return;
  auto get_proc = reinterpret_cast<decltype(&::cuGetProcAddress_v2)>(dlsym(handle, "cuGetProcAddress_v2"));
  if (get_proc == nullptr) return;
  bool complete = true;
  auto lookup = [&](const char* name) -> void* {
    void* fn = nullptr;
    CUdriverProcAddressQueryResult found{};
    if (get_proc(name, &fn, kBuiltForCudaVersion, CU_GET_PROC_ADDRESS_DEFAULT, &found) != CUDA_SUCCESS ||
        found != CU_GET_PROC_ADDRESS_SUCCESS || fn == nullptr) {
      complete = false;
      return nullptr;
    }
    return fn;
  };
#define SIMCUDNN_DRIVER_RESOLVE(name) d.name = reinterpret_cast<decltype(d.name)>(lookup(#name));
  SIMCUDNN_DRIVER_FUNCTIONS(SIMCUDNN_DRIVER_RESOLVE)
#undef SIMCUDNN_DRIVER_RESOLVE
  d.usable = complete && d.cuInit(0) == CUDA_SUCCESS;
  // Note [Deterministic GEMM]: OpenBLAS splits a GEMM across threads by size and thread count,
  // which changes the summation order; one thread keeps every result a function of the inputs.
  openblas_set_num_threads(1);
}

// Binds the primary context of device 0 when this thread has no current context, as the
// runtime cuDNN carries would before its first driver call.
bool bind_context(const Driver& d) {
  CUcontext current = nullptr;
  if (d.cuCtxGetCurrent(&current) == CUDA_SUCCESS && current != nullptr) return true;
  CUdevice device = 0;
  CUcontext primary = nullptr;
  return d.cuDeviceGet(&device, 0) == CUDA_SUCCESS && d.cuDevicePrimaryCtxRetain(&primary, device) == CUDA_SUCCESS &&
         d.cuCtxSetCurrent(primary) == CUDA_SUCCESS;
}

}  // namespace

cudnnStatus_t ensure_loaded() {
  State& s = state();
  std::call_once(s.driver_once, [&] { load_driver(s.driver); });
  const Driver& d = s.driver;
  if (!d.usable || !bind_context(d)) return CUDNN_STATUS_NOT_INITIALIZED;
  std::lock_guard lock(s.module_mutex);
  if (s.module_loaded) return CUDNN_STATUS_SUCCESS;
  CUmodule module = nullptr;
  if (d.cuModuleLoadData(&module, &kernel_image()) != CUDA_SUCCESS) return CUDNN_STATUS_NOT_INITIALIZED;
  for (int i = 0; i < static_cast<int>(KernelId::count); ++i)
    if (d.cuModuleGetFunction(&s.functions[i], module, kernel_name(static_cast<KernelId>(i))) != CUDA_SUCCESS)
      return CUDNN_STATUS_NOT_INITIALIZED;
  s.module_loaded = true;  // the module stays loaded for the life of the process, like cuDNN's
  return CUDNN_STATUS_SUCCESS;
}

// Cost: one call_once check, one mutex round trip (to read the function safely) and the launch.
cudnnStatus_t launch_raw(KernelId id, CUstream stream, void** args) {
  State& s = state();
  CUfunction fn = nullptr;
  {
    std::lock_guard lock(s.module_mutex);
    if (!s.module_loaded) return CUDNN_STATUS_NOT_INITIALIZED;  // no handle was ever created
    fn = s.functions[static_cast<int>(id)];
  }
  const Driver& d = s.driver;
  // A handle may be used from a thread other than the one that created it.
  if (!bind_context(d)) return CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER;
  if (d.cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, stream, args, nullptr) != CUDA_SUCCESS)
    return CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER;
  return CUDNN_STATUS_SUCCESS;
}

void synchronize_context() {
  State& s = state();
  if (s.driver.usable) s.driver.cuCtxSynchronize();
}

}  // namespace simcudnn
