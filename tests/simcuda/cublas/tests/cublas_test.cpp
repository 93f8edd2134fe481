// The simulated cuBLAS's math, entry point by entry point, against naive reference loops:
// bit-exact where the arithmetic is the same (copies, axpy, scal, geam, dot, nrm2, 16-bit GEMMs on
// exactly representable data), within the stated forward-error bound where OpenBLAS sums in
// another order (fp32/fp64 GEMM, GEMV: 2 (k + 3) u sum|terms|, see reference_gemm).
#include "cublas_test_util.h"

namespace simcublas::test {
namespace {

constexpr cublasOperation_t kOps[] = {CUBLAS_OP_N, CUBLAS_OP_T};

TEST(CublasCopies, SetGetVectorStrided) {
  const auto host = random_floats(40, 1);
  DeviceBuffer<float> dev(60);
  CUDA_OK(cudaMemset(dev.get(), 0, dev.bytes()));
  BLAS_OK(cublasSetVector(20, sizeof(float), host.data(), 2, dev.get(), 3));  // x[0,2,..] -> y[0,3,..]
  const auto on_device = dev.download();
  for (int i = 0; i < 60; ++i) EXPECT_EQ(on_device[i], i % 3 == 0 ? host[(i / 3) * 2] : 0.0f) << i;
  std::vector<float> back(40, -7.0f);
  BLAS_OK(cublasGetVector(20, sizeof(float), dev.get(), 3, back.data(), 2));
  for (int i = 0; i < 40; ++i) EXPECT_EQ(back[i], i % 2 == 0 ? host[i] : -7.0f) << i;
}

TEST(CublasCopies, SetGetMatrixWithLeadingDimensions) {
  const int rows = 5, cols = 7, lda = 9, ldb = 6;
  const auto host = random_floats(static_cast<std::size_t>(lda) * cols, 2);
  DeviceBuffer<float> dev(std::vector<float>(static_cast<std::size_t>(ldb) * cols, 0.0f));
  BLAS_OK(cublasSetMatrix(rows, cols, sizeof(float), host.data(), lda, dev.get(), ldb));
  const auto on_device = dev.download();
  for (int j = 0; j < cols; ++j)
    for (int i = 0; i < ldb; ++i) EXPECT_EQ(on_device[i + j * ldb], i < rows ? host[i + j * lda] : 0.0f);
  std::vector<float> back(static_cast<std::size_t>(lda) * cols, 3.0f);
  BLAS_OK(cublasGetMatrix(rows, cols, sizeof(float), dev.get(), ldb, back.data(), lda));
  for (int j = 0; j < cols; ++j)
    for (int i = 0; i < lda; ++i) EXPECT_EQ(back[i + j * lda], i < rows ? host[i + j * lda] : 3.0f);
}

TEST(CublasCopies, AsyncFormsOnAStream) {
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreate(&stream));
  const auto host = random_floats(24, 3);
  DeviceBuffer<float> dev(24);
  BLAS_OK(cublasSetVectorAsync(24, sizeof(float), host.data(), 1, dev.get(), 1, stream));
  std::vector<float> back(24, 0.0f);
  BLAS_OK(cublasGetVectorAsync(24, sizeof(float), dev.get(), 1, back.data(), 1, stream));
  CUDA_OK(cudaStreamSynchronize(stream));
  EXPECT_TRUE(same_bits(back.data(), host.data(), 24 * sizeof(float)));
  std::vector<float> matrix(24, 0.0f);
  BLAS_OK(cublasSetMatrixAsync(3, 4, sizeof(float), host.data(), 6, dev.get(), 3, stream));  // rows 0..2 of 6
  BLAS_OK(cublasGetMatrixAsync(3, 4, sizeof(float), dev.get(), 3, matrix.data(), 3, stream));
  CUDA_OK(cudaStreamSynchronize(stream));
  for (int j = 0; j < 4; ++j)
    for (int i = 0; i < 3; ++i) EXPECT_EQ(matrix[i + j * 3], host[i + j * 6]);
  CUDA_OK(cudaStreamDestroy(stream));
}

using CublasLevel1 = CublasTest;

TEST_F(CublasLevel1, SaxpyMatchesFusedReference) {
  for (const auto& [incx, incy] : {std::pair{1, 1}, std::pair{2, 3}, std::pair{-2, 1}, std::pair{1, -3}}) {
    const int n = 33;
    const auto x = random_floats(static_cast<std::size_t>(n) * 3, 4),
               y = random_floats(static_cast<std::size_t>(n) * 3, 5);
    DeviceBuffer<float> dx(x), dy(y);
    const float alpha = 0.75f;
    BLAS_OK(cublasSaxpy_v2(handle_, n, &alpha, dx.get(), incx, dy.get(), incy));
    // Reference BLAS indexing: a negative stride walks the vector from its far end.
    auto index = [n](int i, int inc) { return static_cast<std::size_t>((inc < 0 ? (1 - n) * inc : 0) + i * inc); };
    auto want = y;
    for (int i = 0; i < n; ++i) want[index(i, incy)] = std::fma(alpha, x[index(i, incx)], y[index(i, incy)]);
    const auto got = dy.download();
    EXPECT_TRUE(same_bits(got.data(), want.data(), got.size() * sizeof(float))) << incx << "," << incy;
  }
}

TEST_F(CublasLevel1, SscalStrided) {
  const auto x = random_floats(30, 6);
  DeviceBuffer<float> dx(x);
  const float alpha = -1.25f;
  BLAS_OK(cublasSscal_v2(handle_, 10, &alpha, dx.get(), 3));
  auto want = x;
  for (int i = 0; i < 10; ++i) want[i * 3] = alpha * x[i * 3];
  const auto got = dx.download();
  EXPECT_TRUE(same_bits(got.data(), want.data(), got.size() * sizeof(float)));
}

TEST_F(CublasLevel1, SdotAndSnrm2InIndexOrder) {
  const int n = 1000;
  const auto x = random_floats(2 * n, 7), y = random_floats(n, 8);
  DeviceBuffer<float> dx(x), dy(y);
  float dot = 0, norm = 0;
  BLAS_OK(cublasSdot_v2(handle_, n, dx.get(), 2, dy.get(), 1, &dot));
  BLAS_OK(cublasSnrm2_v2(handle_, n, dx.get(), 2, &norm));
  double want_dot = 0, want_sq = 0;  // the documented order: double accumulation, index order
  for (int i = 0; i < n; ++i) {
    want_dot += static_cast<double>(x[2 * i]) * static_cast<double>(y[i]);
    want_sq += static_cast<double>(x[2 * i]) * static_cast<double>(x[2 * i]);
  }
  EXPECT_EQ(dot, static_cast<float>(want_dot));
  EXPECT_EQ(norm, static_cast<float>(std::sqrt(want_sq)));
  float empty = 5;
  BLAS_OK(cublasSdot_v2(handle_, 0, dx.get(), 1, dy.get(), 1, &empty));
  EXPECT_EQ(empty, 0.0f);
}

TEST_F(CublasLevel1, SgemvBothOperationsStrided) {
  const int m = 23, n = 17, lda = 29;
  const auto a = random_floats(static_cast<std::size_t>(lda) * n, 9);
  for (cublasOperation_t op : kOps) {
    const int xlen = op == CUBLAS_OP_N ? n : m, ylen = op == CUBLAS_OP_N ? m : n;
    const auto x = random_floats(static_cast<std::size_t>(xlen) * 2, 10),
               y = random_floats(static_cast<std::size_t>(ylen) * 3, 11);
    DeviceBuffer<float> da(a), dx(x), dy(y);
    const float alpha = 1.5f, beta = -0.5f;
    BLAS_OK(cublasSgemv_v2(handle_, op, m, n, &alpha, da.get(), lda, dx.get(), 2, &beta, dy.get(), 3));
    const auto got = dy.download();
    const double u = std::numeric_limits<float>::epsilon() / 2;
    for (int i = 0; i < ylen * 3; ++i) {
      if (i % 3 != 0) {
        EXPECT_EQ(got[i], y[i]);
        continue;
      }
      const int r = i / 3;
      double sum = 0, abs_sum = 0;
      for (int l = 0; l < xlen; ++l) {
        const double p = static_cast<double>(op == CUBLAS_OP_N ? a[r + l * lda] : a[l + r * lda]) * x[2 * l];
        sum += p;
        abs_sum += std::fabs(p);
      }
      const double want = alpha * sum + beta * static_cast<double>(y[i]);
      const double bound = 2.0 * (xlen + 3) * u * (alpha * abs_sum + std::fabs(beta * y[i]));
      EXPECT_LE(std::fabs(got[i] - want), bound) << "op " << op << " row " << r;
    }
  }
}

TEST_F(CublasLevel1, SgeamAllOperationsAndInPlace) {
  const int m = 6, n = 9, ld = 11;
  const auto a = random_floats(static_cast<std::size_t>(ld) * ld, 12),
             b = random_floats(static_cast<std::size_t>(ld) * ld, 13);
  const float alpha = 0.5f, beta = -2.0f;
  for (cublasOperation_t ta : kOps)
    for (cublasOperation_t tb : kOps) {
      DeviceBuffer<float> da(a), db(b), dc(std::vector<float>(static_cast<std::size_t>(ld) * n, 9.0f));
      BLAS_OK(cublasSgeam(handle_, ta, tb, m, n, &alpha, da.get(), ld, &beta, db.get(), ld, dc.get(), ld));
      const auto got = dc.download();
      for (int j = 0; j < n; ++j)
        for (int i = 0; i < ld; ++i) {
          const float want = i < m ? alpha * op_at(a, ta, i, j, ld) + beta * op_at(b, tb, i, j, ld) : 9.0f;
          ASSERT_EQ(got[i + j * ld], want) << ta << tb << " (" << i << "," << j << ")";
        }
    }
  // In place, C = A: allowed with A untransposed and lda == ldc.
  DeviceBuffer<float> da(a), db(b);
  BLAS_OK(
      cublasSgeam(handle_, CUBLAS_OP_N, CUBLAS_OP_T, m, n, &alpha, da.get(), ld, &beta, db.get(), ld, da.get(), ld));
  const auto got = da.download();
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) ASSERT_EQ(got[i + j * ld], alpha * a[i + j * ld] + beta * b[j + i * ld]);
}

