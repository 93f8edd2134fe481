// Convolution: forward, backward data, backward filter and bias against naive references, the
// algorithm and workspace queries, a numerical gradient check, and the errors.
//
// Tolerances: the direct algorithms (FWD IMPLICIT_GEMM) accumulate in fp32 in the reference's own
// order (c, r, s), so they must match the reference bit for bit. The GEMM algorithms and the
// backward passes sum in another order; they are checked against a double-precision reference
// within 1e-5 · Σ|terms| (fp32 rounding of a reordered sum of at most ~150 terms is below
// 150 · 6e-8 ≈ 1e-5 relative to Σ|terms|).
#include "cudnn_fixture.h"

namespace simcudnn::test {
namespace {

struct ConvCase {
  int n, c, h, w, k, r, s;
  int pad_h, pad_w, stride_h, stride_w, dil_h, dil_w, groups;
  bool flip;  // CUDNN_CONVOLUTION rather than CUDNN_CROSS_CORRELATION
  int oh() const { return (h + 2 * pad_h - ((r - 1) * dil_h + 1)) / stride_h + 1; }
  int ow() const { return (w + 2 * pad_w - ((s - 1) * dil_w + 1)) / stride_w + 1; }
  std::size_t x_size() const { return std::size_t(n) * c * h * w; }
  std::size_t w_size() const { return std::size_t(k) * (c / groups) * r * s; }
  std::size_t y_size() const { return std::size_t(n) * k * oh() * ow(); }
};

const ConvCase kCases[] = {
    {2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, false},  // plain 3×3, same padding
    {1, 4, 9, 8, 6, 3, 2, 2, 0, 2, 1, 2, 1, 2, true},   // groups, stride, dilation, true convolution
    {2, 4, 5, 5, 4, 3, 3, 1, 1, 2, 2, 1, 1, 4, false},  // depthwise, stride 2
    {3, 8, 4, 4, 5, 1, 1, 0, 0, 1, 1, 1, 1, 1, false},  // 1×1
};

// Visits every (y index, x index, w index) product of the convolution, in the order
// n, k, oh, ow, c, r, s: the direct 7-loop definition.
template <class F>
void for_each_term(const ConvCase& cc, F&& f) {
  const int cpg = cc.c / cc.groups, kpg = cc.k / cc.groups, oh_n = cc.oh(), ow_n = cc.ow();
  for (int n = 0; n < cc.n; ++n)
    for (int k = 0; k < cc.k; ++k)
      for (int oh = 0; oh < oh_n; ++oh)
        for (int ow = 0; ow < ow_n; ++ow)
          for (int cg = 0; cg < cpg; ++cg)
            for (int r = 0; r < cc.r; ++r)
              for (int s = 0; s < cc.s; ++s) {
                const int ih = oh * cc.stride_h - cc.pad_h + r * cc.dil_h;
                const int iw = ow * cc.stride_w - cc.pad_w + s * cc.dil_w;
                if (ih < 0 || ih >= cc.h || iw < 0 || iw >= cc.w) continue;
                const int c = (k / kpg) * cpg + cg;
                const int fr = cc.flip ? cc.r - 1 - r : r, fs = cc.flip ? cc.s - 1 - s : s;
                const std::size_t yi = ((std::size_t(n) * cc.k + k) * oh_n + oh) * ow_n + ow;
                const std::size_t xi = ((std::size_t(n) * cc.c + c) * cc.h + ih) * cc.w + iw;
                const std::size_t wi = ((std::size_t(k) * cpg + cg) * cc.r + fr) * cc.s + fs;
                f(yi, xi, wi);
              }
}

// fp32, same order as the direct kernel: the exact expected output.
std::vector<float> forward_fp32(const ConvCase& cc, const std::vector<float>& x, const std::vector<float>& w) {
  std::vector<float> y(cc.y_size(), 0.0f);
  for_each_term(cc, [&](std::size_t yi, std::size_t xi, std::size_t wi) { y[yi] += x[xi] * w[wi]; });
  return y;
}

struct Reference {
  std::vector<double> value, scale;
};
Reference forward_ref(const ConvCase& cc, const std::vector<float>& x, const std::vector<float>& w) {
  Reference r{std::vector<double>(cc.y_size()), std::vector<double>(cc.y_size())};
  for_each_term(cc, [&](std::size_t yi, std::size_t xi, std::size_t wi) {
    r.value[yi] += double{x[xi]} * w[wi];
    r.scale[yi] += std::fabs(double{x[xi]} * w[wi]);
  });
  return r;
}
Reference backward_data_ref(const ConvCase& cc, const std::vector<float>& dy, const std::vector<float>& w) {
  Reference r{std::vector<double>(cc.x_size()), std::vector<double>(cc.x_size())};
  for_each_term(cc, [&](std::size_t yi, std::size_t xi, std::size_t wi) {
    r.value[xi] += double{dy[yi]} * w[wi];
    r.scale[xi] += std::fabs(double{dy[yi]} * w[wi]);
  });
  return r;
}
Reference backward_filter_ref(const ConvCase& cc, const std::vector<float>& x, const std::vector<float>& dy) {
  Reference r{std::vector<double>(cc.w_size()), std::vector<double>(cc.w_size())};
  for_each_term(cc, [&](std::size_t yi, std::size_t xi, std::size_t wi) {
    r.value[wi] += double{dy[yi]} * x[xi];
    r.scale[wi] += std::fabs(double{dy[yi]} * x[xi]);
  });
  return r;
}

class ConvTest : public CudnnTest {
 protected:
  struct Descs {
    Descs(const ConvCase& cc)
        : x(cc.n, cc.c, cc.h, cc.w), y(cc.n, cc.k, cc.oh(), cc.ow()), w(cc.k, cc.c / cc.groups, cc.r, cc.s) {
      EXPECT_EQ(cudnnCreateConvolutionDescriptor(&conv), CUDNN_STATUS_SUCCESS);
      EXPECT_EQ(cudnnSetConvolution2dDescriptor(conv, cc.pad_h, cc.pad_w, cc.stride_h, cc.stride_w, cc.dil_h, cc.dil_w,
                                                cc.flip ? CUDNN_CONVOLUTION : CUDNN_CROSS_CORRELATION,
                                                CUDNN_DATA_FLOAT),
                CUDNN_STATUS_SUCCESS);
      EXPECT_EQ(cudnnSetConvolutionGroupCount(conv, cc.groups), CUDNN_STATUS_SUCCESS);
    }
    ~Descs() { cudnnDestroyConvolutionDescriptor(conv); }
    Tensor x, y;
    Filter w;
    cudnnConvolutionDescriptor_t conv{};
  };

