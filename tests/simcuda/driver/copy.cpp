// Simulated driver: copies and memsets.
//
// Note [Copy synchronisation]
// The simulation follows CUDA's documented "API synchronization behavior":
//  - a synchronous host-to-device copy from pageable memory returns once the
//    source is staged (we snapshot it), possibly before the device is written;
//    from pinned memory it returns when the copy is done;
//  - a synchronous device-to-host copy returns when the data has arrived;
//  - a synchronous device-to-device copy or memset is asynchronous to the host;
//  - an async copy from pageable memory stages the source at the call; an async
//    copy into pageable memory is synchronous.
// Every copy runs on a stream worker at its turn, so touching an unmapped
// device address there raises SIGSEGV, as a real copy would fault.
#include <cstring>
#include <memory>

#include "driver.h"

namespace simcuda::driver {
namespace {

struct Side {
  std::uint64_t address;
  bool device;  // inside the simulated device address space
};

Side classify(std::uint64_t address) { return Side{address, is_device_address(address)}; }

CUresult submit_copy(Side dst, Side src, std::size_t bytes, CUstream handle, DefaultStream mode, bool sync_call) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  auto stream = resolve_stream(handle, mode);
  if (!stream) return CUDA_ERROR_INVALID_HANDLE;
  if (bytes == 0) return CUDA_SUCCESS;
  if (dst.address == 0 || src.address == 0) return CUDA_ERROR_INVALID_VALUE;
  auto* dst_ptr = reinterpret_cast<unsigned char*>(dst.address);
  auto* src_ptr = reinterpret_cast<const unsigned char*>(src.address);
  const bool src_pageable = !src.device && !is_pinned_host(src_ptr, bytes);
  const bool dst_pageable = !dst.device && !is_pinned_host(dst_ptr, bytes);
  bool wait = false;
  std::uint64_t seq;
  if (src_pageable && dst.device) {
    // Staged: the caller may reuse its buffer as soon as we return.
    auto staged = std::shared_ptr<unsigned char[]>(new unsigned char[bytes]);
    std::memcpy(staged.get(), src_ptr, bytes);
    seq = enqueue(stream, [dst_ptr, staged, bytes] { std::memcpy(dst_ptr, staged.get(), bytes); });
  } else {
    seq = enqueue(stream, [dst_ptr, src_ptr, bytes] { std::memmove(dst_ptr, src_ptr, bytes); });
    if (dst_pageable && src.device) wait = true;                 // into pageable memory: synchronous
    if (sync_call && !(src.device && dst.device)) wait = true;   // sync H2D from pinned, D2H, H2H
  }
  if (wait) wait_for(Dep{stream, seq});
  return CUDA_SUCCESS;
}

CUresult copy_h2d(CUdeviceptr dst, const void* src, size_t bytes, CUstream s, DefaultStream m, bool sync) {
  if (!is_device_address(dst)) return bytes == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
  return submit_copy(Side{dst, true}, Side{reinterpret_cast<std::uint64_t>(src), false}, bytes, s, m, sync);
}
CUresult copy_d2h(void* dst, CUdeviceptr src, size_t bytes, CUstream s, DefaultStream m, bool sync) {
  if (!is_device_address(src)) return bytes == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
  return submit_copy(Side{reinterpret_cast<std::uint64_t>(dst), false}, Side{src, true}, bytes, s, m, sync);
}
CUresult copy_d2d(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s, DefaultStream m, bool sync) {
  if (bytes != 0 && (!is_device_address(dst) || !is_device_address(src))) return CUDA_ERROR_INVALID_VALUE;
  return submit_copy(Side{dst, true}, Side{src, true}, bytes, s, m, sync);
}
CUresult copy_any(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s, DefaultStream m, bool sync) {
  return submit_copy(classify(dst), classify(src), bytes, s, m, sync);
}

// ---- 2D copies ----

CUresult side_of(CUmemorytype type, const void* host, CUdeviceptr device, Side* out) {
  switch (type) {
    case CU_MEMORYTYPE_HOST: *out = Side{reinterpret_cast<std::uint64_t>(host), false}; return CUDA_SUCCESS;
    case CU_MEMORYTYPE_DEVICE:
      if (!is_device_address(device)) return CUDA_ERROR_INVALID_VALUE;
      *out = Side{device, true};
      return CUDA_SUCCESS;
    case CU_MEMORYTYPE_UNIFIED: *out = classify(device); return CUDA_SUCCESS;
    default: return CUDA_ERROR_NOT_SUPPORTED;  // CUDA arrays are not simulated
  }
}

CUresult copy_2d(const CUDA_MEMCPY2D* p, CUstream handle, DefaultStream mode, bool sync_call) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Side src{}, dst{};
  if (CUresult r = side_of(p->srcMemoryType, p->srcHost, p->srcDevice, &src); r != CUDA_SUCCESS) return r;
  if (CUresult r = side_of(p->dstMemoryType, p->dstHost, p->dstDevice, &dst); r != CUDA_SUCCESS) return r;
  const size_t width = p->WidthInBytes, height = p->Height;
  if (width == 0 || height == 0) return CUDA_SUCCESS;
  if ((height > 1 && (p->srcPitch < width || p->dstPitch < width))) return CUDA_ERROR_INVALID_VALUE;
  auto stream = resolve_stream(handle, mode);
  if (!stream) return CUDA_ERROR_INVALID_HANDLE;
  auto* d = reinterpret_cast<unsigned char*>(dst.address + p->dstY * p->dstPitch + p->dstXInBytes);
  auto* s = reinterpret_cast<const unsigned char*>(src.address + p->srcY * p->srcPitch + p->srcXInBytes);
  const size_t sp = p->srcPitch, dp = p->dstPitch;
  const bool src_pageable = !src.device && !is_pinned_host(s, sp * (height - 1) + width);
  const bool dst_pageable = !dst.device && !is_pinned_host(d, dp * (height - 1) + width);
  std::uint64_t seq;
  if (src_pageable && dst.device) {
    auto staged = std::shared_ptr<unsigned char[]>(new unsigned char[width * height]);
    for (size_t row = 0; row < height; ++row) std::memcpy(staged.get() + row * width, s + row * sp, width);
    seq = enqueue(stream, [d, dp, staged, width, height] {
      for (size_t row = 0; row < height; ++row) std::memcpy(d + row * dp, staged.get() + row * width, width);
    });
  } else {
    seq = enqueue(stream, [d, s, dp, sp, width, height] {
      for (size_t row = 0; row < height; ++row) std::memmove(d + row * dp, s + row * sp, width);
    });
  }
  if ((dst_pageable && src.device) || (sync_call && !(src.device && dst.device))) wait_for(Dep{stream, seq});
  return CUDA_SUCCESS;
}

