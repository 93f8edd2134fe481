// image.cpp — the one simcuda module image holding every kernel of the simulated libcudnn.
// See Note [Simulated kernels] in simcuda/image.h and Note [Kernel parameter blocks] in kernels.h.
#include "kernels.h"

namespace simcudnn {
namespace {

// Adapts a typed body to the image's entry point: unpack the parameter buffer, run.
template <class P, void (*Body)(const P&)>
void entry(const simcuda_launch*, const unsigned char* params) {
  Body(unpack_params<P>(params));
}

constexpr simcuda_kernel_desc kKernels[] = {
#define SIMCUDNN_KERNEL_DESC(id, name, P, body) \
  {name, &entry<P, &body>, static_cast<std::uint32_t>(std::size(ParamLayout<P>::entries)), ParamLayout<P>::entries},
    SIMCUDNN_KERNELS(SIMCUDNN_KERNEL_DESC)
#undef SIMCUDNN_KERNEL_DESC
};
static_assert(std::size(kKernels) == static_cast<std::size_t>(KernelId::count));

// Every layout is a real C layout: ascending, non-overlapping, each parameter at its natural
// alignment (scalars and pointers at their size, shape structs at 4).
constexpr bool natural_layout(const simcuda_kernel_desc& k) {
  std::uint32_t end = 0;
  for (std::uint32_t i = 0; i < k.param_count; ++i) {
    const simcuda_param& p = k.params[i];
    const std::uint32_t align = p.size_bytes <= 8 ? p.size_bytes : 4;
    if (p.offset_bytes < end || p.offset_bytes % align != 0) return false;
    end = p.offset_bytes + p.size_bytes;
  }
  return true;
}
constexpr bool all_natural() {
  for (const simcuda_kernel_desc& k : kKernels)
    if (!natural_layout(k)) return false;
  return true;
}
static_assert(all_natural());

// Static storage: the driver keeps pointers into the image for as long as the module lives.
constexpr simcuda_image kImage{SIMCUDA_IMAGE_MAGIC, SIMCUDA_IMAGE_VERSION,
                               static_cast<std::uint32_t>(std::size(kKernels)), kKernels};

}  // namespace

const simcuda_image& kernel_image() { return kImage; }
const char* kernel_name(KernelId id) { return kKernels[static_cast<int>(id)].name; }

}  // namespace simcudnn
