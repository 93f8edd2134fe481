// Shared by the simulated cuBLAS tests: device buffers, a handle fixture and plain reference
// implementations (naive loops, double accumulation) every entry point is compared with.
#pragma once

#include <cublas_api.h>
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace simcublas::test {

#define CUDA_OK(expr) ASSERT_EQ((expr), cudaSuccess) << #expr
#define BLAS_OK(expr) ASSERT_EQ((expr), CUBLAS_STATUS_SUCCESS) << #expr

// A device allocation holding `count` elements of T, filled from / read into host vectors.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t count) : count_(count) {
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&ptr_), bytes()), cudaSuccess);
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void upload(const std::vector<T>& host) {
    ASSERT_EQ(host.size(), count_);
    ASSERT_EQ(cudaMemcpy(ptr_, host.data(), bytes(), cudaMemcpyHostToDevice), cudaSuccess);
    // A copy from pageable memory returns once staged, before the device is written; tests then
    // use non-blocking streams that do not order after it, so wait for it to land.
    ASSERT_EQ(cudaStreamSynchronize(nullptr), cudaSuccess);
  }
  std::vector<T> download() const {
    std::vector<T> host(count_);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(host.data(), ptr_, bytes(), cudaMemcpyDeviceToHost), cudaSuccess);
    return host;
  }
  T* get() const { return ptr_; }
  std::size_t bytes() const { return count_ * sizeof(T); }

 private:
  std::size_t count_;
  T* ptr_ = nullptr;
};

inline std::vector<float> random_floats(std::size_t count, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(count);
  for (float& x : v) x = dist(rng);
  return v;
}

inline std::vector<double> random_doubles(std::size_t count, std::uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::vector<double> v(count);
  for (double& x : v) x = dist(rng);
  return v;
}

// Multiples of 1/64 in [-2, 2]: exact in fp16, bf16 and fp32. A GEMM on them with k <= 64 and
// alpha, beta in {0.5, 0.75, 1} needs at most 21 significant bits, so it is exact in fp32 while
// its results need more bits than fp16 (11) or bf16 (8) hold: 16-bit outputs exercise rounding
// and can still be checked bit for bit.
inline std::vector<float> dyadic_floats(std::size_t count, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(-128, 128);
  std::vector<float> v(count);
  for (float& x : v) x = static_cast<float>(dist(rng)) / 64.0f;
  return v;
}

inline std::uint16_t to_half_bits(float f) {
  const _Float16 h = static_cast<_Float16>(f);  // the compiler's own (RNE) conversion
  std::uint16_t bits;
  std::memcpy(&bits, &h, 2);
  return bits;
}
inline float from_half_bits(std::uint16_t bits) {
  _Float16 h;
  std::memcpy(&h, &bits, 2);
  return static_cast<float>(h);
}
// RNE narrowing to bf16, computed through double so it is independent of the library's.
inline std::uint16_t to_bf16_bits(double exact) {
  const float f = static_cast<float>(exact);  // exact inputs stay exact
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  const std::uint32_t lower = x & 0xffffu, upper = x >> 16;
  const bool round_up = lower > 0x8000u || (lower == 0x8000u && (upper & 1u));
  return static_cast<std::uint16_t>(upper + (round_up ? 1u : 0u));
}
inline float from_bf16_bits(std::uint16_t bits) {
  const std::uint32_t x = static_cast<std::uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

// op(X)(i, j) for column-major X with leading dimension ld.
template <typename T>
T op_at(const std::vector<T>& x, cublasOperation_t op, int i, int j, int ld) {
  return op == CUBLAS_OP_N ? x[static_cast<std::size_t>(i) + static_cast<std::size_t>(j) * ld]
                           : x[static_cast<std::size_t>(j) + static_cast<std::size_t>(i) * ld];
}

// Reference GEMM in double. `bound` receives, per element of C, the forward-error bound of an
// fp32 (or fp64) evaluation: 2 (k + 3) u (|alpha| sum |a b| + |beta c|), u the unit roundoff. This is
// the textbook gamma_k bound (with a factor 2 of slack) that holds for any summation order, so it
// states how far OpenBLAS may be from the exact product, whatever its blocking.
template <typename T>
std::vector<double> reference_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, double alpha,
                                   const std::vector<T>& a, int lda, const std::vector<T>& b, int ldb, double beta,
                                   const std::vector<T>& c, int ldc, std::vector<double>* bound) {
  const double u = std::numeric_limits<T>::epsilon() / 2;
  std::vector<double> out(c.size());
  if (bound) bound->assign(c.size(), 0.0);
  for (std::size_t i = 0; i < c.size(); ++i) out[i] = static_cast<double>(c[i]);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      double sum = 0, abs_sum = 0;
      for (int l = 0; l < k; ++l) {
        const double p = static_cast<double>(op_at(a, ta, i, l, lda)) * static_cast<double>(op_at(b, tb, l, j, ldb));
        sum += p;
        abs_sum += std::fabs(p);
      }
      const std::size_t at = static_cast<std::size_t>(i) + static_cast<std::size_t>(j) * ldc;
      const double old = beta == 0.0 ? 0.0 : static_cast<double>(c[at]);
      out[at] = alpha * sum + beta * old;
      if (bound) (*bound)[at] = 2.0 * (k + 3) * u * (std::fabs(alpha) * abs_sum + std::fabs(beta * old)) + 1e-300;
    }
  return out;
}

// Expects |got - want| <= bound elementwise (elements outside the m x n window must be untouched).
template <typename T>
void expect_within(const std::vector<T>& got, const std::vector<double>& want, const std::vector<double>& bound) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_LE(std::fabs(static_cast<double>(got[i]) - want[i]), bound[i]) << "element " << i;
}

inline bool same_bits(const void* a, const void* b, std::size_t bytes) { return std::memcmp(a, b, bytes) == 0; }

class CublasTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(cublasCreate_v2(&handle_), CUBLAS_STATUS_SUCCESS); }
  void TearDown() override {
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cublasDestroy_v2(handle_), CUBLAS_STATUS_SUCCESS);
  }
  cublasHandle_t handle_ = nullptr;
};

}  // namespace simcublas::test
