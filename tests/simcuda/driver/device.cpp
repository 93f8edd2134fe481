// Simulated driver: initialisation, the one device, contexts and error strings.
#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <mutex>

#include "../common/settings.h"
#include "driver.h"

namespace simcuda::driver {
namespace {

// Contexts: the primary context plus any created with cuCtxCreate. All share the
// one device's memory and streams, which is what a single-GPU process sees.
struct Context {
  unsigned flags = 0;
  bool primary = false;
};

Context g_primary{0, true};
std::atomic<int> g_primary_refs{0};
std::atomic<bool> g_initialized{false};
std::atomic<bool> g_forked_child{false};
thread_local std::vector<Context*> t_context_stack;

void mark_forked_child() { g_forked_child.store(true); }

}  // namespace

bool initialized() { return g_initialized.load(std::memory_order_acquire) && !g_forked_child.load(); }

CUresult require_init() {
  if (g_forked_child.load()) return CUDA_ERROR_NOT_INITIALIZED;
  return initialized() ? CUDA_SUCCESS : CUDA_ERROR_NOT_INITIALIZED;
}

CUresult require_context() {
  if (CUresult r = require_init(); r != CUDA_SUCCESS) return r;
  return t_context_stack.empty() ? CUDA_ERROR_INVALID_CONTEXT : CUDA_SUCCESS;
}

bool forked_child() { return g_forked_child.load(); }

namespace {
void report_at_exit() {
  const Settings& s = settings();
  if (s.report) {
    std::fprintf(stderr, "simcuda: peak device bytes %llu capacity %llu\n",
                 static_cast<unsigned long long>(peak_device_bytes()),
                 static_cast<unsigned long long>(s.memory_bytes));
  }
}
}  // namespace

void initialise_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    (void)settings();  // validate SIMCUDA_* before any simulated work
    initialise_address_space();
    pthread_atfork(nullptr, nullptr, mark_forked_child);
    std::atexit([] {
      if (g_forked_child.load()) return;
      shutdown_streams();
      report_at_exit();
    });
    g_initialized.store(true, std::memory_order_release);
  });
}

}  // namespace simcuda::driver

using namespace simcuda::driver;

