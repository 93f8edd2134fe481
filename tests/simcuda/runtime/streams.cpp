// streams.cpp — streams, events and host callbacks.
//
// cudaStream_t and CUstream are the same type (struct CUstream_st*), and so are cudaEvent_t and
// CUevent, so handles pass through untouched. The special handles also share values:
// cudaStreamLegacy == CU_STREAM_LEGACY and cudaStreamPerThread == CU_STREAM_PER_THREAD.
#include <new>

#include "runtime.h"

namespace simcudart {
namespace {

static_assert(cudaStreamNonBlocking == CU_STREAM_NON_BLOCKING);
static_assert(cudaEventBlockingSync == CU_EVENT_BLOCKING_SYNC);
static_assert(cudaEventDisableTiming == CU_EVENT_DISABLE_TIMING);
static_assert(cudaEventInterprocess == CU_EVENT_INTERPROCESS);
static_assert(int(cudaStreamCaptureStatusActive) == int(CU_STREAM_CAPTURE_STATUS_ACTIVE));

cudaError_t stream_create(cudaStream_t* stream, unsigned int flags, int priority, bool with_priority) {
  if (stream == nullptr) return cudaErrorInvalidValue;
  Entered e = enter();
  if (e.error != cudaSuccess) return e.error;
  if (with_priority) return call(e.api->cuStreamCreateWithPriority, stream, flags, priority);
  return call(e.api->cuStreamCreate, stream, flags);
}

// A cudaStreamCallback_t takes a cudaError_t where the driver passes a CUresult, so it cannot
// be handed to cuStreamAddCallback as is: a heap trampoline converts the status.
struct StreamCallback {
  cudaStreamCallback_t fn;
  void* user_data;
};

void CUDA_CB run_stream_callback(CUstream stream, CUresult status, void* arg) {
  auto* cb = static_cast<StreamCallback*>(arg);
  StreamCallback copy = *cb;
  delete cb;
  copy.fn(stream, to_cuda_error(status), copy.user_data);
}

cudaError_t stream_add_callback(StreamMode mode, cudaStream_t stream, cudaStreamCallback_t fn, void* user_data,
                                unsigned int flags) {
  if (fn == nullptr) return cudaErrorInvalidValue;
  Entered e = enter(mode);
  if (e.error != cudaSuccess) return e.error;
  if (e.api->cuStreamAddCallback == nullptr) return cudaErrorNotSupported;
  auto* cb = new (std::nothrow) StreamCallback{fn, user_data};
  if (cb == nullptr) return cudaErrorMemoryAllocation;
  CUresult r = e.api->cuStreamAddCallback(stream, run_stream_callback, cb, flags);
  if (r != CUDA_SUCCESS) delete cb;
  return to_cuda_error(r);
}

cudaError_t launch_host_func(StreamMode mode, cudaStream_t stream, cudaHostFn_t fn, void* user_data) {
  if (fn == nullptr) return cudaErrorInvalidValue;
  Entered e = enter(mode);
  if (e.error != cudaSuccess) return e.error;
  return call(e.api->cuLaunchHostFunc, stream, fn, user_data);  // same signature: void(*)(void*)
}

cudaError_t stream_is_capturing(StreamMode mode, cudaStream_t stream, cudaStreamCaptureStatus* status) {
  if (status == nullptr) return cudaErrorInvalidValue;
  Entered e = enter(mode);
  if (e.error != cudaSuccess) return e.error;
  if (e.api->cuStreamIsCapturing == nullptr) {
    // A driver without capture support cannot have a capturing stream, and this runtime
    // exports no capture API either: PyTorch and cuBLAS ask this before every op.
    *status = cudaStreamCaptureStatusNone;
    return cudaSuccess;
  }
  CUstreamCaptureStatus s = CU_STREAM_CAPTURE_STATUS_NONE;
  CUresult r = e.api->cuStreamIsCapturing(stream, &s);
  *status = static_cast<cudaStreamCaptureStatus>(s);
  return to_cuda_error(r);
}

cudaError_t stream_sync(StreamMode mode, cudaStream_t stream) {
  Entered e = enter(mode);
  if (e.error != cudaSuccess) return e.error;
  return call(e.api->cuStreamSynchronize, stream);
}

cudaError_t stream_query(StreamMode mode, cudaStream_t stream) {
  Entered e = enter(mode);
  if (e.error != cudaSuccess) return e.error;
  return call(e.api->cuStreamQuery, stream);
}

cudaError_t stream_wait_event(StreamMode mode, cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
  Entered e = enter(mode);
  if (e.error != cudaSuccess) return e.error;
  return call(e.api->cuStreamWaitEvent, stream, event, flags);
}

cudaError_t stream_get_flags(StreamMode mode, cudaStream_t stream, unsigned int* flags) {
  Entered e = enter(mode);
  if (e.error != cudaSuccess) return e.error;
  return call(e.api->cuStreamGetFlags, stream, flags);
}

cudaError_t stream_get_priority(StreamMode mode, cudaStream_t stream, int* priority) {
  Entered e = enter(mode);
  if (e.error != cudaSuccess) return e.error;
  return call(e.api->cuStreamGetPriority, stream, priority);
}

cudaError_t event_record(StreamMode mode, cudaEvent_t event, cudaStream_t stream, unsigned int flags,
                         bool with_flags) {
  Entered e = enter(mode);
  if (e.error != cudaSuccess) return e.error;
  if (with_flags) return call(e.api->cuEventRecordWithFlags, event, stream, flags);
  return call(e.api->cuEventRecord, event, stream);
}

cudaError_t event_create(cudaEvent_t* event, unsigned int flags) {
  if (event == nullptr) return cudaErrorInvalidValue;
  Entered e = enter();
  if (e.error != cudaSuccess) return e.error;
  return call(e.api->cuEventCreate, event, flags);
}

}  // namespace
}  // namespace simcudart

