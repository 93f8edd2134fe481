// memory.cpp — device, pinned-host and stream-ordered allocation; copies, sets, pointer queries.
#include <cstring>

#include "runtime.h"

namespace simcudart {
namespace {

// cudaHostAlloc / cudaHostRegister flags have the driver's values, so they pass through.
static_assert(cudaHostAllocPortable == CU_MEMHOSTALLOC_PORTABLE);
static_assert(cudaHostAllocMapped == CU_MEMHOSTALLOC_DEVICEMAP);
static_assert(cudaHostAllocWriteCombined == CU_MEMHOSTALLOC_WRITECOMBINED);
static_assert(cudaHostRegisterPortable == CU_MEMHOSTREGISTER_PORTABLE);
static_assert(cudaHostRegisterMapped == CU_MEMHOSTREGISTER_DEVICEMAP);
static_assert(cudaHostRegisterReadOnly == CU_MEMHOSTREGISTER_READ_ONLY);

cudaError_t malloc_device(void** ptr, size_t size) {
  if (ptr == nullptr) return cudaErrorInvalidValue;
  Entered e = enter();
  if (e.error != cudaSuccess) return e.error;
  // cudaMalloc(&p, 0) succeeds with p = NULL; the driver rejects a zero-byte cuMemAlloc.
  if (size == 0) {
    *ptr = nullptr;
    return cudaSuccess;
  }
  CUdeviceptr dptr = 0;
  cudaError_t err = call(e.api->cuMemAlloc, &dptr, size);
  *ptr = err == cudaSuccess ? reinterpret_cast<void*>(dptr) : nullptr;
  return err;
}

cudaError_t free_device(void* ptr) {
  Entered e = enter();  // cudaFree(NULL) is the idiomatic "initialise the runtime now"
  if (e.error != cudaSuccess || ptr == nullptr) return e.error;
  return call(e.api->cuMemFree, device_ptr(ptr));
}

cudaError_t host_alloc(void** ptr, size_t size, unsigned int flags) {
  if (ptr == nullptr) return cudaErrorInvalidValue;
  Entered e = enter();
  if (e.error != cudaSuccess) return e.error;
  *ptr = nullptr;
  return call(e.api->cuMemHostAlloc, ptr, size, flags);
}

cudaError_t malloc_async(StreamMode mode, void** ptr, size_t size, cudaStream_t stream) {
  if (ptr == nullptr) return cudaErrorInvalidValue;
  Entered e = enter(mode);
  if (e.error != cudaSuccess) return e.error;
  CUdeviceptr dptr = 0;
  cudaError_t err = call(e.api->cuMemAllocAsync, &dptr, size, stream);
  *ptr = err == cudaSuccess ? reinterpret_cast<void*>(dptr) : nullptr;
  return err;
}

cudaError_t free_async(StreamMode mode, void* ptr, cudaStream_t stream) {
  Entered e = enter(mode);
  if (e.error != cudaSuccess) return e.error;
  return call(e.api->cuMemFreeAsync, device_ptr(ptr), stream);
}

// Synchronous copies use the driver's per-direction calls, as the real runtime does;
// cudaMemcpyDefault and host-to-host go through the unified-addressing cuMemcpy.
cudaError_t memcpy_sync(StreamMode mode, void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  Entered e = enter(mode);
  if (e.error != cudaSuccess) return e.error;
  if (count == 0) return cudaSuccess;
  const DriverApi& d = *e.api;
  switch (kind) {
    case cudaMemcpyHostToDevice:
      return call(d.cuMemcpyHtoD, device_ptr(dst), src, count);
    case cudaMemcpyDeviceToHost:
      return call(d.cuMemcpyDtoH, dst, device_ptr(src), count);
    case cudaMemcpyDeviceToDevice:
      return call(d.cuMemcpyDtoD, device_ptr(dst), device_ptr(src), count);
    case cudaMemcpyHostToHost:
    case cudaMemcpyDefault:
      return call(d.cuMemcpy, device_ptr(dst), device_ptr(src), count);
  }
  return cudaErrorInvalidMemcpyDirection;
}

cudaError_t memcpy_async(StreamMode mode, void* dst, const void* src, size_t count, cudaMemcpyKind kind,
                         cudaStream_t stream) {
  Entered e = enter(mode);
  if (e.error != cudaSuccess) return e.error;
  if (count == 0) return cudaSuccess;
  const DriverApi& d = *e.api;
  switch (kind) {
    case cudaMemcpyHostToDevice:
      return call(d.cuMemcpyHtoDAsync, device_ptr(dst), src, count, stream);
    case cudaMemcpyDeviceToHost:
      return call(d.cuMemcpyDtoHAsync, dst, device_ptr(src), count, stream);
    case cudaMemcpyDeviceToDevice:
      return call(d.cuMemcpyDtoDAsync, device_ptr(dst), device_ptr(src), count, stream);
    case cudaMemcpyHostToHost:
    case cudaMemcpyDefault:
      return call(d.cuMemcpyAsync, device_ptr(dst), device_ptr(src), count, stream);
  }
  return cudaErrorInvalidMemcpyDirection;
}

void set_side(CUmemorytype type, const void* ptr, CUmemorytype* out_type, const void** out_host,
              CUdeviceptr* out_device) {
  *out_type = type;
  if (type == CU_MEMORYTYPE_HOST) {
    *out_host = ptr;
  } else {
    *out_device = device_ptr(ptr);  // DEVICE, or UNIFIED (the driver reads srcDevice/dstDevice)
  }
}

cudaError_t make_copy_2d(CUDA_MEMCPY2D* p, void* dst, size_t dpitch, const void* src, size_t spitch,
                         size_t width, size_t height, cudaMemcpyKind kind) {
  CUmemorytype src_type = CU_MEMORYTYPE_UNIFIED, dst_type = CU_MEMORYTYPE_UNIFIED;
  switch (kind) {
    case cudaMemcpyHostToHost:
      src_type = dst_type = CU_MEMORYTYPE_HOST;
      break;
    case cudaMemcpyHostToDevice:
      src_type = CU_MEMORYTYPE_HOST;
      dst_type = CU_MEMORYTYPE_DEVICE;
      break;
    case cudaMemcpyDeviceToHost:
      src_type = CU_MEMORYTYPE_DEVICE;
      dst_type = CU_MEMORYTYPE_HOST;
      break;
    case cudaMemcpyDeviceToDevice:
      src_type = dst_type = CU_MEMORYTYPE_DEVICE;
      break;
    case cudaMemcpyDefault:
      break;
    default:
      return cudaErrorInvalidMemcpyDirection;
  }
  if (width > dpitch || width > spitch) return cudaErrorInvalidPitchValue;
  std::memset(p, 0, sizeof *p);
  set_side(src_type, src, &p->srcMemoryType, &p->srcHost, &p->srcDevice);
  const void* dst_host = nullptr;
  set_side(dst_type, dst, &p->dstMemoryType, &dst_host, &p->dstDevice);
  p->dstHost = const_cast<void*>(dst_host);
  p->srcPitch = spitch;
  p->dstPitch = dpitch;
  p->WidthInBytes = width;
  p->Height = height;
  return cudaSuccess;
}

cudaError_t memcpy_2d(StreamMode mode, void* dst, size_t dpitch, const void* src, size_t spitch, size_t width,
                      size_t height, cudaMemcpyKind kind, bool async, cudaStream_t stream) {
  Entered e = enter(mode);
  if (e.error != cudaSuccess) return e.error;
  CUDA_MEMCPY2D p;
  if (cudaError_t err = make_copy_2d(&p, dst, dpitch, src, spitch, width, height, kind); err != cudaSuccess) {
    return err;
  }
  if (width == 0 || height == 0) return cudaSuccess;
  return async ? call(e.api->cuMemcpy2DAsync, &p, stream) : call(e.api->cuMemcpy2D, &p);
}

cudaError_t memset_device(StreamMode mode, void* ptr, int value, size_t count, bool async, cudaStream_t stream) {
  Entered e = enter(mode);
  if (e.error != cudaSuccess) return e.error;
  if (count == 0) return cudaSuccess;
  auto byte = static_cast<unsigned char>(value);
  return async ? call(e.api->cuMemsetD8Async, device_ptr(ptr), byte, count, stream)
               : call(e.api->cuMemsetD8, device_ptr(ptr), byte, count);
}

cudaError_t mem_get_info(size_t* free_bytes, size_t* total_bytes) {
  if (free_bytes == nullptr || total_bytes == nullptr) return cudaErrorInvalidValue;
  Entered e = enter();
  if (e.error != cudaSuccess) return e.error;
  return call(e.api->cuMemGetInfo, free_bytes, total_bytes);
}

// Best effort, through cuPointerGetAttribute one attribute at a time. Since CUDA 11 a pointer
// the driver does not know is "unregistered host memory" and the call succeeds.
cudaError_t pointer_get_attributes(cudaPointerAttributes* attr, const void* ptr) {
  if (attr == nullptr) return cudaErrorInvalidValue;
  Entered e = enter();
  if (e.error != cudaSuccess) return e.error;
  const DriverApi& d = *e.api;
  if (d.cuPointerGetAttribute == nullptr) return cudaErrorNotSupported;
  std::memset(attr, 0, sizeof *attr);
  CUdeviceptr p = device_ptr(ptr);

  unsigned int memory_type = 0;
  CUresult r = d.cuPointerGetAttribute(&memory_type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, p);
  if (r == CUDA_ERROR_INVALID_VALUE || (r == CUDA_SUCCESS && memory_type == 0)) {
    attr->type = cudaMemoryTypeUnregistered;
    attr->device = cudaInvalidDeviceId;  // no device knows this memory
    attr->hostPointer = const_cast<void*>(ptr);
    return cudaSuccess;
  }
  if (r != CUDA_SUCCESS) return to_cuda_error(r);

  int is_managed = 0;
  if (d.cuPointerGetAttribute(&is_managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, p) != CUDA_SUCCESS) is_managed = 0;
  if (is_managed != 0) {
    attr->type = cudaMemoryTypeManaged;
  } else {
    attr->type = memory_type == CU_MEMORYTYPE_HOST ? cudaMemoryTypeHost : cudaMemoryTypeDevice;
  }
  int ordinal = current_device();
  if (d.cuPointerGetAttribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, p) != CUDA_SUCCESS) {
    ordinal = current_device();
  }
  attr->device = ordinal;
  CUdeviceptr dev = 0;
  if (d.cuPointerGetAttribute(&dev, CU_POINTER_ATTRIBUTE_DEVICE_POINTER, p) == CUDA_SUCCESS) {
    attr->devicePointer = reinterpret_cast<void*>(dev);
  }
  void* host = nullptr;
  if (d.cuPointerGetAttribute(&host, CU_POINTER_ATTRIBUTE_HOST_POINTER, p) == CUDA_SUCCESS) {
    attr->hostPointer = host;
  }
  return cudaSuccess;
}

}  // namespace
}  // namespace simcudart

