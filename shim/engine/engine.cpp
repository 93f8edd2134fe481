// Engine state: start-up, the real driver table, and recording into the trace.
#include "engine.h"

#include <dlfcn.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "../config.h"
#include "../log.h"
#include "real.h"
#include "tracer/writer.h"

namespace oversub {
namespace {

struct State {
  trace::Writer* writer = nullptr;  // leaked on purpose: see writer.h "Lifetime"
};

State& state() {
  static State s;  // trivially destructible: hooks may run during exit
  return s;
}

constexpr bool required = true, optional = false;
struct DriverTables {
  RealDriver real;
};

DriverTables& driver_tables() {
  static DriverTables* tables = [] {
    auto* t = new DriverTables;
    void* h = driver_handle();
    if (h == nullptr) {
      log_error("cannot find libcuda.so.1: every CUDA call will fail");
      return t;
    }
    auto resolve = [h](const char* name) { return real_dlsym(h, name); };
#define OVERSUB_DRIVER(symbol, type, need)                                                  \
  t->real.symbol = reinterpret_cast<driver_types::symbol##_fn*>(resolve(#symbol));         \
  if (t->real.symbol == nullptr && need)                                                    \
    log_error("libcuda.so.1 lacks %s, which every CUDA 12+ driver has", #symbol);
#include "../hooks/driver_api.def"
#undef OVERSUB_DRIVER
    auto set = [&](auto*& member, const char* name) { member = reinterpret_cast<std::remove_reference_t<decltype(member)>>(resolve(name)); };
    set(t->real.cuFuncGetParamInfo, "cuFuncGetParamInfo");
    set(t->real.cuKernelGetParamInfo, "cuKernelGetParamInfo");
    set(t->real.cuFuncGetName, "cuFuncGetName");
    set(t->real.cuStreamIsCapturing, "cuStreamIsCapturing");
    set(t->real.cuDeviceGetName, "cuDeviceGetName");
    set(t->real.cuDeviceTotalMem_v2, "cuDeviceTotalMem_v2");
    set(t->real.cuDeviceGetAttribute, "cuDeviceGetAttribute");
    set(t->real.cuCtxGetDevice, "cuCtxGetDevice");
    set(t->real.cuCtxGetCurrent, "cuCtxGetCurrent");
    set(t->real.cuCtxSetCurrent, "cuCtxSetCurrent");
    set(t->real.cuStreamCreate, "cuStreamCreate");
    set(t->real.cuEventCreate, "cuEventCreate");
    set(t->real.cuEventRecord, "cuEventRecord");
    set(t->real.cuEventQuery, "cuEventQuery");
    set(t->real.cuEventDestroy_v2, "cuEventDestroy_v2");
    set(t->real.cuMemAddressReserve, "cuMemAddressReserve");
    set(t->real.cuMemCreate, "cuMemCreate");
    set(t->real.cuMemSetAccess, "cuMemSetAccess");
    set(t->real.cuMemRelease, "cuMemRelease");
    return t;
  }();
  return *tables;
}

std::string read_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::replace(raw.begin(), raw.end(), '\0', ' ');
  while (!raw.empty() && raw.back() == ' ') raw.pop_back();
  return raw;
}

void open_trace(const std::string& path) {
  std::string error;
  std::unique_ptr<trace::Writer> w = trace::Writer::open(path, &error);
  if (!w) {
    log_error("OVERSUB_TRACE: %s; continuing without a trace", error.c_str());
    return;
  }
  trace::ProcessInfo info;
  info.pid = static_cast<std::uint64_t>(getpid());
  char exe[4096] = {};
  if (readlink("/proc/self/exe", exe, sizeof exe - 1) > 0) info.executable = exe;
  info.command_line = read_command_line();
  timespec real_now{}, mono_now{};
  clock_gettime(CLOCK_REALTIME, &real_now);
  clock_gettime(CLOCK_MONOTONIC, &mono_now);
  info.start_unix_ns = std::uint64_t(real_now.tv_sec) * 1'000'000'000 + std::uint64_t(real_now.tv_nsec);
  info.start_monotonic_ns = std::uint64_t(mono_now.tv_sec) * 1'000'000'000 + std::uint64_t(mono_now.tv_nsec);
  info.oversub_version = OVERSUB_VERSION;
  info.mode = config().mode == Mode::passthrough ? "passthrough" : "swap";
  info.policy = config().mode != Mode::swap ? "none" : config().policy == PolicyKind::lru ? "lru" : "lookahead";
  w->process(info);
  state().writer = w.release();
  // Complete when the program returns from main or calls exit().
  std::atexit([] { state().writer->close(); });
  // A forked child must neither join the parent's writer thread nor write
  // into the parent's file.
  pthread_atfork(nullptr, nullptr, [] { state().writer->abandon_after_fork(); });
}

// The device line is written once a context exists (first allocation).
void describe_device_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    trace::Writer* w = state().writer;
    const RealDriver& r = real_driver();
    if (w == nullptr || !r.cuCtxGetDevice || !r.cuDeviceGetName) return;
    CUdevice dev = 0;
    if (r.cuCtxGetDevice(&dev) != CUDA_SUCCESS) return;
    trace::DeviceInfo info;
    info.ordinal = static_cast<std::uint32_t>(dev);
    char name[256] = {};
    if (r.cuDeviceGetName(name, sizeof name, dev) == CUDA_SUCCESS) info.name = name;
    size_t total = 0;
    if (r.cuDeviceTotalMem_v2 && r.cuDeviceTotalMem_v2(&total, dev) == CUDA_SUCCESS) info.total_bytes = total;
    int major = 0, minor = 0;
    if (r.cuDeviceGetAttribute) {
      r.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
      r.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
    }
    info.compute_major = static_cast<std::uint32_t>(major);
    info.compute_minor = static_cast<std::uint32_t>(minor);
    w->device(info);
  });
}

}  // namespace

