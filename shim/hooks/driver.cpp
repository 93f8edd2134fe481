// Exported driver API wrappers: guard, forward to the engine, return.
// One line of logic each; the engine (../engine) does the work. The list of
// symbols and their types lives in driver_api.def.
#include <cstring>
#include <unordered_map>

#include "common.h"

using namespace oversub;
using trace::SyncKind;
using U64 = std::uint64_t;

#define H(p) reinterpret_cast<U64>(p)

// ---- the wrapper table: our wrapper for each real driver function ----

extern "C" {
#define OVERSUB_DRIVER(symbol, type, need) oversub::driver_types::symbol##_fn symbol __asm__(#symbol);
#include "driver_api.def"
#undef OVERSUB_DRIVER
}

namespace {
struct DriverEntry {
  const char* symbol;
  void* wrapper;
};
const DriverEntry kDriverEntries[] = {
#define OVERSUB_DRIVER(symbol, type, need) {#symbol, reinterpret_cast<void*>(&::symbol)},
#include "driver_api.def"
#undef OVERSUB_DRIVER
};
}  // namespace

void* oversub::driver_wrapper_for_real(void* real_function) {
  static const auto* map = [] {
    auto* m = new std::unordered_map<void*, void*>;
    const RealDriver& r = real_driver();
#define OVERSUB_DRIVER(symbol, type, need) \
  if (r.symbol != nullptr) (*m)[reinterpret_cast<void*>(r.symbol)] = reinterpret_cast<void*>(&::symbol);
#include "driver_api.def"
#undef OVERSUB_DRIVER
    return m;
  }();
  auto it = map->find(real_function);
  return it == map->end() ? nullptr : it->second;
}

void* oversub::driver_wrapper_by_name(const char* symbol) {
  for (const DriverEntry& e : kDriverEntries)
    if (std::strcmp(e.symbol, symbol) == 0) return e.wrapper;
  return nullptr;
}

// ---- init, info, entry points ----

OVERSUB_EXPORT CUresult cuInit(unsigned int flags) {
  ensure_started();
  return REAL(cuInit, flags);
}

OVERSUB_EXPORT CUresult cuMemGetInfo_v2(size_t* free_bytes, size_t* total_bytes) {
  ensure_started();
  Residency::start_if_enabled();
  if (Residency* r = Residency::get()) {
    if (free_bytes == nullptr || total_bytes == nullptr) return CUDA_ERROR_INVALID_VALUE;
    r->memory_info(free_bytes, total_bytes);
    return CUDA_SUCCESS;
  }
  return REAL(cuMemGetInfo_v2, free_bytes, total_bytes);
}

// Note [Intercepting cuGetProcAddress]
// The runtime (and the copy of it inside cuBLAS, cuDNN and NCCL) finds every
// driver function through cuGetProcAddress. We ask the real one, so that
// flags, cudaVersion and symbolStatus mean exactly what the driver says, then
// replace the function it found by our wrapper for that exact symbol (the
// _v2, _ptsz or _ptds variant it chose), if we wrap it.
OVERSUB_EXPORT CUresult cuGetProcAddress_v2(const char* symbol, void** pfn, int cuda_version, cuuint64_t flags,
                                            CUdriverProcAddressQueryResult* status) {
  ensure_started();
  CUresult r = REAL(cuGetProcAddress_v2, symbol, pfn, cuda_version, flags, status);
  if (r == CUDA_SUCCESS && pfn != nullptr && *pfn != nullptr)
    if (void* wrapper = driver_wrapper_for_real(*pfn)) *pfn = wrapper;
  return r;
}

OVERSUB_EXPORT CUresult cuGetProcAddress(const char* symbol, void** pfn, int cuda_version, cuuint64_t flags) {
  ensure_started();
  CUresult r = REAL(cuGetProcAddress, symbol, pfn, cuda_version, flags);
  if (r == CUDA_SUCCESS && pfn != nullptr && *pfn != nullptr)
    if (void* wrapper = driver_wrapper_for_real(*pfn)) *pfn = wrapper;
  return r;
}

// ---- allocation ----