using namespace simcudart;

// --- device memory ---------------------------------------------------------------------------
SIMCUDART_EXPORT cudaError_t cudaMalloc(void** ptr, size_t size) { return record(malloc_device(ptr, size)); }
SIMCUDART_EXPORT cudaError_t cudaFree(void* ptr) { return record(free_device(ptr)); }
SIMCUDART_EXPORT cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  return record(mem_get_info(free_bytes, total_bytes));
}
SIMCUDART_EXPORT cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attr, const void* ptr) {
  return record(pointer_get_attributes(attr, ptr));
}

// --- pinned host memory ----------------------------------------------------------------------
SIMCUDART_EXPORT cudaError_t cudaMallocHost(void** ptr, size_t size) {
  return record(host_alloc(ptr, size, cudaHostAllocDefault));
}
SIMCUDART_EXPORT cudaError_t cudaHostAlloc(void** ptr, size_t size, unsigned int flags) {
  return record(host_alloc(ptr, size, flags));
}
SIMCUDART_EXPORT cudaError_t cudaFreeHost(void* ptr) {
  Entered e = enter();
  if (e.error != cudaSuccess || ptr == nullptr) return record(e.error);
  return record(call(e.api->cuMemFreeHost, ptr));
}
SIMCUDART_EXPORT cudaError_t cudaHostRegister(void* ptr, size_t size, unsigned int flags) {
  Entered e = enter();
  if (e.error != cudaSuccess) return record(e.error);
  return record(call(e.api->cuMemHostRegister, ptr, size, flags));
}
SIMCUDART_EXPORT cudaError_t cudaHostUnregister(void* ptr) {
  Entered e = enter();
  if (e.error != cudaSuccess) return record(e.error);
  return record(call(e.api->cuMemHostUnregister, ptr));
}
SIMCUDART_EXPORT cudaError_t cudaHostGetDevicePointer(void** device, void* host, unsigned int flags) {
  if (device == nullptr) return record(cudaErrorInvalidValue);
  Entered e = enter();
  if (e.error != cudaSuccess) return record(e.error);
  CUdeviceptr dptr = 0;
  cudaError_t err = call(e.api->cuMemHostGetDevicePointer, &dptr, host, flags);
  *device = err == cudaSuccess ? reinterpret_cast<void*>(dptr) : nullptr;
  return record(err);
}
SIMCUDART_EXPORT cudaError_t cudaHostGetFlags(unsigned int* flags, void* host) {
  Entered e = enter();
  if (e.error != cudaSuccess) return record(e.error);
  return record(call(e.api->cuMemHostGetFlags, flags, host));
}

