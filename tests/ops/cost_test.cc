// Work and traffic counts, checked against figures computed by hand.
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "tests/ops/op_test_util.h"

namespace gradflow::ops {
namespace {

using graph::AttrMap;
using graph::OpCost;
using testing::Cost;
using testing::F32;
using testing::I64;

using Ints = std::vector<int64_t>;

TEST(ConvCostTest, ResNet50Conv2Block3x3) {
  // conv2_x 3x3 layer at batch 32: x [32,64,56,56], w [64,64,3,3], pad 1 -> y [32,64,56,56].
  // macs = N*O*OH*OW * (C/groups)*KH*KW = 32*64*56*56 * 64*3*3 = 6,422,528 * 576.
  const OpCost cost =
      Cost("Conv2D", {F32({32, 64, 56, 56}), F32({64, 64, 3, 3})}, {{"pads", Ints{1, 1}}});
  EXPECT_DOUBLE_EQ(cost.macs, 3'699'376'128.0);
  EXPECT_DOUBLE_EQ(cost.flops, 7'398'752'256.0);
  // x and y: 6,422,528 floats each; w: 36,864 floats; 4 bytes each.
  EXPECT_DOUBLE_EQ(cost.bytes, (6'422'528.0 * 2 + 36'864.0) * 4);
}

TEST(ConvCostTest, StemWithBias) {
  // y [1,64,112,112] = 802,816 elements, each 3*7*7 = 147 macs, plus one bias add.
  const OpCost cost = Cost("Conv2D", {F32({1, 3, 224, 224}), F32({64, 3, 7, 7}), F32({64})},
                           {{"strides", Ints{2, 2}}, {"pads", Ints{3, 3}}});
  EXPECT_DOUBLE_EQ(cost.macs, 118'013'952.0);
  EXPECT_DOUBLE_EQ(cost.flops, 2 * 118'013'952.0 + 802'816.0);
  // x 150,528 + w 9,408 + b 64 + y 802,816 floats.
  EXPECT_DOUBLE_EQ(cost.bytes, (150'528.0 + 9'408.0 + 64.0 + 802'816.0) * 4);
}

TEST(ConvCostTest, GroupsDivideTheWork) {
  // y [1,64,8,8] = 4,096 elements, each (32/4)*3*3 = 72 macs.
  const OpCost cost = Cost("Conv2D", {F32({1, 32, 8, 8}), F32({64, 8, 3, 3})},
                           {{"pads", Ints{1, 1}}, {"groups", int64_t{4}}});
  EXPECT_DOUBLE_EQ(cost.macs, 294'912.0);
}

TEST(ConvCostTest, BackwardOpsDoTheForwardWork) {
  const AttrMap conv = {{"strides", Ints{2, 2}}, {"pads", Ints{3, 3}}};
  const double forward_macs =
      Cost("Conv2D", {F32({8, 3, 224, 224}), F32({64, 3, 7, 7})}, conv).macs;
  AttrMap data = conv;
  data["input_shape"] = Ints{8, 3, 224, 224};
  AttrMap filter = conv;
  filter["filter_shape"] = Ints{64, 3, 7, 7};
  const OpCost dx = Cost("Conv2DBackwardData", {F32({8, 64, 112, 112}), F32({64, 3, 7, 7})}, data);
  const OpCost dw =
      Cost("Conv2DBackwardFilter", {F32({8, 64, 112, 112}), F32({8, 3, 224, 224})}, filter);
  EXPECT_DOUBLE_EQ(forward_macs, 8 * 118'013'952.0);
  EXPECT_DOUBLE_EQ(dx.macs, forward_macs);
  EXPECT_DOUBLE_EQ(dw.macs, forward_macs);
  EXPECT_DOUBLE_EQ(dx.flops, 2 * forward_macs);
}

TEST(FullyConnectedCostTest, ResNetClassifier) {
  // N*M*K = 32*1000*2048; the bias adds N*M flops.
  const OpCost cost = Cost("FullyConnected", {F32({32, 2048}), F32({1000, 2048}), F32({1000})});
  EXPECT_DOUBLE_EQ(cost.macs, 65'536'000.0);
  EXPECT_DOUBLE_EQ(cost.flops, 131'072'000.0 + 32'000.0);
  EXPECT_DOUBLE_EQ(cost.bytes, (65'536.0 + 2'048'000.0 + 1'000.0 + 32'000.0) * 4);
  EXPECT_DOUBLE_EQ(Cost("FullyConnectedBackwardData", {F32({32, 1000}), F32({1000, 2048})}).macs,
                   65'536'000.0);
  EXPECT_DOUBLE_EQ(Cost("FullyConnectedBackwardWeights", {F32({32, 1000}), F32({32, 2048})}).macs,
                   65'536'000.0);
}

TEST(ElementwiseCostTest, CountsElementsAndBytes) {
  const OpCost relu = Cost("Relu", {F32({2, 3, 4})});
  EXPECT_DOUBLE_EQ(relu.flops, 24.0);
  EXPECT_DOUBLE_EQ(relu.macs, 0.0);
  EXPECT_DOUBLE_EQ(relu.bytes, 2 * 24 * 4.0);
  const OpCost add = Cost("Add", {F32({2, 3}), F32({2, 3})});
  EXPECT_DOUBLE_EQ(add.bytes, 3 * 6 * 4.0);
}

TEST(PoolCostTest, OneOperationPerWindowElement) {
  // y [1,2,2,2] = 8 elements, each the max of 3*3 values.
  const OpCost cost =
      Cost("MaxPool", {F32({1, 2, 5, 5})}, {{"kernel", Ints{3, 3}}, {"strides", Ints{2, 2}}});
  EXPECT_DOUBLE_EQ(cost.flops, 72.0);
}

TEST(LossCostTest, BytesIncludeLabels) {
  // logits and probs 4*10 floats, labels 4 int64, loss one float.
  const OpCost cost = Cost("SoftmaxCrossEntropy", {F32({4, 10}), I64({4})}, {}, 2);
  EXPECT_DOUBLE_EQ(cost.bytes, 40 * 4.0 + 4 * 8.0 + 4.0 + 40 * 4.0);
  EXPECT_GT(cost.flops, 0.0);
}

}  // namespace
}  // namespace gradflow::ops
