// driver.h — how the simulated libcudnn reaches the (simulated or real) driver.
//
// Note [How cuDNN reaches the driver]
// The real libcudnn carries a static copy of the CUDA runtime, which never links libcuda: it
// dlopens libcuda.so.1, dlsym's cuGetProcAddress_v2 alone and asks it for every other entry
// point by base name with the CUDA version it was built for (13000). We do the same, so an
// interposer that hooks cuGetProcAddress sees our launches exactly as it sees a real cuDNN's.
// The module holding our kernels is loaded once per process, lazily, from cudnnCreate (never
// from a static constructor: see the runtime's Note [Runtime init]).
#pragma once

#include <cuda.h>
#include <cudnn.h>

#include "kernels.h"
#include "simcudnn.h"

namespace simcudnn {

// Loads the driver, binds a context to this thread if it has none (the primary context of
// device 0, as the runtime would) and loads the kernel module; later calls only check that a
// context is current. NOT_INITIALIZED when there is no usable driver or device.
cudnnStatus_t ensure_loaded();

// Queues kernel `id` on `stream` as a 1×1×1 grid of one thread whose body does the whole job.
// EXECUTION_FAILED_CUDA_DRIVER if the driver refuses the launch (bad stream, no context).
cudnnStatus_t launch_raw(KernelId id, CUstream stream, void** args);

template <KernelId Id>
cudnnStatus_t launch(cudnnHandle_t handle, typename KernelParams<Id>::type& params) {
  auto args = kernel_args(params);
  return launch_raw(Id, reinterpret_cast<CUstream>(handle->stream), args.data());
}

// cuCtxSynchronize, for cudnnDestroy (which the real library documents as synchronising).
void synchronize_context();

}  // namespace simcudnn
