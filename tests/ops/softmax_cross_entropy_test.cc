// SoftmaxCrossEntropy and its gradient op.
#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/ops/op_test_util.h"

namespace gradflow::ops {
namespace {

using graph::DType;
using testing::F16;
using testing::F32;
using testing::I64;
using testing::Infer;
using testing::IsInvalid;
using testing::N;
using testing::Render;

TEST(SoftmaxCrossEntropyTest, ScalarLossAndProbabilities) {
  EXPECT_EQ(Render(Infer("SoftmaxCrossEntropy", {F32({N, 1000}), I64({N})}, {}, 2)),
            "f32[], f32[N,1000]");
  EXPECT_EQ(Render(Infer("SoftmaxCrossEntropy", {F16({8, 10}), {DType::kInt32, {8}}},
                         {{"label_smoothing", 0.1f}}, 2)),
            "f16[], f16[8,10]");
}

TEST(SoftmaxCrossEntropyTest, LabelErrors) {
  EXPECT_THAT(Render(Infer("SoftmaxCrossEntropy", {F32({N, 1000}), F32({N})}, {}, 2)),
              IsInvalid("input 1 (labels) has dtype f32, expected a label type (i32 or i64)"));
  EXPECT_THAT(Render(Infer("SoftmaxCrossEntropy", {F32({N, 1000}), I64({N, 1})}, {}, 2)),
              IsInvalid("input 1 (labels) must have rank 1 [N], got [N,1]"));
  EXPECT_THAT(Render(Infer("SoftmaxCrossEntropy", {F32({N, 1000}), I64({8})}, {}, 2)),
              IsInvalid("input 1 (labels) has shape [8] but input 0 (logits) has [N,1000]"));
}

TEST(SoftmaxCrossEntropyTest, LogitErrors) {
  EXPECT_THAT(Render(Infer("SoftmaxCrossEntropy", {I64({N, 1000}), I64({N})}, {}, 2)),
              IsInvalid("input 0 (logits) has dtype i64, expected a float type"));
  EXPECT_THAT(Render(Infer("SoftmaxCrossEntropy", {F32({N, 10, 1}), I64({N})}, {}, 2)),
              IsInvalid("input 0 (logits) must have rank 2 [N,C], got [N,10,1]"));
}

TEST(SoftmaxCrossEntropyTest, LabelSmoothingRange) {
  for (float smoothing : {1.0f, -0.1f, std::numeric_limits<float>::quiet_NaN()}) {
    EXPECT_THAT(Render(Infer("SoftmaxCrossEntropy", {F32({N, 10}), I64({N})},
                             {{"label_smoothing", smoothing}}, 2)),
                IsInvalid("attribute label_smoothing must be in [0, 1)"));
  }
}

TEST(SoftmaxCrossEntropyGradTest, Shapes) {
  EXPECT_EQ(Render(Infer("SoftmaxCrossEntropyGrad", {F32({N, 1000}), I64({N})})), "f32[N,1000]");
  EXPECT_THAT(Render(Infer("SoftmaxCrossEntropyGrad", {F32({N, 1000}), F32({N})})),
              IsInvalid("input 1 (labels) has dtype f32, expected a label type"));
}

}  // namespace
}  // namespace gradflow::ops