// --- stream-ordered allocation ---------------------------------------------------------------
SIMCUDART_EXPORT cudaError_t cudaMallocAsync(void** ptr, size_t size, cudaStream_t stream) {
  return record(malloc_async(StreamMode::legacy, ptr, size, stream));
}
SIMCUDART_EXPORT cudaError_t cudaMallocAsync_ptsz(void** ptr, size_t size, cudaStream_t stream) {
  return record(malloc_async(StreamMode::per_thread, ptr, size, stream));
}
SIMCUDART_EXPORT cudaError_t cudaFreeAsync(void* ptr, cudaStream_t stream) {
  return record(free_async(StreamMode::legacy, ptr, stream));
}
SIMCUDART_EXPORT cudaError_t cudaFreeAsync_ptsz(void* ptr, cudaStream_t stream) {
  return record(free_async(StreamMode::per_thread, ptr, stream));
}

// --- copies ----------------------------------------------------------------------------------
SIMCUDART_EXPORT cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  return record(memcpy_sync(StreamMode::legacy, dst, src, count, kind));
}
SIMCUDART_EXPORT cudaError_t cudaMemcpy_ptds(void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  return record(memcpy_sync(StreamMode::per_thread, dst, src, count, kind));
}
SIMCUDART_EXPORT cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind,
                                             cudaStream_t stream) {
  return record(memcpy_async(StreamMode::legacy, dst, src, count, kind, stream));
}
SIMCUDART_EXPORT cudaError_t cudaMemcpyAsync_ptsz(void* dst, const void* src, size_t count, cudaMemcpyKind kind,
                                                  cudaStream_t stream) {
  return record(memcpy_async(StreamMode::per_thread, dst, src, count, kind, stream));
}
SIMCUDART_EXPORT cudaError_t cudaMemcpy2D(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width,
                                          size_t height, cudaMemcpyKind kind) {
  return record(memcpy_2d(StreamMode::legacy, dst, dpitch, src, spitch, width, height, kind, false, nullptr));
}
SIMCUDART_EXPORT cudaError_t cudaMemcpy2D_ptds(void* dst, size_t dpitch, const void* src, size_t spitch,
                                               size_t width, size_t height, cudaMemcpyKind kind) {
  return record(memcpy_2d(StreamMode::per_thread, dst, dpitch, src, spitch, width, height, kind, false, nullptr));
}
SIMCUDART_EXPORT cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch,
                                               size_t width, size_t height, cudaMemcpyKind kind,
                                               cudaStream_t stream) {
  return record(memcpy_2d(StreamMode::legacy, dst, dpitch, src, spitch, width, height, kind, true, stream));
}
SIMCUDART_EXPORT cudaError_t cudaMemcpy2DAsync_ptsz(void* dst, size_t dpitch, const void* src, size_t spitch,
                                                    size_t width, size_t height, cudaMemcpyKind kind,
                                                    cudaStream_t stream) {
  return record(memcpy_2d(StreamMode::per_thread, dst, dpitch, src, spitch, width, height, kind, true, stream));
}

// --- sets ------------------------------------------------------------------------------------
SIMCUDART_EXPORT cudaError_t cudaMemset(void* ptr, int value, size_t count) {
  return record(memset_device(StreamMode::legacy, ptr, value, count, false, nullptr));
}
SIMCUDART_EXPORT cudaError_t cudaMemset_ptds(void* ptr, int value, size_t count) {
  return record(memset_device(StreamMode::per_thread, ptr, value, count, false, nullptr));
}
SIMCUDART_EXPORT cudaError_t cudaMemsetAsync(void* ptr, int value, size_t count, cudaStream_t stream) {
  return record(memset_device(StreamMode::legacy, ptr, value, count, true, stream));
}
SIMCUDART_EXPORT cudaError_t cudaMemsetAsync_ptsz(void* ptr, int value, size_t count, cudaStream_t stream) {
  return record(memset_device(StreamMode::per_thread, ptr, value, count, true, stream));
}