  std::vector<float> forward(const Descs& d, const ConvCase& cc, cudnnConvolutionFwdAlgo_t algo,
                             const std::vector<float>& x, const std::vector<float>& w, float alpha = 1.0f,
                             float beta = 0.0f, const std::vector<float>* y0 = nullptr) {
    std::size_t ws_bytes = 0;
    EXPECT_EQ(cudnnGetConvolutionForwardWorkspaceSize(handle_, d.x, d.w, d.conv, d.y, algo, &ws_bytes),
              CUDNN_STATUS_SUCCESS);
    DeviceFloats dx(x), dw(w), dy(cc.y_size()), ws(std::max<std::size_t>(ws_bytes / 4, 1));
    if (y0 != nullptr) dy.upload(*y0);
    EXPECT_EQ(cudnnConvolutionForward(handle_, &alpha, d.x, dx.get(), d.w, dw.get(), d.conv, algo, ws.get(), ws_bytes,
                                      &beta, d.y, dy.get()),
              CUDNN_STATUS_SUCCESS);
    return dy.download();
  }
};

TEST_F(ConvTest, ForwardMatchesDirectDefinition) {
  for (const ConvCase& cc : kCases) {
    SCOPED_TRACE(testing::Message() << "case c=" << cc.c << " k=" << cc.k << " groups=" << cc.groups);
    Descs d(cc);
    const auto x = random_floats(cc.x_size(), 1), w = random_floats(cc.w_size(), 2);
    // The direct algorithm sums in the reference's order: bit-identical.
    const auto exact = forward_fp32(cc, x, w);
    EXPECT_TRUE(same_bits(forward(d, cc, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, x, w), exact));
    // Every other algorithm number runs the direct kernel too (Note [Simulated convolution algorithms]).
    EXPECT_TRUE(same_bits(forward(d, cc, CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, x, w), exact));
    const Reference ref = forward_ref(cc, x, w);
    expect_close(forward(d, cc, CUDNN_CONVOLUTION_FWD_ALGO_GEMM, x, w), ref.value, ref.scale, 1e-5, "im2col");
  }
}

TEST_F(ConvTest, ForwardBlendsWithAlphaAndBeta) {
  const ConvCase& cc = kCases[1];
  Descs d(cc);
  const auto x = random_floats(cc.x_size(), 3), w = random_floats(cc.w_size(), 4), y0 = random_floats(cc.y_size(), 5);
  const auto acc = forward_fp32(cc, x, w);
  for (auto algo : {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, CUDNN_CONVOLUTION_FWD_ALGO_GEMM}) {
    const auto y = forward(d, cc, algo, x, w, 0.5f, 0.25f, &y0);
    const Reference ref = forward_ref(cc, x, w);
    for (std::size_t i = 0; i < y.size(); ++i) {
      if (algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM) ASSERT_EQ(y[i], 0.5f * acc[i] + 0.25f * y0[i]) << i;
      else ASSERT_NEAR(y[i], 0.5 * ref.value[i] + 0.25 * y0[i], 0.5e-5 * ref.scale[i] + 1e-6) << i;
    }
  }
  // beta == 0: y is not read, so NaN garbage in it must not leak into the result.
  const std::vector<float> garbage(cc.y_size(), std::nanf(""));
  for (float v : forward(d, cc, CUDNN_CONVOLUTION_FWD_ALGO_GEMM, x, w, 1.0f, 0.0f, &garbage)) ASSERT_FALSE(std::isnan(v));
}

TEST_F(ConvTest, BackwardDataMatchesReference) {
  for (const ConvCase& cc : kCases) {
    Descs d(cc);
    const auto dy = random_floats(cc.y_size(), 6), w = random_floats(cc.w_size(), 7);
    const Reference ref = backward_data_ref(cc, dy, w);
    for (auto algo : {CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1}) {
      std::size_t ws_bytes = 0;
      DNN_OK(cudnnGetConvolutionBackwardDataWorkspaceSize(handle_, d.w, d.y, d.conv, d.x, algo, &ws_bytes));
      EXPECT_EQ(ws_bytes > 0, algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1);
      DeviceFloats ddy(dy), dw(w), ddx(cc.x_size()), ws(std::max<std::size_t>(ws_bytes / 4, 1));
      const float alpha = 1.0f, beta = 0.0f;
      DNN_OK(cudnnConvolutionBackwardData(handle_, &alpha, d.w, dw.get(), d.y, ddy.get(), d.conv, algo, ws.get(),
                                          ws_bytes, &beta, d.x, ddx.get()));
      expect_close(ddx.download(), ref.value, ref.scale, 1e-5, "dgrad");
    }
  }
}

TEST_F(ConvTest, BackwardFilterMatchesReference) {
  for (const ConvCase& cc : kCases) {
    Descs d(cc);
    const auto x = random_floats(cc.x_size(), 8), dy = random_floats(cc.y_size(), 9);
    const auto dw0 = random_floats(cc.w_size(), 10);
    const Reference ref = backward_filter_ref(cc, x, dy);
    for (auto algo : {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1}) {
      std::size_t ws_bytes = 0;
      DNN_OK(cudnnGetConvolutionBackwardFilterWorkspaceSize(handle_, d.x, d.y, d.conv, d.w, algo, &ws_bytes));
      EXPECT_EQ(ws_bytes > 0, algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1);
      DeviceFloats dx(x), ddy(dy), ddw(dw0), ws(std::max<std::size_t>(ws_bytes / 4, 1));
      // beta = 1 accumulates into the existing gradient, as frameworks do across micro-batches.
      const float alpha = 2.0f, beta = 1.0f;
      DNN_OK(cudnnConvolutionBackwardFilter(handle_, &alpha, d.x, dx.get(), d.y, ddy.get(), d.conv, algo, ws.get(),
                                            ws_bytes, &beta, d.w, ddw.get()));
      std::vector<double> want(cc.w_size()), scale(cc.w_size());
      for (std::size_t i = 0; i < want.size(); ++i) {
        want[i] = 2.0 * ref.value[i] + dw0[i];
        scale[i] = 2.0 * ref.scale[i] + std::fabs(dw0[i]);
      }
      expect_close(ddw.download(), want, scale, 1e-5, "wgrad");
    }
  }
}

// The gradients agree with finite differences of the forward pass, L = Σ y·g. The convolution is
// linear in x and in w, so a central difference with step h is exact up to fp32 rounding of L.
TEST_F(ConvTest, GradientsMatchFiniteDifferences) {
  const ConvCase cc{1, 2, 4, 4, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, true};
  Descs d(cc);
  auto x = random_floats(cc.x_size(), 11), w = random_floats(cc.w_size(), 12);
  const auto g = random_floats(cc.y_size(), 13);
  auto loss = [&](const std::vector<float>& xv, const std::vector<float>& wv) {
    const auto y = forward(d, cc, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, xv, wv);
    double l = 0.0;
    for (std::size_t i = 0; i < y.size(); ++i) l += double{y[i]} * g[i];
    return l;
  };
  DeviceFloats dg(g), dx(x), dw(w), gx(cc.x_size()), gw(cc.w_size());
  const float one = 1.0f, zero = 0.0f;
  DNN_OK(cudnnConvolutionBackwardData(handle_, &one, d.w, dw.get(), d.y, dg.get(), d.conv,
                                      CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, nullptr, 0, &zero, d.x, gx.get()));
  DNN_OK(cudnnConvolutionBackwardFilter(handle_, &one, d.x, dx.get(), d.y, dg.get(), d.conv,
                                        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, nullptr, 0, &zero, d.w, gw.get()));
  const auto grad_x = gx.download(), grad_w = gw.download();
  const float h = 0.25f;  // a power of two: x ± h is exact for |x| ≤ 1
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float keep = x[i];
    x[i] = keep + h;
    const double up = loss(x, w);
    x[i] = keep - h;
    const double down = loss(x, w);
    x[i] = keep;
    ASSERT_NEAR(grad_x[i], (up - down) / (2 * h), 1e-4) << "dx " << i;
  }
  for (std::size_t i = 0; i < w.size(); ++i) {
    const float keep = w[i];
    w[i] = keep + h;
    const double up = loss(x, w);
    w[i] = keep - h;
    const double down = loss(x, w);
    w[i] = keep;
    ASSERT_NEAR(grad_w[i], (up - down) / (2 * h), 1e-4) << "dw " << i;
  }
}

TEST_F(ConvTest, BackwardBiasSumsOverBatchAndSpace) {
  const int n = 3, c = 5, h = 4, w = 6;
  Tensor dy_desc(n, c, h, w), db_desc(1, c, 1, 1);
  const auto dy = random_floats(std::size_t(n) * c * h * w, 14), db0 = random_floats(c, 15);
  DeviceFloats ddy(dy), ddb(db0);
  const float alpha = 1.5f, beta = 0.5f;
  DNN_OK(cudnnConvolutionBackwardBias(handle_, &alpha, dy_desc, ddy.get(), &beta, db_desc, ddb.get()));
  std::vector<double> want(c), scale(c);
  for (int ci = 0; ci < c; ++ci) {
    double s = 0.0, a = 0.0;
    for (int ni = 0; ni < n; ++ni)
      for (int i = 0; i < h * w; ++i) {
        s += dy[(std::size_t(ni) * c + ci) * h * w + i];
        a += std::fabs(dy[(std::size_t(ni) * c + ci) * h * w + i]);
      }
    want[ci] = 1.5 * s + 0.5 * db0[ci];
    scale[ci] = 1.5 * a;
  }
  expect_close(ddb.download(), want, scale, 1e-6, "bgrad");
}

TEST_F(ConvTest, AlgorithmQueriesReportGemmWithWorkspaceFirst) {
  const ConvCase& cc = kCases[0];
  Descs d(cc);
  int n = 0, c = 0, h = 0, w = 0;
  DNN_OK(cudnnGetConvolution2dForwardOutputDim(d.conv, d.x, d.w, &n, &c, &h, &w));
  EXPECT_EQ(n, cc.n);
  EXPECT_EQ(c, cc.k);
  EXPECT_EQ(h, cc.oh());
  EXPECT_EQ(w, cc.ow());
  int nd[4] = {};
  DNN_OK(cudnnGetConvolutionNdForwardOutputDim(d.conv, d.x, d.w, 4, nd));
  EXPECT_EQ(nd[2], cc.oh());
  int count = 0;
  DNN_OK(cudnnGetConvolutionForwardAlgorithmMaxCount(handle_, &count));
  EXPECT_EQ(count, CUDNN_CONVOLUTION_FWD_ALGO_COUNT);

  cudnnConvolutionFwdAlgoPerf_t fwd[8];
  for (int find = 0; find < 2; ++find) {
    int returned = 0;
    DNN_OK(find ? cudnnFindConvolutionForwardAlgorithm(handle_, d.x, d.w, d.conv, d.y, 8, &returned, fwd)
                : cudnnGetConvolutionForwardAlgorithm_v7(handle_, d.x, d.w, d.conv, d.y, 8, &returned, fwd));
    ASSERT_EQ(returned, 2);
    EXPECT_EQ(fwd[0].algo, CUDNN_CONVOLUTION_FWD_ALGO_GEMM);
    EXPECT_EQ(fwd[1].algo, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM);
    std::size_t ws = 0;
    DNN_OK(cudnnGetConvolutionForwardWorkspaceSize(handle_, d.x, d.w, d.conv, d.y, fwd[0].algo, &ws));
    // The column matrix (C·R·S × OH·OW) plus the K × OH·OW output scratch, in floats.
    EXPECT_EQ(ws, (std::size_t(cc.c) * cc.r * cc.s + cc.k) * cc.oh() * cc.ow() * 4);
    EXPECT_EQ(fwd[0].memory, ws);
    EXPECT_EQ(fwd[1].memory, 0u);
    EXPECT_EQ(fwd[0].status, CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(fwd[0].determinism, CUDNN_DETERMINISTIC);
    EXPECT_LT(fwd[0].time, fwd[1].time);
  }
  int returned = 0;
  cudnnConvolutionBwdDataAlgoPerf_t bd[6];
  DNN_OK(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle_, d.w, d.y, d.conv, d.x, 1, &returned, bd));
  ASSERT_EQ(returned, 1);  // never more than requested
  EXPECT_EQ(bd[0].algo, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1);
  EXPECT_GT(bd[0].memory, 0u);
  DNN_OK(cudnnFindConvolutionBackwardDataAlgorithm(handle_, d.w, d.y, d.conv, d.x, 6, &returned, bd));
  ASSERT_EQ(returned, 2);
  EXPECT_EQ(bd[1].algo, CUDNN_CONVOLUTION_BWD_DATA_ALGO_0);
  cudnnConvolutionBwdFilterAlgoPerf_t bf[7];
  DNN_OK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle_, d.x, d.y, d.conv, d.w, 7, &returned, bf));
  ASSERT_EQ(returned, 2);
  EXPECT_EQ(bf[0].algo, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1);
  EXPECT_GT(bf[0].memory, 0u);
  EXPECT_EQ(bf[1].algo, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0);
  DNN_OK(cudnnFindConvolutionBackwardFilterAlgorithm(handle_, d.x, d.y, d.conv, d.w, 7, &returned, bf));
  EXPECT_EQ(returned, 2);
}