std::atomic<const RealDriver*> g_real_driver{nullptr};
std::atomic<bool> g_started{false};
thread_local ThreadState t_thread_state __attribute__((tls_model("initial-exec")));
// Never destroyed: hooks may run during exit, after static destructors.
AddressMap* const g_address_map = new AddressMap;

trace::Writer* trace_writer() { return state().writer; }
bool tracing() { return state().writer != nullptr; }

const RealDriver& resolve_real_driver() {
  const RealDriver& r = driver_tables().real;
  g_real_driver.store(&r, std::memory_order_release);
  return r;
}

void start() {
  static std::once_flag once;
  std::call_once(once, [] {
    const Config& c = config();  // exits with status 2 on a bad OVERSUB_* value
    (void)resolve_real_driver();
    if (!c.trace_path.empty()) open_trace(expand_process_id(c.trace_path));
    log_debug("started in %s mode", c.mode == Mode::passthrough ? "passthrough" : "swap");
    g_started.store(true, std::memory_order_release);
  });
}

// ---- ranges ----

bool add_allocation_range(RangeList& ranges, std::uint64_t address, Access access) {
  Allocation a;
  if (!address_map().find(address, &a)) return false;
  ranges.add(a.base, a.bytes, access);
  return true;
}

void add_exact_range(RangeList& ranges, std::uint64_t address, std::uint64_t bytes, Access access) {
  Allocation a;
  if (bytes == 0 || !address_map().find(address, &a)) return;
  std::uint64_t end = std::min(address + bytes, a.base + a.bytes);
  ranges.add(address, end - address, access);
}

// ---- recording ----

std::uint32_t intern_name(std::string_view name) {
  trace::Writer* w = state().writer;
  return w == nullptr ? trace::no_name : w->name_id(name);
}

void record_op(OpKind kind, std::uint32_t name, CUstream stream, const RangeList& ranges,
               trace::CopyDirection direction) {
  trace::Writer* w = state().writer;
  if (w == nullptr) return;
  const auto stream_id = reinterpret_cast<std::uint64_t>(stream);
  if (kind == OpKind::copy) w->copy(name, stream_id, direction, ranges.data(), ranges.size());
  else w->op(kind, name, stream_id, ranges.data(), ranges.size());
}

void record_alloc(std::uint64_t base, std::uint64_t bytes, AllocKind kind, CUstream stream) {
  trace::Writer* w = state().writer;
  std::uint32_t site = trace::no_site;
  if (w != nullptr) {
    describe_device_once();
    uintptr_t frames[32];
    // Skip record_alloc, the engine template and the hook: the site starts at the caller.
    std::size_t n = trace::capture_call_site(frames, 32, 2);
    site = w->site_id(frames, n);
  }
  std::uint64_t id = address_map().insert(base, bytes, kind, site);
  if (w != nullptr) w->alloc(id, base, bytes, reinterpret_cast<std::uint64_t>(stream), site, kind);
}

void record_free(std::uint64_t base, CUstream stream, bool completed) {
  trace::Writer* w = state().writer;
  if (!completed) {
    Allocation a;
    if (w != nullptr && address_map().find(base, &a) && a.base == base)
      w->free_requested(a.id, base, reinterpret_cast<std::uint64_t>(stream));
    return;
  }
  Allocation a;
  if (address_map().erase(base, &a) && w != nullptr)
    w->free_completed(a.id, base, reinterpret_cast<std::uint64_t>(stream));
}

void record_sync(trace::SyncKind kind, std::uint64_t handle) {
  if (trace::Writer* w = state().writer) w->sync(kind, handle);
}

}  // namespace oversub