// ---- memsets ----

template <typename T>
CUresult memset_2d(CUdeviceptr dst, size_t pitch, T value, size_t width, size_t height, CUstream handle,
                   DefaultStream mode) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  auto stream = resolve_stream(handle, mode);
  if (!stream) return CUDA_ERROR_INVALID_HANDLE;
  if (width == 0 || height == 0) return CUDA_SUCCESS;
  if (dst % sizeof(T) != 0 || (height > 1 && pitch < width * sizeof(T))) return CUDA_ERROR_INVALID_VALUE;
  const bool device = is_device_address(dst);
  if (!device && !is_pinned_host(reinterpret_cast<void*>(dst), width * sizeof(T))) return CUDA_ERROR_INVALID_VALUE;
  auto* base = reinterpret_cast<unsigned char*>(dst);
  std::uint64_t seq = enqueue(stream, [base, pitch, value, width, height] {
    for (size_t row = 0; row < height; ++row) {
      T* p = reinterpret_cast<T*>(base + row * pitch);
      if constexpr (sizeof(T) == 1) std::memset(p, value, width);
      else for (size_t i = 0; i < width; ++i) p[i] = value;
    }
  });
  if (!device) wait_for(Dep{stream, seq});  // a memset of pinned host memory is synchronous
  return CUDA_SUCCESS;
}

template <typename T>
CUresult memset_1d(CUdeviceptr dst, T value, size_t count, CUstream s, DefaultStream m) {
  return memset_2d<T>(dst, count * sizeof(T), value, count, 1, s, m);
}

constexpr auto L = DefaultStream::legacy;
constexpr auto P = DefaultStream::per_thread;

}  // namespace
}  // namespace simcuda::driver

