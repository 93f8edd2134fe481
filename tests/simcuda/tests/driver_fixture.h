// Shared setup for tests that drive the simulated driver directly: an
// initialised primary context and a module of small CPU kernels.
#pragma once

#include <cuda.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>

#include "simcuda/image.h"

namespace simcuda::test {

#define CU_OK(expr) ASSERT_EQ((expr), CUDA_SUCCESS) << #expr

// fill_u32(uint32_t* out, uint32_t value, uint64_t count)
inline void fill_u32_body(const simcuda_launch*, const unsigned char* p) {
  std::uint32_t* out;
  std::uint32_t value;
  std::uint64_t count;
  std::memcpy(&out, p + 0, 8);
  std::memcpy(&value, p + 8, 4);
  std::memcpy(&count, p + 16, 8);
  for (std::uint64_t i = 0; i < count; ++i) out[i] = value;
}
inline constexpr simcuda_param kFillParams[] = {{0, 8}, {8, 4}, {16, 8}};

// add_u32(uint32_t* out, const uint32_t* a, const uint32_t* b, uint64_t count)
inline void add_u32_body(const simcuda_launch*, const unsigned char* p) {
  std::uint32_t* out;
  const std::uint32_t *a, *b;
  std::uint64_t count;
  std::memcpy(&out, p + 0, 8);
  std::memcpy(&a, p + 8, 8);
  std::memcpy(&b, p + 16, 8);
  std::memcpy(&count, p + 24, 8);
  for (std::uint64_t i = 0; i < count; ++i) out[i] = a[i] + b[i];
}
inline constexpr simcuda_param kAddParams[] = {{0, 8}, {8, 8}, {16, 8}, {24, 8}};

// slow_increment(uint32_t* cell, uint32_t sleep_us): read, sleep, write back + 1.
// Racing two of these without ordering loses an increment.
inline void slow_increment_body(const simcuda_launch*, const unsigned char* p) {
  std::uint32_t* cell;
  std::uint32_t sleep_us;
  std::memcpy(&cell, p + 0, 8);
  std::memcpy(&sleep_us, p + 8, 4);
  std::uint32_t v = *cell;
  std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
  *cell = v + 1;
}
inline constexpr simcuda_param kSlowParams[] = {{0, 8}, {8, 4}};

inline constexpr simcuda_kernel_desc kKernels[] = {
    {"fill_u32", fill_u32_body, 3, kFillParams},
    {"add_u32", add_u32_body, 4, kAddParams},
    {"slow_increment", slow_increment_body, 2, kSlowParams},
};
inline constexpr simcuda_image kImage{SIMCUDA_IMAGE_MAGIC, SIMCUDA_IMAGE_VERSION, 3, kKernels};

class DriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
    ASSERT_EQ(cuDevicePrimaryCtxRetain(&ctx_, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuCtxSetCurrent(ctx_), CUDA_SUCCESS);
    ASSERT_EQ(cuModuleLoadData(&module_, &kImage), CUDA_SUCCESS);
    ASSERT_EQ(cuModuleGetFunction(&fill_, module_, "fill_u32"), CUDA_SUCCESS);
    ASSERT_EQ(cuModuleGetFunction(&add_, module_, "add_u32"), CUDA_SUCCESS);
    ASSERT_EQ(cuModuleGetFunction(&slow_, module_, "slow_increment"), CUDA_SUCCESS);
  }
  void TearDown() override {
    cuCtxSynchronize();
    cuModuleUnload(module_);
  }

  CUresult fill(CUdeviceptr out, std::uint32_t value, std::uint64_t count, CUstream s = nullptr) {
    void* params[] = {&out, &value, &count};
    return cuLaunchKernel(fill_, 1, 1, 1, 1, 1, 1, 0, s, params, nullptr);
  }
  CUresult add(CUdeviceptr out, CUdeviceptr a, CUdeviceptr b, std::uint64_t count, CUstream s = nullptr) {
    void* params[] = {&out, &a, &b, &count};
    return cuLaunchKernel(add_, 1, 1, 1, 1, 1, 1, 0, s, params, nullptr);
  }
  CUresult slow_increment(CUdeviceptr cell, std::uint32_t sleep_us, CUstream s) {
    void* params[] = {&cell, &sleep_us};
    return cuLaunchKernel(slow_, 1, 1, 1, 1, 1, 1, 0, s, params, nullptr);
  }

  CUcontext ctx_{};
  CUmodule module_{};
  CUfunction fill_{}, add_{}, slow_{};
};

}  // namespace simcuda::test