using CublasGemm = CublasTest;

TEST_F(CublasGemm, SgemmAllOperationsWithinBound) {
  const int m = 37, n = 21, k = 45, ld = 50;
  const auto a = random_floats(static_cast<std::size_t>(ld) * ld, 14),
             b = random_floats(static_cast<std::size_t>(ld) * ld, 15);
  const auto c = random_floats(static_cast<std::size_t>(ld) * n, 16);
  const float alpha = 1.25f, beta = 0.5f;
  for (cublasOperation_t ta : kOps)
    for (cublasOperation_t tb : kOps) {
      DeviceBuffer<float> da(a), db(b), dc(c);
      BLAS_OK(cublasSgemm_v2(handle_, ta, tb, m, n, k, &alpha, da.get(), ld, db.get(), ld, &beta, dc.get(), ld));
      std::vector<double> bound;
      const auto want = reference_gemm(ta, tb, m, n, k, alpha, a, ld, b, ld, beta, c, ld, &bound);
      expect_within(dc.download(), want, bound);
    }
}

TEST_F(CublasGemm, SgemmBetaZeroIgnoresNanInC) {
  const int m = 8, n = 8, k = 8;
  const auto a = random_floats(64, 17), b = random_floats(64, 18);
  DeviceBuffer<float> da(a), db(b), dc(std::vector<float>(64, std::numeric_limits<float>::quiet_NaN()));
  const float alpha = 1.0f, beta = 0.0f;
  BLAS_OK(
      cublasSgemm_v2(handle_, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, da.get(), m, db.get(), k, &beta, dc.get(), m));
  std::vector<double> bound;
  const auto want =
      reference_gemm(CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, 1.0, a, m, b, k, 0.0, std::vector<float>(64, 0.0f), m, &bound);
  expect_within(dc.download(), want, bound);
}

