// Batch normalization (spatial and per-activation) against a double-precision reference.
// Tolerance: 1e-5 absolute on outputs of magnitude ≤ ~5 (both sides reduce in double in the same
// order; the difference is fp32 rounding of the stored results and of x − mean).
#include "cudnn_fixture.h"

namespace simcudnn::test {
namespace {

using BatchNormTest = CudnnTest;

struct BnRef {
  std::vector<double> y, mean, var, inv, dx, dscale, dbias;
};

// Groups: per channel (spatial) or per (c, h, w) (per activation); members in order n, h, w.
BnRef reference(int n, int c, int hw, bool spatial, const std::vector<float>& x, const std::vector<float>& dy,
                const std::vector<float>& scale, const std::vector<float>& bias, double eps) {
  const int groups = spatial ? c : c * hw;
  BnRef r{std::vector<double>(x.size()), std::vector<double>(groups), std::vector<double>(groups),
          std::vector<double>(groups), std::vector<double>(x.size()), std::vector<double>(groups),
          std::vector<double>(groups)};
  for (int g = 0; g < groups; ++g) {
    std::vector<std::size_t> members;
    for (int ni = 0; ni < n; ++ni)
      for (int p = 0; p < hw; ++p)
        if (spatial || p == g % hw) members.push_back((std::size_t(ni) * c + (spatial ? g : g / hw)) * hw + p);
    const double m = static_cast<double>(members.size());
    double sum = 0.0;
    for (auto i : members) sum += x[i];
    const double mean = sum / m;
    double sq = 0.0;
    for (auto i : members) sq += (x[i] - mean) * (x[i] - mean);
    const double var = sq / m, inv = 1.0 / std::sqrt(var + eps);
    r.mean[g] = mean;
    r.var[g] = var;
    r.inv[g] = inv;
    double db = 0.0, ds = 0.0;
    for (auto i : members) {
      r.y[i] = scale[g] * (x[i] - mean) * inv + bias[g];
      db += dy[i];
      ds += dy[i] * (x[i] - mean) * inv;
    }
    r.dbias[g] = db;
    r.dscale[g] = ds;
    for (auto i : members) r.dx[i] = scale[g] * inv / m * (m * dy[i] - db - (x[i] - mean) * inv * ds);
  }
  return r;
}

void expect_near_all(const std::vector<float>& got, const std::vector<double>& want, double tol, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], tol) << what << " at " << i;
}

