// device.cpp — devices, properties, versions and driver entry points.
#include <cstddef>
#include <cstring>

#include "runtime.h"

namespace simcudart {
namespace {

// cudaDeviceAttr mirrors CUdevice_attribute value for value, which is what lets
// cudaDeviceGetAttribute pass the attribute straight through. Spot-check the ones programs use.
static_assert(int(cudaDevAttrMaxThreadsPerBlock) == int(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK));
static_assert(int(cudaDevAttrMultiProcessorCount) == int(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT));
static_assert(int(cudaDevAttrComputeCapabilityMajor) == int(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR));
static_assert(int(cudaDevAttrMaxSharedMemoryPerBlockOptin) ==
              int(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN));
static_assert(int(cudaDevAttrMemoryPoolsSupported) == int(CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED));
static_assert(int(cudaDevAttrUnifiedAddressing) == int(CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING));
static_assert(sizeof(cudaUUID_t) == sizeof(CUuuid));

enum class FieldType { i32, u32, size };

struct PropertyField {
  CUdevice_attribute attribute;
  std::size_t offset;  // into cudaDeviceProp
  FieldType type;
};

#define SIMCUDART_FIELD(field, attr, type) \
  PropertyField{CU_DEVICE_ATTRIBUTE_##attr, offsetof(cudaDeviceProp, field), FieldType::type}
#define SIMCUDART_FIELD_AT(field, index, attr) \
  PropertyField{CU_DEVICE_ATTRIBUTE_##attr, offsetof(cudaDeviceProp, field) + (index) * sizeof(int), FieldType::i32}

// cudaDeviceProp field <- driver attribute. name, totalGlobalMem and uuid come from their own
// driver calls. Fields without an attribute (luid, reserved) stay zero.
constexpr PropertyField kPropertyFields[] = {
    SIMCUDART_FIELD(sharedMemPerBlock, MAX_SHARED_MEMORY_PER_BLOCK, size),
    SIMCUDART_FIELD(regsPerBlock, MAX_REGISTERS_PER_BLOCK, i32),
    SIMCUDART_FIELD(warpSize, WARP_SIZE, i32),
    SIMCUDART_FIELD(memPitch, MAX_PITCH, size),
    SIMCUDART_FIELD(maxThreadsPerBlock, MAX_THREADS_PER_BLOCK, i32),
    SIMCUDART_FIELD_AT(maxThreadsDim, 0, MAX_BLOCK_DIM_X),
    SIMCUDART_FIELD_AT(maxThreadsDim, 1, MAX_BLOCK_DIM_Y),
    SIMCUDART_FIELD_AT(maxThreadsDim, 2, MAX_BLOCK_DIM_Z),
    SIMCUDART_FIELD_AT(maxGridSize, 0, MAX_GRID_DIM_X),
    SIMCUDART_FIELD_AT(maxGridSize, 1, MAX_GRID_DIM_Y),
    SIMCUDART_FIELD_AT(maxGridSize, 2, MAX_GRID_DIM_Z),
    SIMCUDART_FIELD(totalConstMem, TOTAL_CONSTANT_MEMORY, size),
    SIMCUDART_FIELD(major, COMPUTE_CAPABILITY_MAJOR, i32),
    SIMCUDART_FIELD(minor, COMPUTE_CAPABILITY_MINOR, i32),
    SIMCUDART_FIELD(textureAlignment, TEXTURE_ALIGNMENT, size),
    SIMCUDART_FIELD(texturePitchAlignment, TEXTURE_PITCH_ALIGNMENT, size),
    SIMCUDART_FIELD(multiProcessorCount, MULTIPROCESSOR_COUNT, i32),
    SIMCUDART_FIELD(integrated, INTEGRATED, i32),
    SIMCUDART_FIELD(canMapHostMemory, CAN_MAP_HOST_MEMORY, i32),
    SIMCUDART_FIELD(maxTexture1D, MAXIMUM_TEXTURE1D_WIDTH, i32),
    SIMCUDART_FIELD_AT(maxTexture2D, 0, MAXIMUM_TEXTURE2D_WIDTH),
    SIMCUDART_FIELD_AT(maxTexture2D, 1, MAXIMUM_TEXTURE2D_HEIGHT),
    SIMCUDART_FIELD_AT(maxTexture3D, 0, MAXIMUM_TEXTURE3D_WIDTH),
    SIMCUDART_FIELD_AT(maxTexture3D, 1, MAXIMUM_TEXTURE3D_HEIGHT),
    SIMCUDART_FIELD_AT(maxTexture3D, 2, MAXIMUM_TEXTURE3D_DEPTH),
    SIMCUDART_FIELD(surfaceAlignment, SURFACE_ALIGNMENT, size),
    SIMCUDART_FIELD(concurrentKernels, CONCURRENT_KERNELS, i32),
    SIMCUDART_FIELD(ECCEnabled, ECC_ENABLED, i32),
    SIMCUDART_FIELD(pciBusID, PCI_BUS_ID, i32),
    SIMCUDART_FIELD(pciDeviceID, PCI_DEVICE_ID, i32),
    SIMCUDART_FIELD(pciDomainID, PCI_DOMAIN_ID, i32),
    SIMCUDART_FIELD(tccDriver, TCC_DRIVER, i32),
    SIMCUDART_FIELD(asyncEngineCount, ASYNC_ENGINE_COUNT, i32),
    SIMCUDART_FIELD(unifiedAddressing, UNIFIED_ADDRESSING, i32),
    SIMCUDART_FIELD(memoryBusWidth, GLOBAL_MEMORY_BUS_WIDTH, i32),
    SIMCUDART_FIELD(l2CacheSize, L2_CACHE_SIZE, i32),
    SIMCUDART_FIELD(persistingL2CacheMaxSize, MAX_PERSISTING_L2_CACHE_SIZE, i32),
    SIMCUDART_FIELD(maxThreadsPerMultiProcessor, MAX_THREADS_PER_MULTIPROCESSOR, i32),
    SIMCUDART_FIELD(streamPrioritiesSupported, STREAM_PRIORITIES_SUPPORTED, i32),
    SIMCUDART_FIELD(globalL1CacheSupported, GLOBAL_L1_CACHE_SUPPORTED, i32),
    SIMCUDART_FIELD(localL1CacheSupported, LOCAL_L1_CACHE_SUPPORTED, i32),
    SIMCUDART_FIELD(sharedMemPerMultiprocessor, MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, size),
    SIMCUDART_FIELD(regsPerMultiprocessor, MAX_REGISTERS_PER_MULTIPROCESSOR, i32),
    SIMCUDART_FIELD(managedMemory, MANAGED_MEMORY, i32),
    SIMCUDART_FIELD(isMultiGpuBoard, MULTI_GPU_BOARD, i32),
    SIMCUDART_FIELD(multiGpuBoardGroupID, MULTI_GPU_BOARD_GROUP_ID, i32),
    SIMCUDART_FIELD(hostNativeAtomicSupported, HOST_NATIVE_ATOMIC_SUPPORTED, i32),
    SIMCUDART_FIELD(pageableMemoryAccess, PAGEABLE_MEMORY_ACCESS, i32),
    SIMCUDART_FIELD(concurrentManagedAccess, CONCURRENT_MANAGED_ACCESS, i32),
    SIMCUDART_FIELD(computePreemptionSupported, COMPUTE_PREEMPTION_SUPPORTED, i32),
    SIMCUDART_FIELD(canUseHostPointerForRegisteredMem, CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM, i32),
    SIMCUDART_FIELD(cooperativeLaunch, COOPERATIVE_LAUNCH, i32),
    SIMCUDART_FIELD(sharedMemPerBlockOptin, MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, size),
    SIMCUDART_FIELD(pageableMemoryAccessUsesHostPageTables, PAGEABLE_MEMORY_ACCESS_USES_HOST_PAGE_TABLES, i32),
    SIMCUDART_FIELD(directManagedMemAccessFromHost, DIRECT_MANAGED_MEM_ACCESS_FROM_HOST, i32),
    SIMCUDART_FIELD(maxBlocksPerMultiProcessor, MAX_BLOCKS_PER_MULTIPROCESSOR, i32),
    SIMCUDART_FIELD(accessPolicyMaxWindowSize, MAX_ACCESS_POLICY_WINDOW_SIZE, i32),
    SIMCUDART_FIELD(reservedSharedMemPerBlock, RESERVED_SHARED_MEMORY_PER_BLOCK, size),
    SIMCUDART_FIELD(hostRegisterSupported, HOST_REGISTER_SUPPORTED, i32),
    SIMCUDART_FIELD(sparseCudaArraySupported, SPARSE_CUDA_ARRAY_SUPPORTED, i32),
    SIMCUDART_FIELD(hostRegisterReadOnlySupported, READ_ONLY_HOST_REGISTER_SUPPORTED, i32),
    SIMCUDART_FIELD(timelineSemaphoreInteropSupported, TIMELINE_SEMAPHORE_INTEROP_SUPPORTED, i32),
    SIMCUDART_FIELD(memoryPoolsSupported, MEMORY_POOLS_SUPPORTED, i32),
    SIMCUDART_FIELD(gpuDirectRDMASupported, GPU_DIRECT_RDMA_SUPPORTED, i32),
    SIMCUDART_FIELD(gpuDirectRDMAFlushWritesOptions, GPU_DIRECT_RDMA_FLUSH_WRITES_OPTIONS, u32),
    SIMCUDART_FIELD(gpuDirectRDMAWritesOrdering, GPU_DIRECT_RDMA_WRITES_ORDERING, i32),
    SIMCUDART_FIELD(memoryPoolSupportedHandleTypes, MEMPOOL_SUPPORTED_HANDLE_TYPES, u32),
    SIMCUDART_FIELD(deferredMappingCudaArraySupported, DEFERRED_MAPPING_CUDA_ARRAY_SUPPORTED, i32),
    SIMCUDART_FIELD(ipcEventSupported, IPC_EVENT_SUPPORTED, i32),
    SIMCUDART_FIELD(clusterLaunch, CLUSTER_LAUNCH, i32),
    SIMCUDART_FIELD(unifiedFunctionPointers, UNIFIED_FUNCTION_POINTERS, i32),
    SIMCUDART_FIELD(deviceNumaConfig, NUMA_CONFIG, i32),
    SIMCUDART_FIELD(deviceNumaId, NUMA_ID, i32),
    SIMCUDART_FIELD(mpsEnabled, MPS_ENABLED, i32),
    SIMCUDART_FIELD(hostNumaId, HOST_NUMA_ID, i32),
    SIMCUDART_FIELD(gpuPciDeviceID, GPU_PCI_DEVICE_ID, u32),
    SIMCUDART_FIELD(gpuPciSubsystemID, GPU_PCI_SUBSYSTEM_ID, u32),
    SIMCUDART_FIELD(hostNumaMultinodeIpcSupported, HOST_NUMA_MULTINODE_IPC_SUPPORTED, i32),
};
#undef SIMCUDART_FIELD
#undef SIMCUDART_FIELD_AT

void store_field(cudaDeviceProp* prop, const PropertyField& f, int value) {
  auto* at = reinterpret_cast<unsigned char*>(prop) + f.offset;
  switch (f.type) {
    case FieldType::i32:
      std::memcpy(at, &value, sizeof value);
      break;
    case FieldType::u32: {
      auto v = static_cast<unsigned int>(value);
      std::memcpy(at, &v, sizeof v);
      break;
    }
    case FieldType::size: {
      auto v = static_cast<std::size_t>(static_cast<unsigned int>(value));
      std::memcpy(at, &v, sizeof v);
      break;
    }
  }
}

bool is_required_field(const PropertyField& f) {
  return f.attribute == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR ||
         f.attribute == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR ||
         f.attribute == CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT;
}

cudaError_t get_device_properties(cudaDeviceProp* prop, int device) {
  if (prop == nullptr) return cudaErrorInvalidValue;
  Entered e = enter_driver();
  if (e.error != cudaSuccess) return e.error;
  if (device < 0 || device >= device_count()) return cudaErrorInvalidDevice;
  const DriverApi& d = *e.api;
  CUdevice dev = 0;
  if (cudaError_t err = call(d.cuDeviceGet, &dev, device); err != cudaSuccess) return err;

  std::memset(prop, 0, sizeof *prop);
  if (cudaError_t err = call(d.cuDeviceGetName, prop->name, int(sizeof prop->name), dev); err != cudaSuccess) return err;
  if (cudaError_t err = call(d.cuDeviceTotalMem, &prop->totalGlobalMem, dev); err != cudaSuccess) return err;
  if (d.cuDeviceGetUuid != nullptr) {
    CUuuid uuid{};
    if (d.cuDeviceGetUuid(&uuid, dev) == CUDA_SUCCESS) std::memcpy(&prop->uuid, &uuid, sizeof uuid);
  }
  if (d.cuDeviceGetAttribute == nullptr) return cudaErrorNotSupported;
  // Best effort beyond the identity fields: an attribute the simulated device does not model
  // reads as 0 ("not supported"), which is what programs branch on anyway.
  for (const auto& f : kPropertyFields) {
    int value = 0;
    CUresult r = d.cuDeviceGetAttribute(&value, f.attribute, dev);
    if (r != CUDA_SUCCESS) {
      if (is_required_field(f)) return to_cuda_error(r);
      value = 0;
    }
    store_field(prop, f, value);
  }
  return cudaSuccess;
}

cudaError_t device_get_attribute(int* value, cudaDeviceAttr attr, int device) {
  if (value == nullptr) return cudaErrorInvalidValue;
  Entered e = enter_driver();
  if (e.error != cudaSuccess) return e.error;
  if (device < 0 || device >= device_count()) return cudaErrorInvalidDevice;
  CUdevice dev = 0;
  if (cudaError_t err = call(e.api->cuDeviceGet, &dev, device); err != cudaSuccess) return err;
  return call(e.api->cuDeviceGetAttribute, value, static_cast<CUdevice_attribute>(attr), dev);
}

// cudaGetDriverEntryPoint*: "not found" is a successful answer with funcPtr = NULL and the
// reason in driverStatus (cuda_runtime_api.h); only bad arguments are errors.
cudaError_t get_driver_entry_point(const char* symbol, void** func, unsigned int version,
                                   unsigned long long flags, cudaDriverEntryPointQueryResult* status,
                                   StreamMode mode) {
  if (symbol == nullptr || func == nullptr) return cudaErrorInvalidValue;
  *func = nullptr;
  Entered e = enter_driver();
  if (e.error != cudaSuccess) return e.error;
  // cudaEnableDefault means per-thread for code built with --default-stream per-thread,
  // i.e. for the _ptsz exports.
  if (flags == cudaEnableDefault && mode == StreamMode::per_thread) flags = cudaEnablePerThreadDefaultStream;
  CUdriverProcAddressQueryResult found = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  CUresult r = driver_get_proc_address()(symbol, func, static_cast<int>(version), flags, &found);
  if (status != nullptr) *status = static_cast<cudaDriverEntryPointQueryResult>(found);
  if (r == CUDA_ERROR_NOT_FOUND || found != CU_GET_PROC_ADDRESS_SUCCESS) {
    *func = nullptr;
    return r == CUDA_SUCCESS || r == CUDA_ERROR_NOT_FOUND ? cudaSuccess : to_cuda_error(r);
  }
  return to_cuda_error(r);
}

}  // namespace
}  // namespace simcudart

using namespace simcudart;

SIMCUDART_EXPORT cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return record(cudaErrorInvalidValue);
  *count = 0;
  Entered e = enter_driver();
  if (e.error != cudaSuccess) return record(e.error);
  *count = device_count();
  return cudaSuccess;
}

SIMCUDART_EXPORT cudaError_t cudaSetDevice(int device) { return record(set_current_device(device)); }

SIMCUDART_EXPORT cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return record(cudaErrorInvalidValue);
  Entered e = enter_driver();
  if (e.error != cudaSuccess) return record(e.error);
  *device = current_device();
  return cudaSuccess;
}

