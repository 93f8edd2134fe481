// Calls each cuBLAS and cuDNN entry point that issue 4 added a hook for, once
// (or once per access case), on buffers of known size. Every buffer is a 4 KiB
// allocation of its own, larger than any range below, so a range that is not
// computed exactly (or that falls back to the whole allocation) shows up. The
// program prints each buffer's address, the stream and the workspace size;
// check_library_hooks.py knows the calls and checks the trace's ops.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdio>
#include <vector>

namespace {

bool ok = true;

void check(bool good, const char* what) {
  if (!good) {
    std::printf("FAILED: %s\n", what);
    ok = false;
  }
}
#define CUDA(expr) check((expr) == cudaSuccess, #expr)
#define CUBLAS(expr) check((expr) == CUBLAS_STATUS_SUCCESS, #expr)
#define CUDNN(expr) check((expr) == CUDNN_STATUS_SUCCESS, #expr)

constexpr std::size_t kBufferBytes = 4096;

void* buffer(const char* name) {
  void* p = nullptr;
  CUDA(cudaMalloc(&p, kBufferBytes));
  CUDA(cudaMemset(p, 0, kBufferBytes));
  std::printf("buffer %s 0x%llx\n", name, reinterpret_cast<unsigned long long>(p));
  return p;
}

cudnnTensorDescriptor_t tensor(int n, int c, int h, int w) {
  cudnnTensorDescriptor_t d = nullptr;
  CUDNN(cudnnCreateTensorDescriptor(&d));
  CUDNN(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w));
  return d;
}

}  // namespace

