// Tensor ops, activation, pooling and softmax against naive references, plus the descriptors.
//
// Tolerances: element-wise ops (add, op-tensor, set, scale, transform, relu, average-free pooling)
// do the same fp32 operations as the reference and must match exactly. Activations that call
// exp/tanh are compared within 1e-6 absolute (the same libm, but the reference evaluates in double).
// Average pooling sums in the reference's order: exact. Softmax reduces in double on both sides:
// within 1e-6.
#include <algorithm>

#include "cudnn_fixture.h"

namespace simcudnn::test {
namespace {

using OpsTest = CudnnTest;

TEST_F(OpsTest, VersionAndErrorStrings) {
  EXPECT_EQ(cudnnGetVersion(), static_cast<size_t>(CUDNN_VERSION));
  int major = 0;
  DNN_OK(cudnnGetProperty(MAJOR_VERSION, &major));
  EXPECT_EQ(major, CUDNN_MAJOR);
  EXPECT_STREQ(cudnnGetErrorString(CUDNN_STATUS_BAD_PARAM), "CUDNN_STATUS_BAD_PARAM");
  EXPECT_STREQ(cudnnGetErrorString(CUDNN_STATUS_NOT_SUPPORTED), "CUDNN_STATUS_NOT_SUPPORTED");
  cudaStream_t s = reinterpret_cast<cudaStream_t>(1);
  DNN_OK(cudnnGetStream(handle_, &s));
  EXPECT_EQ(s, nullptr);  // the legacy default stream until cudnnSetStream
  CUstream mine{};
  CU_OK(cuStreamCreate(&mine, CU_STREAM_NON_BLOCKING));
  DNN_OK(cudnnSetStream(handle_, reinterpret_cast<cudaStream_t>(mine)));
  DNN_OK(cudnnGetStream(handle_, &s));
  EXPECT_EQ(s, reinterpret_cast<cudaStream_t>(mine));
  DNN_OK(cudnnSetStream(handle_, nullptr));
  CU_OK(cuStreamDestroy(mine));
}

TEST_F(OpsTest, TensorDescriptorsRoundTrip) {
  Tensor nhwc(2, 3, 4, 5, CUDNN_TENSOR_NHWC);
  cudnnDataType_t type{};
  int d[4], s[4];
  DNN_OK(cudnnGetTensor4dDescriptor(nhwc, &type, &d[0], &d[1], &d[2], &d[3], &s[0], &s[1], &s[2], &s[3]));
  EXPECT_EQ(type, CUDNN_DATA_FLOAT);
  EXPECT_EQ(s[1], 1);      // channels innermost
  EXPECT_EQ(s[3], 3);      // w stride = C
  EXPECT_EQ(s[2], 15);     // h stride = W·C
  EXPECT_EQ(s[0], 60);
  const int dims[5] = {2, 3, 4, 5, 6}, strides[5] = {720, 240, 60, 12, 2};  // padded innermost stride
  cudnnTensorDescriptor_t t{};
  DNN_OK(cudnnCreateTensorDescriptor(&t));
  DNN_OK(cudnnSetTensorNdDescriptor(t, CUDNN_DATA_FLOAT, 5, dims, strides));
  int nb = 0, got_d[8] = {}, got_s[8] = {};
  DNN_OK(cudnnGetTensorNdDescriptor(t, 8, &type, &nb, got_d, got_s));
  EXPECT_EQ(nb, 5);
  EXPECT_TRUE(std::equal(dims, dims + 5, got_d));
  EXPECT_TRUE(std::equal(strides, strides + 5, got_s));
  std::size_t bytes = 0;
  DNN_OK(cudnnGetTensorSizeInBytes(t, &bytes));
  EXPECT_EQ(bytes, std::size_t(1 * 720 + 2 * 240 + 3 * 60 + 4 * 12 + 5 * 2 + 1) * 4);
  const int bad[5] = {2, 0, 4, 5, 6};
  EXPECT_EQ(cudnnSetTensorNdDescriptor(t, CUDNN_DATA_FLOAT, 5, bad, strides), CUDNN_STATUS_BAD_PARAM);
  EXPECT_EQ(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NCHW_VECT_C, CUDNN_DATA_FLOAT, 1, 4, 1, 1),
            CUDNN_STATUS_NOT_SUPPORTED_LAYOUT);
  DNN_OK(cudnnDestroyTensorDescriptor(t));

