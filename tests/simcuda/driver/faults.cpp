// Fault injection: SIMCUDA_FAIL=CALL:N (tests/simcuda/README.md).
//
// Note [Injected faults]
// A real driver fails calls that the simulation would otherwise always serve:
// cuMemCreate when the device (or the host, for host-located memory) has no
// more to give, cuMemMap when the memory behind a mapping cannot be set up,
// an async copy when it cannot be submitted. SIMCUDA_FAIL makes exactly one
// such call fail, the Nth of its function in the process, before the call has
// any effect (no memory charged, nothing mapped, nothing queued), with the
// error the real driver returns. Off by default; it makes nothing else
// different, so what a test sees is what a failing real driver would show.
#include <atomic>
#include <cstdio>
#include <iterator>

#include "driver.h"
#include "../common/settings.h"

namespace simcuda::driver {

CUresult injected_failure(FailableCall call) {
  static std::atomic<std::uint64_t> counts[std::size(kFailableCalls)];
  const Settings& s = settings();
  const char* name = kFailableCalls[static_cast<int>(call)];
  if (s.fail_call != name) return CUDA_SUCCESS;
  const std::uint64_t n = counts[static_cast<int>(call)].fetch_add(1, std::memory_order_relaxed) + 1;
  if (n != s.fail_nth) return CUDA_SUCCESS;
  std::fprintf(stderr, "simcuda: injected failure: %s call %llu\n", name, static_cast<unsigned long long>(n));
  return call == FailableCall::memcpy_dtod_async ? CUDA_ERROR_UNKNOWN : CUDA_ERROR_OUT_OF_MEMORY;
}

}  // namespace simcuda::driver
