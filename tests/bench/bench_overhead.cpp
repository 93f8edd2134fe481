// bench_overhead: what liboversub adds to a CUDA call, measured in one run
// against direct calls into the simulated GPU.
//
// Run with LD_PRELOAD=liboversub.so (meson test --suite bench does). Every
// call is made twice over: once through the preloaded shim's export, once
// straight into the simulation's own symbol (looked up with the C library's
// dlsym on the simulation's handle, which the shim cannot intercept). The
// work beneath is identical, so the difference of the medians is the shim's
// cost. Repetitions are interleaved at random so that drift hits both sides.
//
// Cases (issue "liboversub: the interposition layer", item 7):
//  - Launch16: cuLaunchKernel of a kernel with 16 pointer parameters whose
//    buffers are all tracked (resident) allocations;
//  - AllocFree: one cuMemAlloc_v2 + cuMemFree_v2 pair of 64 KiB (small, so that the
//    simulation's own cost of filling fresh memory does not drown the difference);
//  - Sgemm: one cublasSgemm_v2 of 8x8x8 on the handle's stream.
#include <benchmark/benchmark.h>
#include <cublas_v2.h>
#include <cuda.h>
#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "simcuda/image.h"

namespace {

using Dlsym = void* (*)(void*, const char*);

Dlsym libc_dlsym() {
  static Dlsym fn = [] {
    void* libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    auto f = reinterpret_cast<Dlsym>(dlvsym(libc, "dlsym", "GLIBC_2.34"));
    return f != nullptr ? f : reinterpret_cast<Dlsym>(dlvsym(libc, "dlsym", "GLIBC_2.2.5"));
  }();
  return fn;
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "bench_overhead: %s\n", what);
  std::exit(1);
}

template <typename Fn>
Fn* lookup(void* handle, const char* name) {
  auto* f = reinterpret_cast<Fn*>(libc_dlsym()(handle, name));
  if (f == nullptr) die((std::string("missing symbol ") + name).c_str());
  return f;
}

void noop_body(const simcuda_launch*, const unsigned char*) {}
constexpr simcuda_param kParams[16] = {{0, 8},  {8, 8},  {16, 8}, {24, 8},  {32, 8},  {40, 8},  {48, 8},  {56, 8},
                                       {64, 8}, {72, 8}, {80, 8}, {88, 8}, {96, 8}, {104, 8}, {112, 8}, {120, 8}};
constexpr simcuda_kernel_desc kKernel{"noop16", noop_body, 16, kParams};
constexpr simcuda_image kImage{SIMCUDA_IMAGE_MAGIC, SIMCUDA_IMAGE_VERSION, 1, &kKernel};

// The two sides of every comparison.
struct Api {
  decltype(cuLaunchKernel)* launch;
  decltype(cuMemAlloc_v2)* alloc;
  decltype(cuMemFree_v2)* free;
  decltype(cublasSgemm_v2)* sgemm;
};

struct Fixture {
  Api direct{}, shim{};
  decltype(cuStreamSynchronize)* sync = nullptr;
  decltype(cuLaunchHostFunc)* host_func = nullptr;
  decltype(cuEventRecord)* record = nullptr;
  decltype(cuStreamWaitEvent)* wait = nullptr;
  CUstream stream = nullptr, gate_stream = nullptr;
  CUevent gate_event = nullptr;
  CUfunction kernel = nullptr;
  CUdeviceptr buffers[16] = {};
  void* params[16] = {};
  cublasHandle_t blas = nullptr;
  CUdeviceptr a = 0, b = 0, c = 0;