TEST_F(CublasGemm, DgemmWithinBound) {
  const int m = 19, n = 26, k = 31;
  const auto a = random_doubles(static_cast<std::size_t>(k) * m, 19),
             b = random_doubles(static_cast<std::size_t>(n) * k, 20);
  const auto c = random_doubles(static_cast<std::size_t>(m) * n, 21);
  DeviceBuffer<double> da(a), db(b), dc(c);
  const double alpha = -0.75, beta = 2.0;
  BLAS_OK(
      cublasDgemm_v2(handle_, CUBLAS_OP_T, CUBLAS_OP_T, m, n, k, &alpha, da.get(), k, db.get(), n, &beta, dc.get(), m));
  std::vector<double> bound;
  const auto want = reference_gemm(CUBLAS_OP_T, CUBLAS_OP_T, m, n, k, alpha, a, k, b, n, beta, c, m, &bound);
  expect_within(dc.download(), want, bound);
}

TEST_F(CublasGemm, SgemmStridedBatchedEachBatchWithinBound) {
  const int m = 12, n = 10, k = 14, batch = 4;
  const long long sa = m * k + 5, sb = k * n + 3, sc = m * n + 7;  // gaps between matrices stay untouched
  const auto a = random_floats(static_cast<std::size_t>(sa) * batch, 22),
             b = random_floats(static_cast<std::size_t>(sb) * batch, 23);
  const auto c = random_floats(static_cast<std::size_t>(sc) * batch, 24);
  DeviceBuffer<float> da(a), db(b), dc(c);
  const float alpha = 0.5f, beta = 1.0f;
  BLAS_OK(cublasSgemmStridedBatched(handle_, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, da.get(), m, sa, db.get(), k,
                                    sb, &beta, dc.get(), m, sc, batch));
  const auto got = dc.download();
  for (int i = 0; i < batch; ++i) {
    const std::vector<float> ai(a.begin() + i * sa, a.begin() + i * sa + m * k);
    const std::vector<float> bi(b.begin() + i * sb, b.begin() + i * sb + k * n);
    const std::vector<float> ci(c.begin() + i * sc, c.begin() + (i + 1) * sc);
    std::vector<double> bound;
    const auto want = reference_gemm(CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, alpha, ai, m, bi, k, beta, ci, m, &bound);
    expect_within(std::vector<float>(got.begin() + i * sc, got.begin() + (i + 1) * sc), want, bound);
  }
}

