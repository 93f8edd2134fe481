// Host <-> device transfers: cublasSet/GetVector, cublasSet/GetMatrix and their Async forms.
// Like the real ones they are driver 2D copies (one row per element for strided vectors, one row
// per column for matrices): the plain forms on the legacy default stream, synchronous as
// cudaMemcpy2D is; the Async forms on the caller's stream.
#include "handle.h"

using namespace simcublas;

namespace {

enum class Direction { to_device, to_host };

// Copies `rows` rows of `width` bytes; src/dst pitches in bytes. A dense copy becomes one row.
cublasStatus_t copy_rows(Direction dir, const void* src, std::size_t src_pitch, void* dst, std::size_t dst_pitch,
                         std::size_t width, std::size_t rows, bool async, CUstream stream) {
  const DriverApi* api = nullptr;
  if (cublasStatus_t s = enter_without_handle(&api); s != CUBLAS_STATUS_SUCCESS) return s;
  if (width == 0 || rows == 0) return CUBLAS_STATUS_SUCCESS;
  if (src_pitch == width && dst_pitch == width) {
    width *= rows;
    rows = 1;
  }
  CUDA_MEMCPY2D copy{};
  if (dir == Direction::to_device) {
    copy.srcMemoryType = CU_MEMORYTYPE_HOST;
    copy.srcHost = src;
    copy.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    copy.dstDevice = reinterpret_cast<CUdeviceptr>(dst);
  } else {
    copy.srcMemoryType = CU_MEMORYTYPE_DEVICE;
    copy.srcDevice = reinterpret_cast<CUdeviceptr>(src);
    copy.dstMemoryType = CU_MEMORYTYPE_HOST;
    copy.dstHost = dst;
  }
  copy.srcPitch = src_pitch;
  copy.dstPitch = dst_pitch;
  copy.WidthInBytes = width;
  copy.Height = rows;
  const CUresult r = async ? api->cuMemcpy2DAsync(&copy, stream) : api->cuMemcpy2D(&copy);
  return r == CUDA_SUCCESS ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_MAPPING_ERROR;
}

cublasStatus_t vector(Direction dir, int n, int elem_size, const void* src, int incx, void* dst, int incy, bool async,
                      CUstream stream) {
  if (n < 0 || elem_size <= 0 || incx <= 0 || incy <= 0) return CUBLAS_STATUS_INVALID_VALUE;
  if (n > 0 && (src == nullptr || dst == nullptr)) return CUBLAS_STATUS_INVALID_VALUE;
  const auto elem = static_cast<std::size_t>(elem_size);
  return copy_rows(dir, src, elem * static_cast<std::size_t>(incx), dst, elem * static_cast<std::size_t>(incy), elem,
                   static_cast<std::size_t>(n), async, stream);
}

cublasStatus_t matrix(Direction dir, int rows, int cols, int elem_size, const void* src, int lda, void* dst, int ldb,
                      bool async, CUstream stream) {
  if (rows < 0 || cols < 0 || elem_size <= 0 || lda <= 0 || ldb <= 0 || lda < rows || ldb < rows)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (rows > 0 && cols > 0 && (src == nullptr || dst == nullptr)) return CUBLAS_STATUS_INVALID_VALUE;
  const auto elem = static_cast<std::size_t>(elem_size);
  return copy_rows(dir, src, elem * static_cast<std::size_t>(lda), dst, elem * static_cast<std::size_t>(ldb),
                   elem * static_cast<std::size_t>(rows), static_cast<std::size_t>(cols), async, stream);
}

}  // namespace

SIMCUBLAS_EXPORT cublasStatus_t cublasSetVector(int n, int elemSize, const void* x, int incx, void* devicePtr,
                                                int incy) {
  return vector(Direction::to_device, n, elemSize, x, incx, devicePtr, incy, false, nullptr);
}
SIMCUBLAS_EXPORT cublasStatus_t cublasGetVector(int n, int elemSize, const void* x, int incx, void* y, int incy) {
  return vector(Direction::to_host, n, elemSize, x, incx, y, incy, false, nullptr);
}
SIMCUBLAS_EXPORT cublasStatus_t cublasSetMatrix(int rows, int cols, int elemSize, const void* A, int lda, void* B,
                                                int ldb) {
  return matrix(Direction::to_device, rows, cols, elemSize, A, lda, B, ldb, false, nullptr);
}
SIMCUBLAS_EXPORT cublasStatus_t cublasGetMatrix(int rows, int cols, int elemSize, const void* A, int lda, void* B,
                                                int ldb) {
  return matrix(Direction::to_host, rows, cols, elemSize, A, lda, B, ldb, false, nullptr);
}
SIMCUBLAS_EXPORT cublasStatus_t cublasSetVectorAsync(int n, int elemSize, const void* hostPtr, int incx,
                                                     void* devicePtr, int incy, cudaStream_t stream) {
  return vector(Direction::to_device, n, elemSize, hostPtr, incx, devicePtr, incy, true, stream);
}
SIMCUBLAS_EXPORT cublasStatus_t cublasGetVectorAsync(int n, int elemSize, const void* devicePtr, int incx,
                                                     void* hostPtr, int incy, cudaStream_t stream) {
  return vector(Direction::to_host, n, elemSize, devicePtr, incx, hostPtr, incy, true, stream);
}
SIMCUBLAS_EXPORT cublasStatus_t cublasSetMatrixAsync(int rows, int cols, int elemSize, const void* A, int lda, void* B,
                                                     int ldb, cudaStream_t stream) {
  return matrix(Direction::to_device, rows, cols, elemSize, A, lda, B, ldb, true, stream);
}
SIMCUBLAS_EXPORT cublasStatus_t cublasGetMatrixAsync(int rows, int cols, int elemSize, const void* A, int lda, void* B,
                                                     int ldb, cudaStream_t stream) {
  return matrix(Direction::to_host, rows, cols, elemSize, A, lda, B, ldb, true, stream);
}
