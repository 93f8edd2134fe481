// conv_kernels.cpp — the convolution kernels, run on the stream's worker thread.
//
// Two families, both deterministic (Note [Deterministic GEMM] in driver.cpp):
//  - direct ("implicit GEMM"): plain loops accumulating in fp32 in a fixed order, no workspace;
//  - GEMM: im2col/col2im into the caller's workspace plus one OpenBLAS sgemm per image and
//    group (Note [Convolution workspaces] in conv.h).
// Blending follows cuDNN: out = alpha * result + beta * out, and out is not read when beta == 0.
#include <cblas.h>

#include "conv.h"

namespace simcudnn {
namespace {

inline long long x_offset(const ConvShape& s, int n, int c, int h, int w) {
  return (long long)n * s.x_strides[0] + (long long)c * s.x_strides[1] + (long long)h * s.x_strides[2] +
         (long long)w * s.x_strides[3];
}
inline long long y_offset(const ConvShape& s, int n, int k, int h, int w) {
  return (long long)n * s.y_strides[0] + (long long)k * s.y_strides[1] + (long long)h * s.y_strides[2] +
         (long long)w * s.y_strides[3];
}
// Filter element for tap (r, s): CUDNN_CONVOLUTION reads the filter flipped.
inline long long w_offset(const ConvShape& s, int k, int cg, int r, int t) {
  const int cpg = s.c / s.groups;
  if (s.flip) {
    r = s.r - 1 - r;
    t = s.s - 1 - t;
  }
  return ((long long)(k * cpg + cg) * s.r + r) * s.s + t;
}

inline void blend(float* out, float value, float alpha, float beta) {
  *out = beta == 0.0f ? alpha * value : alpha * value + beta * *out;
}

// col[(cg·R + r)·S + t][oh·OW + ow] = x[n, g·C/g + cg, oh·sh − ph + r·dh, ow·sw − pw + t·dw] (0 outside),
// for group g's rows; the filter flip is applied here so the GEMM is a plain product.
void im2col(const ConvShape& s, const float* x, int n, int g, float* col) {
  const int cpg = s.c / s.groups, ohw = s.oh * s.ow;
  for (int cg = 0; cg < cpg; ++cg)
    for (int r = 0; r < s.r; ++r)
      for (int t = 0; t < s.s; ++t) {
        const int rr = s.flip ? s.r - 1 - r : r, tt = s.flip ? s.s - 1 - t : t;
        float* row = col + (std::size_t((cg * s.r + r) * s.s + t)) * ohw;
        for (int oh = 0; oh < s.oh; ++oh) {
          const int ih = oh * s.stride_h - s.pad_h + rr * s.dil_h;
          for (int ow = 0; ow < s.ow; ++ow) {
            const int iw = ow * s.stride_w - s.pad_w + tt * s.dil_w;
            const bool inside = ih >= 0 && ih < s.h && iw >= 0 && iw < s.w;
            row[oh * s.ow + ow] = inside ? x[x_offset(s, n, g * cpg + cg, ih, iw)] : 0.0f;
          }
        }
      }
}

// Packs dy[n] (any strides) into K × OH·OW rows.
void pack_output(const ConvShape& s, const float* dy, int n, float* packed) {
  for (int k = 0; k < s.k; ++k)
    for (int oh = 0; oh < s.oh; ++oh)
      for (int ow = 0; ow < s.ow; ++ow) packed[(std::size_t(k) * s.oh + oh) * s.ow + ow] = dy[y_offset(s, n, k, oh, ow)];
}

}  // namespace

void run_conv_fwd_implicit(const ConvFwdParams& p) {
  const ConvShape& s = p.shape;
  const int cpg = s.c / s.groups, kpg = s.k / s.groups;
  for (int n = 0; n < s.n; ++n)
    for (int k = 0; k < s.k; ++k) {
      const int g = k / kpg;
      for (int oh = 0; oh < s.oh; ++oh)
        for (int ow = 0; ow < s.ow; ++ow) {
          float acc = 0.0f;
          for (int cg = 0; cg < cpg; ++cg)
            for (int r = 0; r < s.r; ++r) {
              const int ih = oh * s.stride_h - s.pad_h + r * s.dil_h;
              if (ih < 0 || ih >= s.h) continue;
              for (int t = 0; t < s.s; ++t) {
                const int iw = ow * s.stride_w - s.pad_w + t * s.dil_w;
                if (iw < 0 || iw >= s.w) continue;
                acc += p.x[x_offset(s, n, g * cpg + cg, ih, iw)] * p.w[w_offset(s, k, cg, r, t)];
              }
            }
          blend(&p.y[y_offset(s, n, k, oh, ow)], acc, p.alpha, p.beta);
        }
    }
}

void run_conv_fwd_im2col(const ConvFwdParams& p) {
  const ConvShape& s = p.shape;
  const int cpg = s.c / s.groups, kpg = s.k / s.groups, ohw = s.oh * s.ow, crs = cpg * s.r * s.s;
  float* col = p.workspace;
  float* out = p.workspace + col_floats(s);
  for (int n = 0; n < s.n; ++n) {
    for (int g = 0; g < s.groups; ++g) {
      float* gcol = col + std::size_t(g) * crs * ohw;
      im2col(s, p.x, n, g, gcol);
      // out[g·K/g .. ][OH·OW] = W_g (K/g × C/g·R·S) · col_g (C/g·R·S × OH·OW)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, kpg, ohw, crs, 1.0f, p.w + std::size_t(g) * kpg * crs,
                  crs, gcol, ohw, 0.0f, out + std::size_t(g) * kpg * ohw, ohw);
    }
    for (int k = 0; k < s.k; ++k)
      for (int oh = 0; oh < s.oh; ++oh)
        for (int ow = 0; ow < s.ow; ++ow)
          blend(&p.y[y_offset(s, n, k, oh, ow)], out[(std::size_t(k) * s.oh + oh) * s.ow + ow], p.alpha, p.beta);
  }
}