TEST_F(CublasGemm, SgemmBatchedReadsPointerArrayFromDevice) {
  const int m = 9, n = 11, k = 13, batch = 3;
  std::vector<std::vector<float>> a, b, c;
  std::vector<std::unique_ptr<DeviceBuffer<float>>> buffers;
  std::vector<const float*> a_ptrs, b_ptrs;
  std::vector<float*> c_ptrs;
  for (int i = 0; i < batch; ++i) {
    a.push_back(random_floats(static_cast<std::size_t>(m) * k, 30 + i));
    b.push_back(random_floats(static_cast<std::size_t>(k) * n, 40 + i));
    c.push_back(random_floats(static_cast<std::size_t>(m) * n, 50 + i));
    for (auto* v : {&a.back(), &b.back(), &c.back()}) buffers.push_back(std::make_unique<DeviceBuffer<float>>(*v));
    a_ptrs.push_back(buffers[buffers.size() - 3]->get());
    b_ptrs.push_back(buffers[buffers.size() - 2]->get());
    c_ptrs.push_back(buffers[buffers.size() - 1]->get());
  }
  DeviceBuffer<const float*> da(a_ptrs), db(b_ptrs);
  DeviceBuffer<float*> dc(c_ptrs);
  const float alpha = 2.0f, beta = -1.0f;
  BLAS_OK(cublasSgemmBatched(handle_, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, da.get(), m, db.get(), k, &beta,
                             dc.get(), m, batch));
  for (int i = 0; i < batch; ++i) {
    std::vector<double> bound;
    const auto want = reference_gemm(CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, alpha, a[i], m, b[i], k, beta, c[i], m, &bound);
    expect_within(buffers[3 * i + 2]->download(), want, bound);
  }
}

TEST_F(CublasGemm, GemmExFp32UnderEveryFp32ComputeType) {
  const int m = 16, n = 12, k = 20;
  const auto a = random_floats(static_cast<std::size_t>(m) * k, 60),
             b = random_floats(static_cast<std::size_t>(k) * n, 61);
  const auto c = random_floats(static_cast<std::size_t>(m) * n, 62);
  const float alpha = 1.0f, beta = 0.25f;
  for (cublasComputeType_t compute : {CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32}) {
    DeviceBuffer<float> da(a), db(b), dc(c);
    BLAS_OK(cublasGemmEx(handle_, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, da.get(), CUDA_R_32F, m, db.get(),
                         CUDA_R_32F, k, &beta, dc.get(), CUDA_R_32F, m, compute, CUBLAS_GEMM_DEFAULT));
    std::vector<double> bound;
    const auto want = reference_gemm(CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, alpha, a, m, b, k, beta, c, m, &bound);
    expect_within(dc.download(), want, bound);
  }
}