TEST_F(BatchNormTest, TrainingInferenceAndBackward) {
  const int n = 4, c = 3, h = 3, w = 5, hw = h * w;
  const double eps = 1e-5, factor = 0.1;
  for (auto mode : {CUDNN_BATCHNORM_SPATIAL, CUDNN_BATCHNORM_PER_ACTIVATION}) {
    SCOPED_TRACE(mode == CUDNN_BATCHNORM_SPATIAL ? "spatial" : "per-activation");
    const bool spatial = mode == CUDNN_BATCHNORM_SPATIAL;
    const int groups = spatial ? c : c * hw;
    Tensor xd(n, c, h, w);
    cudnnTensorDescriptor_t pd{};
    DNN_OK(cudnnCreateTensorDescriptor(&pd));
    DNN_OK(cudnnDeriveBNTensorDescriptor(pd, xd, mode));
    int nb = 0, dims[4], strides[4];
    cudnnDataType_t type{};
    DNN_OK(cudnnGetTensorNdDescriptor(pd, 4, &type, &nb, dims, strides));
    EXPECT_EQ(dims[0] * 1000 + dims[1] * 100 + dims[2] * 10 + dims[3], spatial ? 1311 : 1335);

    const std::size_t count = std::size_t(n) * c * hw;
    const auto x = random_floats(count, 40, -2.0f, 3.0f), dy = random_floats(count, 41);
    const auto scale = random_floats(groups, 42, 0.5f, 1.5f), bias = random_floats(groups, 43);
    const auto rm0 = random_floats(groups, 44), rv0 = random_floats(groups, 45, 0.5f, 2.0f);
    const BnRef ref = reference(n, c, hw, spatial, x, dy, scale, bias, eps);

    DeviceFloats dx(x), dyv(count), dscale(scale), dbias(bias), rm(rm0), rv(rv0), sm(groups), si(groups);
    const float one = 1.0f, zero = 0.0f;
    DNN_OK(cudnnBatchNormalizationForwardTraining(handle_, mode, &one, &zero, xd, dx.get(), xd, dyv.get(), pd,
                                                  dscale.get(), dbias.get(), factor, rm.get(), rv.get(), eps,
                                                  sm.get(), si.get()));
    expect_near_all(dyv.download(), ref.y, 1e-5, "y");
    expect_near_all(sm.download(), ref.mean, 1e-6, "saved mean");
    expect_near_all(si.download(), ref.inv, 1e-5, "saved inverse std");
    std::vector<double> want_rm(groups), want_rv(groups);
    const double m = spatial ? n * hw : n;
    for (int g = 0; g < groups; ++g) {
      want_rm[g] = (1 - factor) * rm0[g] + factor * ref.mean[g];
      want_rv[g] = (1 - factor) * rv0[g] + factor * ref.var[g] * m / (m - 1);  // unbiased running variance
    }
    expect_near_all(rm.download(), want_rm, 1e-6, "running mean");
    expect_near_all(rv.download(), want_rv, 1e-6, "running var");

    // Inference with the running statistics.
    DeviceFloats yi(count);
    DNN_OK(cudnnBatchNormalizationForwardInference(handle_, mode, &one, &zero, xd, dx.get(), xd, yi.get(), pd,
                                                   dscale.get(), dbias.get(), rm.get(), rv.get(), eps));
    const auto rmv = rm.download(), rvv = rv.download(), yinf = yi.download();
    for (std::size_t i = 0; i < count; ++i) {
      const int ci = static_cast<int>(i / hw) % c, p = static_cast<int>(i % hw), g = spatial ? ci : ci * hw + p;
      const double want = scale[g] * (x[i] - rmv[g]) / std::sqrt(rvv[g] + eps) + bias[g];
      ASSERT_NEAR(yinf[i], want, 1e-5) << i;
    }

    // Backward, with the saved statistics and without them (recomputed): same answer.
    for (bool saved : {true, false}) {
      DeviceFloats ddy(dy), ddx(count), dgs(groups), dgb(groups);
      DNN_OK(cudnnBatchNormalizationBackward(handle_, mode, &one, &zero, &one, &zero, xd, dx.get(), xd, ddy.get(), xd,
                                             ddx.get(), pd, dscale.get(), dgs.get(), dgb.get(), eps,
                                             saved ? sm.get() : nullptr, saved ? si.get() : nullptr));
      expect_near_all(ddx.download(), ref.dx, 1e-5, "dx");
      expect_near_all(dgs.download(), ref.dscale, 1e-5, "dscale");
      expect_near_all(dgb.download(), ref.dbias, 1e-5, "dbias");
    }
    EXPECT_EQ(cudnnBatchNormalizationForwardTraining(handle_, mode, &one, &zero, xd, dx.get(), xd, dyv.get(), xd,
                                                     dscale.get(), dbias.get(), factor, rm.get(), rv.get(), eps,
                                                     sm.get(), si.get()),
              CUDNN_STATUS_BAD_PARAM);  // parameter descriptor with x's shape
    EXPECT_EQ(cudnnBatchNormalizationForwardTraining(handle_, mode, &one, &zero, xd, dx.get(), xd, dyv.get(), pd,
                                                     dscale.get(), dbias.get(), factor, rm.get(), rv.get(), -1.0,
                                                     sm.get(), si.get()),
              CUDNN_STATUS_BAD_PARAM);  // negative epsilon
    DNN_OK(cudnnDestroyTensorDescriptor(pd));
  }
}

}  // namespace
}  // namespace simcudnn::test
