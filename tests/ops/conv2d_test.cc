// Conv2D and its backward ops: shapes of ResNet layers, and a precise error for each bad input.
#include <cstdint>
#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/ops/op_test_util.h"

namespace gradflow::ops {
namespace {

using graph::AttrMap;
using graph::DType;
using testing::F16;
using testing::F32;
using testing::I64;
using testing::Infer;
using testing::IsInvalid;
using testing::N;
using testing::Render;

using Ints = std::vector<int64_t>;
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

// ResNet-50's stem: 7x7, stride 2, pad 3.
AttrMap Stem() { return {{"strides", Ints{2, 2}}, {"pads", Ints{3, 3}}}; }

TEST(Conv2DShapeTest, ResNetStemHalvesTheImage) {
  EXPECT_EQ(Render(Infer("Conv2D", {F32({N, 3, 224, 224}), F32({64, 3, 7, 7})}, Stem())),
            "f32[N,64,112,112]");
}

TEST(Conv2DShapeTest, BiasIsOptional) {
  EXPECT_EQ(Render(Infer("Conv2D", {F32({N, 3, 224, 224}), F32({64, 3, 7, 7}), F32({64})}, Stem())),
            "f32[N,64,112,112]");
}

TEST(Conv2DShapeTest, OneByOneStrideTwoDownsample) {
  EXPECT_EQ(Render(Infer("Conv2D", {F32({N, 256, 56, 56}), F32({512, 256, 1, 1})},
                         {{"strides", Ints{2, 2}}})),
            "f32[N,512,28,28]");
}

TEST(Conv2DShapeTest, ThreeByThreeSamePadding) {
  EXPECT_EQ(
      Render(Infer("Conv2D", {F32({N, 64, 56, 56}), F32({64, 64, 3, 3})}, {{"pads", Ints{1, 1}}})),
      "f32[N,64,56,56]");
}

TEST(Conv2DShapeTest, GroupsSplitChannels) {
  // 32 input channels in 4 groups of 8; each filter sees 8 channels.
  EXPECT_EQ(Render(Infer("Conv2D", {F32({N, 32, 56, 56}), F32({64, 8, 3, 3})},
                         {{"pads", Ints{1, 1}}, {"groups", int64_t{4}}})),
            "f32[N,64,56,56]");
  // Depthwise.
  EXPECT_EQ(Render(Infer("Conv2D", {F32({2, 16, 10, 10}), F32({16, 1, 3, 3})},
                         {{"groups", int64_t{16}}})),
            "f32[2,16,8,8]");
}

TEST(Conv2DShapeTest, DilationWidensTheKernel) {
  // A 3x3 kernel with dilation 2 spans 5 pixels: 32 - 5 + 1 = 28, or 32 with pad 2.
  EXPECT_EQ(Render(Infer("Conv2D", {F32({1, 8, 32, 32}), F32({8, 8, 3, 3})},
                         {{"dilations", Ints{2, 2}}})),
            "f32[1,8,28,28]");
  EXPECT_EQ(Render(Infer("Conv2D", {F32({1, 8, 32, 32}), F32({8, 8, 3, 3})},
                         {{"dilations", Ints{2, 2}}, {"pads", Ints{2, 2}}})),
            "f32[1,8,32,32]");
}

TEST(Conv2DShapeTest, HeightAndWidthUseTheirOwnAttributes) {
  // OH = (10 - 3) / 2 + 1 = 4 (floor), OW = (7 + 2 - 2) / 1 + 1 = 8.
  EXPECT_EQ(Render(Infer("Conv2D", {F32({1, 1, 10, 7}), F32({1, 1, 3, 2})},
                         {{"strides", Ints{2, 1}}, {"pads", Ints{0, 1}}})),
            "f32[1,1,4,8]");
}

TEST(Conv2DShapeTest, BatchAndDTypeCarryThrough) {
  EXPECT_EQ(Render(Infer("Conv2D", {F32({8, 3, 224, 224}), F32({64, 3, 7, 7})}, Stem())),
            "f32[8,64,112,112]");
  EXPECT_EQ(Render(Infer("Conv2D", {F16({N, 3, 224, 224}), F16({64, 3, 7, 7})}, Stem())),
            "f16[N,64,112,112]");
}

TEST(Conv2DErrorTest, WrongRank) {
  EXPECT_THAT(Render(Infer("Conv2D", {F32({N, 3, 224}), F32({64, 3, 7, 7})})),
              IsInvalid("input 0 (x) must have rank 4 [N,C,H,W], got [N,3,224]"));
  EXPECT_THAT(Render(Infer("Conv2D", {F32({N, 3, 224, 224}), F32({64, 3, 7})})),
              IsInvalid("input 1 (w) must have rank 4 [O,C/groups,KH,KW], got [64,3,7]"));
}

TEST(Conv2DErrorTest, WrongInputCount) {
  EXPECT_THAT(Render(Infer("Conv2D", {F32({N, 3, 224, 224})})), IsInvalid("got 1"));
}

TEST(Conv2DErrorTest, ChannelMismatch) {
  EXPECT_THAT(Render(Infer("Conv2D", {F32({N, 3, 224, 224}), F32({64, 4, 7, 7})})),
              IsInvalid("input 1 (w) [64,4,7,7] must have dimension 1 = C/groups = 3 (3 input "
                        "channels, groups 1), got 4"));
}

TEST(Conv2DErrorTest, GroupsMustDivideChannels) {
  EXPECT_THAT(
      Render(Infer("Conv2D", {F32({N, 30, 8, 8}), F32({64, 7, 3, 3})}, {{"groups", int64_t{4}}})),
      IsInvalid("input 0 (x) [N,30,8,8] has 30 channels, not divisible by groups 4"));
  EXPECT_THAT(
      Render(Infer("Conv2D", {F32({N, 32, 8, 8}), F32({30, 8, 3, 3})}, {{"groups", int64_t{4}}})),
      IsInvalid("input 1 (w) [30,8,3,3] has 30 output channels, not divisible by "
                "groups 4"));
}

TEST(Conv2DErrorTest, GroupsMustBePositive) {
  for (int64_t groups : {int64_t{0}, int64_t{-2}, std::numeric_limits<int64_t>::min()}) {
    EXPECT_THAT(
        Render(Infer("Conv2D", {F32({N, 4, 8, 8}), F32({4, 4, 3, 3})}, {{"groups", groups}})),
        IsInvalid("attribute groups must be positive, got"));
  }
}

TEST(Conv2DErrorTest, StridesAndDilationsMustBePositive) {
  const std::vector<graph::TensorType> inputs = {F32({N, 4, 8, 8}), F32({4, 4, 3, 3})};
  EXPECT_THAT(Render(Infer("Conv2D", inputs, {{"strides", Ints{0, 1}}})),
              IsInvalid("attribute strides must be positive, got [0,1]"));
  EXPECT_THAT(Render(Infer("Conv2D", inputs, {{"strides", Ints{1, -2}}})),
              IsInvalid("attribute strides must be positive, got [1,-2]"));
  EXPECT_THAT(Render(Infer("Conv2D", inputs, {{"dilations", Ints{0, 0}}})),
              IsInvalid("attribute dilations must be positive, got [0,0]"));
  EXPECT_THAT(Render(Infer("Conv2D", inputs, {{"pads", Ints{-1, 0}}})),
              IsInvalid("attribute pads must be non-negative, got [-1,0]"));
}

TEST(Conv2DErrorTest, AttributeVectorsHaveTwoValues) {
  const std::vector<graph::TensorType> inputs = {F32({N, 4, 8, 8}), F32({4, 4, 3, 3})};
  EXPECT_THAT(Render(Infer("Conv2D", inputs, {{"strides", Ints{2}}})),
              IsInvalid("attribute strides must have 2 values [h,w], got 1: [2]"));
  EXPECT_THAT(Render(Infer("Conv2D", inputs, {{"pads", Ints{1, 1, 1, 1}}})),
              IsInvalid("attribute pads must have 2 values [h,w], got 4: [1,1,1,1]"));
  EXPECT_THAT(Render(Infer("Conv2D", inputs, {{"dilations", Ints{}}})),
              IsInvalid("attribute dilations must have 2 values [h,w], got 0: []"));
}

TEST(Conv2DErrorTest, KernelLargerThanPaddedInput) {
  EXPECT_THAT(Render(Infer("Conv2D", {F32({1, 3, 5, 5}), F32({8, 3, 7, 7})})),
              IsInvalid("kernel height 7 exceeds padded input height 5 (5 + 2*0)"));
  EXPECT_THAT(
      Render(Infer("Conv2D", {F32({1, 3, 9, 5}), F32({8, 3, 3, 3})}, {{"dilations", Ints{1, 3}}})),
      IsInvalid("dilated kernel width 7 (kernel 3, dilation 3) exceeds padded input "
                "width 5 (5 + 2*0)"));
}

TEST(Conv2DErrorTest, HugeAttributesDoNotOverflow) {
  const std::vector<graph::TensorType> inputs = {F32({N, 4, 8, 8}), F32({4, 4, 3, 3})};
  EXPECT_THAT(Render(Infer("Conv2D", inputs, {{"pads", Ints{kMax, 0}}})),
              IsInvalid("window along height overflows int64"));
  EXPECT_THAT(Render(Infer("Conv2D", inputs, {{"dilations", Ints{1, kMax}}})),
              IsInvalid("window along width overflows int64"));
  // A huge stride is legal: the window fits once.
  EXPECT_EQ(Render(Infer("Conv2D", inputs, {{"strides", Ints{kMax, kMax}}})), "f32[N,4,1,1]");
}

TEST(Conv2DErrorTest, HugeShapesAreRejected) {
  EXPECT_THAT(
      Render(Infer("Conv2D", {F32({N, 4, int64_t{1} << 40, int64_t{1} << 40}), F32({4, 4, 3, 3})})),
      IsInvalid("input 0 (x) [N,4,1099511627776,1099511627776] is too large"));
}

TEST(Conv2DErrorTest, BadDimensions) {
  const graph::TensorType w = F32({64, 3, 7, 7});
  EXPECT_THAT(Render(Infer("Conv2D", {F32({N, 0, 224, 224}), w})),
              IsInvalid("input 0 (x) has dimension 1 of size 0 in [N,0,224,224]"));
  EXPECT_THAT(Render(Infer("Conv2D", {F32({N, 3, -5, 224}), w})),
              IsInvalid("input 0 (x) has negative dimension 2 (-5) in [N,3,-5,224]"));
  EXPECT_THAT(Render(Infer("Conv2D", {F32({2, 3, N, 224}), w})),
              IsInvalid("input 0 (x) has the batch dimension N at dimension 2"));
  EXPECT_THAT(Render(Infer("Conv2D", {F32({N, 3, 224, 224}), F32({N, 3, 7, 7})})),
              IsInvalid("input 1 (w) must not have a batch dimension, got [N,3,7,7]"));
}

TEST(Conv2DErrorTest, DTypes) {
  EXPECT_THAT(Render(Infer("Conv2D", {F32({N, 3, 224, 224}), F16({64, 3, 7, 7})}, Stem())),
              IsInvalid("input 1 (w) has dtype f16 but input 0 (x) has f32; float operands "
                        "must share one dtype"));
  EXPECT_THAT(Render(Infer("Conv2D", {I64({N, 3, 224, 224}), F32({64, 3, 7, 7})}, Stem())),
              IsInvalid("input 0 (x) has dtype i64, expected a float type"));
  EXPECT_THAT(
      Render(Infer("Conv2D", {F32({N, 3, 224, 224}), F32({64, 3, 7, 7}), {DType::kBFloat16, {64}}},
                   Stem())),
      IsInvalid("input 2 (b) has dtype bf16 but input 0 (x) has f32"));
}

TEST(Conv2DErrorTest, BiasShape) {
  EXPECT_THAT(
      Render(Infer("Conv2D", {F32({N, 3, 224, 224}), F32({64, 3, 7, 7}), F32({32})}, Stem())),
      IsInvalid("input 2 (b) must have shape [64], got [32]"));
}

AttrMap WithShape(AttrMap attrs, const char* name, Ints shape) {
  attrs[name] = std::move(shape);
  return attrs;
}

TEST(Conv2DBackwardDataTest, GivesTheForwardInputShape) {
  EXPECT_EQ(Render(Infer("Conv2DBackwardData", {F32({N, 64, 112, 112}), F32({64, 3, 7, 7})},
                         WithShape(Stem(), "input_shape", {N, 3, 224, 224}))),
            "f32[N,3,224,224]");
  // The attribute keeps N when the batch is bound; dy knows it.
  EXPECT_EQ(Render(Infer("Conv2DBackwardData", {F32({8, 64, 112, 112}), F32({64, 3, 7, 7})},
                         WithShape(Stem(), "input_shape", {N, 3, 224, 224}))),
            "f32[8,3,224,224]");
  // Floor mode maps 223 and 224 to the same output; input_shape says which one it was.
  EXPECT_EQ(Render(Infer("Conv2DBackwardData", {F32({N, 64, 112, 112}), F32({64, 3, 7, 7})},
                         WithShape(Stem(), "input_shape", {N, 3, 223, 223}))),
            "f32[N,3,223,223]");
}

TEST(Conv2DBackwardDataTest, InputShapeMustReproduceDy) {
  EXPECT_THAT(Render(Infer("Conv2DBackwardData", {F32({N, 64, 112, 112}), F32({64, 3, 7, 7})},
                           WithShape(Stem(), "input_shape", {N, 3, 226, 226}))),
              IsInvalid("input 0 (dy) has shape [N,64,112,112] but convolving input_shape "
                        "[N,3,226,226] with w [64,3,7,7] gives an output of [N,64,113,113]"));
  EXPECT_THAT(Render(Infer("Conv2DBackwardData", {F32({N, 64, 112, 112}), F32({64, 3, 7, 7})},
                           WithShape(Stem(), "input_shape", {8, 3, 224, 224}))),
              IsInvalid("input 0 (dy) has shape [N,64,112,112] but convolving input_shape "
                        "[8,3,224,224]"));
}

TEST(Conv2DBackwardDataTest, BadInputShapeAttribute) {
  const std::vector<graph::TensorType> inputs = {F32({N, 64, 112, 112}), F32({64, 3, 7, 7})};
  EXPECT_THAT(
      Render(Infer("Conv2DBackwardData", inputs, WithShape(Stem(), "input_shape", {N, 3, 224}))),
      IsInvalid("attribute input_shape must have 4 values [N,C,H,W], got 3: [-1,3,224]"));
  EXPECT_THAT(Render(Infer("Conv2DBackwardData", inputs,
                           WithShape(Stem(), "input_shape", {N, 3, -224, 224}))),
              IsInvalid("attribute input_shape has negative dimension 2 (-224)"));
  EXPECT_THAT(Render(Infer("Conv2DBackwardData", inputs, Stem())),
              IsInvalid("missing required attribute 'input_shape'"));
}

TEST(Conv2DBackwardFilterTest, GivesTheFilterShape) {
  EXPECT_EQ(Render(Infer("Conv2DBackwardFilter", {F32({N, 64, 112, 112}), F32({N, 3, 224, 224})},
                         WithShape(Stem(), "filter_shape", {64, 3, 7, 7}))),
            "f32[64,3,7,7]");
  EXPECT_EQ(
      Render(Infer(
          "Conv2DBackwardFilter", {F32({N, 64, 56, 56}), F32({N, 32, 56, 56})},
          {{"pads", Ints{1, 1}}, {"groups", int64_t{4}}, {"filter_shape", Ints{64, 8, 3, 3}}})),
      "f32[64,8,3,3]");
}

TEST(Conv2DBackwardFilterTest, FilterShapeMustReproduceDy) {
  EXPECT_THAT(Render(Infer("Conv2DBackwardFilter", {F32({N, 64, 112, 112}), F32({N, 3, 224, 224})},
                           WithShape(Stem(), "filter_shape", {64, 3, 5, 5}))),
              IsInvalid("input 0 (dy) has shape [N,64,112,112] but convolving x [N,3,224,224] with "
                        "filter_shape [64,3,5,5] gives an output of [N,64,113,113]"));
  EXPECT_THAT(Render(Infer("Conv2DBackwardFilter", {F32({8, 64, 112, 112}), F32({N, 3, 224, 224})},
                           WithShape(Stem(), "filter_shape", {64, 3, 7, 7}))),
              IsInvalid("input 0 (dy) has shape [8,64,112,112] but convolving x"));
  EXPECT_THAT(Render(Infer("Conv2DBackwardFilter", {F32({N, 64, 112, 112}), F32({N, 3, 224, 224})},
                           WithShape(Stem(), "filter_shape", {N, 3, 7, 7}))),
              IsInvalid("attribute filter_shape must not have a batch dimension"));
}

}  // namespace
}  // namespace gradflow::ops
