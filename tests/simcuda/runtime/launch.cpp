// launch.cpp — kernel launches: nvcc's <<<>>> path, cudaLaunchKernel and function queries.
//
// How nvcc (CUDA 13, crt/host_runtime.h) compiles `k<<<g, b, s, st>>>(args)`:
//   __cudaPushCallConfiguration(g, b, s, st);         // at the call site
//   k(args) -> host stub:
//     static cudaKernel_t h; static bool once = __cudaGetKernel(&h, k) == cudaSuccess;
//     __cudaPopCallConfiguration(&g, &b, &s, &st);
//     __cudaLaunchKernel(h, g, b, argv, s, st);       // _ptsz with --default-stream per-thread
// The stub ignores __cudaGetKernel's result, so a kernel without a twin reaches
// __cudaLaunchKernel with a null handle; that launch fails and sets the last error.
#include <climits>
#include <cstring>
#include <vector>

#include "kernels.h"

namespace simcudart {
namespace {

struct CallConfiguration {
  dim3 grid;
  dim3 block;
  size_t shared_bytes;
  cudaStream_t stream;
};

// Pushed by the call site, popped by the stub; nests when an argument expression itself
// launches a kernel. Cost: amortised no allocation after the thread's first launch.
thread_local std::vector<CallConfiguration> t_call_configurations;

cudaError_t launch(StreamMode mode, CUfunction fn, dim3 grid, dim3 block, void** args, size_t shared_bytes,
                   cudaStream_t stream) {
  Entered e = enter(mode);
  if (e.error != cudaSuccess) return e.error;
  if (fn == nullptr) return cudaErrorInvalidDeviceFunction;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || block.x == 0 || block.y == 0 || block.z == 0) {
    return cudaErrorInvalidConfiguration;
  }
  if (shared_bytes > UINT_MAX) return cudaErrorInvalidValue;
  if (e.api->cuLaunchKernel == nullptr) return cudaErrorNotSupported;
  CUresult r = e.api->cuLaunchKernel(fn, grid.x, grid.y, grid.z, block.x, block.y, block.z,
                                     static_cast<unsigned int>(shared_bytes), stream, args, nullptr);
  // The runtime reports a geometry the device rejects (too many threads per block, grid too
  // large) as a configuration error, not as a bad argument.
  return r == CUDA_ERROR_INVALID_VALUE ? cudaErrorInvalidConfiguration : to_cuda_error(r);
}

cudaError_t launch_host_fun(StreamMode mode, const void* host_fun, dim3 grid, dim3 block, void** args,
                            size_t shared_bytes, cudaStream_t stream) {
  Entered e = enter(mode);
  if (e.error != cudaSuccess) return e.error;
  CUfunction fn = nullptr;
  if (cudaError_t err = kernel_function(*e.api, host_fun, &fn); err != cudaSuccess) return err;
  return launch(mode, fn, grid, block, args, shared_bytes, stream);
}

cudaError_t get_kernel(cudaKernel_t* kernel, const void* host_fun) {
  if (kernel == nullptr) return cudaErrorInvalidValue;
  *kernel = nullptr;
  Entered e = enter();
  if (e.error != cudaSuccess) return e.error;
  CUfunction fn = nullptr;
  if (cudaError_t err = kernel_function(*e.api, host_fun, &fn); err != cudaSuccess) return err;
  *kernel = reinterpret_cast<cudaKernel_t>(fn);
  return cudaSuccess;
}

struct FuncAttributeField {
  CUfunction_attribute attribute;
  std::size_t offset;  // of an int field in cudaFuncAttributes, or a size_t one if is_size
  bool is_size;
};

#define SIMCUDART_FUNC_FIELD(field, attr, is_size) \
  FuncAttributeField{CU_FUNC_ATTRIBUTE_##attr, offsetof(cudaFuncAttributes, field), is_size}
constexpr FuncAttributeField kFuncAttributeFields[] = {
    SIMCUDART_FUNC_FIELD(sharedSizeBytes, SHARED_SIZE_BYTES, true),
    SIMCUDART_FUNC_FIELD(constSizeBytes, CONST_SIZE_BYTES, true),
    SIMCUDART_FUNC_FIELD(localSizeBytes, LOCAL_SIZE_BYTES, true),
    SIMCUDART_FUNC_FIELD(maxThreadsPerBlock, MAX_THREADS_PER_BLOCK, false),
    SIMCUDART_FUNC_FIELD(numRegs, NUM_REGS, false),
    SIMCUDART_FUNC_FIELD(ptxVersion, PTX_VERSION, false),
    SIMCUDART_FUNC_FIELD(binaryVersion, BINARY_VERSION, false),
    SIMCUDART_FUNC_FIELD(cacheModeCA, CACHE_MODE_CA, false),
    SIMCUDART_FUNC_FIELD(maxDynamicSharedSizeBytes, MAX_DYNAMIC_SHARED_SIZE_BYTES, false),
    SIMCUDART_FUNC_FIELD(preferredShmemCarveout, PREFERRED_SHARED_MEMORY_CARVEOUT, false),
};
#undef SIMCUDART_FUNC_FIELD

// Minimal: whatever the driver reports for the loaded twin, over defaults that let ordinary
// occupancy arithmetic proceed (1024 threads per block, no registers or static shared memory).
cudaError_t func_get_attributes(cudaFuncAttributes* attr, const void* host_fun) {
  if (attr == nullptr) return cudaErrorInvalidValue;
  Entered e = enter();
  if (e.error != cudaSuccess) return e.error;
  CUfunction fn = nullptr;
  if (cudaError_t err = kernel_function(*e.api, host_fun, &fn); err != cudaSuccess) return err;
  std::memset(attr, 0, sizeof *attr);
  attr->maxThreadsPerBlock = 1024;
  if (e.api->cuFuncGetAttribute == nullptr) return cudaSuccess;
  for (const auto& f : kFuncAttributeFields) {
    int value = 0;
    if (e.api->cuFuncGetAttribute(&value, f.attribute, fn) != CUDA_SUCCESS) continue;
    auto* at = reinterpret_cast<unsigned char*>(attr) + f.offset;
    if (f.is_size) {
      auto v = static_cast<size_t>(static_cast<unsigned int>(value));
      std::memcpy(at, &v, sizeof v);
    } else {
      std::memcpy(at, &value, sizeof value);
    }
  }
  return cudaSuccess;
}

cudaError_t func_set_attribute(const void* host_fun, cudaFuncAttribute attr, int value) {
  Entered e = enter();
  if (e.error != cudaSuccess) return e.error;
  CUfunction fn = nullptr;
  if (cudaError_t err = kernel_function(*e.api, host_fun, &fn); err != cudaSuccess) return err;
  // cudaFuncAttribute values are the CUfunction_attribute values of the settable attributes.
  static_assert(int(cudaFuncAttributeMaxDynamicSharedMemorySize) ==
                int(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES));
  static_assert(int(cudaFuncAttributePreferredSharedMemoryCarveout) ==
                int(CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT));
  return call(e.api->cuFuncSetAttribute, fn, static_cast<CUfunction_attribute>(attr), value);
}

}  // namespace
}  // namespace simcudart