using namespace simcudart;

// --- streams ---------------------------------------------------------------------------------
SIMCUDART_EXPORT cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  return record(stream_create(stream, cudaStreamDefault, 0, false));
}
SIMCUDART_EXPORT cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  return record(stream_create(stream, flags, 0, false));
}
SIMCUDART_EXPORT cudaError_t cudaStreamCreateWithPriority(cudaStream_t* stream, unsigned int flags, int priority) {
  return record(stream_create(stream, flags, priority, true));
}
SIMCUDART_EXPORT cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  Entered e = enter();
  if (e.error != cudaSuccess) return record(e.error);
  return record(call(e.api->cuStreamDestroy, stream));
}
SIMCUDART_EXPORT cudaError_t cudaDeviceGetStreamPriorityRange(int* least, int* greatest) {
  Entered e = enter();
  if (e.error != cudaSuccess) return record(e.error);
  return record(call(e.api->cuCtxGetStreamPriorityRange, least, greatest));
}

SIMCUDART_EXPORT cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  return record(stream_sync(StreamMode::legacy, stream));
}
SIMCUDART_EXPORT cudaError_t cudaStreamSynchronize_ptsz(cudaStream_t stream) {
  return record(stream_sync(StreamMode::per_thread, stream));
}
SIMCUDART_EXPORT cudaError_t cudaStreamQuery(cudaStream_t stream) {
  return record(stream_query(StreamMode::legacy, stream));
}
SIMCUDART_EXPORT cudaError_t cudaStreamQuery_ptsz(cudaStream_t stream) {
  return record(stream_query(StreamMode::per_thread, stream));
}
SIMCUDART_EXPORT cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
  return record(stream_wait_event(StreamMode::legacy, stream, event, flags));
}
SIMCUDART_EXPORT cudaError_t cudaStreamWaitEvent_ptsz(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
  return record(stream_wait_event(StreamMode::per_thread, stream, event, flags));
}
SIMCUDART_EXPORT cudaError_t cudaStreamAddCallback(cudaStream_t stream, cudaStreamCallback_t fn, void* user_data,
                                                   unsigned int flags) {
  return record(stream_add_callback(StreamMode::legacy, stream, fn, user_data, flags));
}
SIMCUDART_EXPORT cudaError_t cudaStreamAddCallback_ptsz(cudaStream_t stream, cudaStreamCallback_t fn,
                                                        void* user_data, unsigned int flags) {
  return record(stream_add_callback(StreamMode::per_thread, stream, fn, user_data, flags));
}
SIMCUDART_EXPORT cudaError_t cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t fn, void* user_data) {
  return record(launch_host_func(StreamMode::legacy, stream, fn, user_data));
}
SIMCUDART_EXPORT cudaError_t cudaLaunchHostFunc_ptsz(cudaStream_t stream, cudaHostFn_t fn, void* user_data) {
  return record(launch_host_func(StreamMode::per_thread, stream, fn, user_data));
}
SIMCUDART_EXPORT cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  return record(stream_is_capturing(StreamMode::legacy, stream, status));
}
SIMCUDART_EXPORT cudaError_t cudaStreamIsCapturing_ptsz(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  return record(stream_is_capturing(StreamMode::per_thread, stream, status));
}
SIMCUDART_EXPORT cudaError_t cudaStreamGetFlags(cudaStream_t stream, unsigned int* flags) {
  return record(stream_get_flags(StreamMode::legacy, stream, flags));
}
SIMCUDART_EXPORT cudaError_t cudaStreamGetFlags_ptsz(cudaStream_t stream, unsigned int* flags) {
  return record(stream_get_flags(StreamMode::per_thread, stream, flags));
}
SIMCUDART_EXPORT cudaError_t cudaStreamGetPriority(cudaStream_t stream, int* priority) {
  return record(stream_get_priority(StreamMode::legacy, stream, priority));
}
SIMCUDART_EXPORT cudaError_t cudaStreamGetPriority_ptsz(cudaStream_t stream, int* priority) {
  return record(stream_get_priority(StreamMode::per_thread, stream, priority));
}