OVERSUB_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t n) {
  return allocate(p, n, AllocKind::malloc, nullptr, [&] { return REAL(cuMemAlloc_v2, p, n); });
}
OVERSUB_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr* p, size_t* pitch, size_t w, size_t h, unsigned int e) {
  // The allocation's size is only known once the pitch is chosen.
  ensure_started();
  if (Residency::get() != nullptr) {
    if (pitch == nullptr || (e != 4 && e != 8 && e != 16)) return CUDA_ERROR_INVALID_VALUE;
    *pitch = (w + 511) / 512 * 512;
    return allocate(p, *pitch * h, AllocKind::malloc, nullptr, [] { return CUDA_ERROR_NOT_SUPPORTED; });
  }
  CUresult r = REAL(cuMemAllocPitch_v2, p, pitch, w, h, e);
  if (r == CUDA_SUCCESS && p != nullptr && pitch != nullptr) record_alloc(*p, *pitch * h, AllocKind::malloc, nullptr);
  return r;
}
OVERSUB_EXPORT CUresult cuMemFree_v2(CUdeviceptr p) {
  return release(p, nullptr, false, [&] { return REAL(cuMemFree_v2, p); });
}
OVERSUB_EXPORT CUresult cuMemAllocAsync(CUdeviceptr* p, size_t n, CUstream s) {
  return allocate(p, n, AllocKind::async, s, [&] { return REAL(cuMemAllocAsync, p, n, s); });
}
OVERSUB_EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr* p, size_t n, CUstream s) {
  return allocate(p, n, AllocKind::async, per_thread(s), [&] { return REAL(cuMemAllocAsync_ptsz, p, n, s); });
}
OVERSUB_EXPORT CUresult cuMemFreeAsync(CUdeviceptr p, CUstream s) {
  return release(p, s, true, [&] { return REAL(cuMemFreeAsync, p, s); });
}
OVERSUB_EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr p, CUstream s) {
  return release(p, per_thread(s), true, [&] { return REAL(cuMemFreeAsync_ptsz, p, s); });
}
OVERSUB_EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr* p, size_t n, CUmemoryPool pool, CUstream s) {
  return allocate(p, n, AllocKind::pool, s, [&] { return REAL(cuMemAllocFromPoolAsync, p, n, pool, s); });
}
OVERSUB_EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr* p, size_t n, CUmemoryPool pool, CUstream s) {
  return allocate(p, n, AllocKind::pool, per_thread(s),
                  [&] { return REAL(cuMemAllocFromPoolAsync_ptsz, p, n, pool, s); });
}

// VMM calls the application makes itself (PyTorch's expandable segments):
// each mapped range is tracked like an allocation while it is mapped.
OVERSUB_EXPORT CUresult cuMemMap(CUdeviceptr p, size_t n, size_t offset, CUmemGenericAllocationHandle h,
                                 unsigned long long flags) {
  ensure_started();
  CUresult r = REAL(cuMemMap, p, n, offset, h, flags);
  if (r == CUDA_SUCCESS) record_alloc(p, n, AllocKind::vmm, nullptr);
  return r;
}
OVERSUB_EXPORT CUresult cuMemUnmap(CUdeviceptr p, size_t n) {
  ensure_started();
  CUresult r = REAL(cuMemUnmap, p, n);
  if (r != CUDA_SUCCESS) return r;
  for (U64 at = p; at < p + n;) {
    Allocation a;
    if (!address_map().find(at, &a)) {
      at += U64{2} << 20;
      continue;
    }
    record_free(a.base, nullptr, false);
    record_free(a.base, nullptr, true);
    at = a.base + a.bytes;
  }
  return r;
}

OVERSUB_EXPORT CUresult cuIpcGetMemHandle(CUipcMemHandle* handle, CUdeviceptr p) {
  ensure_started();
  static const std::uint32_t name = intern_name("ipc_get_mem_handle");
  RangeList ranges;
  add_allocation_range(ranges, p, Access::read_write);
  record_op(OpKind::other, name, nullptr, ranges);
  return REAL(cuIpcGetMemHandle, handle, p);
}

// ---- launches ----

