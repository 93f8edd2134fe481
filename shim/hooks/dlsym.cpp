// Exported dlsym, in both glibc versions (2.2.5 for binaries built before glibc
// 2.34, 2.34 for newer ones).
//
// Note [Why we export dlsym]
// TensorFlow binds the driver with dlsym on a dlopen handle, and the CUDA
// runtime (also the copy inside cuBLAS, cuDNN, NCCL) takes cuGetProcAddress_v2
// that way. LD_PRELOAD alone does not catch a handle lookup, so we answer it:
// for a symbol we wrap, we return our wrapper; everything else is the C
// library's answer. RTLD_NEXT is resolved relative to the caller, not to us.
#include <dlfcn.h>

#include "../engine/real.h"
#include "common.h"

namespace {

OVERSUB_BEFORE_SANITIZERS bool defined_in_this_library(const void* symbol) {
  Dl_info mine{}, theirs{};
  if (dladdr(reinterpret_cast<const void*>(&defined_in_this_library), &mine) == 0) return false;
  if (dladdr(symbol, &theirs) == 0) return false;
  return mine.dli_fbase == theirs.dli_fbase;
}

// Runs inside other libraries' start-up too (Note [Lookups during another
// library's start-up] in engine/real.cpp).
OVERSUB_BEFORE_SANITIZERS void* lookup(void* handle, const char* name, const void* caller) {
  void* found = handle == RTLD_NEXT ? oversub::next_symbol_after(caller, name) : oversub::real_dlsym(handle, name);
  if (found == nullptr || name == nullptr || name[0] != 'c' || name[1] != 'u') return found;
  void* wrapper = oversub::driver_wrapper_by_name(name);
  if (wrapper == nullptr) return found;
  // A global lookup may find our own export first: answer with the wrapper only
  // if the real function exists beneath us.
  if (defined_in_this_library(found) &&
      oversub::next_symbol_after(reinterpret_cast<const void*>(&defined_in_this_library), name) == nullptr)
    return nullptr;
  return wrapper;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) OVERSUB_BEFORE_SANITIZERS void* oversub_dlsym_2_34(void* handle, const char* name) {
  return lookup(handle, name, __builtin_return_address(0));
}
extern "C" __attribute__((visibility("default"))) OVERSUB_BEFORE_SANITIZERS void* oversub_dlsym_2_2_5(void* handle, const char* name) {
  return lookup(handle, name, __builtin_return_address(0));
}
__asm__(".symver oversub_dlsym_2_34, dlsym@@GLIBC_2.34");
__asm__(".symver oversub_dlsym_2_2_5, dlsym@GLIBC_2.2.5");
