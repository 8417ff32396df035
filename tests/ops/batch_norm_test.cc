// BatchNorm and BatchNormGrad shapes and attribute checks.
#include <cmath>
#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/ops/op_test_util.h"

namespace gradflow::ops {
namespace {

using graph::AttrMap;
using graph::TensorType;
using testing::F16;
using testing::F32;
using testing::Infer;
using testing::IsInvalid;
using testing::N;
using testing::Render;

std::vector<TensorType> BatchNormInputs(graph::Shape x, int64_t channels) {
  return {F32(x), F32({channels}), F32({channels}), F32({channels}), F32({channels})};
}

TEST(BatchNormTest, TrainingHasSavedStatistics) {
  EXPECT_EQ(Render(Infer("BatchNorm", BatchNormInputs({N, 64, 112, 112}, 64), {}, 3)),
            "f32[N,64,112,112], f32[64], f32[64]");
}

TEST(BatchNormTest, InferenceHasOneOutput) {
  EXPECT_EQ(Render(Infer("BatchNorm", BatchNormInputs({N, 64, 112, 112}, 64),
                         {{"training", int64_t{0}}}, 1)),
            "f32[N,64,112,112]");
}

TEST(BatchNormTest, AnyRankFromTwo) {
  EXPECT_EQ(Render(Infer("BatchNorm", BatchNormInputs({N, 10}, 10), {}, 3)),
            "f32[N,10], f32[10], f32[10]");
  EXPECT_THAT(Render(Infer("BatchNorm", BatchNormInputs({N}, 10), {}, 3)),
              IsInvalid("input 0 (x) must have rank >= 2 [N,C,...], got [N]"));
}

TEST(BatchNormTest, PerChannelInputsMatchChannels) {
  std::vector<TensorType> inputs = BatchNormInputs({N, 64, 56, 56}, 64);
  inputs[1] = F32({32});
  EXPECT_THAT(Render(Infer("BatchNorm", inputs, {}, 3)),
              IsInvalid("input 1 (gamma) must have shape [64], got [32]"));
  inputs = BatchNormInputs({N, 64, 56, 56}, 64);
  inputs[4] = F32({64, 1});
  EXPECT_THAT(Render(Infer("BatchNorm", inputs, {}, 3)),
              IsInvalid("input 4 (running_var) must have shape [64], got [64,1]"));
}

TEST(BatchNormTest, OneFloatDType) {
  std::vector<TensorType> inputs = BatchNormInputs({N, 64, 56, 56}, 64);
  inputs[3] = F16({64});
  EXPECT_THAT(Render(Infer("BatchNorm", inputs, {}, 3)),
              IsInvalid("input 3 (running_mean) has dtype f16 but input 0 (x) has f32"));
}

TEST(BatchNormTest, BadAttributes) {
  const std::vector<TensorType> inputs = BatchNormInputs({N, 8, 4, 4}, 8);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (float epsilon : {0.0f, -1e-5f, nan, inf}) {
    EXPECT_THAT(Render(Infer("BatchNorm", inputs, {{"epsilon", epsilon}}, 3)),
                IsInvalid("attribute epsilon must be a positive finite number"));
  }
  for (float momentum : {-0.1f, 1.5f, nan}) {
    EXPECT_THAT(Render(Infer("BatchNorm", inputs, {{"momentum", momentum}}, 3)),
                IsInvalid("attribute momentum must be in [0, 1]"));
  }
  EXPECT_THAT(Render(Infer("BatchNorm", inputs, {{"training", int64_t{2}}}, 3)),
              IsInvalid("attribute training must be 0 or 1, got 2"));
}

TEST(BatchNormGradTest, Shapes) {
  EXPECT_EQ(
      Render(Infer("BatchNormGrad",
                   {F32({N, 64, 56, 56}), F32({N, 64, 56, 56}), F32({64}), F32({64}), F32({64})},
                   {}, 3)),
      "f32[N,64,56,56], f32[64], f32[64]");
  EXPECT_THAT(
      Render(Infer("BatchNormGrad",
                   {F32({N, 64, 56, 56}), F32({N, 64, 28, 28}), F32({64}), F32({64}), F32({64})},
                   {}, 3)),
      IsInvalid("input 1 (x) must have shape [N,64,56,56], got [N,64,28,28]"));
  EXPECT_THAT(
      Render(Infer("BatchNormGrad",
                   {F32({N, 64, 56, 56}), F32({N, 64, 56, 56}), F32({64}), F32({64}), F32({63})},
                   {}, 3)),
      IsInvalid("input 4 (saved_invstd) must have shape [64], got [63]"));
}

}  // namespace
}  // namespace gradflow::ops
