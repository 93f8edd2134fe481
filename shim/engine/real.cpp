#include "real.h"

#include <dlfcn.h>
#include <link.h>
#include <sys/auxv.h>

#include <cstdint>

namespace oversub {

// Note [Lookups during another library's start-up]
// A library preloaded ahead of us resolves its own interceptors with
// dlsym(RTLD_NEXT) while it initialises, and that call reaches our dlsym: the
// sanitizer runtimes do it for each function they wrap (mmap, dlopen,
// dl_iterate_phdr, ...) before any of those wrappers works. Our RTLD_NEXT walk
// used to dlopen each object: that entered AddressSanitizer's dlopen wrapper
// before it had the real function, and glibc's own dlopen runs the pending
// constructors of other libraries out of order. Either way
// LD_PRELOAD=libasan.so:liboversub.so died at start-up. So the walk calls no
// dl* function that loads, initialises or is commonly wrapped: it follows the
// link map from dladdr1 and reads each object's dynamic symbol table itself
// (`defined_in_object`). The C library's dlsym comes from dlvsym(RTLD_NEXT),
// which only looks beneath us and which nobody wraps. None of this is ever
// instrumented by a sanitizer, whose runtime may not be set up yet (Note
// [Sanitizer builds] in meson.build).
namespace {

// A pointer from the dynamic section: ld.so relocates them in place, except
// where the section is read-only (the vDSO), whose values are offsets.
template <typename T>
OVERSUB_BEFORE_SANITIZERS const T* dynamic_pointer(const link_map* map, ElfW(Addr) value) {
  return reinterpret_cast<const T*>(value < map->l_addr ? value + map->l_addr : value);
}

OVERSUB_BEFORE_SANITIZERS bool same_name(const char* a, const char* b) {
  while (*a != '\0' && *a == *b) ++a, ++b;
  return *a == *b;
}

struct SymbolTable {
  const ElfW(Sym)* symbols = nullptr;
  const char* strings = nullptr;
  const ElfW(Half)* versions = nullptr;        // DT_VERSYM, if any
  const std::uint32_t* gnu_hash = nullptr;      // DT_GNU_HASH, if any
  const ElfW(Word)* sysv_hash = nullptr;        // DT_HASH, if any
};

// Whether symbol `index` is a definition that an unversioned lookup (dlsym)
// accepts: defined, global or weak, not TLS, and the default version.
OVERSUB_BEFORE_SANITIZERS bool is_definition(const SymbolTable& t, std::uint32_t index, const char* name) {
  const ElfW(Sym)& s = t.symbols[index];
  const unsigned bind = ELF64_ST_BIND(s.st_info), type = ELF64_ST_TYPE(s.st_info);
  if (s.st_shndx == SHN_UNDEF || type == STT_TLS) return false;
  if (bind != STB_GLOBAL && bind != STB_WEAK && bind != STB_GNU_UNIQUE) return false;
  if (t.versions != nullptr && (t.versions[index] & 0x8000) != 0) return false;  // hidden version
  return same_name(t.strings + s.st_name, name);
}

// The address of `name` as defined in the object `map` itself (not its
// dependencies), or nullptr: what ld.so's lookup does for one object.
OVERSUB_BEFORE_SANITIZERS void* defined_in_object(const link_map* map, const char* name) {
  SymbolTable t;
  for (const ElfW(Dyn)* d = map->l_ld; d != nullptr && d->d_tag != DT_NULL; ++d) {
    if (d->d_tag == DT_SYMTAB) t.symbols = dynamic_pointer<ElfW(Sym)>(map, d->d_un.d_ptr);
    if (d->d_tag == DT_STRTAB) t.strings = dynamic_pointer<char>(map, d->d_un.d_ptr);
    if (d->d_tag == DT_VERSYM) t.versions = dynamic_pointer<ElfW(Half)>(map, d->d_un.d_ptr);
    if (d->d_tag == DT_GNU_HASH) t.gnu_hash = dynamic_pointer<std::uint32_t>(map, d->d_un.d_ptr);
    if (d->d_tag == DT_HASH) t.sysv_hash = dynamic_pointer<ElfW(Word)>(map, d->d_un.d_ptr);
  }
  if (t.symbols == nullptr || t.strings == nullptr) return nullptr;
  std::uint32_t found = 0;  // index 0 is the null symbol
  if (t.gnu_hash != nullptr) {
    // Header: buckets, first hashed symbol, Bloom words, Bloom shift; then the
    // Bloom filter (address-sized words), the buckets and the hash chains.
    const std::uint32_t buckets = t.gnu_hash[0], first = t.gnu_hash[1], bloom_words = t.gnu_hash[2];
    const std::uint32_t* bucket = t.gnu_hash + 4 + bloom_words * (sizeof(ElfW(Addr)) / 4);
    const std::uint32_t* chain = bucket + buckets;
    std::uint32_t hash = 5381;
    for (const char* c = name; *c != '\0'; ++c) hash = hash * 33 + static_cast<unsigned char>(*c);
    for (std::uint32_t i = bucket[hash % buckets]; i >= first && found == 0; ++i) {
      const std::uint32_t h = chain[i - first];
      if ((h | 1) == (hash | 1) && is_definition(t, i, name)) found = i;
      if ((h & 1) != 0) break;  // end of this bucket's chain
    }
  } else if (t.sysv_hash != nullptr) {
    const ElfW(Word) buckets = t.sysv_hash[0];
    const ElfW(Word)* bucket = t.sysv_hash + 2;
    const ElfW(Word)* chain = bucket + buckets;
    std::uint32_t hash = 0;
    for (const char* c = name; *c != '\0'; ++c) {
      hash = (hash << 4) + static_cast<unsigned char>(*c);
      hash = (hash ^ ((hash & 0xf0000000u) >> 24)) & 0x0fffffffu;
    }
    for (ElfW(Word) i = bucket[hash % buckets]; i != STN_UNDEF && found == 0; i = chain[i]) {
      if (is_definition(t, i, name)) found = i;
    }
  }
  if (found == 0) return nullptr;
  const ElfW(Sym)& s = t.symbols[found];
  void* address = reinterpret_cast<void*>(map->l_addr + s.st_value);
  // An IFUNC's value is its resolver (glibc's string functions): ask it, as
  // ld.so does, with the hardware capabilities.
  if (ELF64_ST_TYPE(s.st_info) == STT_GNU_IFUNC)
    address = reinterpret_cast<void* (*)(unsigned long)>(address)(getauxval(AT_HWCAP));
  return address;
}

// The link map entry of the object that contains `address`, or nullptr.
OVERSUB_BEFORE_SANITIZERS link_map* object_containing(const void* address) {
  Dl_info info{};
  link_map* map = nullptr;
  if (dladdr1(address, &info, reinterpret_cast<void**>(&map), RTLD_DL_LINKMAP) == 0) return nullptr;
  return map;
}

OVERSUB_BEFORE_SANITIZERS DlsymFn find_c_library_dlsym() {
  const char* const versions[] = {"GLIBC_2.34", "GLIBC_2.2.5"};  // dlsym moved to libc in 2.34
  for (const char* version : versions) {
    if (auto fn = reinterpret_cast<DlsymFn>(dlvsym(RTLD_NEXT, "dlsym", version))) return fn;
  }
  return nullptr;
}

}  // namespace

OVERSUB_BEFORE_SANITIZERS void* real_dlsym(void* handle, const char* name) {
  // The C library's, never our export nor that of an interposer ahead of us.
  // Not a function-local static, whose guard a sanitizer wraps: two threads
  // that race here store the same answer.
  static DlsymFn cached = nullptr;
  DlsymFn real = __atomic_load_n(&cached, __ATOMIC_ACQUIRE);
  if (real == nullptr) {
    real = find_c_library_dlsym();
    __atomic_store_n(&cached, real, __ATOMIC_RELEASE);
  }
  return real(handle, name);
}

OVERSUB_BEFORE_SANITIZERS void* next_symbol_after(const void* caller, const char* name) {
  link_map* map = object_containing(caller);
  if (map == nullptr) return nullptr;
  for (map = map->l_next; map != nullptr; map = map->l_next) {
    if (void* found = defined_in_object(map, name)) return found;
  }
  return nullptr;
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