int main() {
  cudaStream_t stream = nullptr;
  CUDA(cudaStreamCreate(&stream));
  std::printf("stream 0x%llx\n", reinterpret_cast<unsigned long long>(stream));

  // ---- cuBLAS: the Async host <-> device copies, on `stream` ----
  void* vec = buffer("vec");
  void* mat = buffer("mat");
  std::vector<float> host(64, 1.0f);
  // 10 elements, every 3rd: ((10-1)*3+1)*4 = 112 bytes written.
  CUBLAS(cublasSetVectorAsync(10, 4, host.data(), 1, vec, 3, stream));
  // 10 elements, every 2nd: ((10-1)*2+1)*4 = 76 bytes read.
  CUBLAS(cublasGetVectorAsync(10, 4, vec, 2, host.data(), 1, stream));
  // 5 x 4 into ld 8: (8*3+5)*4 = 116 bytes written.
  CUBLAS(cublasSetMatrixAsync(5, 4, 4, host.data(), 5, mat, 8, stream));
  // 3 x 4 from ld 8: (8*3+3)*4 = 108 bytes read.
  CUBLAS(cublasGetMatrixAsync(3, 4, 4, mat, 8, host.data(), 3, stream));
  CUDA(cudaStreamSynchronize(stream));

  // ---- cuDNN, on `stream` ----
  cudnnHandle_t handle = nullptr;
  CUDNN(cudnnCreate(&handle));
  CUDNN(cudnnSetStream(handle, stream));

  // Fused convolution: x 1x2x5x5 (200 bytes), w 3x2x3x3 (216), pad 1 -> y 1x3x5x5 (300),
  // z like y, bias 1x3x1x1 (12).
  void* x = buffer("x");
  void* w = buffer("w");
  void* y = buffer("y");
  void* z = buffer("z");
  void* bias = buffer("bias");
  void* workspace = buffer("workspace");
  cudnnTensorDescriptor_t x_desc = tensor(1, 2, 5, 5), y_desc = tensor(1, 3, 5, 5), bias_desc = tensor(1, 3, 1, 1);
  cudnnFilterDescriptor_t w_desc = nullptr;
  CUDNN(cudnnCreateFilterDescriptor(&w_desc));
  CUDNN(cudnnSetFilter4dDescriptor(w_desc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 3, 2, 3, 3));
  cudnnConvolutionDescriptor_t conv = nullptr;
  CUDNN(cudnnCreateConvolutionDescriptor(&conv));
  CUDNN(cudnnSetConvolution2dDescriptor(conv, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  cudnnActivationDescriptor_t relu = nullptr;
  CUDNN(cudnnCreateActivationDescriptor(&relu));
  CUDNN(cudnnSetActivationDescriptor(relu, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
  const cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_GEMM;
  std::size_t needed = 0;
  CUDNN(cudnnGetConvolutionForwardWorkspaceSize(handle, x_desc, w_desc, conv, y_desc, algo, &needed));
  // More than the algorithm needs and less than the allocation: the range is what is passed.
  const std::size_t workspace_bytes = needed + 64;
  check(workspace_bytes < kBufferBytes, "workspace fits its buffer");
  std::printf("workspace_bytes %zu\n", workspace_bytes);

  const float one = 1.0f, half = 0.5f, zero = 0.0f;
  // (a) residual z scaled by 0.5: z read, y written only.
  CUDNN(cudnnConvolutionBiasActivationForward(handle, &one, x_desc, x, w_desc, w, conv, algo, workspace,
                                              workspace_bytes, &half, y_desc, z, bias_desc, bias, relu, y_desc, y));
  // (b) alpha2 = 0: z is not read.
  CUDNN(cudnnConvolutionBiasActivationForward(handle, &one, x_desc, x, w_desc, w, conv, algo, workspace,
                                              workspace_bytes, &zero, y_desc, z, bias_desc, bias, relu, y_desc, y));
  // (c) in place, z == y: y read and written.
  CUDNN(cudnnConvolutionBiasActivationForward(handle, &one, x_desc, x, w_desc, w, conv, algo, workspace,
                                              workspace_bytes, &one, y_desc, y, bias_desc, bias, relu, y_desc, y));

  // Tensor ops. src is packed 1x2x3x4 (96 bytes); dst has the same extents with gaps,
  // strides 100/40/10/1: it spans 1 + 40 + 2*10 + 3 = 64 elements, 256 bytes.
  void* src = buffer("src");
  void* dst = buffer("dst");
  cudnnTensorDescriptor_t src_desc = tensor(1, 2, 3, 4), dst_desc = nullptr;
  CUDNN(cudnnCreateTensorDescriptor(&dst_desc));
  CUDNN(cudnnSetTensor4dDescriptorEx(dst_desc, CUDNN_DATA_FLOAT, 1, 2, 3, 4, 100, 40, 10, 1));
  // beta = 0: dst written only; beta = 1: dst read and written.
  CUDNN(cudnnTransformTensor(handle, &one, src_desc, src, &zero, dst_desc, dst));
  CUDNN(cudnnTransformTensor(handle, &one, src_desc, src, &one, dst_desc, dst));
  const float value = 3.0f;
  CUDNN(cudnnSetTensor(handle, dst_desc, dst, &value));
  CUDNN(cudnnScaleTensor(handle, dst_desc, dst, &half));
  CUDA(cudaStreamSynchronize(stream));

  // 3 * 0.5 = 1.5 everywhere the descriptor covers.
  float first = 0.0f;
  CUDA(cudaMemcpy(&first, dst, sizeof first, cudaMemcpyDeviceToHost));
  check(first == 1.5f, "cudnnSetTensor then cudnnScaleTensor give 1.5");

  cudnnDestroyActivationDescriptor(relu);
  cudnnDestroyConvolutionDescriptor(conv);
  cudnnDestroyFilterDescriptor(w_desc);
  for (cudnnTensorDescriptor_t d : {x_desc, y_desc, bias_desc, src_desc, dst_desc}) cudnnDestroyTensorDescriptor(d);
  cudnnDestroy(handle);
  for (void* p : {vec, mat, x, w, y, z, bias, workspace, src, dst}) CUDA(cudaFree(p));
  CUDA(cudaStreamDestroy(stream));
  std::printf(ok ? "PASS\n" : "FAIL\n");
  return ok ? 0 : 1;
}
