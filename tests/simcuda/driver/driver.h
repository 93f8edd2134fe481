// Internal interface of the simulated driver (libcuda.so.1).
//
// Note [Simulated device memory]
// Device virtual addresses are host virtual addresses inside one region that is
// reserved PROT_NONE at cuInit (address_space.cpp). Kernels, copies and memsets
// run on the CPU and dereference device pointers directly, so:
//  - an address that nothing maps stays PROT_NONE and any access to it raises
//    SIGSEGV, as a real GPU raises an illegal-address error;
//  - VMM physical memory is a memfd, so cuMemUnmap + cuMemMap of the same handle
//    at another address keeps its contents, exactly as on a real device;
//  - capacity is accounted separately (SIMCUDA_MEMORY) and allocations past it
//    fail with CUDA_ERROR_OUT_OF_MEMORY.
// cuMemUnmap and cuMemRelease do not wait for queued work (a real driver does
// not reliably wait either), so a caller that unmaps memory a queued kernel still
// uses crashes here too. cuMemFree waits for the device, as the real one does.
#pragma once

#include <cuda.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#define SIMCU_EXPORT extern "C" __attribute__((visibility("default")))

namespace simcuda::driver {

constexpr std::uint64_t kGranularityBytes = std::uint64_t{2} << 20;  // VMM granularity, as on H100
constexpr std::uint64_t kPageBytes = 4096;                           // host page: our mapping unit
constexpr std::uint64_t kLinearAlignBytes = 512;                      // cuMemAlloc accounting unit

// ---- lifecycle (device.cpp) ----
void initialise_once();
bool initialized();
bool forked_child();  // true in a child forked after init: CUDA calls fail there
// Returns CUDA_SUCCESS when the driver is initialised and a context is current.
CUresult require_context();
CUresult require_init();

// ---- fault injection (faults.cpp, Note [Injected faults]) ----
// In the order of simcuda::kFailableCalls.
enum class FailableCall { mem_create, mem_map, memcpy_dtod_async };
// CUDA_SUCCESS, or the error this call must fail with (SIMCUDA_FAIL).
CUresult injected_failure(FailableCall call);

// ---- device memory (memory.cpp) ----
std::uint64_t capacity_bytes();
std::uint64_t used_bytes();
bool charge_device_bytes(std::uint64_t bytes);  // false: out of memory
void refund_device_bytes(std::uint64_t bytes);
std::uint64_t peak_device_bytes();
bool is_device_address(std::uint64_t address, std::uint64_t bytes = 1);
bool is_pinned_host(const void* pointer, std::uint64_t bytes);
void initialise_address_space();

// ---- streams and events (streams.cpp) ----
enum class DefaultStream { legacy, per_thread };

struct Stream;
struct Dep {
  std::shared_ptr<Stream> stream;
  std::uint64_t seq;
};

struct Stream {
  std::uint64_t id = 0;
  unsigned flags = 0;
  int priority = 0;
  bool legacy = false;
  std::mutex mutex;
  std::condition_variable changed;  // queue grew or `completed` advanced
  struct Task {
    std::function<void()> run;
    std::vector<Dep> deps;
  };
  std::deque<Task> queue;
  std::uint64_t enqueued = 0;   // seq of the last enqueued task
  std::uint64_t completed = 0;  // seq of the last completed task
  bool closing = false;             // destroyed: exit once the queue is drained
  std::atomic<bool> exited{false};  // the worker has returned
  std::thread worker;
  std::mt19937_64 rng;
};

// Resolves a stream handle: 0 by `mode`, CU_STREAM_LEGACY, CU_STREAM_PER_THREAD,
// or a created stream. nullptr when the handle is not a live stream.
std::shared_ptr<Stream> resolve_stream(CUstream handle, DefaultStream mode);
// Queues `run` on `stream` after `extra` (and the legacy-stream rules); returns its seq.
std::uint64_t enqueue(const std::shared_ptr<Stream>& stream, std::function<void()> run,
                      std::vector<Dep> extra = {});
void wait_for(const Dep& dep);
bool is_complete(const Dep& dep);
void synchronize_device();
void shutdown_streams();  // at exit: stop workers, drop queued work
CUresult stream_synchronize(CUstream handle, DefaultStream mode);

// ---- launch (launch.cpp) ----
CUresult launch_kernel(CUfunction f, const std::uint32_t grid[3], const std::uint32_t block[3],
                       unsigned shared_bytes, CUstream stream, void** params, void** extra,
                       DefaultStream mode);

}  // namespace simcuda::driver