OVERSUB_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                                       unsigned bz, unsigned shmem, CUstream s, void** params, void** extra) {
  return launch(f, s, params, extra,
                [&] { return REAL(cuLaunchKernel, f, gx, gy, gz, bx, by, bz, shmem, s, params, extra); });
}
OVERSUB_EXPORT CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                            unsigned by, unsigned bz, unsigned shmem, CUstream s, void** params,
                                            void** extra) {
  return launch(f, per_thread(s), params, extra,
                [&] { return REAL(cuLaunchKernel_ptsz, f, gx, gy, gz, bx, by, bz, shmem, s, params, extra); });
}
OVERSUB_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig* c, CUfunction f, void** params, void** extra) {
  return launch(f, c ? c->hStream : nullptr, params, extra, [&] { return REAL(cuLaunchKernelEx, c, f, params, extra); });
}
OVERSUB_EXPORT CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig* c, CUfunction f, void** params, void** extra) {
  return launch(f, per_thread(c ? c->hStream : nullptr), params, extra,
                [&] { return REAL(cuLaunchKernelEx_ptsz, c, f, params, extra); });
}
OVERSUB_EXPORT CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                                  unsigned by, unsigned bz, unsigned shmem, CUstream s,
                                                  void** params) {
  return launch(f, s, params, nullptr,
                [&] { return REAL(cuLaunchCooperativeKernel, f, gx, gy, gz, bx, by, bz, shmem, s, params); });
}
OVERSUB_EXPORT CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                                                       unsigned bx, unsigned by, unsigned bz, unsigned shmem,
                                                       CUstream s, void** params) {
  return launch(f, per_thread(s), params, nullptr,
                [&] { return REAL(cuLaunchCooperativeKernel_ptsz, f, gx, gy, gz, bx, by, bz, shmem, s, params); });
}

// A graph's nodes are not visible here; the op is recorded without ranges.
OVERSUB_EXPORT CUresult cuGraphLaunch(CUgraphExec g, CUstream s) {
  ensure_started();
  static const std::uint32_t name = intern_name("graph_launch");
  record_op(OpKind::graph, name, s, RangeList{});
  return opaque_launch(s, [&] { return REAL(cuGraphLaunch, g, s); });
}
OVERSUB_EXPORT CUresult cuGraphLaunch_ptsz(CUgraphExec g, CUstream s) {
  ensure_started();
  static const std::uint32_t name = intern_name("graph_launch");
  record_op(OpKind::graph, name, per_thread(s), RangeList{});
  return opaque_launch(per_thread(s), [&] { return REAL(cuGraphLaunch_ptsz, g, s); });
}

// ---- copies ----

