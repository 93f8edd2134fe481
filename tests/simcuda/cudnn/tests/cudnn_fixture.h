// Shared setup for the simulated libcudnn tests: a context (driver API, so these tests do not
// depend on the runtime), a cuDNN handle, device buffers and descriptor helpers.
#pragma once

#include <cuda.h>
#include <cudnn.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace simcudnn::test {

#define CU_OK(expr) ASSERT_EQ((expr), CUDA_SUCCESS) << #expr
#define DNN_OK(expr) ASSERT_EQ((expr), CUDNN_STATUS_SUCCESS) << #expr

// A device buffer of floats, filled from and read back to host vectors.
class DeviceFloats {
 public:
  explicit DeviceFloats(std::size_t count) : count_(count) {
    EXPECT_EQ(cuMemAlloc(&ptr_, bytes()), CUDA_SUCCESS);
  }
  explicit DeviceFloats(const std::vector<float>& host) : DeviceFloats(host.size()) { upload(host); }
  ~DeviceFloats() { cuMemFree(ptr_); }
  DeviceFloats(const DeviceFloats&) = delete;
  DeviceFloats& operator=(const DeviceFloats&) = delete;

  void upload(const std::vector<float>& host) {
    EXPECT_EQ(host.size(), count_);
    EXPECT_EQ(cuMemcpyHtoD(ptr_, host.data(), bytes()), CUDA_SUCCESS);
    // A pageable H2D copy may return once the data is staged, before it lands (CUDA's documented
    // "API synchronization behavior"), and the tests' kernels run on non-blocking streams that do
    // not wait for the legacy stream: wait for the copy itself.
    EXPECT_EQ(cuCtxSynchronize(), CUDA_SUCCESS);
  }
  // Waits for all queued work first: results are only defined after synchronising.
  std::vector<float> download() const {
    EXPECT_EQ(cuCtxSynchronize(), CUDA_SUCCESS);
    std::vector<float> host(count_);
    EXPECT_EQ(cuMemcpyDtoH(host.data(), ptr_, bytes()), CUDA_SUCCESS);
    return host;
  }
  float* get() const { return reinterpret_cast<float*>(ptr_); }
  CUdeviceptr address() const { return ptr_; }
  std::size_t bytes() const { return count_ * sizeof(float); }

 private:
  std::size_t count_;
  CUdeviceptr ptr_ = 0;
};

inline std::vector<float> random_floats(std::size_t n, unsigned seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = dist(gen);
  return v;
}

struct Tensor {
  cudnnTensorDescriptor_t desc{};
  Tensor(int n, int c, int h, int w, cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW) {
    EXPECT_EQ(cudnnCreateTensorDescriptor(&desc), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnSetTensor4dDescriptor(desc, format, CUDNN_DATA_FLOAT, n, c, h, w), CUDNN_STATUS_SUCCESS);
  }
  ~Tensor() { cudnnDestroyTensorDescriptor(desc); }
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;
  operator cudnnTensorDescriptor_t() const { return desc; }
};

struct Filter {
  cudnnFilterDescriptor_t desc{};
  Filter(int k, int c, int r, int s) {
    EXPECT_EQ(cudnnCreateFilterDescriptor(&desc), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnSetFilter4dDescriptor(desc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, k, c, r, s), CUDNN_STATUS_SUCCESS);
  }
  ~Filter() { cudnnDestroyFilterDescriptor(desc); }
  Filter(const Filter&) = delete;
  Filter& operator=(const Filter&) = delete;
  operator cudnnFilterDescriptor_t() const { return desc; }
};

class CudnnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
    ASSERT_EQ(cuDevicePrimaryCtxRetain(&ctx_, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuCtxSetCurrent(ctx_), CUDA_SUCCESS);
    ASSERT_EQ(cudnnCreate(&handle_), CUDNN_STATUS_SUCCESS);
  }
  void TearDown() override {
    cuCtxSynchronize();
    cudnnDestroy(handle_);
  }

  CUcontext ctx_{};
  cudnnHandle_t handle_{};
};

// |got − want| ≤ rel · scale + 1e-6 elementwise, where scale[i] is the sum of the magnitudes of
// the terms that make want[i] (the bound on reordering error in an fp32 sum).
inline void expect_close(const std::vector<float>& got, const std::vector<double>& want,
                         const std::vector<double>& scale, double rel, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], rel * scale[i] + 1e-6) << what << " at " << i;
}

inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace simcudnn::test
