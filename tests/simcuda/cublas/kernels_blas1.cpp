// Level-1 kernel bodies: axpy, scal, dot, nrm2. They run on the stream's worker thread and are the
// only code that reads or writes the vectors (Note [cuBLAS parameter blocks] in kernels.h).
#include <cmath>

#include "kernels.h"

namespace simcublas {
namespace {

// Offset of element i of a strided vector, with the reference BLAS rule for negative strides:
// the vector then starts at its highest address, (1 - n) * inc elements past the pointer.
inline std::int64_t element(std::int64_t i, std::int64_t n, std::int64_t inc) {
  return (inc < 0 ? (1 - n) * inc : 0) + i * inc;
}

}  // namespace

void saxpy_body(const simcuda_launch*, const unsigned char* params) {
  const auto p = unpack<AxpyParams>(params);
  const float alpha = p.alpha_ptr != nullptr ? *p.alpha_ptr : p.alpha;
  if (p.n <= 0 || alpha == 0.0f) return;  // reference BLAS quick return: y is left untouched
  for (std::int64_t i = 0; i < p.n; ++i) {
    float& y = p.y[element(i, p.n, p.incy)];
    y = std::fma(alpha, p.x[element(i, p.n, p.incx)], y);
  }
}

void sscal_body(const simcuda_launch*, const unsigned char* params) {
  const auto p = unpack<ScalParams>(params);
  if (p.n <= 0 || p.incx <= 0) return;
  const float alpha = p.alpha_ptr != nullptr ? *p.alpha_ptr : p.alpha;
  for (std::int64_t i = 0; i < p.n; ++i) p.x[i * p.incx] *= alpha;
}

// Sum in double, in index order, rounded to float once (Note [Deterministic math]).
void sdot_body(const simcuda_launch*, const unsigned char* params) {
  const auto p = unpack<DotParams>(params);
  double sum = 0.0;
  for (std::int64_t i = 0; i < p.n; ++i)
    sum += static_cast<double>(p.x[element(i, p.n, p.incx)]) * static_cast<double>(p.y[element(i, p.n, p.incy)]);
  *p.result = static_cast<float>(sum);
}

// Squares summed in double (no overflow for any float input), in index order, one sqrt.
void snrm2_body(const simcuda_launch*, const unsigned char* params) {
  const auto p = unpack<Nrm2Params>(params);
  double sum = 0.0;
  if (p.incx > 0) {
    for (std::int64_t i = 0; i < p.n; ++i) {
      const double v = p.x[i * p.incx];
      sum += v * v;
    }
  }
  *p.result = static_cast<float>(std::sqrt(sum));
}

}  // namespace simcublas
