// BatchNorm and BatchNormGrad CPU kernels against double-precision loops, plus running statistics
// checked by hand.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/ops_cpu/elementwise_test_util.h"

namespace gradflow::ops::cpu::testing {
namespace {

using ::testing::HasSubstr;

constexpr double kTolerance = 1e-4;

// Shape [N,C,...] seen as N x C x S.
struct Dims {
  int64_t batch, channels, spatial;
  explicit Dims(const graph::Shape& shape)
      : batch(shape[0]),
        channels(shape[1]),
        spatial(graph::NumElements(shape) / shape[0] / shape[1]) {}
  int64_t At(int64_t n, int64_t c, int64_t s) const { return (n * channels + c) * spatial + s; }
};

struct ForwardReference {
  std::vector<double> y, mean, invstd, running_mean, running_var;
};

ForwardReference BatchNormForward(const graph::Shape& shape, const std::vector<double>& x,
                                  const std::vector<double>& gamma, const std::vector<double>& beta,
                                  const std::vector<double>& running_mean,
                                  const std::vector<double>& running_var, double epsilon,
                                  double momentum) {
  const Dims d(shape);
  const double count = static_cast<double>(d.batch * d.spatial);
  ForwardReference ref{.y = std::vector<double>(x.size())};
  for (int64_t c = 0; c < d.channels; ++c) {
    double sum = 0, squares = 0;
    for (int64_t n = 0; n < d.batch; ++n) {
      for (int64_t s = 0; s < d.spatial; ++s) sum += x[d.At(n, c, s)];
    }
    const double mean = sum / count;
    for (int64_t n = 0; n < d.batch; ++n) {
      for (int64_t s = 0; s < d.spatial; ++s) squares += std::pow(x[d.At(n, c, s)] - mean, 2);
    }
    const double variance = squares / count;
    const double invstd = 1 / std::sqrt(variance + epsilon);
    for (int64_t n = 0; n < d.batch; ++n) {
      for (int64_t s = 0; s < d.spatial; ++s) {
        const int64_t i = d.At(n, c, s);
        ref.y[i] = gamma[c] * (x[i] - mean) * invstd + beta[c];
      }
    }
    ref.mean.push_back(mean);
    ref.invstd.push_back(invstd);
    ref.running_mean.push_back((1 - momentum) * running_mean[c] + momentum * mean);
    ref.running_var.push_back((1 - momentum) * running_var[c] +
                              momentum * variance * count / (count - 1));
  }
  return ref;
}

struct BackwardReference {
  std::vector<double> dx, dgamma, dbeta;
};

BackwardReference BatchNormBackward(const graph::Shape& shape, const std::vector<double>& dy,
                                    const std::vector<double>& x, const std::vector<double>& gamma,
                                    const std::vector<double>& mean,
                                    const std::vector<double>& invstd) {
  const Dims d(shape);
  const double count = static_cast<double>(d.batch * d.spatial);
  BackwardReference ref{.dx = std::vector<double>(x.size())};
  for (int64_t c = 0; c < d.channels; ++c) {
    double dbeta = 0, dgamma = 0;
    for (int64_t n = 0; n < d.batch; ++n) {
      for (int64_t s = 0; s < d.spatial; ++s) {
        const int64_t i = d.At(n, c, s);
        dbeta += dy[i];
        dgamma += dy[i] * (x[i] - mean[c]) * invstd[c];
      }
    }
    for (int64_t n = 0; n < d.batch; ++n) {
      for (int64_t s = 0; s < d.spatial; ++s) {
        const int64_t i = d.At(n, c, s);
        const double normalized = (x[i] - mean[c]) * invstd[c];
        ref.dx[i] = gamma[c] * invstd[c] / count * (count * dy[i] - dbeta - normalized * dgamma);
      }
    }
    ref.dgamma.push_back(dgamma);
    ref.dbeta.push_back(dbeta);
  }
  return ref;
}

struct Case {
  graph::Shape shape;
  Layout layout;
};

class BatchNormTest : public ::testing::TestWithParam<Case> {};

TEST_P(BatchNormTest, TrainingForwardAndBackwardMatchReference) {
  const auto& [shape, layout] = GetParam();
  const int64_t channels = shape[1];
  const int64_t count = graph::NumElements(shape);
  const double epsilon = 1e-5, momentum = 0.1;
  // An offset mean and a spread of scales, as real activations have.
  std::vector<double> x = Uniform(count, 2, 5, 21);
  const std::vector<double> gamma = Uniform(channels, 0.5, 1.5, 22);
  const std::vector<double> beta = Uniform(channels, -0.5, 0.5, 23);
  const std::vector<double> running_mean = Uniform(channels, -1, 1, 24);
  const std::vector<double> running_var = Uniform(channels, 0.5, 2, 25);
  const ForwardReference ref =
      BatchNormForward(shape, x, gamma, beta, running_mean, running_var, epsilon, momentum);

  TestTensor x_tensor = Float32(shape, x, layout);
  TestTensor gamma_tensor = Float32({channels}, gamma);
  TestTensor beta_tensor = Float32({channels}, beta);
  TestTensor running_mean_tensor = Float32({channels}, running_mean);
  TestTensor running_var_tensor = Float32({channels}, running_var);
  TestTensor y = Poisoned(shape, layout);
  TestTensor saved_mean = Poisoned({channels});
  TestTensor saved_invstd = Poisoned({channels});
  const graph::AttrMap attrs = {{"epsilon", static_cast<float>(epsilon)},
                                {"momentum", static_cast<float>(momentum)},
                                {"training", int64_t{1}}};
  ASSERT_EQ(
      RunOp("BatchNorm", attrs,
            {&x_tensor, &gamma_tensor, &beta_tensor, &running_mean_tensor, &running_var_tensor},
            {&y, &saved_mean, &saved_invstd}),
      absl::OkStatus());
  EXPECT_LT(RelativeError(Logical(y), ref.y), kTolerance);
  EXPECT_LT(RelativeError(Logical(saved_mean), ref.mean), kTolerance);
  EXPECT_LT(RelativeError(Logical(saved_invstd), ref.invstd), kTolerance);
  EXPECT_LT(RelativeError(Logical(running_mean_tensor), ref.running_mean), kTolerance);
  EXPECT_LT(RelativeError(Logical(running_var_tensor), ref.running_var), kTolerance);

  const std::vector<double> dy = Uniform(count, -1, 1, 26);
  const std::vector<double> mean = Logical(saved_mean);
  const std::vector<double> invstd = Logical(saved_invstd);
  const BackwardReference grad = BatchNormBackward(shape, dy, x, gamma, mean, invstd);
  TestTensor dy_tensor = Float32(shape, dy, layout);
  TestTensor dx = Poisoned(shape, layout);
  TestTensor dgamma = Poisoned({channels});
  TestTensor dbeta = Poisoned({channels});
  ASSERT_EQ(RunOp("BatchNormGrad", {{"epsilon", static_cast<float>(epsilon)}},
                  {&dy_tensor, &x_tensor, &gamma_tensor, &saved_mean, &saved_invstd},
                  {&dx, &dgamma, &dbeta}),
            absl::OkStatus());
  EXPECT_LT(RelativeError(Logical(dx), grad.dx), kTolerance);
  EXPECT_LT(RelativeError(Logical(dgamma), grad.dgamma), kTolerance);
  EXPECT_LT(RelativeError(Logical(dbeta), grad.dbeta), kTolerance);
}

TEST_P(BatchNormTest, InferenceUsesRunningStatistics) {
  const auto& [shape, layout] = GetParam();
  const int64_t channels = shape[1];
  const Dims d(shape);
  const double epsilon = 1e-3;
  const std::vector<double> x = Uniform(graph::NumElements(shape), -3, 3, 31);
  const std::vector<double> gamma = Uniform(channels, 0.5, 1.5, 32);
  const std::vector<double> beta = Uniform(channels, -0.5, 0.5, 33);
  const std::vector<double> mean = Uniform(channels, -1, 1, 34);
  const std::vector<double> var = Uniform(channels, 0.5, 2, 35);
  std::vector<double> expected(x.size());
  for (int64_t n = 0; n < d.batch; ++n) {
    for (int64_t c = 0; c < channels; ++c) {
      for (int64_t s = 0; s < d.spatial; ++s) {
        const int64_t i = d.At(n, c, s);
        expected[i] = gamma[c] * (x[i] - mean[c]) / std::sqrt(var[c] + epsilon) + beta[c];
      }
    }
  }
  TestTensor x_tensor = Float32(shape, x, layout);
  TestTensor gamma_tensor = Float32({channels}, gamma);
  TestTensor beta_tensor = Float32({channels}, beta);
  TestTensor mean_tensor = Float32({channels}, mean);
  TestTensor var_tensor = Float32({channels}, var);
  TestTensor y = Poisoned(shape, layout);
  ASSERT_EQ(RunOp("BatchNorm", {{"epsilon", static_cast<float>(epsilon)}, {"training", int64_t{0}}},
                  {&x_tensor, &gamma_tensor, &beta_tensor, &mean_tensor, &var_tensor}, {&y}),
            absl::OkStatus());
  EXPECT_LT(RelativeError(Logical(y), expected), kTolerance);
  EXPECT_EQ(Logical(mean_tensor), mean);  // inference leaves the running statistics alone
  EXPECT_EQ(Logical(var_tensor), var);
}

INSTANTIATE_TEST_SUITE_P(Shapes, BatchNormTest,
                         ::testing::Values(Case{{1, 3, 5, 7}, Layout::kRowMajor},
                                           Case{{1, 3, 5, 7}, Layout::kChannelsLast},
                                           Case{{4, 16, 6, 6}, Layout::kRowMajor},
                                           Case{{4, 16, 6, 6}, Layout::kChannelsLast},
                                           Case{{2, 64, 7, 7}, Layout::kChannelsLast},
                                           Case{{8, 32, 28, 28}, Layout::kChannelsLast},
                                           Case{{8, 5}, Layout::kRowMajor},
                                           Case{{3, 4, 10}, Layout::kRowMajor}),
                         [](const auto& param_info) {
                           std::string name = LayoutName(param_info.param.layout);
                           for (int64_t dim : param_info.param.shape)
                             name += "_" + std::to_string(dim);
                           return name;
                         });

// x = [1, 2, 3, 4] in one channel: mean 2.5, biased variance 1.25, unbiased 5/3.
TEST(BatchNormRunningStatsTest, UpdateByHand) {
  TestTensor x = Float32({2, 1, 1, 2}, {1, 2, 3, 4}, Layout::kChannelsLast);
  TestTensor gamma = Float32({1}, {2});
  TestTensor beta = Float32({1}, {1});
  TestTensor running_mean = Float32({1}, {1});
  TestTensor running_var = Float32({1}, {1});
  TestTensor y = Poisoned({2, 1, 1, 2}, Layout::kChannelsLast);
  TestTensor saved_mean = Poisoned({1});
  TestTensor saved_invstd = Poisoned({1});
  ASSERT_EQ(
      RunOp("BatchNorm", {{"epsilon", 0.25f}, {"momentum", 0.25f}},
            {&x, &gamma, &beta, &running_mean, &running_var}, {&y, &saved_mean, &saved_invstd}),
      absl::OkStatus());
  EXPECT_FLOAT_EQ(saved_mean.f32()[0], 2.5f);
  EXPECT_NEAR(saved_invstd.f32()[0], 0.81649658, 1e-7);  // 1 / sqrt(1.25 + 0.25)
  EXPECT_FLOAT_EQ(running_mean.f32()[0], 1.375f);        // 0.75 * 1 + 0.25 * 2.5
  EXPECT_NEAR(running_var.f32()[0], 1.16666667, 1e-6);   // 0.75 * 1 + 0.25 * 5/3
  // y = 2 * (x - 2.5) * 0.81649658 + 1
  EXPECT_NEAR(y.f32()[0], -1.44948974, 1e-6);
  EXPECT_NEAR(y.f32()[3], 3.44948974, 1e-6);
}

TEST(BatchNormRunningStatsTest, OneValuePerChannelIsAnError) {
  TestTensor x = Float32({1, 2}, {1, 2});
  TestTensor gamma = Float32({2}, {1, 1});
  TestTensor beta = Float32({2}, {0, 0});
  TestTensor running_mean = Float32({2}, {0, 0});
  TestTensor running_var = Float32({2}, {1, 1});
  TestTensor y = Poisoned({1, 2});
  TestTensor saved_mean = Poisoned({2});
  TestTensor saved_invstd = Poisoned({2});
  const absl::Status status =
      RunOp("BatchNorm", {}, {&x, &gamma, &beta, &running_mean, &running_var},
            {&y, &saved_mean, &saved_invstd});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("more than one value per channel"));
}

}  // namespace
}  // namespace gradflow::ops::cpu::testing