using namespace simcuda::driver;

// Synchronous copies (legacy default stream, and the per-thread "_ptds" forms).
SIMCU_EXPORT CUresult cuMemcpy(CUdeviceptr d, CUdeviceptr s, size_t n) { return copy_any(d, s, n, nullptr, L, true); }
SIMCU_EXPORT CUresult cuMemcpy_ptds(CUdeviceptr d, CUdeviceptr s, size_t n) { return copy_any(d, s, n, nullptr, P, true); }
SIMCU_EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void* s, size_t n) { return copy_h2d(d, s, n, nullptr, L, true); }
SIMCU_EXPORT CUresult cuMemcpyHtoD_v2_ptds(CUdeviceptr d, const void* s, size_t n) { return copy_h2d(d, s, n, nullptr, P, true); }
SIMCU_EXPORT CUresult cuMemcpyDtoH_v2(void* d, CUdeviceptr s, size_t n) { return copy_d2h(d, s, n, nullptr, L, true); }
SIMCU_EXPORT CUresult cuMemcpyDtoH_v2_ptds(void* d, CUdeviceptr s, size_t n) { return copy_d2h(d, s, n, nullptr, P, true); }
SIMCU_EXPORT CUresult cuMemcpyDtoD_v2(CUdeviceptr d, CUdeviceptr s, size_t n) { return copy_d2d(d, s, n, nullptr, L, true); }
SIMCU_EXPORT CUresult cuMemcpyDtoD_v2_ptds(CUdeviceptr d, CUdeviceptr s, size_t n) { return copy_d2d(d, s, n, nullptr, P, true); }
SIMCU_EXPORT CUresult cuMemcpy2D_v2(const CUDA_MEMCPY2D* p) { return copy_2d(p, nullptr, L, true); }
SIMCU_EXPORT CUresult cuMemcpy2D_v2_ptds(const CUDA_MEMCPY2D* p) { return copy_2d(p, nullptr, P, true); }
SIMCU_EXPORT CUresult cuMemcpy2DUnaligned_v2(const CUDA_MEMCPY2D* p) { return copy_2d(p, nullptr, L, true); }
SIMCU_EXPORT CUresult cuMemcpy2DUnaligned_v2_ptds(const CUDA_MEMCPY2D* p) { return copy_2d(p, nullptr, P, true); }

// Asynchronous copies.
SIMCU_EXPORT CUresult cuMemcpyAsync(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st) { return copy_any(d, s, n, st, L, false); }
SIMCU_EXPORT CUresult cuMemcpyAsync_ptsz(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st) { return copy_any(d, s, n, st, P, false); }
SIMCU_EXPORT CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void* s, size_t n, CUstream st) { return copy_h2d(d, s, n, st, L, false); }
SIMCU_EXPORT CUresult cuMemcpyHtoDAsync_v2_ptsz(CUdeviceptr d, const void* s, size_t n, CUstream st) { return copy_h2d(d, s, n, st, P, false); }
SIMCU_EXPORT CUresult cuMemcpyDtoHAsync_v2(void* d, CUdeviceptr s, size_t n, CUstream st) { return copy_d2h(d, s, n, st, L, false); }
SIMCU_EXPORT CUresult cuMemcpyDtoHAsync_v2_ptsz(void* d, CUdeviceptr s, size_t n, CUstream st) { return copy_d2h(d, s, n, st, P, false); }
SIMCU_EXPORT CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (CUresult r = injected_failure(FailableCall::memcpy_dtod_async); r != CUDA_SUCCESS) return r;
  return copy_d2d(d, s, n, st, L, false);
}
SIMCU_EXPORT CUresult cuMemcpyDtoDAsync_v2_ptsz(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st) { return copy_d2d(d, s, n, st, P, false); }
SIMCU_EXPORT CUresult cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D* p, CUstream st) { return copy_2d(p, st, L, false); }
SIMCU_EXPORT CUresult cuMemcpy2DAsync_v2_ptsz(const CUDA_MEMCPY2D* p, CUstream st) { return copy_2d(p, st, P, false); }

