#include "real.h"

#include <dlfcn.h>
#include <link.h>

#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace oversub {

void* real_dlsym(void* handle, const char* name) {
  // dlvsym is not hooked. Ask the C library itself (a handle lookup), for
  // dlsym by version, so that neither our export nor another interposer's
  // answers; glibc before 2.34 has dlsym in libdl.
  static DlsymFn real = [] {
    DlsymFn fn = nullptr;
    for (const char* lib : {"libc.so.6", "libdl.so.2"}) {
      void* h = dlopen(lib, RTLD_LAZY | RTLD_NOLOAD);
      if (h == nullptr) continue;
      for (const char* version : {"GLIBC_2.34", "GLIBC_2.2.5"}) {
        fn = reinterpret_cast<DlsymFn>(dlvsym(h, "dlsym", version));
        if (fn != nullptr) return fn;
      }
    }
    return fn;
  }();
  return real(handle, name);
}

namespace {
struct ObjectWalk {
  const void* caller;
  const char* name;
  bool passed_caller = false;
  void* found = nullptr;
};

bool contains(const dl_phdr_info* info, const void* address) {
  auto a = reinterpret_cast<ElfW(Addr)>(address);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    ElfW(Addr) start = info->dlpi_addr + ph.p_vaddr;
    if (a >= start && a < start + ph.p_memsz) return true;
  }
  return false;
}
}  // namespace

void* next_symbol_after(const void* caller, const char* name) {
  ObjectWalk walk{caller, name};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) -> int {
        auto* w = static_cast<ObjectWalk*>(data);
        if (!w->passed_caller) {
          w->passed_caller = contains(info, w->caller);
          return 0;
        }
        void* h = dlopen(info->dlpi_name[0] != '\0' ? info->dlpi_name : nullptr, RTLD_LAZY | RTLD_NOLOAD);
        if (h == nullptr) return 0;
        // A handle lookup also searches the object's dependencies; accept only
        // a definition that lives in this very object, as RTLD_NEXT does.
        void* sym = real_dlsym(h, w->name);
        dlclose(h);
        if (sym != nullptr && contains(info, sym)) {
          w->found = sym;
          return 1;
        }
        return 0;
      },
      &walk);
  return walk.found;
}

void* driver_handle() {
  static void* handle = [] {
    void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (h == nullptr) h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
    return h;
  }();
  return handle;
}

}  // namespace oversub
