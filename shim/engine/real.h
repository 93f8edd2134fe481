// Finding the real functions beneath the shim.
//
// Note [Real symbols]
// The shim never links libcuda, libcudart, libcublas or libcudnn. It finds the
// real functions at run time: the driver's by name inside the already-loaded
// libcuda.so.1 (dlopen with RTLD_NOLOAD, loading it only if the caller got here
// without it), the libraries' with RTLD_NEXT. Because we also export `dlsym`,
// every lookup of our own goes through `real_dlsym`, the C library's.
#pragma once

// Marks a function that may run inside another library's start-up, before a
// sanitizer runtime is ready (Note [Lookups during another library's start-up]
// in real.cpp): never instrumented. Functions it calls need it too, or GCC
// calls their instrumented copies instead of inlining them.
#define OVERSUB_BEFORE_SANITIZERS __attribute__((no_sanitize("address", "undefined", "thread")))

namespace oversub {

using DlsymFn = void* (*)(void*, const char*);

// The C library's dlsym (never ours).
void* real_dlsym(void* handle, const char* name);

// dlsym(RTLD_NEXT, name) as seen from the object that contains `caller`,
// computed by walking the link map (needed because our dlsym is the caller).
// Calls neither dlopen nor dl_iterate_phdr.
void* next_symbol_after(const void* caller, const char* name);

// The loaded libcuda.so.1 (loading it if needed); nullptr when there is none.
void* driver_handle();

}  // namespace oversub
