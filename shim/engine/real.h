// Finding the real functions beneath the shim.
//
// Note [Real symbols]
// The shim never links libcuda, libcudart, libcublas or libcudnn. It finds the
// real functions at run time: the driver's by name inside the already-loaded
// libcuda.so.1 (dlopen with RTLD_NOLOAD, loading it only if the caller got here
// without it), the libraries' with RTLD_NEXT. Because we also export `dlsym`,
// every lookup of our own goes through `real_dlsym`, the C library's.
#pragma once

namespace oversub {

using DlsymFn = void* (*)(void*, const char*);

// The C library's dlsym (never ours).
void* real_dlsym(void* handle, const char* name);

// dlsym(RTLD_NEXT, name) as seen from the object that contains `caller`,
// computed by walking the link map (needed because our dlsym is the caller).
void* next_symbol_after(const void* caller, const char* name);

// The loaded libcuda.so.1 (loading it if needed); nullptr when there is none.
void* driver_handle();

}  // namespace oversub
