// The CUDA RMSNorm kernel against the reference backend.
#include <cmath>
#include <random>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cuda/rmsnorm.cuh"
#include "kernels/ops.h"
#include "tests/kernels/cuda/cuda_test_util.h"

namespace duet::kernels {
namespace {

using testing::DeviceBuffer;

class RmsNormCudaTest : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(RmsNormCudaTest, MatchesReference) {
  DUET_SKIP_WITHOUT_GPU();
  const auto [rows, dim] = GetParam();
  const float eps = 1e-6f;
  std::mt19937 rng(rows * 1000 + dim);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> x(static_cast<size_t>(rows) * dim), weight(dim);
  for (float& v : x) v = normal(rng);
  for (float& v : weight) v = 1.0f + 0.1f * normal(rng);

  std::vector<float> expected(x.size());
  MakeReferenceBackend()->RmsNorm(x.data(), weight.data(), expected.data(), rows,
                                  dim, eps);

  DeviceBuffer<float> x_dev(x), weight_dev(weight), y_dev(x.size());
  cuda::LaunchRmsNorm(x_dev.get(), weight_dev.get(), y_dev.get(), rows, dim, eps,
                      nullptr);
  DUET_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> actual = y_dev.ToHost();

  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_NEAR(actual[i], expected[i], 1e-5f * (1.0f + std::fabs(expected[i])))
        << "element " << i;
  }
}

TEST(RmsNormCudaTest, InPlace) {
  DUET_SKIP_WITHOUT_GPU();
  const int rows = 3, dim = 257;
  std::vector<float> x(rows * dim), weight(dim, 0.5f);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 13) - 6.0f;
  std::vector<float> expected(x.size());
  MakeReferenceBackend()->RmsNorm(x.data(), weight.data(), expected.data(), rows,
                                  dim, 1e-5f);
  DeviceBuffer<float> x_dev(x), weight_dev(weight);
  cuda::LaunchRmsNorm(x_dev.get(), weight_dev.get(), x_dev.get(), rows, dim, 1e-5f,
                      nullptr);
  const std::vector<float> actual = x_dev.ToHost();
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_NEAR(actual[i], expected[i], 1e-5f * (1.0f + std::fabs(expected[i])));
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, RmsNormCudaTest,
                         ::testing::Combine(::testing::Values(1, 3, 17),
                                            ::testing::Values(1, 31, 128, 4096,
                                                              5121)));

}  // namespace
}  // namespace duet::kernels
