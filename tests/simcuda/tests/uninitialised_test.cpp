// Simulated driver: before cuInit every call reports CUDA_ERROR_NOT_INITIALIZED.
// Its own executable, so that nothing has initialised the driver yet.
#include <cuda.h>
#include <gtest/gtest.h>

TEST(Uninitialised, CallsFailBeforeCuInit) {
  CUdeviceptr p = 0;
  EXPECT_EQ(cuMemAlloc(&p, 16), CUDA_ERROR_NOT_INITIALIZED);
  int count = 0;
  EXPECT_EQ(cuDeviceGetCount(&count), CUDA_ERROR_NOT_INITIALIZED);
  EXPECT_EQ(cuInit(1), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuInit(0), CUDA_SUCCESS);
  EXPECT_EQ(cuDeviceGetCount(&count), CUDA_SUCCESS);
  EXPECT_EQ(count, 1);
}
