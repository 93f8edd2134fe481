// tensor_desc.cpp — tensor, filter, op-tensor and activation descriptors.
#include <algorithm>

#include "simcudnn.h"

namespace {

// Bytes per element; 0 for the types this simulation does not model (vectorised int8, fp8, fp4...).
std::size_t element_bytes(cudnnDataType_t type) {
  switch (type) {
    case CUDNN_DATA_FLOAT: case CUDNN_DATA_INT32: case CUDNN_DATA_UINT32: return 4;
    case CUDNN_DATA_DOUBLE: case CUDNN_DATA_INT64: return 8;
    case CUDNN_DATA_HALF: case CUDNN_DATA_BFLOAT16: return 2;
    case CUDNN_DATA_INT8: case CUDNN_DATA_UINT8: case CUDNN_DATA_BOOLEAN: return 1;
    default: return 0;
  }
}

// Packed strides for NCHW (row major) or NHWC (channels innermost) over any rank.
void packed_strides(cudnnTensorFormat_t format, int nb_dims, const int* dims, int* strides) {
  if (format == CUDNN_TENSOR_NHWC) {
    int s = 1;
    strides[1] = s;
    s *= dims[1];
    for (int i = nb_dims - 1; i >= 2; --i) {
      strides[i] = s;
      s *= dims[i];
    }
    strides[0] = s;
    return;
  }
  int s = 1;
  for (int i = nb_dims - 1; i >= 0; --i) {
    strides[i] = s;
    s *= dims[i];
  }
}

cudnnStatus_t set_tensor(cudnnTensorDescriptor_t d, cudnnDataType_t type, int nb_dims, const int* dims,
                         const int* strides) {
  SIMCUDNN_REQUIRE(d != nullptr && dims != nullptr && strides != nullptr, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(nb_dims >= 3, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(nb_dims <= kMaxDims, CUDNN_STATUS_NOT_SUPPORTED);  // beyond CUDNN_DIM_MAX
  // NOT_SUPPORTED: vectorised int8 and the fp8/fp4/complex types have no simulated layout.
  SIMCUDNN_REQUIRE(element_bytes(type) != 0, CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE);
  std::int64_t count = 1;
  for (int i = 0; i < nb_dims; ++i) {
    SIMCUDNN_REQUIRE(dims[i] > 0 && strides[i] > 0, CUDNN_STATUS_BAD_PARAM);
    count *= dims[i];
  }
  // The real library caps a descriptor at 2^31 elements (32-bit indexing).
  SIMCUDNN_REQUIRE(count <= (std::int64_t{1} << 31) - 1, CUDNN_STATUS_NOT_SUPPORTED_SHAPE);
  d->type = type;
  d->nb_dims = nb_dims;
  std::copy(dims, dims + nb_dims, d->dims);
  std::copy(strides, strides + nb_dims, d->strides);
  d->set = true;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t check_format(cudnnTensorFormat_t format) {
  if (format == CUDNN_TENSOR_NCHW || format == CUDNN_TENSOR_NHWC) return CUDNN_STATUS_SUCCESS;
  // NOT_SUPPORTED: NCHW_VECT_C only exists for the int8x4/x32 types, which we do not model.
  return format == CUDNN_TENSOR_NCHW_VECT_C ? CUDNN_STATUS_NOT_SUPPORTED_LAYOUT : CUDNN_STATUS_BAD_PARAM;
}

}  // namespace

using namespace simcudnn;

SIMCUDNN_EXPORT cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* d) {
  SIMCUDNN_REQUIRE(d != nullptr, CUDNN_STATUS_BAD_PARAM);
  *d = new cudnnTensorStruct;
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) {
  delete d;  // destroying NULL is a no-op success, as in cuDNN
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format,
                                                         cudnnDataType_t type, int n, int c, int h, int w) {
  SIMCUDNN_TRY(check_format(format));
  const int dims[4] = {n, c, h, w};
  int strides[4];
  packed_strides(format, 4, dims, strides);
  return set_tensor(d, type, 4, dims, strides);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnSetTensor4dDescriptorEx(cudnnTensorDescriptor_t d, cudnnDataType_t type, int n,
                                                           int c, int h, int w, int n_stride, int c_stride,
                                                           int h_stride, int w_stride) {
  const int dims[4] = {n, c, h, w};
  const int strides[4] = {n_stride, c_stride, h_stride, w_stride};
  return set_tensor(d, type, 4, dims, strides);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetTensor4dDescriptor(const cudnnTensorDescriptor_t d, cudnnDataType_t* type,
                                                         int* n, int* c, int* h, int* w, int* n_stride,
                                                         int* c_stride, int* h_stride, int* w_stride) {
  SIMCUDNN_REQUIRE(d != nullptr && d->set, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(type && n && c && h && w && n_stride && c_stride && h_stride && w_stride, CUDNN_STATUS_BAD_PARAM);
  *type = d->type;
  int* out_dims[4] = {n, c, h, w};
  int* out_strides[4] = {n_stride, c_stride, h_stride, w_stride};
  for (int i = 0; i < 4; ++i) {
    // A 3-d tensor reads as 4-d with a trailing extent of 1.
    *out_dims[i] = i < d->nb_dims ? d->dims[i] : 1;
    *out_strides[i] = i < d->nb_dims ? d->strides[i] : 1;
  }
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnSetTensorNdDescriptor(cudnnTensorDescriptor_t d, cudnnDataType_t type, int nb_dims,
                                                         const int dims[], const int strides[]) {
  return set_tensor(d, type, nb_dims, dims, strides);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnSetTensorNdDescriptorEx(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format,
                                                           cudnnDataType_t type, int nb_dims, const int dims[]) {
  SIMCUDNN_TRY(check_format(format));
  SIMCUDNN_REQUIRE(dims != nullptr && nb_dims >= 3 && nb_dims <= kMaxDims, CUDNN_STATUS_BAD_PARAM);
  int strides[kMaxDims];
  packed_strides(format, nb_dims, dims, strides);
  return set_tensor(d, type, nb_dims, dims, strides);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetTensorNdDescriptor(const cudnnTensorDescriptor_t d, int requested,
                                                         cudnnDataType_t* type, int* nb_dims, int dims[],
                                                         int strides[]) {
  SIMCUDNN_REQUIRE(d != nullptr && d->set && requested >= 0, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(type != nullptr && nb_dims != nullptr, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(requested == 0 || (dims != nullptr && strides != nullptr), CUDNN_STATUS_BAD_PARAM);
  *type = d->type;
  *nb_dims = d->nb_dims;
  for (int i = 0; i < std::min(requested, d->nb_dims); ++i) {
    dims[i] = d->dims[i];
    strides[i] = d->strides[i];
  }
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetTensorSizeInBytes(const cudnnTensorDescriptor_t d, size_t* size) {
  SIMCUDNN_REQUIRE(d != nullptr && d->set && size != nullptr, CUDNN_STATUS_BAD_PARAM);
  // The span from the first to the last element, which is what must be allocated.
  std::int64_t last = 0;
  for (int i = 0; i < d->nb_dims; ++i) last += std::int64_t{d->dims[i] - 1} * d->strides[i];
  *size = static_cast<size_t>(last + 1) * element_bytes(d->type);
  return CUDNN_STATUS_SUCCESS;
}

// ---- filters ----

SIMCUDNN_EXPORT cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* d) {
  SIMCUDNN_REQUIRE(d != nullptr, CUDNN_STATUS_BAD_PARAM);
  *d = new cudnnFilterStruct;
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) {
  delete d;
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnSetFilterNdDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t type,
                                                         cudnnTensorFormat_t format, int nb_dims, const int dims[]) {
  SIMCUDNN_REQUIRE(d != nullptr && dims != nullptr, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_TRY(check_format(format));
  SIMCUDNN_REQUIRE(nb_dims >= 3, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(nb_dims <= kMaxDims, CUDNN_STATUS_NOT_SUPPORTED);
  SIMCUDNN_REQUIRE(element_bytes(type) != 0, CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE);
  for (int i = 0; i < nb_dims; ++i) SIMCUDNN_REQUIRE(dims[i] > 0, CUDNN_STATUS_BAD_PARAM);
  d->type = type;
  d->format = format;
  d->nb_dims = nb_dims;
  std::copy(dims, dims + nb_dims, d->dims);
  d->set = true;
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t type,
                                                         cudnnTensorFormat_t format, int k, int c, int h, int w) {
  const int dims[4] = {k, c, h, w};
  return cudnnSetFilterNdDescriptor(d, type, format, 4, dims);
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetFilter4dDescriptor(const cudnnFilterDescriptor_t d, cudnnDataType_t* type,
                                                         cudnnTensorFormat_t* format, int* k, int* c, int* h,
                                                         int* w) {
  SIMCUDNN_REQUIRE(d != nullptr && d->set && d->nb_dims == 4, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(type && format && k && c && h && w, CUDNN_STATUS_BAD_PARAM);
  *type = d->type;
  *format = d->format;
  *k = d->dims[0];
  *c = d->dims[1];
  *h = d->dims[2];
  *w = d->dims[3];
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetFilterNdDescriptor(const cudnnFilterDescriptor_t d, int requested,
                                                         cudnnDataType_t* type, cudnnTensorFormat_t* format,
                                                         int* nb_dims, int dims[]) {
  SIMCUDNN_REQUIRE(d != nullptr && d->set && requested >= 0, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(type && format && nb_dims && (requested == 0 || dims != nullptr), CUDNN_STATUS_BAD_PARAM);
  *type = d->type;
  *format = d->format;
  *nb_dims = d->nb_dims;
  for (int i = 0; i < std::min(requested, d->nb_dims); ++i) dims[i] = d->dims[i];
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetFilterSizeInBytes(const cudnnFilterDescriptor_t d, size_t* size) {
  SIMCUDNN_REQUIRE(d != nullptr && d->set && size != nullptr, CUDNN_STATUS_BAD_PARAM);
  std::size_t count = 1;
  for (int i = 0; i < d->nb_dims; ++i) count *= static_cast<std::size_t>(d->dims[i]);
  *size = count * element_bytes(d->type);
  return CUDNN_STATUS_SUCCESS;
}

// ---- op-tensor descriptors ----

SIMCUDNN_EXPORT cudnnStatus_t cudnnCreateOpTensorDescriptor(cudnnOpTensorDescriptor_t* d) {
  SIMCUDNN_REQUIRE(d != nullptr, CUDNN_STATUS_BAD_PARAM);
  *d = new cudnnOpTensorStruct;
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnDestroyOpTensorDescriptor(cudnnOpTensorDescriptor_t d) {
  delete d;
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnSetOpTensorDescriptor(cudnnOpTensorDescriptor_t d, cudnnOpTensorOp_t op,
                                                         cudnnDataType_t compute_type, cudnnNanPropagation_t nan) {
  SIMCUDNN_REQUIRE(d != nullptr, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(op >= CUDNN_OP_TENSOR_ADD && op <= CUDNN_OP_TENSOR_NOT, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(nan == CUDNN_NOT_PROPAGATE_NAN || nan == CUDNN_PROPAGATE_NAN, CUDNN_STATUS_BAD_PARAM);
  d->op = op;
  d->compute_type = compute_type;
  d->nan = nan;
  d->set = true;
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetOpTensorDescriptor(const cudnnOpTensorDescriptor_t d, cudnnOpTensorOp_t* op,
                                                         cudnnDataType_t* compute_type, cudnnNanPropagation_t* nan) {
  SIMCUDNN_REQUIRE(d != nullptr && d->set && op && compute_type && nan, CUDNN_STATUS_BAD_PARAM);
  *op = d->op;
  *compute_type = d->compute_type;
  *nan = d->nan;
  return CUDNN_STATUS_SUCCESS;
}

// ---- activation descriptors ----

SIMCUDNN_EXPORT cudnnStatus_t cudnnCreateActivationDescriptor(cudnnActivationDescriptor_t* d) {
  SIMCUDNN_REQUIRE(d != nullptr, CUDNN_STATUS_BAD_PARAM);
  *d = new cudnnActivationStruct;
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnDestroyActivationDescriptor(cudnnActivationDescriptor_t d) {
  delete d;
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnSetActivationDescriptor(cudnnActivationDescriptor_t d, cudnnActivationMode_t mode,
                                                           cudnnNanPropagation_t nan, double coef) {
  SIMCUDNN_REQUIRE(d != nullptr, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(mode >= CUDNN_ACTIVATION_SIGMOID && mode <= CUDNN_ACTIVATION_SWISH, CUDNN_STATUS_BAD_PARAM);
  SIMCUDNN_REQUIRE(nan == CUDNN_NOT_PROPAGATE_NAN || nan == CUDNN_PROPAGATE_NAN, CUDNN_STATUS_BAD_PARAM);
  d->mode = mode;
  d->nan = nan;
  d->coef = coef;
  d->set = true;
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetActivationDescriptor(const cudnnActivationDescriptor_t d,
                                                           cudnnActivationMode_t* mode, cudnnNanPropagation_t* nan,
                                                           double* coef) {
  SIMCUDNN_REQUIRE(d != nullptr && d->set && mode && nan && coef, CUDNN_STATUS_BAD_PARAM);
  *mode = d->mode;
  *nan = d->nan;
  *coef = d->coef;
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnSetActivationDescriptorSwishBeta(cudnnActivationDescriptor_t d, double beta) {
  SIMCUDNN_REQUIRE(d != nullptr, CUDNN_STATUS_BAD_PARAM);
  d->swish_beta = beta;
  return CUDNN_STATUS_SUCCESS;
}

SIMCUDNN_EXPORT cudnnStatus_t cudnnGetActivationDescriptorSwishBeta(cudnnActivationDescriptor_t d, double* beta) {
  SIMCUDNN_REQUIRE(d != nullptr && beta != nullptr, CUDNN_STATUS_BAD_PARAM);
  *beta = d->swish_beta;
  return CUDNN_STATUS_SUCCESS;
}