namespace {
constexpr char kDeviceName[] = "simcuda H100 (simulated)";

struct ErrorText {
  CUresult code;
  const char* name;
  const char* text;
};
constexpr ErrorText kErrors[] = {
    {CUDA_SUCCESS, "CUDA_SUCCESS", "no error"},
    {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {CUDA_ERROR_DEINITIALIZED, "CUDA_ERROR_DEINITIALIZED", "driver shutting down"},
    {CUDA_ERROR_NO_DEVICE, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {CUDA_ERROR_INVALID_IMAGE, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
    {CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {CUDA_ERROR_ALREADY_MAPPED, "CUDA_ERROR_ALREADY_MAPPED", "resource already mapped"},
    {CUDA_ERROR_NOT_MAPPED, "CUDA_ERROR_NOT_MAPPED", "resource not mapped"},
    {CUDA_ERROR_INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {CUDA_ERROR_NOT_FOUND, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {CUDA_ERROR_NOT_READY, "CUDA_ERROR_NOT_READY", "device not ready"},
    {CUDA_ERROR_ILLEGAL_ADDRESS, "CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"},
    {CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch"},
    {CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED, "CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED", "part or all of the requested memory range is already mapped"},
    {CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED, "CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED", "pointer does not correspond to a registered memory region"},
    {CUDA_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
    {CUDA_ERROR_NOT_PERMITTED, "CUDA_ERROR_NOT_PERMITTED", "operation not permitted"},
    {CUDA_ERROR_INVALID_PTX, "CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"},
    {CUDA_ERROR_UNKNOWN, "CUDA_ERROR_UNKNOWN", "unknown error"},
};

Context* current() { return t_context_stack.empty() ? nullptr : t_context_stack.back(); }
}  // namespace

SIMCU_EXPORT CUresult cuInit(unsigned int flags) {
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  if (g_forked_child.load()) return CUDA_ERROR_NOT_INITIALIZED;
  initialise_once();
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuDriverGetVersion(int* version) {
  if (version == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *version = CUDA_VERSION;
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuGetErrorString(CUresult error, const char** text) {
  if (text == nullptr) return CUDA_ERROR_INVALID_VALUE;
  for (const ErrorText& e : kErrors)
    if (e.code == error) { *text = e.text; return CUDA_SUCCESS; }
  *text = nullptr;
  return CUDA_ERROR_INVALID_VALUE;
}

SIMCU_EXPORT CUresult cuGetErrorName(CUresult error, const char** name) {
  if (name == nullptr) return CUDA_ERROR_INVALID_VALUE;
  for (const ErrorText& e : kErrors)
    if (e.code == error) { *name = e.name; return CUDA_SUCCESS; }
  *name = nullptr;
  return CUDA_ERROR_INVALID_VALUE;
}

SIMCU_EXPORT CUresult cuDeviceGetCount(int* count) {
  if (CUresult r = require_init(); r != CUDA_SUCCESS) return r;
  if (count == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *count = 1;
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuDeviceGet(CUdevice* device, int ordinal) {
  if (CUresult r = require_init(); r != CUDA_SUCCESS) return r;
  if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
  *device = 0;
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuDeviceGetName(char* name, int length, CUdevice device) {
  if (CUresult r = require_init(); r != CUDA_SUCCESS) return r;
  if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
  if (name == nullptr || length <= 0) return CUDA_ERROR_INVALID_VALUE;
  std::snprintf(name, static_cast<size_t>(length), "%s", kDeviceName);
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuDeviceGetUuid_v2(CUuuid* uuid, CUdevice device) {
  if (CUresult r = require_init(); r != CUDA_SUCCESS) return r;
  if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
  if (uuid == nullptr) return CUDA_ERROR_INVALID_VALUE;
  std::memcpy(uuid->bytes, "simcuda-device-0", 16);
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuDeviceTotalMem(size_t* bytes, CUdevice device) {
  if (CUresult r = require_init(); r != CUDA_SUCCESS) return r;
  if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
  if (bytes == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *bytes = capacity_bytes();
  return CUDA_SUCCESS;
}

// Attributes of an H100 SXM where they matter to callers (compute capability,
// VMM support, copy engines); plausible values elsewhere.
SIMCU_EXPORT CUresult cuDeviceGetAttribute(int* value, CUdevice_attribute attribute, CUdevice device) {
  if (CUresult r = require_init(); r != CUDA_SUCCESS) return r;
  if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  switch (attribute) {
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *value = 9; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *value = 0; break;
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *value = 132; break;
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *value = 1024; break;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X: *value = 1024; break;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y: *value = 1024; break;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z: *value = 64; break;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X: *value = 2147483647; break;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y: *value = 65535; break;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z: *value = 65535; break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: *value = 49152; break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: *value = 232448; break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: *value = 233472; break;
    case CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY: *value = 65536; break;
    case CU_DEVICE_ATTRIBUTE_WARP_SIZE: *value = 32; break;
    case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK: *value = 65536; break;
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR: *value = 2048; break;
    case CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT: *value = 2; break;  // one per direction
    case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: *value = 1; break;
    case CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY: *value = 1; break;
    case CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS: *value = 1; break;
    case CU_DEVICE_ATTRIBUTE_INTEGRATED: *value = 0; break;
    case CU_DEVICE_ATTRIBUTE_ECC_ENABLED: *value = 1; break;
    case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID: *value = 1; break;
    case CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID: *value = 0; break;
    case CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID: *value = 0; break;
    case CU_DEVICE_ATTRIBUTE_CLOCK_RATE: *value = 1980000; break;
    case CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE: *value = 2619000; break;
    case CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH: *value = 5120; break;
    case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE: *value = 52428800; break;
    case CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED: *value = 1; break;
    case CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED: *value = 1; break;
    case CU_DEVICE_ATTRIBUTE_HOST_NUMA_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED: *value = 1; break;
    case CU_DEVICE_ATTRIBUTE_HOST_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED: *value = 1; break;
    case CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY: *value = 1; break;
    case CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS: *value = 1; break;
    case CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH: *value = 1; break;
    case CU_DEVICE_ATTRIBUTE_STREAM_PRIORITIES_SUPPORTED: *value = 1; break;
    case CU_DEVICE_ATTRIBUTE_READ_ONLY_HOST_REGISTER_SUPPORTED: *value = 1; break;
    case CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED: *value = 0; break;
    case CU_DEVICE_ATTRIBUTE_GENERIC_COMPRESSION_SUPPORTED: *value = 0; break;
    case CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_SUPPORTED: *value = 0; break;
    default: *value = 0; break;
  }
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext* context, CUdevice device) {
  if (CUresult r = require_init(); r != CUDA_SUCCESS) return r;
  if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
  if (context == nullptr) return CUDA_ERROR_INVALID_VALUE;
  g_primary_refs.fetch_add(1);
  *context = reinterpret_cast<CUcontext>(&g_primary);
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice device) {
  if (CUresult r = require_init(); r != CUDA_SUCCESS) return r;
  if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
  if (g_primary_refs.load() > 0) g_primary_refs.fetch_sub(1);
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuDevicePrimaryCtxGetState(CUdevice device, unsigned int* flags, int* active) {
  if (CUresult r = require_init(); r != CUDA_SUCCESS) return r;
  if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
  if (flags == nullptr || active == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *flags = g_primary.flags;
  *active = g_primary_refs.load() > 0 ? 1 : 0;
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice device, unsigned int flags) {
  if (CUresult r = require_init(); r != CUDA_SUCCESS) return r;
  if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
  g_primary.flags = flags;
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuDevicePrimaryCtxReset_v2(CUdevice device) {
  if (CUresult r = require_init(); r != CUDA_SUCCESS) return r;
  if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
  synchronize_device();
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuCtxCreate_v4(CUcontext* context, CUctxCreateParams*, unsigned int flags, CUdevice device) {
  if (CUresult r = require_init(); r != CUDA_SUCCESS) return r;
  if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
  if (context == nullptr) return CUDA_ERROR_INVALID_VALUE;
  auto* c = new Context{flags, false};
  t_context_stack.push_back(c);
  *context = reinterpret_cast<CUcontext>(c);
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuCtxDestroy_v2(CUcontext context) {
  if (CUresult r = require_init(); r != CUDA_SUCCESS) return r;
  auto* c = reinterpret_cast<Context*>(context);
  if (c == nullptr || c == &g_primary) return CUDA_ERROR_INVALID_CONTEXT;
  synchronize_device();
  std::erase(t_context_stack, c);
  delete c;
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuCtxGetCurrent(CUcontext* context) {
  if (CUresult r = require_init(); r != CUDA_SUCCESS) return r;
  if (context == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *context = reinterpret_cast<CUcontext>(current());
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuCtxSetCurrent(CUcontext context) {
  if (CUresult r = require_init(); r != CUDA_SUCCESS) return r;
  auto* c = reinterpret_cast<Context*>(context);
  if (c == nullptr) {
    if (!t_context_stack.empty()) t_context_stack.pop_back();
  } else if (t_context_stack.empty()) {
    t_context_stack.push_back(c);
  } else {
    t_context_stack.back() = c;
  }
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuCtxPushCurrent_v2(CUcontext context) {
  if (CUresult r = require_init(); r != CUDA_SUCCESS) return r;
  if (context == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  t_context_stack.push_back(reinterpret_cast<Context*>(context));
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuCtxPopCurrent_v2(CUcontext* context) {
  if (CUresult r = require_init(); r != CUDA_SUCCESS) return r;
  if (t_context_stack.empty()) return CUDA_ERROR_INVALID_CONTEXT;
  if (context != nullptr) *context = reinterpret_cast<CUcontext>(t_context_stack.back());
  t_context_stack.pop_back();
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuCtxGetDevice(CUdevice* device) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *device = 0;
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuCtxGetFlags(unsigned int* flags) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (flags == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *flags = current()->flags;
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuCtxSynchronize() {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  synchronize_device();
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuCtxGetApiVersion(CUcontext, unsigned int* version) {
  if (CUresult r = require_init(); r != CUDA_SUCCESS) return r;
  if (version == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *version = 3020;
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuCtxGetStreamPriorityRange(int* least, int* greatest) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (least != nullptr) *least = 0;
  if (greatest != nullptr) *greatest = -5;
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuCtxGetLimit(size_t* value, CUlimit limit) {
  if (CUresult r = require_context(); r != CUDA_SUCCESS) return r;
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *value = limit == CU_LIMIT_STACK_SIZE ? 1024 : 0;
  return CUDA_SUCCESS;
}

SIMCU_EXPORT CUresult cuCtxSetLimit(CUlimit, size_t) { return require_context(); }
