// FullyConnected and its backward ops.
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/ops/op_test_util.h"

namespace gradflow::ops {
namespace {

using testing::F16;
using testing::F32;
using testing::Infer;
using testing::IsInvalid;
using testing::N;
using testing::Render;

TEST(FullyConnectedTest, ResNetClassifier) {
  EXPECT_EQ(Render(Infer("FullyConnected", {F32({N, 2048}), F32({1000, 2048}), F32({1000})})),
            "f32[N,1000]");
  EXPECT_EQ(Render(Infer("FullyConnected", {F16({32, 2048}), F16({1000, 2048})})), "f16[32,1000]");
}

TEST(FullyConnectedTest, Errors) {
  EXPECT_THAT(Render(Infer("FullyConnected", {F32({N, 2048}), F32({1000, 512})})),
              IsInvalid("input 1 (w) [1000,512] must have dimension 1 = K = 2048 (dimension 1 "
                        "of input 0 (x) [N,2048]), got 512"));
  EXPECT_THAT(Render(Infer("FullyConnected", {F32({N, 2048, 1, 1}), F32({1000, 2048})})),
              IsInvalid("input 0 (x) must have rank 2 [N,K], got [N,2048,1,1]"));
  EXPECT_THAT(Render(Infer("FullyConnected", {F32({N, 2048}), F32({1000, 2048}), F32({100})})),
              IsInvalid("input 2 (b) must have shape [1000], got [100]"));
  EXPECT_THAT(Render(Infer("FullyConnected", {F32({N, 2048}), F16({1000, 2048})})),
              IsInvalid("input 1 (w) has dtype f16 but input 0 (x) has f32"));
  EXPECT_THAT(Render(Infer("FullyConnected", {F32({N, 2048}), F32({N, 2048})})),
              IsInvalid("input 1 (w) must not have a batch dimension, got [N,2048]"));
}

TEST(FullyConnectedBackwardDataTest, Shapes) {
  EXPECT_EQ(Render(Infer("FullyConnectedBackwardData", {F32({N, 1000}), F32({1000, 2048})})),
            "f32[N,2048]");
  EXPECT_THAT(Render(Infer("FullyConnectedBackwardData", {F32({N, 10}), F32({1000, 2048})})),
              IsInvalid("input 1 (w) [1000,2048] must have dimension 0 = M = 10"));
}

TEST(FullyConnectedBackwardWeightsTest, Shapes) {
  EXPECT_EQ(Render(Infer("FullyConnectedBackwardWeights", {F32({N, 1000}), F32({N, 2048})})),
            "f32[1000,2048]");
  EXPECT_THAT(Render(Infer("FullyConnectedBackwardWeights", {F32({8, 1000}), F32({N, 2048})})),
              IsInvalid("input 1 (x) has shape [N,2048] but input 0 (dy) has [8,1000]; their "
                        "dimension 0 (the batch) must match"));
}

}  // namespace
}  // namespace gradflow::ops
