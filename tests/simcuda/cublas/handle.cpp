// Handles and their settings: create/destroy, stream, workspace, math and pointer modes,
// version, status strings. The module image is loaded on the first cublasCreate.
#include "handle.h"

#include <mutex>

namespace simcublas {
namespace {

struct LoadedModule {
  std::mutex mutex;
  bool loaded = false;
  CUfunction functions[static_cast<int>(Kernel::count)] = {};
};

LoadedModule& loaded_module() {
  static LoadedModule* m = new LoadedModule;  // never destroyed: kernels may run during exit
  return *m;
}

// Loads the image once per process (lazily, with the caller's context current, like the static
// runtime inside the real cuBLAS loads its fatbin on first use). A failure is retried next time.
cublasStatus_t load_module(const DriverApi& api) {
  LoadedModule& m = loaded_module();
  std::lock_guard lock(m.mutex);
  if (m.loaded) return CUBLAS_STATUS_SUCCESS;
  prepare_blas_once();
  CUmodule module = nullptr;
  if (api.cuModuleLoadData(&module, &image()) != CUDA_SUCCESS) return CUBLAS_STATUS_NOT_INITIALIZED;
  for (std::uint32_t i = 0; i < image().kernel_count; ++i)
    if (api.cuModuleGetFunction(&m.functions[i], module, image().kernels[i].name) != CUDA_SUCCESS)
      return CUBLAS_STATUS_NOT_INITIALIZED;
  m.loaded = true;
  return CUBLAS_STATUS_SUCCESS;
}

constexpr std::size_t kScratchBytes = 256;  // one result cell, at cuBLAS's 256-byte alignment

}  // namespace

cublasStatus_t enter(cublasHandle_t handle, const DriverApi** api) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  const DriverApi* d = driver();  // non-null: the handle was created through it
  CUcontext current = nullptr;
  if (d->cuCtxGetCurrent(&current) != CUDA_SUCCESS) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (current == nullptr && d->cuCtxSetCurrent(handle->context) != CUDA_SUCCESS) return CUBLAS_STATUS_NOT_INITIALIZED;
  *api = d;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t enter_without_handle(const DriverApi** api) {
  const DriverApi* d = driver();
  CUcontext context = nullptr;
  if (d == nullptr || bind_context(*d, &context) != CUDA_SUCCESS) return CUBLAS_STATUS_NOT_INITIALIZED;
  *api = d;
  return CUBLAS_STATUS_SUCCESS;
}

CUfunction function(Kernel kernel) { return loaded_module().functions[static_cast<int>(kernel)]; }

}  // namespace simcublas

using namespace simcublas;

SIMCUBLAS_EXPORT cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
  if (handle == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  const DriverApi* api = nullptr;
  if (cublasStatus_t s = enter_without_handle(&api); s != CUBLAS_STATUS_SUCCESS) return s;
  if (cublasStatus_t s = load_module(*api); s != CUBLAS_STATUS_SUCCESS) return s;
  auto* h = new cublasContext;
  if (api->cuCtxGetCurrent(&h->context) != CUDA_SUCCESS ||
      api->cuMemAlloc(&h->scratch, kScratchBytes) != CUDA_SUCCESS) {
    delete h;
    return CUBLAS_STATUS_ALLOC_FAILED;
  }
  *handle = h;
  return CUBLAS_STATUS_SUCCESS;
}

SIMCUBLAS_EXPORT cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
  const DriverApi* api = nullptr;
  if (cublasStatus_t s = enter(handle, &api); s != CUBLAS_STATUS_SUCCESS) return s;
  // cuMemFree waits for the device, so work still queued on the handle finishes first, as a
  // real cublasDestroy synchronises before releasing its resources.
  const CUresult r = api->cuMemFree(handle->scratch);
  delete handle;
  return r == CUDA_SUCCESS ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INTERNAL_ERROR;
}

SIMCUBLAS_EXPORT cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;  // cudaStream_t and CUstream are the same type
  return CUBLAS_STATUS_SUCCESS;
}

SIMCUBLAS_EXPORT cublasStatus_t cublasGetStream_v2(cublasHandle_t handle, cudaStream_t* stream) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (stream == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *stream = handle->stream;
  return CUBLAS_STATUS_SUCCESS;
}

SIMCUBLAS_EXPORT cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void* workspace, size_t bytes) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  // cuBLAS documents INVALID_VALUE for a workspace not aligned to 256 bytes.
  if ((workspace == nullptr && bytes != 0) || reinterpret_cast<std::uintptr_t>(workspace) % 256 != 0)
    return CUBLAS_STATUS_INVALID_VALUE;
  handle->workspace = workspace;
  handle->workspace_bytes = bytes;
  return CUBLAS_STATUS_SUCCESS;
}

SIMCUBLAS_EXPORT cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  // A base mode, optionally with the "disallow reduced-precision reduction" flag. Every mode
  // computes in full fp32 here: tensor-op and TF32 modes allow less precision, not more.
  const int base = mode & ~CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
  if (base != CUBLAS_DEFAULT_MATH && base != CUBLAS_TENSOR_OP_MATH && base != CUBLAS_PEDANTIC_MATH &&
      base != CUBLAS_TF32_TENSOR_OP_MATH && base != CUBLAS_FP32_EMULATED_BF16X9_MATH &&
      base != CUBLAS_FP64_EMULATED_FIXEDPOINT_MATH)
    return CUBLAS_STATUS_INVALID_VALUE;
  handle->math_mode = mode;
  return CUBLAS_STATUS_SUCCESS;
}

SIMCUBLAS_EXPORT cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = handle->math_mode;
  return CUBLAS_STATUS_SUCCESS;
}

SIMCUBLAS_EXPORT cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t mode) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode != CUBLAS_POINTER_MODE_HOST && mode != CUBLAS_POINTER_MODE_DEVICE) return CUBLAS_STATUS_INVALID_VALUE;
  handle->pointer_mode = mode;
  return CUBLAS_STATUS_SUCCESS;
}

SIMCUBLAS_EXPORT cublasStatus_t cublasGetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t* mode) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = handle->pointer_mode;
  return CUBLAS_STATUS_SUCCESS;
}

SIMCUBLAS_EXPORT cublasStatus_t cublasGetVersion_v2(cublasHandle_t handle, int* version) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (version == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *version = CUBLAS_VERSION;  // the toolkit's own: major * 10000 + minor * 100 + patch
  return CUBLAS_STATUS_SUCCESS;
}

SIMCUBLAS_EXPORT cublasStatus_t cublasGetProperty(libraryPropertyType type, int* value) {
  if (value == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  switch (type) {
    case MAJOR_VERSION: *value = CUBLAS_VER_MAJOR; return CUBLAS_STATUS_SUCCESS;
    case MINOR_VERSION: *value = CUBLAS_VER_MINOR; return CUBLAS_STATUS_SUCCESS;
    case PATCH_LEVEL: *value = CUBLAS_VER_PATCH; return CUBLAS_STATUS_SUCCESS;
    default: return CUBLAS_STATUS_INVALID_VALUE;
  }
}

SIMCUBLAS_EXPORT const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

SIMCUBLAS_EXPORT const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "error detected trying to check the license";
  }
  return "unknown error";
}