TEST_F(ConvTest, RejectsBadArguments) {
  const ConvCase& cc = kCases[0];
  Descs d(cc);
  DeviceFloats x(cc.x_size()), w(cc.w_size()), y(cc.y_size());
  const float one = 1.0f, zero = 0.0f;
  std::size_t ws = 0;
  DNN_OK(cudnnGetConvolutionForwardWorkspaceSize(handle_, d.x, d.w, d.conv, d.y, CUDNN_CONVOLUTION_FWD_ALGO_GEMM, &ws));
  DeviceFloats work(ws / 4);
  auto fwd = [&](cudnnTensorDescriptor_t yd, cudnnFilterDescriptor_t wd, int algo, std::size_t ws_bytes,
                 const void* xp) {
    return cudnnConvolutionForward(handle_, &one, d.x, xp, wd, w.get(), d.conv,
                                   static_cast<cudnnConvolutionFwdAlgo_t>(algo), work.get(), ws_bytes, &zero, yd,
                                   y.get());
  };
  EXPECT_EQ(fwd(d.y, d.w, CUDNN_CONVOLUTION_FWD_ALGO_GEMM, ws, x.get()), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(fwd(d.y, d.w, CUDNN_CONVOLUTION_FWD_ALGO_GEMM, ws - 4, x.get()), CUDNN_STATUS_BAD_PARAM);  // short workspace
  EXPECT_EQ(fwd(d.y, d.w, CUDNN_CONVOLUTION_FWD_ALGO_GEMM, ws, nullptr), CUDNN_STATUS_BAD_PARAM);     // null x
  EXPECT_EQ(fwd(d.y, d.w, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, ws, x.get()), CUDNN_STATUS_BAD_PARAM);    // no such algo
  Tensor wrong_y(cc.n, cc.k, cc.oh() + 1, cc.ow());
  EXPECT_EQ(fwd(wrong_y, d.w, 0, 0, x.get()), CUDNN_STATUS_BAD_PARAM);  // y does not match the output shape
  Filter wrong_c(cc.k, cc.c + 1, cc.r, cc.s);
  EXPECT_EQ(fwd(d.y, wrong_c, 0, 0, x.get()), CUDNN_STATUS_BAD_PARAM);  // filter channels ≠ input channels
  cudnnFilterDescriptor_t nhwc{};
  DNN_OK(cudnnCreateFilterDescriptor(&nhwc));
  DNN_OK(cudnnSetFilter4dDescriptor(nhwc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, cc.k, cc.c, cc.r, cc.s));
  EXPECT_EQ(fwd(d.y, nhwc, 0, 0, x.get()), CUDNN_STATUS_NOT_SUPPORTED_LAYOUT);
  cudnnDestroyFilterDescriptor(nhwc);
  cudnnTensorDescriptor_t dbl{};
  DNN_OK(cudnnCreateTensorDescriptor(&dbl));
  DNN_OK(cudnnSetTensor4dDescriptor(dbl, CUDNN_TENSOR_NCHW, CUDNN_DATA_DOUBLE, cc.n, cc.k, cc.oh(), cc.ow()));
  EXPECT_EQ(fwd(dbl, d.w, 0, 0, x.get()), CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE);
  cudnnDestroyTensorDescriptor(dbl);
  EXPECT_EQ(cudnnGetConvolutionBackwardFilterWorkspaceSize(handle_, d.x, d.y, d.conv, d.w,
                                                           CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD, &ws),
            CUDNN_STATUS_NOT_SUPPORTED);
}

}  // namespace
}  // namespace simcudnn::test