// fp16 / bf16 storage, fp32 compute, on dyadic data: the fp32 result is exact, so the 16-bit
// output must be that exact value rounded to nearest even, bit for bit.
TEST_F(CublasGemm, GemmExSixteenBitExactlyRounded) {
  const int m = 13, n = 7, k = 64;
  const auto a = dyadic_floats(static_cast<std::size_t>(k) * m, 63),
             b = dyadic_floats(static_cast<std::size_t>(k) * n, 64);
  const auto c = dyadic_floats(static_cast<std::size_t>(m) * n, 65);
  const float alpha = 0.5f, beta = 0.75f;
  const auto want = reference_gemm(CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, alpha, a, k, b, k, beta, c, m, nullptr);
  struct Case {
    cudaDataType type;
    std::uint16_t (*narrow)(double);
  };
  const Case cases[] = {{CUDA_R_16F, [](double v) { return to_half_bits(static_cast<float>(v)); }},
                        {CUDA_R_16BF, [](double v) { return to_bf16_bits(v); }}};
  for (const Case& t : cases) {
    std::vector<std::uint16_t> a16, b16, c16;
    for (float v : a) a16.push_back(t.narrow(v));
    for (float v : b) b16.push_back(t.narrow(v));
    for (float v : c) c16.push_back(t.narrow(v));
    DeviceBuffer<std::uint16_t> da(a16), db(b16), dc(c16);
    BLAS_OK(cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, da.get(), t.type, k, db.get(), t.type, k,
                         &beta, dc.get(), t.type, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    const auto got = dc.download();
    int rounded = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i], t.narrow(want[i])) << "type " << t.type << " element " << i << " exact " << want[i];
      const float back = t.type == CUDA_R_16F ? from_half_bits(got[i]) : from_bf16_bits(got[i]);
      rounded += static_cast<double>(back) != want[i];
    }
    EXPECT_GT(rounded, 0) << "the data must exercise rounding";
    // Same inputs, fp32 output: the exact value itself.
    DeviceBuffer<float> dc32(c);
    BLAS_OK(cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, da.get(), t.type, k, db.get(), t.type, k,
                         &beta, dc32.get(), CUDA_R_32F, m, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT));
    const auto got32 = dc32.download();
    for (std::size_t i = 0; i < got32.size(); ++i) ASSERT_EQ(static_cast<double>(got32[i]), want[i]) << i;
  }
}

TEST_F(CublasGemm, GemmStridedBatchedExHalf) {
  const int m = 8, n = 6, k = 10, batch = 3;
  const long long sa = m * k, sb = k * n, sc = m * n;
  const auto a = dyadic_floats(static_cast<std::size_t>(sa) * batch, 70),
             b = dyadic_floats(static_cast<std::size_t>(sb) * batch, 71);
  std::vector<std::uint16_t> a16, b16;
  for (float v : a) a16.push_back(to_half_bits(v));
  for (float v : b) b16.push_back(to_half_bits(v));
  DeviceBuffer<std::uint16_t> da(a16), db(b16),
      dc(std::vector<std::uint16_t>(static_cast<std::size_t>(sc) * batch, 0x7e00));
  const float alpha = 1.0f, beta = 0.0f;  // beta 0: the NaN already in C is not read
  BLAS_OK(cublasGemmStridedBatchedEx(handle_, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, da.get(), CUDA_R_16F, m, sa,
                                     db.get(), CUDA_R_16F, k, sb, &beta, dc.get(), CUDA_R_16F, m, sc, batch,
                                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  const auto got = dc.download();
  for (int i = 0; i < batch; ++i) {
    const std::vector<float> ai(a.begin() + i * sa, a.begin() + (i + 1) * sa),
        bi(b.begin() + i * sb, b.begin() + (i + 1) * sb);
    const auto want = reference_gemm(CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, 1.0, ai, m, bi, k, 0.0,
                                     std::vector<float>(static_cast<std::size_t>(sc), 0.0f), m, nullptr);
    for (long long e = 0; e < sc; ++e)
      ASSERT_EQ(got[i * sc + e], to_half_bits(static_cast<float>(want[e]))) << i << "," << e;
  }
}

}  // namespace
}  // namespace simcublas::test
