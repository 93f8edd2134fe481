// The simulated cuBLAS's module image: one simcuda_image in static storage holding every kernel,
// with the parameter layouts derived from kernels.h (Note [cuBLAS parameter blocks]).
#include <cblas.h>

#include <mutex>

#include "kernels.h"

namespace simcublas {
namespace {

template <typename P>
constexpr simcuda_kernel_desc describe(const char* name, simcuda_kernel_fn body) {
  return simcuda_kernel_desc{name, body, static_cast<std::uint32_t>(std::size(ParamTraits<P>::layout)),
                             ParamTraits<P>::layout};
}

// nvcc places each parameter at its natural alignment; our structs must too, or the layout we
// report would not be one a real kernel could have.
template <typename P>
constexpr bool naturally_aligned() {
  std::uint32_t end = 0;
  for (const simcuda_param& q : ParamTraits<P>::layout) {
    if (q.offset_bytes % q.size_bytes != 0 || q.offset_bytes < end) return false;
    end = q.offset_bytes + q.size_bytes;
  }
  return true;
}
static_assert(naturally_aligned<AxpyParams>() && naturally_aligned<ScalParams>() && naturally_aligned<DotParams>() &&
              naturally_aligned<Nrm2Params>() && naturally_aligned<GemvParams>() && naturally_aligned<GeamParams>() &&
              naturally_aligned<SgemmParams>() && naturally_aligned<DgemmParams>() &&
              naturally_aligned<SgemmBatchedParams>() && naturally_aligned<GemmExParams>());

// Order matches enum class Kernel.
constexpr simcuda_kernel_desc kKernels[] = {
    describe<AxpyParams>("simcublas_saxpy", saxpy_body),
    describe<ScalParams>("simcublas_sscal", sscal_body),
    describe<DotParams>("simcublas_sdot", sdot_body),
    describe<Nrm2Params>("simcublas_snrm2", snrm2_body),
    describe<GemvParams>("simcublas_sgemv", sgemv_body),
    describe<GeamParams>("simcublas_sgeam", sgeam_body),
    describe<SgemmParams>("simcublas_sgemm", sgemm_body),
    describe<DgemmParams>("simcublas_dgemm", dgemm_body),
    describe<SgemmBatchedParams>("simcublas_sgemm_batched", sgemm_batched_body),
    describe<GemmExParams>("simcublas_gemm_ex", gemm_ex_body),
};
static_assert(std::size(kKernels) == static_cast<std::size_t>(Kernel::count));

constexpr simcuda_image kImage{SIMCUDA_IMAGE_MAGIC, SIMCUDA_IMAGE_VERSION,
                               static_cast<std::uint32_t>(std::size(kKernels)), kKernels};

}  // namespace

const simcuda_image& image() { return kImage; }

void prepare_blas_once() {
  // OpenBLAS's own threads would split sums differently from run to run; one thread per call,
  // on the stream worker, keeps every result bit-reproducible.
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

}  // namespace simcublas
