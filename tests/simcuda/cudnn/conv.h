// conv.h — what the convolution API (conv.cpp) and its kernels (conv_kernels.cpp) share:
// the workspace each GEMM algorithm needs and how it is carved up.
//
// Note [Convolution workspaces]
// The GEMM algorithms (forward GEMM, backward-data ALGO_1, backward-filter ALGO_1) work one image
// at a time in the caller's workspace buffer, never in memory of their own, so a program that
// sizes its workspace with cudnnGet*WorkspaceSize really depends on that buffer (as on a GPU):
//   [ column matrix: C·R·S × OH·OW ][ scratch: see below ]
//   forward:         scratch = K × OH·OW      (the GEMM's output before alpha/beta blending)
//   backward data:   scratch = K × OH·OW (dy packed) + C × H × W (dx accumulator)
//   backward filter: scratch = K × OH·OW (dy packed) + K × C/g·R·S (dw accumulator)
// The implicit/direct algorithms need no workspace.
#pragma once

#include <cstddef>

#include "kernels.h"

namespace simcudnn {

inline std::size_t col_floats(const ConvShape& s) {
  return std::size_t(s.c) * s.r * s.s * std::size_t(s.oh) * s.ow;
}
inline std::size_t out_floats(const ConvShape& s) { return std::size_t(s.k) * s.oh * s.ow; }
inline std::size_t image_floats(const ConvShape& s) { return std::size_t(s.c) * s.h * s.w; }
inline std::size_t filter_floats(const ConvShape& s) {
  return std::size_t(s.k) * (s.c / s.groups) * s.r * s.s;
}

inline std::size_t fwd_gemm_workspace_bytes(const ConvShape& s) { return (col_floats(s) + out_floats(s)) * 4; }
inline std::size_t bwd_data_gemm_workspace_bytes(const ConvShape& s) {
  return (col_floats(s) + out_floats(s) + image_floats(s)) * 4;
}
inline std::size_t bwd_filter_gemm_workspace_bytes(const ConvShape& s) {
  return (col_floats(s) + out_floats(s) + filter_floats(s)) * 4;
}

}  // namespace simcudnn
