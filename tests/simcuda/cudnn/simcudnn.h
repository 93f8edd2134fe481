// simcudnn.h — what the simulated libcudnn.so.9's files share: the export macro, the handle and
// descriptor objects, and the checks every entry point makes.
//
// Note [How the simulated cuDNN works]
// Entry points run on the caller's thread and only validate descriptors, read the host-side
// scalars (alpha, beta, epsilon...) and queue one kernel on the handle's stream with
// cuLaunchKernel (driver.h). The kernel's parameter block carries every device pointer and the
// shapes, so the caller's thread never touches device memory, exactly like the real library,
// and an interposer sees every device range a call uses in its launch parameters. The kernels
// run on the stream's worker thread, on the CPU, in fp32 (double where a reduction needs it),
// in a fixed order: the same inputs give the same bits whatever the timing.
#pragma once

#include <cudnn.h>

#include <cstdint>

#define SIMCUDNN_EXPORT extern "C" __attribute__((visibility("default")))

// Descriptor objects. cudnn.h only forward-declares these structs; their names are the real ones,
// so the handles the application holds are pointers to them.
struct cudnnContext {
  cudaStream_t stream = nullptr;  // the legacy default stream until cudnnSetStream
};

// cuDNN's limit on tensor rank (CUDNN_DIM_MAX is 8); our kernels take at most 5 (see TensorView).
inline constexpr int kMaxDims = 8;

struct cudnnTensorStruct {
  bool set = false;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  int nb_dims = 0;
  int dims[kMaxDims] = {};
  int strides[kMaxDims] = {};
};

struct cudnnFilterStruct {
  bool set = false;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW;
  int nb_dims = 0;
  int dims[kMaxDims] = {};  // K, C, spatial... whatever the format
};

struct cudnnConvolutionStruct {
  bool set = false;
  int spatial_dims = 0;
  int pad[kMaxDims - 2] = {};
  int stride[kMaxDims - 2] = {};
  int dilation[kMaxDims - 2] = {};
  cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  cudnnDataType_t compute_type = CUDNN_DATA_FLOAT;
  cudnnMathType_t math_type = CUDNN_DEFAULT_MATH;
  cudnnReorderType_t reorder = CUDNN_DEFAULT_REORDER;
  int groups = 1;
};

struct cudnnPoolingStruct {
  bool set = false;
  cudnnPoolingMode_t mode = CUDNN_POOLING_MAX;
  cudnnNanPropagation_t nan = CUDNN_NOT_PROPAGATE_NAN;
  int spatial_dims = 0;
  int window[kMaxDims - 2] = {};
  int pad[kMaxDims - 2] = {};
  int stride[kMaxDims - 2] = {};
};

struct cudnnActivationStruct {
  bool set = false;
  cudnnActivationMode_t mode = CUDNN_ACTIVATION_RELU;
  cudnnNanPropagation_t nan = CUDNN_NOT_PROPAGATE_NAN;
  double coef = 0.0;
  double swish_beta = 1.0;
};

struct cudnnOpTensorStruct {
  bool set = false;
  cudnnOpTensorOp_t op = CUDNN_OP_TENSOR_ADD;
  cudnnDataType_t compute_type = CUDNN_DATA_FLOAT;
  cudnnNanPropagation_t nan = CUDNN_NOT_PROPAGATE_NAN;
};

namespace simcudnn {

// Returns early from an entry point with `status` unless `cond` holds.
#define SIMCUDNN_REQUIRE(cond, status) \
  do {                                 \
    if (!(cond)) return (status);      \
  } while (0)
#define SIMCUDNN_TRY(expr)                                                  \
  do {                                                                      \
    if (cudnnStatus_t simcudnn_status_ = (expr); simcudnn_status_ != CUDNN_STATUS_SUCCESS) \
      return simcudnn_status_;                                              \
  } while (0)

// Number of elements of a set tensor descriptor.
std::int64_t element_count(const cudnnTensorStruct& t);

// Same rank and extents (strides may differ).
bool same_dims(const cudnnTensorStruct& a, const cudnnTensorStruct& b);

// Compute entry points take only fp32 tensors (the simulated GPU has no fp16/fp64 kernels):
// NOT_SUPPORTED for any other data type, BAD_PARAM for a descriptor never set.
cudnnStatus_t require_float(const cudnnTensorStruct* t);

// The output extents (N, K, spatial...) of x convolved by w; checks that the three agree.
cudnnStatus_t conv_output_dims(const cudnnConvolutionStruct* conv, const cudnnTensorStruct* x,
                               const cudnnFilterStruct* w, int nb_dims, int* out);

// alpha/beta are host pointers to float for float tensors (cuDNN's scaling-parameter rule).
inline float host_scalar(const void* p) { return *static_cast<const float*>(p); }

}  // namespace simcudnn