// Memsets: the "synchronous" forms are asynchronous to the host for device memory.
SIMCU_EXPORT CUresult cuMemsetD8_v2(CUdeviceptr d, unsigned char v, size_t n) { return memset_1d(d, v, n, nullptr, L); }
SIMCU_EXPORT CUresult cuMemsetD8_v2_ptds(CUdeviceptr d, unsigned char v, size_t n) { return memset_1d(d, v, n, nullptr, P); }
SIMCU_EXPORT CUresult cuMemsetD16_v2(CUdeviceptr d, unsigned short v, size_t n) { return memset_1d(d, v, n, nullptr, L); }
SIMCU_EXPORT CUresult cuMemsetD16_v2_ptds(CUdeviceptr d, unsigned short v, size_t n) { return memset_1d(d, v, n, nullptr, P); }
SIMCU_EXPORT CUresult cuMemsetD32_v2(CUdeviceptr d, unsigned int v, size_t n) { return memset_1d(d, v, n, nullptr, L); }
SIMCU_EXPORT CUresult cuMemsetD32_v2_ptds(CUdeviceptr d, unsigned int v, size_t n) { return memset_1d(d, v, n, nullptr, P); }
SIMCU_EXPORT CUresult cuMemsetD8Async(CUdeviceptr d, unsigned char v, size_t n, CUstream s) { return memset_1d(d, v, n, s, L); }
SIMCU_EXPORT CUresult cuMemsetD8Async_ptsz(CUdeviceptr d, unsigned char v, size_t n, CUstream s) { return memset_1d(d, v, n, s, P); }
SIMCU_EXPORT CUresult cuMemsetD16Async(CUdeviceptr d, unsigned short v, size_t n, CUstream s) { return memset_1d(d, v, n, s, L); }
SIMCU_EXPORT CUresult cuMemsetD16Async_ptsz(CUdeviceptr d, unsigned short v, size_t n, CUstream s) { return memset_1d(d, v, n, s, P); }
SIMCU_EXPORT CUresult cuMemsetD32Async(CUdeviceptr d, unsigned int v, size_t n, CUstream s) { return memset_1d(d, v, n, s, L); }
SIMCU_EXPORT CUresult cuMemsetD32Async_ptsz(CUdeviceptr d, unsigned int v, size_t n, CUstream s) { return memset_1d(d, v, n, s, P); }
SIMCU_EXPORT CUresult cuMemsetD2D8_v2(CUdeviceptr d, size_t pitch, unsigned char v, size_t w, size_t h) {
  return memset_2d(d, pitch, v, w, h, nullptr, L);
}
SIMCU_EXPORT CUresult cuMemsetD2D8_v2_ptds(CUdeviceptr d, size_t pitch, unsigned char v, size_t w, size_t h) {
  return memset_2d(d, pitch, v, w, h, nullptr, P);
}
SIMCU_EXPORT CUresult cuMemsetD2D32_v2(CUdeviceptr d, size_t pitch, unsigned int v, size_t w, size_t h) {
  return memset_2d(d, pitch, v, w, h, nullptr, L);
}
SIMCU_EXPORT CUresult cuMemsetD2D32_v2_ptds(CUdeviceptr d, size_t pitch, unsigned int v, size_t w, size_t h) {
  return memset_2d(d, pitch, v, w, h, nullptr, P);
}
SIMCU_EXPORT CUresult cuMemsetD2D8Async(CUdeviceptr d, size_t pitch, unsigned char v, size_t w, size_t h, CUstream s) {
  return memset_2d(d, pitch, v, w, h, s, L);
}
SIMCU_EXPORT CUresult cuMemsetD2D8Async_ptsz(CUdeviceptr d, size_t pitch, unsigned char v, size_t w, size_t h, CUstream s) {
  return memset_2d(d, pitch, v, w, h, s, P);
}
SIMCU_EXPORT CUresult cuMemsetD2D32Async(CUdeviceptr d, size_t pitch, unsigned int v, size_t w, size_t h, CUstream s) {
  return memset_2d(d, pitch, v, w, h, s, L);
}
SIMCU_EXPORT CUresult cuMemsetD2D32Async_ptsz(CUdeviceptr d, size_t pitch, unsigned int v, size_t w, size_t h, CUstream s) {
  return memset_2d(d, pitch, v, w, h, s, P);
}