// --- events ----------------------------------------------------------------------------------
SIMCUDART_EXPORT cudaError_t cudaEventCreate(cudaEvent_t* event) {
  return record(event_create(event, cudaEventDefault));
}
SIMCUDART_EXPORT cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  return record(event_create(event, flags));
}
SIMCUDART_EXPORT cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  return record(event_record(StreamMode::legacy, event, stream, 0, false));
}
SIMCUDART_EXPORT cudaError_t cudaEventRecord_ptsz(cudaEvent_t event, cudaStream_t stream) {
  return record(event_record(StreamMode::per_thread, event, stream, 0, false));
}
SIMCUDART_EXPORT cudaError_t cudaEventRecordWithFlags(cudaEvent_t event, cudaStream_t stream, unsigned int flags) {
  return record(event_record(StreamMode::legacy, event, stream, flags, true));
}
SIMCUDART_EXPORT cudaError_t cudaEventRecordWithFlags_ptsz(cudaEvent_t event, cudaStream_t stream,
                                                           unsigned int flags) {
  return record(event_record(StreamMode::per_thread, event, stream, flags, true));
}
SIMCUDART_EXPORT cudaError_t cudaEventQuery(cudaEvent_t event) {
  Entered e = enter();
  if (e.error != cudaSuccess) return record(e.error);
  return record(call(e.api->cuEventQuery, event));
}
SIMCUDART_EXPORT cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  Entered e = enter();
  if (e.error != cudaSuccess) return record(e.error);
  return record(call(e.api->cuEventSynchronize, event));
}
SIMCUDART_EXPORT cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  Entered e = enter();
  if (e.error != cudaSuccess) return record(e.error);
  return record(call(e.api->cuEventElapsedTime, ms, start, end));
}
SIMCUDART_EXPORT cudaError_t cudaEventDestroy(cudaEvent_t event) {
  Entered e = enter();
  if (e.error != cudaSuccess) return record(e.error);
  return record(call(e.api->cuEventDestroy, event));
}
