// Simulated driver: modules, functions and kernel launches.
// See Note [Simulated kernels] in simcuda/image.h.
#include <cstring>
#include <string>
#include <unordered_map>

#include "driver.h"
#include "simcuda/image.h"

namespace simcuda::driver {
namespace {

struct Function {
  const simcuda_kernel_desc* desc;
  std::uint32_t param_bytes;  // end of the last parameter
  std::unordered_map<int, int> attributes;
};

struct Module {
  const simcuda_image* image;
  std::unordered_map<std::string, std::unique_ptr<Function>> functions;
};

struct Modules {
  std::mutex mutex;
  std::unordered_map<Module*, std::unique_ptr<Module>> modules;
  std::unordered_map<Function*, Module*> functions;  // every handed-out CUfunction
};

Modules& modules() {
  static Modules* m = new Modules;
  return *m;
}

Function* find_function(CUfunction f) {
  Modules& m = modules();
  std::lock_guard lock(m.mutex);
  auto* fn = reinterpret_cast<Function*>(f);
  return m.functions.count(fn) ? fn : nullptr;
}

CUresult load(CUmodule* out, const void* image) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (out == nullptr || image == nullptr) return CUDA_ERROR_INVALID_VALUE;
  auto* img = static_cast<const simcuda_image*>(image);
  // Anything but a simulated image (a real cubin or fatbin) cannot run here.
  if (img->magic != SIMCUDA_IMAGE_MAGIC || img->version != SIMCUDA_IMAGE_VERSION) return CUDA_ERROR_INVALID_IMAGE;
  auto mod = std::make_unique<Module>();
  mod->image = img;
  Modules& m = modules();
  std::lock_guard lock(m.mutex);
  *out = reinterpret_cast<CUmodule>(mod.get());
  m.modules[mod.get()] = std::move(mod);
  return CUDA_SUCCESS;
}

CUresult launch_common(CUfunction f, const std::uint32_t grid[3], const std::uint32_t block[3], unsigned shared_bytes,
                       CUstream handle, void** params, void** extra, DefaultStream mode) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  Function* fn = find_function(f);
  if (fn == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  auto stream = resolve_stream(handle, mode);
  if (!stream) return CUDA_ERROR_INVALID_HANDLE;
  for (int i = 0; i < 3; ++i)
    if (grid[i] == 0 || block[i] == 0) return CUDA_ERROR_INVALID_VALUE;
  if (std::uint64_t{block[0]} * block[1] * block[2] > 1024 || block[2] > 64 || grid[1] > 65535 || grid[2] > 65535)
    return CUDA_ERROR_INVALID_VALUE;
  if (shared_bytes > 232448) return CUDA_ERROR_INVALID_VALUE;

  // Pack the parameters now: the caller's kernelParams point at its own stack.
  const simcuda_kernel_desc* desc = fn->desc;
  auto packed = std::make_shared<std::vector<unsigned char>>(fn->param_bytes);
  if (params != nullptr && extra != nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (params != nullptr) {
    for (std::uint32_t i = 0; i < desc->param_count; ++i) {
      if (params[i] == nullptr) return CUDA_ERROR_INVALID_VALUE;
      std::memcpy(packed->data() + desc->params[i].offset_bytes, params[i], desc->params[i].size_bytes);
    }
  } else if (extra != nullptr) {
    void* buffer = nullptr;
    std::size_t* size = nullptr;
    for (void** e = extra; *e != CU_LAUNCH_PARAM_END; e += 2) {
      if (*e == CU_LAUNCH_PARAM_BUFFER_POINTER) buffer = e[1];
      else if (*e == CU_LAUNCH_PARAM_BUFFER_SIZE) size = static_cast<std::size_t*>(e[1]);
      else return CUDA_ERROR_INVALID_VALUE;
    }
    if (buffer == nullptr || size == nullptr || *size < fn->param_bytes) return CUDA_ERROR_INVALID_VALUE;
    std::memcpy(packed->data(), buffer, fn->param_bytes);
  } else if (desc->param_count != 0) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  simcuda_launch launch{{grid[0], grid[1], grid[2]}, {block[0], block[1], block[2]}, shared_bytes, 0};
  simcuda_kernel_fn body = desc->body;
  enqueue(stream, [body, launch, packed] { body(&launch, packed->data()); });
  return CUDA_SUCCESS;
}

CUresult launch_ex(const CUlaunchConfig* config, CUfunction f, void** params, void** extra, DefaultStream mode) {
  if (config == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const std::uint32_t grid[3] = {config->gridDimX, config->gridDimY, config->gridDimZ};
  const std::uint32_t block[3] = {config->blockDimX, config->blockDimY, config->blockDimZ};
  return launch_common(f, grid, block, config->sharedMemBytes, config->hStream, params, extra, mode);
}

}  // namespace

CUresult launch_kernel(CUfunction f, const std::uint32_t grid[3], const std::uint32_t block[3], unsigned shared_bytes,
                       CUstream stream, void** params, void** extra, DefaultStream mode) {
  return launch_common(f, grid, block, shared_bytes, stream, params, extra, mode);
}

}  // namespace simcuda::driver

using namespace simcuda::driver;

SIMCU_EXPORT CUresult cuModuleLoadData(CUmodule* out, const void* image) { return load(out, image); }
SIMCU_EXPORT CUresult cuModuleLoadDataEx(CUmodule* out, const void* image, unsigned int, CUjit_option*, void**) {
  return load(out, image);
}
SIMCU_EXPORT CUresult cuModuleLoadFatBinary(CUmodule* out, const void* image) { return load(out, image); }

SIMCU_EXPORT CUresult cuModuleUnload(CUmodule module) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  Modules& m = modules();
  std::lock_guard lock(m.mutex);
  auto it = m.modules.find(reinterpret_cast<Module*>(module));
  if (it == m.modules.end()) return CUDA_ERROR_INVALID_HANDLE;
  // Queued launches hold the kernel body (static code) and their packed
  // parameters, so unloading cannot break work already in flight.
  for (auto& [name, fn] : it->second->functions) m.functions.erase(fn.get());
  m.modules.erase(it);
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuModuleGetFunction(CUfunction* out, CUmodule module, const char* name) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (out == nullptr || name == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Modules& m = modules();
  std::lock_guard lock(m.mutex);
  auto it = m.modules.find(reinterpret_cast<Module*>(module));
  if (it == m.modules.end()) return CUDA_ERROR_INVALID_HANDLE;
  Module& mod = *it->second;
  if (auto f = mod.functions.find(name); f != mod.functions.end()) {
    *out = reinterpret_cast<CUfunction>(f->second.get());
    return CUDA_SUCCESS;
  }
  for (std::uint32_t i = 0; i < mod.image->kernel_count; ++i) {
    const simcuda_kernel_desc& d = mod.image->kernels[i];
    if (std::strcmp(d.name, name) != 0) continue;
    std::uint32_t end = 0;
    for (std::uint32_t p = 0; p < d.param_count; ++p)
      end = std::max(end, d.params[p].offset_bytes + d.params[p].size_bytes);
    auto fn = std::make_unique<Function>(Function{&d, end, {}});
    m.functions[fn.get()] = &mod;
    *out = reinterpret_cast<CUfunction>(fn.get());
    mod.functions[name] = std::move(fn);
    return CUDA_SUCCESS;
  }
  return CUDA_ERROR_NOT_FOUND;
}

// Reports the kernel's real parameter layout; past the last parameter it fails,
// which is how callers find the count (DESIGN.md: "iterate until the call fails").
SIMCU_EXPORT CUresult cuFuncGetParamInfo(CUfunction f, size_t index, size_t* offset, size_t* size) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  Function* fn = find_function(f);
  if (fn == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  if (offset == nullptr || index >= fn->desc->param_count) return CUDA_ERROR_INVALID_VALUE;
  *offset = fn->desc->params[index].offset_bytes;
  if (size != nullptr) *size = fn->desc->params[index].size_bytes;
  return CUDA_SUCCESS;
}

// A CUkernel may be used wherever a CUfunction is expected (CUDA 12+); ours are the same objects.
SIMCU_EXPORT CUresult cuKernelGetParamInfo(CUkernel k, size_t index, size_t* offset, size_t* size) {
  return cuFuncGetParamInfo(reinterpret_cast<CUfunction>(k), index, offset, size);
}

SIMCU_EXPORT CUresult cuFuncGetName(const char** name, CUfunction f) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  Function* fn = find_function(f);
  if (fn == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  if (name == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *name = fn->desc->name;
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuFuncGetAttribute(int* value, CUfunction_attribute attribute, CUfunction f) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  Function* fn = find_function(f);
  if (fn == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  switch (attribute) {
    case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *value = 1024; break;
    case CU_FUNC_ATTRIBUTE_NUM_REGS: *value = 32; break;
    case CU_FUNC_ATTRIBUTE_PTX_VERSION: *value = 90; break;
    case CU_FUNC_ATTRIBUTE_BINARY_VERSION: *value = 90; break;
    default: {
      auto it = fn->attributes.find(attribute);
      *value = it == fn->attributes.end() ? 0 : it->second;
    }
  }
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuFuncSetAttribute(CUfunction f, CUfunction_attribute attribute, int value) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  Function* fn = find_function(f);
  if (fn == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  fn->attributes[attribute] = value;
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuFuncSetCacheConfig(CUfunction f, CUfunc_cache) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  return find_function(f) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

namespace {
CUresult launch_dims(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                     unsigned shmem, CUstream s, void** params, void** extra, DefaultStream mode) {
  const std::uint32_t grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
  return launch_kernel(f, grid, block, shmem, s, params, extra, mode);
}
}  // namespace

SIMCU_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                                     unsigned int by, unsigned int bz, unsigned int shmem, CUstream s, void** params,
                                     void** extra) {
  return launch_dims(f, gx, gy, gz, bx, by, bz, shmem, s, params, extra, DefaultStream::legacy);
}
SIMCU_EXPORT CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                          unsigned int bx, unsigned int by, unsigned int bz, unsigned int shmem,
                                          CUstream s, void** params, void** extra) {
  return launch_dims(f, gx, gy, gz, bx, by, bz, shmem, s, params, extra, DefaultStream::per_thread);
}
SIMCU_EXPORT CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                                unsigned int bx, unsigned int by, unsigned int bz, unsigned int shmem,
                                                CUstream s, void** params) {
  return launch_dims(f, gx, gy, gz, bx, by, bz, shmem, s, params, nullptr, DefaultStream::legacy);
}
SIMCU_EXPORT CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                                     unsigned int bx, unsigned int by, unsigned int bz,
                                                     unsigned int shmem, CUstream s, void** params) {
  return launch_dims(f, gx, gy, gz, bx, by, bz, shmem, s, params, nullptr, DefaultStream::per_thread);
}
SIMCU_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig* config, CUfunction f, void** params, void** extra) {
  return launch_ex(config, f, params, extra, DefaultStream::legacy);
}
SIMCU_EXPORT CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig* config, CUfunction f, void** params, void** extra) {
  return launch_ex(config, f, params, extra, DefaultStream::per_thread);
}