  Filter f(8, 4, 3, 2);
  cudnnTensorFormat_t format{};
  int k = 0, c = 0, h = 0, w = 0;
  DNN_OK(cudnnGetFilter4dDescriptor(f, &type, &format, &k, &c, &h, &w));
  EXPECT_EQ(k * 1000 + c * 100 + h * 10 + w, 8432);
  DNN_OK(cudnnGetFilterSizeInBytes(f, &bytes));
  EXPECT_EQ(bytes, 8u * 4 * 3 * 2 * 4);

  cudnnConvolutionDescriptor_t conv{};
  DNN_OK(cudnnCreateConvolutionDescriptor(&conv));
  const int pad[3] = {1, 2, 3}, stride[3] = {1, 1, 2}, dil[3] = {1, 2, 1};
  DNN_OK(cudnnSetConvolutionNdDescriptor(conv, 3, pad, stride, dil, CUDNN_CONVOLUTION, CUDNN_DATA_FLOAT));
  int len = 0, gp[3], gs[3], gd[3];
  cudnnConvolutionMode_t mode{};
  DNN_OK(cudnnGetConvolutionNdDescriptor(conv, 3, &len, gp, gs, gd, &mode, &type));
  EXPECT_EQ(len, 3);
  EXPECT_EQ(gp[2] * 100 + gs[2] * 10 + gd[1], 322);
  EXPECT_EQ(mode, CUDNN_CONVOLUTION);
  DNN_OK(cudnnSetConvolutionMathType(conv, CUDNN_TENSOR_OP_MATH));
  cudnnMathType_t math{};
  DNN_OK(cudnnGetConvolutionMathType(conv, &math));
  EXPECT_EQ(math, CUDNN_TENSOR_OP_MATH);
  DNN_OK(cudnnDestroyConvolutionDescriptor(conv));
}

TEST_F(OpsTest, AddTensorBroadcastsBias) {
  const int n = 2, c = 3, h = 4, w = 5;
  Tensor cd(n, c, h, w), bias_d(1, c, 1, 1);
  const auto y0 = random_floats(std::size_t(n) * c * h * w, 20), b = random_floats(c, 21);
  DeviceFloats y(y0), bias(b);
  const float alpha = 2.0f, beta = 0.5f;
  DNN_OK(cudnnAddTensor(handle_, &alpha, bias_d, bias.get(), &beta, cd, y.get()));
  const auto got = y.download();
  for (std::size_t i = 0; i < got.size(); ++i) {
    const int ci = static_cast<int>(i / (h * w)) % c;
    ASSERT_EQ(got[i], 2.0f * b[ci] + 0.5f * y0[i]) << i;
  }
  Tensor wrong(1, c + 1, 1, 1);
  EXPECT_EQ(cudnnAddTensor(handle_, &alpha, wrong, bias.get(), &beta, cd, y.get()), CUDNN_STATUS_BAD_PARAM);
}

TEST_F(OpsTest, OpTensorComputesEachOp) {
  const int n = 2, c = 3, h = 2, w = 3;
  const std::size_t count = std::size_t(n) * c * h * w;
  Tensor td(n, c, h, w), bd(1, c, 1, 1);
  const auto a = random_floats(count, 22, 0.1f, 2.0f), b = random_floats(c, 23), y0 = random_floats(count, 24);
  DeviceFloats da(a), db(b), dy(count);
  cudnnOpTensorDescriptor_t op{};
  DNN_OK(cudnnCreateOpTensorDescriptor(&op));
  const float a1 = 1.5f, a2 = -0.5f, beta = 0.25f;
  for (auto which : {CUDNN_OP_TENSOR_ADD, CUDNN_OP_TENSOR_MUL, CUDNN_OP_TENSOR_MIN, CUDNN_OP_TENSOR_MAX,
                     CUDNN_OP_TENSOR_SQRT, CUDNN_OP_TENSOR_NOT}) {
    DNN_OK(cudnnSetOpTensorDescriptor(op, which, CUDNN_DATA_FLOAT, CUDNN_NOT_PROPAGATE_NAN));
    dy.upload(y0);
    DNN_OK(cudnnOpTensor(handle_, op, &a1, td, da.get(), &a2, bd, db.get(), &beta, td, dy.get()));
    const auto got = dy.download();
    for (std::size_t i = 0; i < count; ++i) {
      const float x = a1 * a[i], z = a2 * b[(i / (h * w)) % c];
      float r = 0;
      switch (which) {
        case CUDNN_OP_TENSOR_ADD: r = x + z; break;
        case CUDNN_OP_TENSOR_MUL: r = x * z; break;
        case CUDNN_OP_TENSOR_MIN: r = std::min(x, z); break;
        case CUDNN_OP_TENSOR_MAX: r = std::max(x, z); break;
        case CUDNN_OP_TENSOR_SQRT: r = std::sqrt(x); break;
        case CUDNN_OP_TENSOR_NOT: r = 1.0f - x; break;
      }
      ASSERT_EQ(got[i], r + beta * y0[i]) << "op " << which << " at " << i;
    }
  }
  DNN_OK(cudnnDestroyOpTensorDescriptor(op));
}

TEST_F(OpsTest, SetScaleAndTransformTensor) {
  const int n = 2, c = 3, h = 4, w = 2;
  const std::size_t count = std::size_t(n) * c * h * w;
  Tensor nchw(n, c, h, w), nhwc(n, c, h, w, CUDNN_TENSOR_NHWC);
  const auto x = random_floats(count, 25);
  DeviceFloats dx(x), dy(count);
  const float value = 3.5f, scale = -2.0f, one = 1.0f, zero = 0.0f;
  DNN_OK(cudnnSetTensor(handle_, nchw, dy.get(), &value));
  for (float v : dy.download()) ASSERT_EQ(v, 3.5f);
  DNN_OK(cudnnTransformTensor(handle_, &one, nchw, dx.get(), &zero, nhwc, dy.get()));
  DNN_OK(cudnnScaleTensor(handle_, nhwc, dy.get(), &scale));
  const auto got = dy.download();
  for (int ni = 0; ni < n; ++ni)
    for (int ci = 0; ci < c; ++ci)
      for (int hi = 0; hi < h; ++hi)
        for (int wi = 0; wi < w; ++wi)
          ASSERT_EQ(got[((ni * h + hi) * w + wi) * c + ci], -2.0f * x[((ni * c + ci) * h + hi) * w + wi]);
}

double act_ref(cudnnActivationMode_t mode, double x, double coef) {
  switch (mode) {
    case CUDNN_ACTIVATION_SIGMOID: return 1.0 / (1.0 + std::exp(-x));
    case CUDNN_ACTIVATION_RELU: return std::max(x, 0.0);
    case CUDNN_ACTIVATION_TANH: return std::tanh(x);
    case CUDNN_ACTIVATION_CLIPPED_RELU: return std::min(std::max(x, 0.0), coef);
    case CUDNN_ACTIVATION_ELU: return x > 0 ? x : coef * (std::exp(x) - 1.0);
    case CUDNN_ACTIVATION_SWISH: return x / (1.0 + std::exp(-x));  // swish beta 1
    default: return x;
  }
}

TEST_F(OpsTest, ActivationForwardAndBackward) {
  const int n = 2, c = 3, h = 3, w = 3;
  const std::size_t count = std::size_t(n) * c * h * w;
  Tensor td(n, c, h, w);
  const auto x = random_floats(count, 26, -3.0f, 3.0f), dy = random_floats(count, 27);
  DeviceFloats dx_in(x), ddy(dy), dyv(count), ddx(count);
  cudnnActivationDescriptor_t act{};
  DNN_OK(cudnnCreateActivationDescriptor(&act));
  const float one = 1.0f, zero = 0.0f;
  for (auto mode : {CUDNN_ACTIVATION_SIGMOID, CUDNN_ACTIVATION_RELU, CUDNN_ACTIVATION_TANH,
                    CUDNN_ACTIVATION_CLIPPED_RELU, CUDNN_ACTIVATION_ELU, CUDNN_ACTIVATION_IDENTITY,
                    CUDNN_ACTIVATION_SWISH}) {
    const double coef = 1.5;
    DNN_OK(cudnnSetActivationDescriptor(act, mode, CUDNN_NOT_PROPAGATE_NAN, coef));
    DNN_OK(cudnnActivationForward(handle_, act, &one, td, dx_in.get(), &zero, td, dyv.get()));
    DNN_OK(cudnnActivationBackward(handle_, act, &one, td, dyv.get(), td, ddy.get(), td, dx_in.get(), &zero, td,
                                   ddx.get()));
    const auto y = dyv.download(), g = ddx.download();
    for (std::size_t i = 0; i < count; ++i) {
      ASSERT_NEAR(y[i], act_ref(mode, x[i], coef), 1e-6) << "mode " << mode << " at " << i;
      // d/dx by central difference of the double reference (step 1e-4: error ~1e-8, far below 1e-4).
      // Kinks (relu at 0, clipped relu at coef) are avoided: random x never lands within 1e-4 of them.
      const double e = 1e-4, slope = (act_ref(mode, x[i] + e, coef) - act_ref(mode, x[i] - e, coef)) / (2 * e);
      ASSERT_NEAR(g[i], slope * dy[i], 1e-4) << "mode " << mode << " at " << i;
    }
  }
  // In place (x == y), with beta blending.
  DNN_OK(cudnnSetActivationDescriptor(act, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
  const float half = 0.5f;
  DNN_OK(cudnnActivationForward(handle_, act, &one, td, dx_in.get(), &half, td, dx_in.get()));
  const auto inplace = dx_in.download();
  for (std::size_t i = 0; i < count; ++i) ASSERT_EQ(inplace[i], std::max(x[i], 0.0f) + 0.5f * x[i]);
  DNN_OK(cudnnDestroyActivationDescriptor(act));
}

TEST_F(OpsTest, PoolingForwardAndBackward) {
  const int n = 2, c = 2, h = 7, w = 6;
  const std::size_t count = std::size_t(n) * c * h * w;
  Tensor xd(n, c, h, w);
  const auto x = random_floats(count, 28), dy_all = random_floats(count, 29);
  cudnnPoolingDescriptor_t pool{};
  DNN_OK(cudnnCreatePoolingDescriptor(&pool));
  const float one = 1.0f, zero = 0.0f;
  for (auto mode : {CUDNN_POOLING_MAX, CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING,
                    CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING}) {
    // 3×3 windows, stride 2, padding 1: windows overlap and some hang over the edge.
    DNN_OK(cudnnSetPooling2dDescriptor(pool, mode, CUDNN_NOT_PROPAGATE_NAN, 3, 3, 1, 1, 2, 2));
    int on, oc, oh, ow;
    DNN_OK(cudnnGetPooling2dForwardOutputDim(pool, xd, &on, &oc, &oh, &ow));
    ASSERT_EQ(oh, 4);
    ASSERT_EQ(ow, 3);
    Tensor yd(n, c, oh, ow);
    const std::size_t ycount = std::size_t(n) * c * oh * ow;
    std::vector<float> want(ycount), grad(count, 0.0f);
    const std::vector<float> dy(dy_all.begin(), dy_all.begin() + ycount);
    for (int p = 0; p < n * c; ++p)
      for (int i = 0; i < oh; ++i)
        for (int j = 0; j < ow; ++j) {
          float best = -1e30f, sum = 0.0f;
          int arg = -1, inside = 0;
          for (int r = 0; r < 3; ++r)
            for (int s = 0; s < 3; ++s) {
              const int hh = i * 2 - 1 + r, ww = j * 2 - 1 + s;
              if (hh < 0 || hh >= h || ww < 0 || ww >= w) continue;
              const int xi = (p * h + hh) * w + ww;
              if (x[xi] > best) best = x[xi], arg = xi;
              sum += x[xi];
              ++inside;
            }
          const int yi = (p * oh + i) * ow + j;
          const float div = mode == CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING ? 9.0f : float(inside);
          want[yi] = mode == CUDNN_POOLING_MAX ? best : sum / div;
          if (mode == CUDNN_POOLING_MAX) {
            grad[arg] += dy[yi];
          } else {
            for (int r = 0; r < 3; ++r)
              for (int s = 0; s < 3; ++s) {
                const int hh = i * 2 - 1 + r, ww = j * 2 - 1 + s;
                if (hh >= 0 && hh < h && ww >= 0 && ww < w) grad[(p * h + hh) * w + ww] += dy[yi] / div;
              }
          }
        }
    DeviceFloats dx(x), dyv(ycount), ddy(dy), ddx(count);
    DNN_OK(cudnnPoolingForward(handle_, pool, &one, xd, dx.get(), &zero, yd, dyv.get()));
    DNN_OK(cudnnPoolingBackward(handle_, pool, &one, yd, dyv.get(), yd, ddy.get(), xd, dx.get(), &zero, xd,
                                ddx.get()));
    EXPECT_TRUE(same_bits(dyv.download(), want)) << "forward mode " << mode;
    const auto got = ddx.download();
    // Overlapping windows add gradients in another order than this scatter: 1e-6.
    for (std::size_t i = 0; i < count; ++i) ASSERT_NEAR(got[i], grad[i], 1e-6) << "backward mode " << mode << " " << i;
  }
  Tensor wrong(n, c, 3, 3);
  EXPECT_EQ(cudnnPoolingForward(handle_, pool, &one, xd, reinterpret_cast<void*>(16), &zero, wrong,
                                reinterpret_cast<void*>(16)),
            CUDNN_STATUS_BAD_PARAM);
  DNN_OK(cudnnDestroyPoolingDescriptor(pool));
}

TEST_F(OpsTest, SoftmaxForwardAndBackward) {
  const int n = 2, c = 4, h = 2, w = 3;
  const std::size_t count = std::size_t(n) * c * h * w;
  Tensor td(n, c, h, w);
  const auto x = random_floats(count, 30, -4.0f, 4.0f), dy = random_floats(count, 31);
  DeviceFloats dx(x), dyv(count), ddy(dy), ddx(count);
  const float one = 1.0f, zero = 0.0f;
  for (auto mode : {CUDNN_SOFTMAX_MODE_INSTANCE, CUDNN_SOFTMAX_MODE_CHANNEL})
    for (auto algo : {CUDNN_SOFTMAX_FAST, CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_LOG}) {
      DNN_OK(cudnnSoftmaxForward(handle_, algo, mode, &one, td, dx.get(), &zero, td, dyv.get()));
      DNN_OK(cudnnSoftmaxBackward(handle_, algo, mode, &one, td, dyv.get(), td, ddy.get(), &zero, td, ddx.get()));
      const auto y = dyv.download(), g = ddx.download();
      // Each softmax set: all of (c, h, w) for an image, or all c at one (n, h, w).
      const int sets = mode == CUDNN_SOFTMAX_MODE_INSTANCE ? n : n * h * w;
      const int len = mode == CUDNN_SOFTMAX_MODE_INSTANCE ? c * h * w : c;
      for (int s = 0; s < sets; ++s) {
        auto index = [&](int j) -> std::size_t {
          if (mode == CUDNN_SOFTMAX_MODE_INSTANCE) return std::size_t(s) * len + j;
          const int ni = s / (h * w), pos = s % (h * w);
          return (std::size_t(ni) * c + j) * h * w + pos;
        };
        double total = 0.0;
        for (int j = 0; j < len; ++j) total += std::exp(double{x[index(j)]});
        double dot = 0.0, sum_dy = 0.0;
        for (int j = 0; j < len; ++j) {
          const double p = std::exp(double{x[index(j)]}) / total;
          dot += dy[index(j)] * p;
          sum_dy += dy[index(j)];
        }
        for (int j = 0; j < len; ++j) {
          const double p = std::exp(double{x[index(j)]}) / total;
          const double want_y = algo == CUDNN_SOFTMAX_LOG ? std::log(p) : p;
          const double want_g = algo == CUDNN_SOFTMAX_LOG ? dy[index(j)] - p * sum_dy : p * (dy[index(j)] - dot);
          ASSERT_NEAR(y[index(j)], want_y, 1e-6) << "algo " << algo << " mode " << mode;
          ASSERT_NEAR(g[index(j)], want_g, 1e-6) << "algo " << algo << " mode " << mode;
        }
      }
    }
}

}  // namespace
}  // namespace simcudnn::test