void run_conv_bwd_data_direct(const ConvBwdDataParams& p) {
  const ConvShape& s = p.shape;
  const int cpg = s.c / s.groups, kpg = s.k / s.groups;
  for (int n = 0; n < s.n; ++n)
    for (int c = 0; c < s.c; ++c) {
      const int g = c / cpg, cg = c % cpg;
      for (int ih = 0; ih < s.h; ++ih)
        for (int iw = 0; iw < s.w; ++iw) {
          // Gather: every (k, r, t) whose output position maps onto (ih, iw).
          float acc = 0.0f;
          for (int k = g * kpg; k < (g + 1) * kpg; ++k)
            for (int r = 0; r < s.r; ++r) {
              const int oh_num = ih + s.pad_h - r * s.dil_h;
              if (oh_num < 0 || oh_num % s.stride_h != 0 || oh_num / s.stride_h >= s.oh) continue;
              const int oh = oh_num / s.stride_h;
              for (int t = 0; t < s.s; ++t) {
                const int ow_num = iw + s.pad_w - t * s.dil_w;
                if (ow_num < 0 || ow_num % s.stride_w != 0 || ow_num / s.stride_w >= s.ow) continue;
                acc += p.dy[y_offset(s, n, k, oh, ow_num / s.stride_w)] * p.w[w_offset(s, k, cg, r, t)];
              }
            }
          blend(&p.dx[x_offset(s, n, c, ih, iw)], acc, p.alpha, p.beta);
        }
    }
}