  Fixture() {
    void* sim = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
    void* blas_lib = dlopen("libcublas.so.13", RTLD_NOW | RTLD_GLOBAL);
    void* shim_lib = dlopen("liboversub.so", RTLD_NOW | RTLD_NOLOAD);
    if (sim == nullptr || blas_lib == nullptr) die("run with LD_LIBRARY_PATH=build/tests/simcuda");
    if (shim_lib == nullptr) die("run with LD_PRELOAD=build/shim/liboversub.so");
    direct = Api{lookup<decltype(cuLaunchKernel)>(sim, "cuLaunchKernel"), lookup<decltype(cuMemAlloc_v2)>(sim, "cuMemAlloc_v2"),
                 lookup<decltype(cuMemFree_v2)>(sim, "cuMemFree_v2"),
                 lookup<decltype(cublasSgemm_v2)>(blas_lib, "cublasSgemm_v2")};
    shim = Api{lookup<decltype(cuLaunchKernel)>(shim_lib, "cuLaunchKernel"),
               lookup<decltype(cuMemAlloc_v2)>(shim_lib, "cuMemAlloc_v2"),
               lookup<decltype(cuMemFree_v2)>(shim_lib, "cuMemFree_v2"),
               lookup<decltype(cublasSgemm_v2)>(shim_lib, "cublasSgemm_v2")};
    sync = lookup<decltype(cuStreamSynchronize)>(sim, "cuStreamSynchronize");
    host_func = lookup<decltype(cuLaunchHostFunc)>(sim, "cuLaunchHostFunc");
    record = lookup<decltype(cuEventRecord)>(sim, "cuEventRecord");
    wait = lookup<decltype(cuStreamWaitEvent)>(sim, "cuStreamWaitEvent");
    CUcontext ctx = nullptr;
    CUmodule module = nullptr;
    if (lookup<decltype(cuInit)>(sim, "cuInit")(0) != CUDA_SUCCESS ||
        lookup<decltype(cuDevicePrimaryCtxRetain)>(sim, "cuDevicePrimaryCtxRetain")(&ctx, 0) != CUDA_SUCCESS ||
        lookup<decltype(cuCtxSetCurrent)>(sim, "cuCtxSetCurrent")(ctx) != CUDA_SUCCESS ||
        lookup<decltype(cuStreamCreate)>(sim, "cuStreamCreate")(&stream, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS ||
        lookup<decltype(cuStreamCreate)>(sim, "cuStreamCreate")(&gate_stream, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS ||
        lookup<decltype(cuEventCreate)>(sim, "cuEventCreate")(&gate_event, CU_EVENT_DISABLE_TIMING) != CUDA_SUCCESS ||
        lookup<decltype(cuModuleLoadData)>(sim, "cuModuleLoadData")(&module, &kImage) != CUDA_SUCCESS ||
        lookup<decltype(cuModuleGetFunction)>(sim, "cuModuleGetFunction")(&kernel, module, "noop16") != CUDA_SUCCESS)
      die("simulated driver setup failed");
    // Allocated through the shim, so that it tracks every buffer the kernel names.
    for (int i = 0; i < 16; ++i) {
      if (shim.alloc(&buffers[i], 4 << 20) != CUDA_SUCCESS) die("allocation failed");
      params[i] = &buffers[i];
    }
    if (shim.alloc(&a, 256) != CUDA_SUCCESS || shim.alloc(&b, 256) != CUDA_SUCCESS || shim.alloc(&c, 256) != CUDA_SUCCESS)
      die("allocation failed");
    if (lookup<decltype(cublasCreate_v2)>(blas_lib, "cublasCreate_v2")(&blas) != CUBLAS_STATUS_SUCCESS ||
        lookup<decltype(cublasSetStream_v2)>(blas_lib, "cublasSetStream_v2")(blas, reinterpret_cast<cudaStream_t>(stream)) !=
            CUBLAS_STATUS_SUCCESS)
      die("cuBLAS setup failed");
    // In swap mode the buffers live in oversub's arena and get memory on
    // first use: one call through the shim makes them resident, so the
    // direct calls below touch mapped memory, as "resident" means.
    const float one = 1.0f, zero = 0.0f;
    if (shim.launch(kernel, 1, 1, 1, 1, 1, 1, 0, stream, params, nullptr) != CUDA_SUCCESS ||
        shim.sgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, reinterpret_cast<const float*>(a), 8,
                   reinterpret_cast<const float*>(b), 8, &zero, reinterpret_cast<float*>(c), 8) != CUBLAS_STATUS_SUCCESS ||
        sync(stream) != CUDA_SUCCESS)
      die("warm-up through the shim failed");
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

const Api& side(const benchmark::State& state) { return state.range(0) == 0 ? fixture().direct : fixture().shim; }

// Note [Measuring a launch on the simulation]
// A simulated launch queues work for a stream's worker thread. If that worker
// sleeps, every launch pays a futex wake-up (microseconds), and whether it
// sleeps depends on how fast the caller is: a slower caller lets the worker
// catch up, sleep, and be woken by each launch. That would charge scheduler
// noise to the shim. So the launch stream is gated: it waits on an event of a
// second stream whose host function blocks until we open the gate. Launches
// then only queue (no wake-up); every kBatch launches the gate opens, the
// queue drains and closes again, with the timer paused.
constexpr int kBatch = 16384;

std::atomic<bool> g_gate_open{false};
void CUDA_CB hold_gate(void*) {
  while (!g_gate_open.load()) std::this_thread::sleep_for(std::chrono::microseconds(50));
}

struct Gate {
  Fixture& f;
  explicit Gate(Fixture& fixture) : f(fixture) { close(); }
  ~Gate() { open(); }
  void close() {
    g_gate_open = false;
    if (f.host_func(f.gate_stream, hold_gate, nullptr) != CUDA_SUCCESS ||
        f.record(f.gate_event, f.gate_stream) != CUDA_SUCCESS || f.wait(f.stream, f.gate_event, 0) != CUDA_SUCCESS)
      die("gating the stream failed");
  }
  void open() {
    g_gate_open = true;
    f.sync(f.stream);
  }
  void cycle(benchmark::State& state) {
    state.PauseTiming();
    open();
    close();
    state.ResumeTiming();
  }
};

void Launch16(benchmark::State& state) {
  Fixture& f = fixture();
  const Api& api = side(state);
  Gate gate(f);
  int n = 0;
  for (auto _ : state) {
    if (api.launch(f.kernel, 1, 1, 1, 1, 1, 1, 0, f.stream, f.params, nullptr) != CUDA_SUCCESS) die("launch failed");
    if (++n % kBatch == 0) gate.cycle(state);
  }
}

void AllocFree(benchmark::State& state) {
  const Api& api = side(state);
  for (auto _ : state) {
    CUdeviceptr p = 0;
    if (api.alloc(&p, 64 << 10) != CUDA_SUCCESS || api.free(p) != CUDA_SUCCESS) die("alloc/free failed");
  }
}

void Sgemm(benchmark::State& state) {
  Fixture& f = fixture();
  const Api& api = side(state);
  const float one = 1.0f, zero = 0.0f;
  auto* A = reinterpret_cast<const float*>(f.a);
  auto* B = reinterpret_cast<const float*>(f.b);
  auto* C = reinterpret_cast<float*>(f.c);
  Gate gate(f);
  int n = 0;
  for (auto _ : state) {
    if (api.sgemm(f.blas, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, A, 8, B, 8, &zero, C, 8) != CUBLAS_STATUS_SUCCESS)
      die("sgemm failed");
    if (++n % kBatch == 0) gate.cycle(state);
  }
}

// Collects each case's median per side, then prints what the shim adds.
class MedianReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs)
      if (r.run_type == Run::RT_Aggregate && r.aggregate_name == "median")
        medians_[r.run_name.function_name][r.run_name.args.find("shim:1") != std::string::npos ? 1 : 0] =
            r.GetAdjustedCPUTime();
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    std::printf("\nshim overhead (median CPU time per call, same run, same machine):\n");
    for (auto& [name, sides] : medians_) {
      double direct = sides[0], through = sides[1];
      std::printf("  %-10s direct %9.1f ns   through shim %9.1f ns   added %8.1f ns\n", name.c_str(), direct, through,
                  through - direct);
    }
  }

 private:
  std::map<std::string, std::map<int, double>> medians_;
};

}  // namespace

// Arg 0: direct into the simulation; 1: through the shim.
BENCHMARK(Launch16)->ArgName("shim")->Arg(0)->Arg(1)->MinTime(0.2);
BENCHMARK(AllocFree)->ArgName("shim")->Arg(0)->Arg(1)->MinTime(0.2);
BENCHMARK(Sgemm)->ArgName("shim")->Arg(0)->Arg(1)->MinTime(0.2);

int main(int argc, char** argv) {
  std::vector<char*> args(argv, argv + argc);
  std::string reps = "--benchmark_repetitions=9", interleave = "--benchmark_enable_random_interleaving=true",
              aggregates = "--benchmark_report_aggregates_only=true";
  args.insert(args.begin() + 1, {reps.data(), interleave.data(), aggregates.data()});
  int count = static_cast<int>(args.size());
  benchmark::Initialize(&count, args.data());
  (void)fixture();
  MedianReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