SIMCUDART_EXPORT cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  return record(get_device_properties(prop, device));
}

SIMCUDART_EXPORT cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  return record(device_get_attribute(value, attr, device));
}

SIMCUDART_EXPORT cudaError_t cudaDeviceSynchronize(void) {
  Entered e = enter();
  if (e.error != cudaSuccess) return record(e.error);
  return record(call(e.api->cuCtxSynchronize));
}

// The real cudaDeviceReset destroys the primary context. The simulated one only drains the
// device: allocations stay valid, which no correct program can observe.
SIMCUDART_EXPORT cudaError_t cudaDeviceReset(void) { return cudaDeviceSynchronize(); }

SIMCUDART_EXPORT cudaError_t cudaDriverGetVersion(int* version) {
  if (version == nullptr) return record(cudaErrorInvalidValue);
  // No driver at all reads as version 0, not as an error (cuda_runtime_api.h).
  (void)enter_driver();
  *version = loaded_driver_version();
  return cudaSuccess;
}

SIMCUDART_EXPORT cudaError_t cudaRuntimeGetVersion(int* version) {
  if (version == nullptr) return record(cudaErrorInvalidValue);
  *version = CUDART_VERSION;
  return cudaSuccess;
}

SIMCUDART_EXPORT cudaError_t cudaGetDriverEntryPoint(const char* symbol, void** func, unsigned long long flags,
                                                     cudaDriverEntryPointQueryResult* status) {
  return record(get_driver_entry_point(symbol, func, CUDART_VERSION, flags, status, StreamMode::legacy));
}

SIMCUDART_EXPORT cudaError_t cudaGetDriverEntryPoint_ptsz(const char* symbol, void** func, unsigned long long flags,
                                                          cudaDriverEntryPointQueryResult* status) {
  return record(get_driver_entry_point(symbol, func, CUDART_VERSION, flags, status, StreamMode::per_thread));
}

SIMCUDART_EXPORT cudaError_t cudaGetDriverEntryPointByVersion(const char* symbol, void** func, unsigned int version,
                                                              unsigned long long flags,
                                                              cudaDriverEntryPointQueryResult* status) {
  return record(get_driver_entry_point(symbol, func, version, flags, status, StreamMode::legacy));
}

SIMCUDART_EXPORT cudaError_t cudaGetDriverEntryPointByVersion_ptsz(const char* symbol, void** func,
                                                                   unsigned int version, unsigned long long flags,
                                                                   cudaDriverEntryPointQueryResult* status) {
  return record(get_driver_entry_point(symbol, func, version, flags, status, StreamMode::per_thread));
}