void run_conv_bwd_data_gemm(const ConvBwdDataParams& p) {
  const ConvShape& s = p.shape;
  const int cpg = s.c / s.groups, kpg = s.k / s.groups, ohw = s.oh * s.ow, crs = cpg * s.r * s.s;
  float* col = p.workspace;
  float* dy = col + col_floats(s);
  float* acc = dy + out_floats(s);
  for (int n = 0; n < s.n; ++n) {
    pack_output(s, p.dy, n, dy);
    for (std::size_t i = 0; i < image_floats(s); ++i) acc[i] = 0.0f;
    for (int g = 0; g < s.groups; ++g) {
      float* gcol = col + std::size_t(g) * crs * ohw;
      // col_g (C/g·R·S × OH·OW) = W_gᵀ · dy_g
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, crs, ohw, kpg, 1.0f, p.w + std::size_t(g) * kpg * crs, crs,
                  dy + std::size_t(g) * kpg * ohw, ohw, 0.0f, gcol, ohw);
      // col2im, in the fixed order (cg, r, t, oh, ow).
      for (int cg = 0; cg < cpg; ++cg)
        for (int r = 0; r < s.r; ++r)
          for (int t = 0; t < s.s; ++t) {
            const int rr = s.flip ? s.r - 1 - r : r, tt = s.flip ? s.s - 1 - t : t;
            const float* row = gcol + std::size_t((cg * s.r + r) * s.s + t) * ohw;
            float* plane = acc + std::size_t(g * cpg + cg) * s.h * s.w;
            for (int oh = 0; oh < s.oh; ++oh) {
              const int ih = oh * s.stride_h - s.pad_h + rr * s.dil_h;
              if (ih < 0 || ih >= s.h) continue;
              for (int ow = 0; ow < s.ow; ++ow) {
                const int iw = ow * s.stride_w - s.pad_w + tt * s.dil_w;
                if (iw >= 0 && iw < s.w) plane[ih * s.w + iw] += row[oh * s.ow + ow];
              }
            }
          }
    }
    for (int c = 0; c < s.c; ++c)
      for (int ih = 0; ih < s.h; ++ih)
        for (int iw = 0; iw < s.w; ++iw)
          blend(&p.dx[x_offset(s, n, c, ih, iw)], acc[(std::size_t(c) * s.h + ih) * s.w + iw], p.alpha, p.beta);
  }
}

void run_conv_bwd_filter_direct(const ConvBwdFilterParams& p) {
  const ConvShape& s = p.shape;
  const int cpg = s.c / s.groups, kpg = s.k / s.groups;
  for (int k = 0; k < s.k; ++k) {
    const int g = k / kpg;
    for (int cg = 0; cg < cpg; ++cg)
      for (int r = 0; r < s.r; ++r)
        for (int t = 0; t < s.s; ++t) {
          float acc = 0.0f;
          for (int n = 0; n < s.n; ++n)
            for (int oh = 0; oh < s.oh; ++oh) {
              const int ih = oh * s.stride_h - s.pad_h + r * s.dil_h;
              if (ih < 0 || ih >= s.h) continue;
              for (int ow = 0; ow < s.ow; ++ow) {
                const int iw = ow * s.stride_w - s.pad_w + t * s.dil_w;
                if (iw < 0 || iw >= s.w) continue;
                acc += p.dy[y_offset(s, n, k, oh, ow)] * p.x[x_offset(s, n, g * cpg + cg, ih, iw)];
              }
            }
          blend(&p.dw[w_offset(s, k, cg, r, t)], acc, p.alpha, p.beta);
        }
  }
}

void run_conv_bwd_filter_gemm(const ConvBwdFilterParams& p) {
  const ConvShape& s = p.shape;
  const int cpg = s.c / s.groups, kpg = s.k / s.groups, ohw = s.oh * s.ow, crs = cpg * s.r * s.s;
  float* col = p.workspace;
  float* dy = col + col_floats(s);
  float* acc = dy + out_floats(s);
  for (std::size_t i = 0; i < filter_floats(s); ++i) acc[i] = 0.0f;
  for (int n = 0; n < s.n; ++n) {
    pack_output(s, p.dy, n, dy);
    for (int g = 0; g < s.groups; ++g) {
      float* gcol = col + std::size_t(g) * crs * ohw;
      im2col(s, p.x, n, g, gcol);
      // acc_g (K/g × C/g·R·S) += dy_g (K/g × OH·OW) · col_gᵀ; images are added in order n = 0, 1, ...
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, kpg, crs, ohw, 1.0f, dy + std::size_t(g) * kpg * ohw, ohw,
                  gcol, ohw, 1.0f, acc + std::size_t(g) * kpg * crs, crs);
    }
  }
  // acc is indexed by tap (r, t) as im2col laid it out, i.e. already flipped for CUDNN_CONVOLUTION.
  for (int k = 0; k < s.k; ++k)
    for (int cg = 0; cg < cpg; ++cg)
      for (int r = 0; r < s.r; ++r)
        for (int t = 0; t < s.s; ++t) {
          const float v = acc[((std::size_t(k) * cpg + cg) * s.r + r) * s.s + t];
          const int rr = s.flip ? s.r - 1 - r : r, tt = s.flip ? s.s - 1 - t : t;
          blend(&p.dw[w_offset(s, k, cg, rr, tt)], v, p.alpha, p.beta);
        }
}

}  // namespace simcudnn
