// The intercepted families as the hooks see them: each observes the op (its
// device ranges, recorded into the trace), and in swap mode makes those ranges
// resident before calling `forward`, the real function. In passthrough mode
// `forward` runs unchanged.
#pragma once

#include <mutex>

#include "engine.h"
#include "residency.h"

namespace oversub {

// Runs `forward` after making `ranges` resident for `stream` (swap mode),
// holding the engine lock until the op is submitted (Note [Engine lock]).
template <typename Forward>
CUresult submit(Residency* r, const RangeList& ranges, CUstream stream, Forward&& forward) {
  if (r == nullptr) return forward();
  if (CUresult res = r->prepare(ranges, stream); res != CUDA_SUCCESS) return res;
  return forward();
}

// Launch family.
template <typename Forward>
CUresult launch(CUfunction f, CUstream stream, void** params, void** extra, Forward&& forward) {
  ensure_started();
  Residency* r = Residency::get();
  const bool record = thread_state().library_depth == 0;
  if (r == nullptr) {
    if (record) {
      RangeList ranges;
      observe_launch(f, stream, params, extra, ranges, true);
    }
    return forward();
  }
  std::lock_guard lock(r->lock());
  RangeList ranges;
  observe_launch(f, stream, params, extra, ranges, record);
  return submit(r, ranges, stream, forward);
}

// A graph launch: its nodes, and so its ranges, are not visible here. In swap
// mode it still counts as an op on its stream, so that evictions fence on
// that stream after it (Note [Fencing only what is new] in residency.cpp).
template <typename Forward>
CUresult opaque_launch(CUstream stream, Forward&& forward) {
  Residency* r = Residency::get();
  if (r == nullptr) return forward();
  std::lock_guard lock(r->lock());
  return submit(r, RangeList{}, stream, forward);
}

// Allocation family: swap mode serves it from the arena.
template <typename Forward>
CUresult allocate(CUdeviceptr* out, std::size_t bytes, AllocKind kind, CUstream stream, Forward&& forward) {
  ensure_started();
  Residency::start_if_enabled();
  Residency* r = Residency::get();
  if (r != nullptr) {
    // Note [Address map under the engine lock]: in swap mode an address comes
    // back to the arena (under the lock) and may be handed out again at once
    // on another thread. The map entry must change in the same critical
    // section, or a late erase of the old entry removes the new one, and the
    // new buffer's kernels would go unprepared.
    std::lock_guard lock(r->lock());
    const CUresult res = r->allocate(out, bytes, kind, stream);
    if (res == CUDA_SUCCESS) record_alloc(*out, bytes, kind, stream);
    return res;
  }
  const CUresult res = forward();
  if (res == CUDA_SUCCESS && out != nullptr) record_alloc(*out, bytes, kind, stream);
  return res;
}

template <typename Forward>
CUresult release(CUdeviceptr pointer, CUstream stream, bool stream_ordered, Forward&& forward) {
  ensure_started();
  if (pointer == 0) return forward();
  record_free(pointer, stream, false);
  CUresult res = CUDA_SUCCESS;
  Residency* r = Residency::get();
  bool ours = false;
  if (r != nullptr) {
    std::lock_guard lock(r->lock());  // Note [Address map under the engine lock]
    ours = r->release(pointer, stream, stream_ordered, &res);
    if (ours && res == CUDA_SUCCESS) record_free(pointer, stream, true);
  }
  if (ours) return res;
  res = forward();
  if (res == CUDA_SUCCESS) record_free(pointer, stream, true);
  return res;
}

// Copy and memset family: exact ranges, which in swap mode also teach the
// engine tensor extents inside pooled segments. `observe` returns the copy's
// direction: the engine is told of the program's uploads (Note [Background
// evictions yield to uploads] in residency.cpp).
template <typename Observe, typename Forward>
CUresult exact_op(CUstream stream, Observe&& observe, Forward&& forward) {
  ensure_started();
  Residency* r = Residency::get();
  RangeList ranges;
  if (r == nullptr) {
    observe(ranges);
    return forward();
  }
  std::lock_guard lock(r->lock());
  const trace::CopyDirection direction = observe(ranges);
  r->learn_extents(ranges);
  if (direction != trace::CopyDirection::host_to_device) return submit(r, ranges, stream, forward);
  if (CUresult res = r->prepare_upload(ranges, stream); res != CUDA_SUCCESS) return res;
  const CUresult res = forward();
  r->finish_upload(stream, res == CUDA_SUCCESS);
  return res;
}

template <typename Forward>
CUresult copy(std::uint64_t dst, std::uint64_t src, std::uint64_t bytes, CUstream stream, Forward&& forward) {
  return exact_op(stream, [&](RangeList& ranges) { return observe_copy(dst, src, bytes, stream, ranges); }, forward);
}

template <typename Forward>
CUresult copy_2d(const CUDA_MEMCPY2D* p, CUstream stream, Forward&& forward) {
  return exact_op(stream, [&](RangeList& ranges) { return observe_copy_2d(p, stream, ranges); }, forward);
}

template <typename Forward>
CUresult set_memory(std::uint64_t dst, std::uint64_t pitch_bytes, std::uint64_t width_bytes, std::uint64_t height,
                    CUstream stream, Forward&& forward) {
  return exact_op(
      stream,
      [&](RangeList& ranges) {
        observe_memset(dst, pitch_bytes, width_bytes, height, stream, ranges);
        return trace::CopyDirection::none;
      },
      forward);
}

// Sync points are recorded after the wait, when they have happened.
template <typename Forward>
CUresult sync(trace::SyncKind kind, std::uint64_t handle, Forward&& forward) {
  ensure_started();
  CUresult res = forward();
  if (res == CUDA_SUCCESS) record_sync(kind, handle);
  return res;
}

}  // namespace oversub
