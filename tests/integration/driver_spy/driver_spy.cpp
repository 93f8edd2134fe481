// A stand-in libcuda.so.1 that does no work and reports every call into it.
//
// With its directory first on LD_LIBRARY_PATH, every way a program or the shim
// reaches the driver (dlopen + dlsym, cuGetProcAddress, a direct link) lands
// here: each entry point of the simulated driver (../../simcuda/driver/
// entry_points.def) writes "driver_spy: SYMBOL called" on stderr and fails with
// CUDA_ERROR_NOT_INITIALIZED. check_config_errors.py runs a program with a bad
// setting against it to show that the process stopped before any call reached
// the driver, and with good settings to show that the spy does see the calls.
#include <unistd.h>

#include <cstring>

namespace {

constexpr int kNotInitialized = 3;  // CUDA_ERROR_NOT_INITIALIZED

// write(2), not stdio: the spy may be called while the program's stdio is
// being torn down, and must not allocate.
void report(const char* symbol) {
  char line[160] = "driver_spy: ";
  std::strncat(line, symbol, 100);
  std::strcat(line, " called\n");
  ssize_t ignored = ::write(STDERR_FILENO, line, std::strlen(line));
  (void)ignored;
}

}  // namespace

// Variadic: the spy never reads its arguments, so one C signature fits every
// entry point (the x86-64 and AArch64 calling conventions let a callee ignore them).
#define DRIVER_SPY(symbol)                                                 \
  extern "C" __attribute__((visibility("default"))) int symbol(...) {     \
    report(#symbol);                                                       \
    return kNotInitialized;                                                \
  }
#define SIMCU_PROC(base, version, symbol) DRIVER_SPY(symbol)
#define SIMCU_PROC_PT(base, version, legacy, per_thread) DRIVER_SPY(legacy) DRIVER_SPY(per_thread)
#include "entry_points.def"