namespace simcudnn::test {
namespace {

// y = relu(alpha1·conv(x) + alpha2·z + bias), with z a separate tensor and with z == y.
TEST_F(ConvTest, BiasActivationForwardFusesTheSteps) {
  const ConvCase& cc = kCases[0];
  Descs d(cc);
  Tensor bias_d(1, cc.k, 1, 1);
  const auto x = random_floats(cc.x_size(), 60), w = random_floats(cc.w_size(), 61);
  const auto z = random_floats(cc.y_size(), 62), b = random_floats(cc.k, 63);
  const auto acc = forward_fp32(cc, x, w);
  cudnnActivationDescriptor_t act{};
  DNN_OK(cudnnCreateActivationDescriptor(&act));
  DNN_OK(cudnnSetActivationDescriptor(act, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
  const float alpha1 = 0.5f, alpha2 = 2.0f;
  const int hw = cc.oh() * cc.ow();
  for (bool in_place : {false, true}) {
    DeviceFloats dx(x), dw(w), dz(z), db(b), dy(cc.y_size());
    if (in_place) dy.upload(z);
    DNN_OK(cudnnConvolutionBiasActivationForward(handle_, &alpha1, d.x, dx.get(), d.w, dw.get(), d.conv,
                                                 CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &alpha2, d.y,
                                                 in_place ? dy.get() : dz.get(), bias_d, db.get(), act, d.y,
                                                 dy.get()));
    const auto y = dy.download();
    for (std::size_t i = 0; i < y.size(); ++i) {
      // Same fp32 steps as the library: alpha1·acc + alpha2·z, then + bias, then relu.
      const float v = (alpha1 * acc[i] + alpha2 * z[i]) + b[(i / hw) % cc.k];
      ASSERT_EQ(y[i], v > 0.0f ? v : 0.0f) << (in_place ? "in place " : "") << i;
    }
  }
  DNN_OK(cudnnDestroyActivationDescriptor(act));
}

}  // namespace
}  // namespace simcudnn::test
