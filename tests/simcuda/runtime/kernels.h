// kernels.h — the table of nvcc-registered kernels and their CPU twins.
//
// Note [Kernels on the simulated GPU]
// nvcc's static constructors call __cudaRegisterFunction(hostFun -> deviceName) for every
// __global__ function, and SIMCUDA_TWIN (simcuda/twin.h) calls simcudaRegisterTwin(hostFun ->
// CPU body + parameter layout). Either may come first. On the first launch of a kernel we build
// a one-kernel simcuda_image (simcuda/image.h) from its twin, named with the mangled device name,
// and load it through the driver exactly as a real runtime loads a fatbin: cuModuleLoadData +
// cuModuleGetFunction. The resulting CUfunction is cached for the life of the process and is
// also the cudaKernel_t that __cudaGetKernel hands to nvcc's launch stubs (the driver accepts a
// CUkernel wherever a CUfunction goes, so a real driver would treat it the same way).
// A kernel without a twin cannot run here: its launch fails with cudaErrorInvalidDeviceFunction
// and stderr says which kernel, once.
#pragma once

#include "runtime.h"

namespace simcudart {

// The loaded CUfunction for nvcc host stub `host_fun` (or for a cudaKernel_t we handed out),
// loading its module on first use. Needs a successful enter() on this thread.
// Cost once loaded: one uncontended mutex and two hash lookups.
cudaError_t kernel_function(const DriverApi& api, const void* host_fun, CUfunction* out);

// The kernel's device name (mangled), or nullptr if nothing is registered for `host_fun`.
const char* kernel_name(const void* host_fun);

}  // namespace simcudart
