/* simcuda/image.h — the simulated GPU's module image format.
 *
 * Note [Simulated kernels]
 * A real module image (cubin/fatbin) holds device code. The simulated GPU runs
 * every kernel on the CPU, so its "image" is a table of CPU functions, each with
 * the exact parameter layout the real kernel has (offset and size of every
 * parameter, as cuFuncGetParamInfo reports on a real device). An image is
 * loaded with cuModuleLoadData like a real one; cuModuleGetFunction then finds
 * kernels by name and cuLaunchKernel packs the caller's parameters into one
 * buffer using that layout, exactly the bytes a real launch would carry.
 *
 * Who builds images:
 *  - libcudart (simulated) builds one per registered nvcc kernel that has a CPU
 *    twin (see simcuda/twin.h);
 *  - libcublas / libcudnn (simulated) build one for their internal kernels.
 * A real fatbin handed to the simulated cuModuleLoadData is rejected with
 * CUDA_ERROR_INVALID_IMAGE, and a simcuda image handed to a real driver is
 * rejected the same way, because the magic does not match.
 *
 * The driver keeps a pointer to the image (it does not copy it), so an image
 * and its kernel tables must stay alive while the module is loaded; every
 * producer keeps them in static storage.
 *
 * This header is C, so the format is a plain ABI between separately built
 * libraries. Bump SIMCUDA_IMAGE_VERSION when a struct changes.
 */
#ifndef SIMCUDA_IMAGE_H
#define SIMCUDA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SIMCUDA_IMAGE_MAGIC 0x4147414d49435353ull /* "SSCIMAGA" little-endian */
#define SIMCUDA_IMAGE_VERSION 1u

/* The launch configuration a simulated kernel receives. */
typedef struct simcuda_launch {
  uint32_t grid[3];
  uint32_t block[3];
  uint32_t shared_bytes;
  uint32_t reserved;
} simcuda_launch;

/* A simulated kernel body: runs the whole grid on the calling (stream worker)
 * thread. `params` is the packed parameter buffer laid out as `layout` says. */
typedef void (*simcuda_kernel_fn)(const simcuda_launch* launch, const unsigned char* params);

typedef struct simcuda_param {
  uint32_t offset_bytes;
  uint32_t size_bytes;
} simcuda_param;

typedef struct simcuda_kernel_desc {
  const char* name;            /* mangled device name, as cuModuleGetFunction takes it */
  simcuda_kernel_fn body;
  uint32_t param_count;
  const simcuda_param* params; /* param_count entries, ascending offsets */
} simcuda_kernel_desc;

typedef struct simcuda_image {
  uint64_t magic;              /* SIMCUDA_IMAGE_MAGIC */
  uint32_t version;            /* SIMCUDA_IMAGE_VERSION */
  uint32_t kernel_count;
  const simcuda_kernel_desc* kernels;
} simcuda_image;

/* Exported by the simulated libcudart.so.13 (not by the real one): associates a
 * CPU twin with the host stub of an nvcc-compiled kernel. `host_fun` is the
 * address nvcc passes to __cudaRegisterFunction as hostFun, i.e. the address
 * of the __global__ function as host code sees it. The descriptor must outlive
 * the process (twin.h keeps it in static storage). */
typedef void (*simcuda_register_twin_fn)(const void* host_fun, const simcuda_kernel_desc* desc);
#define SIMCUDA_REGISTER_TWIN_SYMBOL "simcudaRegisterTwin"

#ifdef __cplusplus
}
#endif

#endif /* SIMCUDA_IMAGE_H */