OVERSUB_EXPORT CUresult cuMemcpy(CUdeviceptr d, CUdeviceptr s, size_t n) {
  return copy(d, s, n, nullptr, [&] { return REAL(cuMemcpy, d, s, n); });
}
OVERSUB_EXPORT CUresult cuMemcpy_ptds(CUdeviceptr d, CUdeviceptr s, size_t n) {
  return copy(d, s, n, CU_STREAM_PER_THREAD, [&] { return REAL(cuMemcpy_ptds, d, s, n); });
}
OVERSUB_EXPORT CUresult cuMemcpyAsync(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st) {
  return copy(d, s, n, st, [&] { return REAL(cuMemcpyAsync, d, s, n, st); });
}
OVERSUB_EXPORT CUresult cuMemcpyAsync_ptsz(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st) {
  return copy(d, s, n, per_thread(st), [&] { return REAL(cuMemcpyAsync_ptsz, d, s, n, st); });
}
OVERSUB_EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void* s, size_t n) {
  return copy(d, H(s), n, nullptr, [&] { return REAL(cuMemcpyHtoD_v2, d, s, n); });
}
OVERSUB_EXPORT CUresult cuMemcpyHtoD_v2_ptds(CUdeviceptr d, const void* s, size_t n) {
  return copy(d, H(s), n, CU_STREAM_PER_THREAD, [&] { return REAL(cuMemcpyHtoD_v2_ptds, d, s, n); });
}
OVERSUB_EXPORT CUresult cuMemcpyDtoH_v2(void* d, CUdeviceptr s, size_t n) {
  return copy(H(d), s, n, nullptr, [&] { return REAL(cuMemcpyDtoH_v2, d, s, n); });
}
OVERSUB_EXPORT CUresult cuMemcpyDtoH_v2_ptds(void* d, CUdeviceptr s, size_t n) {
  return copy(H(d), s, n, CU_STREAM_PER_THREAD, [&] { return REAL(cuMemcpyDtoH_v2_ptds, d, s, n); });
}
OVERSUB_EXPORT CUresult cuMemcpyDtoD_v2(CUdeviceptr d, CUdeviceptr s, size_t n) {
  return copy(d, s, n, nullptr, [&] { return REAL(cuMemcpyDtoD_v2, d, s, n); });
}
OVERSUB_EXPORT CUresult cuMemcpyDtoD_v2_ptds(CUdeviceptr d, CUdeviceptr s, size_t n) {
  return copy(d, s, n, CU_STREAM_PER_THREAD, [&] { return REAL(cuMemcpyDtoD_v2_ptds, d, s, n); });
}
OVERSUB_EXPORT CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void* s, size_t n, CUstream st) {
  return copy(d, H(s), n, st, [&] { return REAL(cuMemcpyHtoDAsync_v2, d, s, n, st); });
}
OVERSUB_EXPORT CUresult cuMemcpyHtoDAsync_v2_ptsz(CUdeviceptr d, const void* s, size_t n, CUstream st) {
  return copy(d, H(s), n, per_thread(st), [&] { return REAL(cuMemcpyHtoDAsync_v2_ptsz, d, s, n, st); });
}
OVERSUB_EXPORT CUresult cuMemcpyDtoHAsync_v2(void* d, CUdeviceptr s, size_t n, CUstream st) {
  return copy(H(d), s, n, st, [&] { return REAL(cuMemcpyDtoHAsync_v2, d, s, n, st); });
}
OVERSUB_EXPORT CUresult cuMemcpyDtoHAsync_v2_ptsz(void* d, CUdeviceptr s, size_t n, CUstream st) {
  return copy(H(d), s, n, per_thread(st), [&] { return REAL(cuMemcpyDtoHAsync_v2_ptsz, d, s, n, st); });
}
OVERSUB_EXPORT CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st) {
  return copy(d, s, n, st, [&] { return REAL(cuMemcpyDtoDAsync_v2, d, s, n, st); });
}
OVERSUB_EXPORT CUresult cuMemcpyDtoDAsync_v2_ptsz(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st) {
  return copy(d, s, n, per_thread(st), [&] { return REAL(cuMemcpyDtoDAsync_v2_ptsz, d, s, n, st); });
}
OVERSUB_EXPORT CUresult cuMemcpy2D_v2(const CUDA_MEMCPY2D* p) {
  return copy_2d(p, nullptr, [&] { return REAL(cuMemcpy2D_v2, p); });
}
OVERSUB_EXPORT CUresult cuMemcpy2D_v2_ptds(const CUDA_MEMCPY2D* p) {
  return copy_2d(p, CU_STREAM_PER_THREAD, [&] { return REAL(cuMemcpy2D_v2_ptds, p); });
}
OVERSUB_EXPORT CUresult cuMemcpy2DUnaligned_v2(const CUDA_MEMCPY2D* p) {
  return copy_2d(p, nullptr, [&] { return REAL(cuMemcpy2DUnaligned_v2, p); });
}
OVERSUB_EXPORT CUresult cuMemcpy2DUnaligned_v2_ptds(const CUDA_MEMCPY2D* p) {
  return copy_2d(p, CU_STREAM_PER_THREAD, [&] { return REAL(cuMemcpy2DUnaligned_v2_ptds, p); });
}
OVERSUB_EXPORT CUresult cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D* p, CUstream st) {
  return copy_2d(p, st, [&] { return REAL(cuMemcpy2DAsync_v2, p, st); });
}
OVERSUB_EXPORT CUresult cuMemcpy2DAsync_v2_ptsz(const CUDA_MEMCPY2D* p, CUstream st) {
  return copy_2d(p, per_thread(st), [&] { return REAL(cuMemcpy2DAsync_v2_ptsz, p, st); });
}

// ---- memsets ----

#define MEMSET_1D(symbol, T, size, stream_expr)                                                     \
  OVERSUB_EXPORT CUresult symbol(CUdeviceptr d, T v, size_t n) {                                    \
    return set_memory(d, n * size, n * size, 1, stream_expr, [&] { return REAL(symbol, d, v, n); });    \
  }
#define MEMSET_1D_ASYNC(symbol, T, size, wrap)                                                      \
  OVERSUB_EXPORT CUresult symbol(CUdeviceptr d, T v, size_t n, CUstream s) {                        \
    return set_memory(d, n * size, n * size, 1, wrap(s), [&] { return REAL(symbol, d, v, n, s); });     \
  }
#define MEMSET_2D(symbol, T, size, stream_expr)                                                     \
  OVERSUB_EXPORT CUresult symbol(CUdeviceptr d, size_t pitch, T v, size_t w, size_t h) {            \
    return set_memory(d, pitch, w * size, h, stream_expr, [&] { return REAL(symbol, d, pitch, v, w, h); }); \
  }
#define MEMSET_2D_ASYNC(symbol, T, size, wrap)                                                      \
  OVERSUB_EXPORT CUresult symbol(CUdeviceptr d, size_t pitch, T v, size_t w, size_t h, CUstream s) { \
    return set_memory(d, pitch, w * size, h, wrap(s), [&] { return REAL(symbol, d, pitch, v, w, h, s); }); \
  }
