// A kernel that receives its pointers inside a struct passed by value, as
// PyTorch's multi-tensor-apply kernels do (issue: interposition layer, test d).
// It scales four tensors; a fifth buffer is allocated but never passed. The
// test checks that the kernel's op in the trace names exactly the four.
#include <cstdio>

#include "simcuda/twin.h"

struct TensorList {
  float* tensors[4];
  int sizes[4];
  int count;
};

__global__ void scale_all(TensorList list, float factor) {
  for (int t = 0; t < list.count; ++t)
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < list.sizes[t]; i += gridDim.x * blockDim.x)
      list.tensors[t][i] *= factor;
}
static void scale_all_cpu(const simcuda::Grid&, TensorList list, float factor) {
  for (int t = 0; t < list.count; ++t)
    for (int i = 0; i < list.sizes[t]; ++i) list.tensors[t][i] *= factor;
}
SIMCUDA_TWIN(scale_all, scale_all_cpu);

int main() {
  TensorList list{};
  list.count = 4;
  float* unused = nullptr;
  for (int t = 0; t < 4; ++t) {
    list.sizes[t] = (t + 1) * 65536;
    if (cudaMalloc(&list.tensors[t], sizeof(float) * list.sizes[t]) != cudaSuccess) return 1;
    cudaMemset(list.tensors[t], 0, sizeof(float) * list.sizes[t]);
  }
  if (cudaMalloc(&unused, 1 << 20) != cudaSuccess) return 1;
  scale_all<<<32, 256>>>(list, 2.0f);
  if (cudaDeviceSynchronize() != cudaSuccess) return 1;
  for (int t = 0; t < 4; ++t)
    std::printf("tensor %d at 0x%llx bytes %zu\n", t, reinterpret_cast<unsigned long long>(list.tensors[t]),
                sizeof(float) * list.sizes[t]);
  std::printf("unused at 0x%llx\n", reinterpret_cast<unsigned long long>(unused));
  for (int t = 0; t < 4; ++t) cudaFree(list.tensors[t]);
  cudaFree(unused);
  std::printf("PASS\n");
  return 0;
}