using namespace simcudart;

// --- nvcc's launch path (crt/device_functions.h, crt/host_runtime.h) -------------------------
SIMCUDART_EXPORT unsigned __cudaPushCallConfiguration(dim3 grid, dim3 block, size_t shared_bytes,
                                                      struct CUstream_st* stream) {
  t_call_configurations.push_back(CallConfiguration{grid, block, shared_bytes, stream});
  return 0;
}

SIMCUDART_EXPORT cudaError_t __cudaPopCallConfiguration(dim3* grid, dim3* block, size_t* shared_bytes,
                                                        void* stream) {
  if (t_call_configurations.empty()) return cudaErrorMissingConfiguration;
  CallConfiguration c = t_call_configurations.back();
  t_call_configurations.pop_back();
  *grid = c.grid;
  *block = c.block;
  *shared_bytes = c.shared_bytes;
  *static_cast<cudaStream_t*>(stream) = c.stream;
  return cudaSuccess;
}

SIMCUDART_EXPORT cudaError_t __cudaGetKernel(cudaKernel_t* kernel, const void* host_fun) {
  return record(get_kernel(kernel, host_fun));
}

SIMCUDART_EXPORT cudaError_t __cudaLaunchKernel(cudaKernel_t kernel, dim3 grid, dim3 block, void** args,
                                                size_t shared_bytes, cudaStream_t stream) {
  return record(launch(StreamMode::legacy, reinterpret_cast<CUfunction>(kernel), grid, block, args, shared_bytes,
                       stream));
}

SIMCUDART_EXPORT cudaError_t __cudaLaunchKernel_ptsz(cudaKernel_t kernel, dim3 grid, dim3 block, void** args,
                                                     size_t shared_bytes, cudaStream_t stream) {
  return record(launch(StreamMode::per_thread, reinterpret_cast<CUfunction>(kernel), grid, block, args,
                       shared_bytes, stream));
}

// --- public launch API -----------------------------------------------------------------------
SIMCUDART_EXPORT cudaError_t cudaLaunchKernel(const void* func, dim3 grid, dim3 block, void** args,
                                              size_t shared_bytes, cudaStream_t stream) {
  return record(launch_host_fun(StreamMode::legacy, func, grid, block, args, shared_bytes, stream));
}

SIMCUDART_EXPORT cudaError_t cudaLaunchKernel_ptsz(const void* func, dim3 grid, dim3 block, void** args,
                                                   size_t shared_bytes, cudaStream_t stream) {
  return record(launch_host_fun(StreamMode::per_thread, func, grid, block, args, shared_bytes, stream));
}

SIMCUDART_EXPORT cudaError_t cudaGetKernel(cudaKernel_t* kernel, const void* entry_func_addr) {
  return record(get_kernel(kernel, entry_func_addr));
}

SIMCUDART_EXPORT cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, const void* func) {
  return record(func_get_attributes(attr, func));
}

SIMCUDART_EXPORT cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  return record(func_set_attribute(func, attr, value));
}

SIMCUDART_EXPORT cudaError_t cudaFuncGetName(const char** name, const void* func) {
  if (name == nullptr) return record(cudaErrorInvalidValue);
  *name = kernel_name(func);
  return *name != nullptr ? cudaSuccess : record(cudaErrorInvalidDeviceFunction);
}
