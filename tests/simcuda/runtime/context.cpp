// context.cpp — loading the driver, process init and per-thread context binding.
// See Note [How the runtime reaches the driver] (driver_table.h) and Note [Runtime init] (runtime.h).
#include <dlfcn.h>

#include <cstdio>
#include <mutex>
#include <vector>

#include "runtime.h"

namespace simcudart {
namespace {

constexpr int kRuntimeCudaVersion = CUDART_VERSION;  // 13000: the version we ask the driver for

struct Process {
  cudaError_t init_error = cudaErrorInitializationError;
  decltype(&::cuGetProcAddress_v2) get_proc_address = nullptr;
  DriverApi legacy;
  DriverApi per_thread;  // resolved on the first _ptsz/_ptds call
  int driver_version = 0;
  int device_count = 0;
  std::mutex primary_mutex;
  std::vector<CUcontext> primary;  // one retained primary context per device, never released
};

// Leaked on purpose: nvcc's atexit handlers (__cudaUnregisterFatBinary) and other libraries'
// destructors may call into us after our own static destructors would have run.
Process& process() {
  static Process* p = new Process;
  return *p;
}

std::once_flag g_process_once;
std::once_flag g_per_thread_once;

thread_local int t_current_device = 0;
thread_local int t_bound_device = -1;  // device whose primary context this thread has current

enum class Need { required, optional };
constexpr Need required = Need::required;
constexpr Need optional = Need::optional;

// Resolves every table entry with `flags`; returns false if a required one is missing.
// `report` names missing required entries on stderr: a simulated driver under construction
// otherwise fails as a bare "insufficient driver".
bool resolve(DriverApi& api, cuuint64_t flags, bool report) {
  auto& p = process();
  bool complete = true;
  auto lookup = [&](const char* name, Need need) -> void* {
    void* fn = nullptr;
    CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    if (p.get_proc_address(name, &fn, kRuntimeCudaVersion, flags, &status) != CUDA_SUCCESS ||
        status != CU_GET_PROC_ADDRESS_SUCCESS) {
      fn = nullptr;
    }
    if (fn == nullptr && need == Need::required) {
      if (report) std::fprintf(stderr, "simcuda: libcudart: the driver lacks required entry point %s\n", name);
      complete = false;
    }
    return fn;
  };
#define SIMCUDART_RESOLVE(name, need) api.name = reinterpret_cast<decltype(api.name)>(lookup(#name, need));
  SIMCUDART_DRIVER_FUNCTIONS(SIMCUDART_RESOLVE)
#undef SIMCUDART_RESOLVE
  return complete;
}

void init_process() {
  auto& p = process();
  // Like the real runtime: a missing or unusable driver is "insufficient driver" (35).
  void* handle = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
  if (handle == nullptr) {
    p.init_error = cudaErrorInsufficientDriver;
    return;
  }
  p.get_proc_address = reinterpret_cast<decltype(p.get_proc_address)>(dlsym(handle, "cuGetProcAddress_v2"));
  if (p.get_proc_address == nullptr || !resolve(p.legacy, CU_GET_PROC_ADDRESS_DEFAULT, true)) {
    p.init_error = cudaErrorInsufficientDriver;
    return;
  }
  if (p.legacy.cuDriverGetVersion(&p.driver_version) != CUDA_SUCCESS) p.driver_version = 0;
  if (p.driver_version < kRuntimeCudaVersion) {
    p.init_error = cudaErrorInsufficientDriver;
    return;
  }
  if (CUresult r = p.legacy.cuInit(0); r != CUDA_SUCCESS) {
    p.init_error = to_cuda_error(r);
    return;
  }
  if (CUresult r = p.legacy.cuDeviceGetCount(&p.device_count); r != CUDA_SUCCESS) {
    p.init_error = to_cuda_error(r);
    return;
  }
  if (p.device_count <= 0) {
    p.init_error = cudaErrorNoDevice;
    return;
  }
  p.primary.assign(static_cast<size_t>(p.device_count), nullptr);
  p.init_error = cudaSuccess;
}

// The per-thread table: entry points without a _ptsz/_ptds variant come back as the default
// one from the real driver; if the simulated driver does not answer the per-thread query for
// a name at all we fall back to the legacy entry rather than fail the call.
void init_per_thread() {
  auto& p = process();
  resolve(p.per_thread, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, false);
#define SIMCUDART_FALLBACK(name, need) \
  if (p.per_thread.name == nullptr) p.per_thread.name = p.legacy.name;
  SIMCUDART_DRIVER_FUNCTIONS(SIMCUDART_FALLBACK)
#undef SIMCUDART_FALLBACK
}

// Makes `device`'s primary context current on this thread, retaining it on first use.
cudaError_t bind_thread(int device) {
  auto& p = process();
  CUcontext ctx = nullptr;
  {
    std::lock_guard<std::mutex> lock(p.primary_mutex);
    auto& slot = p.primary[static_cast<size_t>(device)];
    if (slot == nullptr) {
      CUdevice dev = 0;
      if (CUresult r = p.legacy.cuDeviceGet(&dev, device); r != CUDA_SUCCESS) return to_cuda_error(r);
      if (CUresult r = p.legacy.cuDevicePrimaryCtxRetain(&slot, dev); r != CUDA_SUCCESS) {
        slot = nullptr;
        return to_cuda_error(r);
      }
    }
    ctx = slot;
  }
  if (CUresult r = p.legacy.cuCtxSetCurrent(ctx); r != CUDA_SUCCESS) return to_cuda_error(r);
  t_bound_device = device;
  return cudaSuccess;
}

}  // namespace

Entered enter_driver() {
  std::call_once(g_process_once, init_process);
  auto& p = process();
  return {p.init_error, p.init_error == cudaSuccess ? &p.legacy : nullptr};
}

Entered enter(StreamMode mode) {
  Entered e = enter_driver();
  if (e.error != cudaSuccess) return e;
  if (t_bound_device != t_current_device) {
    if (cudaError_t err = bind_thread(t_current_device); err != cudaSuccess) return {err, nullptr};
  }
  if (mode == StreamMode::per_thread) {
    std::call_once(g_per_thread_once, init_per_thread);
    return {cudaSuccess, &process().per_thread};
  }
  return e;
}

decltype(&::cuGetProcAddress_v2) driver_get_proc_address() { return process().get_proc_address; }

int loaded_driver_version() { return process().driver_version; }

int device_count() { return process().device_count; }

int current_device() { return t_current_device; }

cudaError_t set_current_device(int device) {
  Entered e = enter_driver();
  if (e.error != cudaSuccess) return e.error;
  if (device < 0 || device >= process().device_count) return cudaErrorInvalidDevice;
  t_current_device = device;
  // CUDA 12+: cudaSetDevice initialises the device's primary context right away.
  return bind_thread(device);
}

}  // namespace simcudart