#define SAME(s) (s)

MEMSET_1D(cuMemsetD8_v2, unsigned char, 1, nullptr)
MEMSET_1D(cuMemsetD8_v2_ptds, unsigned char, 1, CU_STREAM_PER_THREAD)
MEMSET_1D(cuMemsetD16_v2, unsigned short, 2, nullptr)
MEMSET_1D(cuMemsetD16_v2_ptds, unsigned short, 2, CU_STREAM_PER_THREAD)
MEMSET_1D(cuMemsetD32_v2, unsigned int, 4, nullptr)
MEMSET_1D(cuMemsetD32_v2_ptds, unsigned int, 4, CU_STREAM_PER_THREAD)
MEMSET_1D_ASYNC(cuMemsetD8Async, unsigned char, 1, SAME)
MEMSET_1D_ASYNC(cuMemsetD8Async_ptsz, unsigned char, 1, per_thread)
MEMSET_1D_ASYNC(cuMemsetD16Async, unsigned short, 2, SAME)
MEMSET_1D_ASYNC(cuMemsetD16Async_ptsz, unsigned short, 2, per_thread)
MEMSET_1D_ASYNC(cuMemsetD32Async, unsigned int, 4, SAME)
MEMSET_1D_ASYNC(cuMemsetD32Async_ptsz, unsigned int, 4, per_thread)
MEMSET_2D(cuMemsetD2D8_v2, unsigned char, 1, nullptr)
MEMSET_2D(cuMemsetD2D8_v2_ptds, unsigned char, 1, CU_STREAM_PER_THREAD)
MEMSET_2D(cuMemsetD2D32_v2, unsigned int, 4, nullptr)
MEMSET_2D(cuMemsetD2D32_v2_ptds, unsigned int, 4, CU_STREAM_PER_THREAD)
MEMSET_2D_ASYNC(cuMemsetD2D8Async, unsigned char, 1, SAME)
MEMSET_2D_ASYNC(cuMemsetD2D8Async_ptsz, unsigned char, 1, per_thread)
MEMSET_2D_ASYNC(cuMemsetD2D32Async, unsigned int, 4, SAME)
MEMSET_2D_ASYNC(cuMemsetD2D32Async_ptsz, unsigned int, 4, per_thread)

// ---- synchronisation and capture ----

OVERSUB_EXPORT CUresult cuCtxSynchronize() {
  return sync(SyncKind::device, 0, [&] { return REAL0(cuCtxSynchronize); });
}
OVERSUB_EXPORT CUresult cuStreamSynchronize(CUstream s) {
  return sync(SyncKind::stream, H(s), [&] { return REAL(cuStreamSynchronize, s); });
}
OVERSUB_EXPORT CUresult cuStreamSynchronize_ptsz(CUstream s) {
  return sync(SyncKind::stream, H(per_thread(s)), [&] { return REAL(cuStreamSynchronize_ptsz, s); });
}
OVERSUB_EXPORT CUresult cuEventSynchronize(CUevent e) {
  return sync(SyncKind::event, H(e), [&] { return REAL(cuEventSynchronize, e); });
}
OVERSUB_EXPORT CUresult cuStreamWaitEvent(CUstream s, CUevent e, unsigned int flags) {
  ensure_started();
  return REAL(cuStreamWaitEvent, s, e, flags);
}
OVERSUB_EXPORT CUresult cuStreamWaitEvent_ptsz(CUstream s, CUevent e, unsigned int flags) {
  ensure_started();
  return REAL(cuStreamWaitEvent_ptsz, s, e, flags);
}
OVERSUB_EXPORT CUresult cuStreamBeginCapture_v2(CUstream s, CUstreamCaptureMode mode) {
  ensure_started();
  return REAL(cuStreamBeginCapture_v2, s, mode);
}
OVERSUB_EXPORT CUresult cuStreamBeginCapture_v2_ptsz(CUstream s, CUstreamCaptureMode mode) {
  ensure_started();
  return REAL(cuStreamBeginCapture_v2_ptsz, s, mode);
}
OVERSUB_EXPORT CUresult cuStreamEndCapture(CUstream s, CUgraph* g) {
  ensure_started();
  return REAL(cuStreamEndCapture, s, g);
}
OVERSUB_EXPORT CUresult cuStreamEndCapture_ptsz(CUstream s, CUgraph* g) {
  ensure_started();
  return REAL(cuStreamEndCapture_ptsz, s, g);
}
