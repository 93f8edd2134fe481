// Simulated driver: cuGetProcAddress, the way the CUDA runtime (and any copy
// of it linked statically into cuBLAS, cuDNN or NCCL) finds every other entry
// point. Entries come from entry_points.def; symbols are resolved by name in
// this library itself, so an interposer that exports the same names does not
// change what we hand out (the interposer must wrap cuGetProcAddress, as
// DESIGN.md says, to be seen on this path).
#include <dlfcn.h>

#include <cstring>

#include "driver.h"

namespace simcuda::driver {
namespace {

struct EntryPoint {
  const char* name;
  int version;
  const char* legacy_symbol;
  const char* per_thread_symbol;  // nullptr: no per-thread variant
};

constexpr EntryPoint kEntryPoints[] = {
#define SIMCU_PROC(name, version, symbol) {#name, version, #symbol, nullptr},
#define SIMCU_PROC_PT(name, version, legacy, per_thread) {#name, version, #legacy, #per_thread},
#include "entry_points.def"
#undef SIMCU_PROC
#undef SIMCU_PROC_PT
};

void* self_handle() {
  static void* handle = [] {
    Dl_info info{};
    dladdr(reinterpret_cast<void*>(&self_handle), &info);
    return dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
  }();
  return handle;
}

}  // namespace
}  // namespace simcuda::driver

using namespace simcuda::driver;

SIMCU_EXPORT CUresult cuGetProcAddress_v2(const char* symbol, void** pfn, int cuda_version, cuuint64_t flags,
                                          CUdriverProcAddressQueryResult* status) {
  if (symbol == nullptr || pfn == nullptr) return CUDA_ERROR_INVALID_VALUE;
  constexpr cuuint64_t kKnownFlags = CU_GET_PROC_ADDRESS_LEGACY_STREAM | CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM;
  if ((flags & ~kKnownFlags) != 0) return CUDA_ERROR_INVALID_VALUE;
  *pfn = nullptr;
  for (const EntryPoint& e : kEntryPoints) {
    if (std::strcmp(e.name, symbol) != 0) continue;
    if (cuda_version < e.version) {
      if (status) *status = CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
      return CUDA_ERROR_NOT_FOUND;
    }
    // DEFAULT means legacy here: this library is not built for per-thread streams.
    const bool per_thread = (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0;
    const char* name = per_thread && e.per_thread_symbol ? e.per_thread_symbol : e.legacy_symbol;
    *pfn = dlsym(self_handle(), name);
    if (*pfn == nullptr) break;
    if (status) *status = CU_GET_PROC_ADDRESS_SUCCESS;
    return CUDA_SUCCESS;
  }
  if (status) *status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  return CUDA_ERROR_NOT_FOUND;
}

// The pre-12.0 form, without the status output. cuda.h maps the name to _v2,
// so undo that to define the old symbol.
#undef cuGetProcAddress
SIMCU_EXPORT CUresult cuGetProcAddress(const char* symbol, void** pfn, int cuda_version, cuuint64_t flags) {
  return cuGetProcAddress_v2(symbol, pfn, cuda_version, flags, nullptr);
}

// For tests: the number of table entries and each entry's name.
SIMCU_EXPORT int simcudaEntryPointCount() { return static_cast<int>(std::size(kEntryPoints)); }
SIMCU_EXPORT const char* simcudaEntryPointName(int i) {
  return i >= 0 && i < simcudaEntryPointCount() ? kEntryPoints[i].name : nullptr;
}
