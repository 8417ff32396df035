// MaxPool, AvgPool, GlobalAvgPool and their backward ops.
#include <cstdint>
#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/ops/op_test_util.h"

namespace gradflow::ops {
namespace {

using graph::AttrMap;
using testing::F32;
using testing::I64;
using testing::Infer;
using testing::IsInvalid;
using testing::N;
using testing::Render;

using Ints = std::vector<int64_t>;
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

// ResNet-50's stem pooling: 3x3, stride 2, pad 1.
AttrMap StemPool() {
  return {{"kernel", Ints{3, 3}}, {"strides", Ints{2, 2}}, {"pads", Ints{1, 1}}};
}

TEST(MaxPoolTest, ResNetStemPoolHalvesTheImage) {
  EXPECT_EQ(Render(Infer("MaxPool", {F32({N, 64, 112, 112})}, StemPool())), "f32[N,64,56,56]");
  EXPECT_EQ(Render(Infer("MaxPool", {F32({4, 64, 112, 112})}, StemPool())), "f32[4,64,56,56]");
}

TEST(MaxPoolTest, DefaultStrideIsOne) {
  EXPECT_EQ(Render(Infer("MaxPool", {F32({1, 2, 5, 6})}, {{"kernel", Ints{2, 3}}})),
            "f32[1,2,4,4]");
}

TEST(MaxPoolTest, FloorMode) {
  // (8 - 3) / 2 + 1 = 3 (a ceil mode would give 4).
  EXPECT_EQ(Render(Infer("MaxPool", {F32({1, 1, 8, 8})},
                         {{"kernel", Ints{3, 3}}, {"strides", Ints{2, 2}}})),
            "f32[1,1,3,3]");
}

TEST(MaxPoolTest, KernelIsRequired) {
  EXPECT_THAT(Render(Infer("MaxPool", {F32({1, 1, 8, 8})})),
              IsInvalid("missing required attribute 'kernel'"));
}

TEST(MaxPoolTest, BadAttributes) {
  const std::vector<graph::TensorType> x = {F32({N, 8, 16, 16})};
  EXPECT_THAT(Render(Infer("MaxPool", x, {{"kernel", Ints{3}}})),
              IsInvalid("attribute kernel must have 2 values [h,w], got 1: [3]"));
  EXPECT_THAT(Render(Infer("MaxPool", x, {{"kernel", Ints{0, 3}}})),
              IsInvalid("attribute kernel must be positive, got [0,3]"));
  EXPECT_THAT(Render(Infer("MaxPool", x, {{"kernel", Ints{3, 3}}, {"strides", Ints{-1, 1}}})),
              IsInvalid("attribute strides must be positive, got [-1,1]"));
  EXPECT_THAT(Render(Infer("MaxPool", x, {{"kernel", Ints{3, 3}}, {"pads", Ints{0, 0, 0}}})),
              IsInvalid("attribute pads must have 2 values [h,w], got 3"));
}

TEST(MaxPoolTest, PadsAtMostHalfTheKernel) {
  EXPECT_THAT(Render(Infer("MaxPool", {F32({N, 8, 16, 16})},
                           {{"kernel", Ints{3, 3}}, {"pads", Ints{2, 1}}})),
              IsInvalid("attribute pads [2,1] must be at most half of kernel [3,3]"));
  EXPECT_EQ(Render(Infer("MaxPool", {F32({N, 8, 16, 16})},
                         {{"kernel", Ints{4, 4}}, {"pads", Ints{2, 2}}, {"strides", Ints{4, 4}}})),
            "f32[N,8,5,5]");
}

TEST(MaxPoolTest, KernelLargerThanPaddedInput) {
  EXPECT_THAT(Render(Infer("MaxPool", {F32({1, 1, 2, 9})}, {{"kernel", Ints{3, 3}}})),
              IsInvalid("kernel height 3 exceeds padded input height 2 (2 + 2*0)"));
  EXPECT_THAT(Render(Infer("MaxPool", {F32({1, 1, 9, 9})}, {{"kernel", Ints{kMax, kMax}}})),
              IsInvalid("kernel height 9223372036854775807 exceeds padded input height 9"));
}

TEST(MaxPoolTest, HugePadsDoNotOverflow) {
  EXPECT_THAT(Render(Infer("MaxPool", {F32({1, 1, 112, 112})},
                           {{"kernel", Ints{kMax, 3}}, {"pads", Ints{kMax / 2, 0}}})),
              IsInvalid("window along height overflows int64"));
}

TEST(MaxPoolTest, WrongRankAndDType) {
  EXPECT_THAT(Render(Infer("MaxPool", {F32({N, 64, 112})}, StemPool())),
              IsInvalid("input 0 (x) must have rank 4 [N,C,H,W], got [N,64,112]"));
  EXPECT_THAT(Render(Infer("MaxPool", {I64({N, 64, 112, 112})}, StemPool())),
              IsInvalid("input 0 (x) has dtype i64, expected a float type"));
}

TEST(AvgPoolTest, Shapes) {
  EXPECT_EQ(Render(Infer("AvgPool", {F32({N, 2048, 7, 7})}, {{"kernel", Ints{7, 7}}})),
            "f32[N,2048,1,1]");
  EXPECT_EQ(Render(Infer("AvgPool", {F32({N, 64, 112, 112})},
                         {{"kernel", Ints{3, 3}},
                          {"strides", Ints{2, 2}},
                          {"pads", Ints{1, 1}},
                          {"count_include_pad", int64_t{0}}})),
            "f32[N,64,56,56]");
}

TEST(AvgPoolTest, CountIncludePadIsABoolean) {
  EXPECT_THAT(Render(Infer("AvgPool", {F32({N, 64, 112, 112})},
                           {{"kernel", Ints{3, 3}}, {"count_include_pad", int64_t{2}}})),
              IsInvalid("attribute count_include_pad must be 0 or 1, got 2"));
}

TEST(GlobalAvgPoolTest, Shapes) {
  EXPECT_EQ(Render(Infer("GlobalAvgPool", {F32({N, 2048, 7, 7})})), "f32[N,2048,1,1]");
  EXPECT_THAT(Render(Infer("GlobalAvgPool", {F32({N, 2048})})),
              IsInvalid("input 0 (x) must have rank 4 [N,C,H,W], got [N,2048]"));
}

TEST(MaxPoolGradTest, GivesXsType) {
  EXPECT_EQ(Render(Infer("MaxPoolGrad",
                         {F32({N, 64, 56, 56}), F32({N, 64, 112, 112}), F32({N, 64, 56, 56})},
                         StemPool())),
            "f32[N,64,112,112]");
}

TEST(MaxPoolGradTest, OperandsMustAgree) {
  EXPECT_THAT(Render(Infer("MaxPoolGrad",
                           {F32({N, 64, 56, 56}), F32({N, 64, 112, 112}), F32({N, 64, 55, 55})},
                           StemPool())),
              IsInvalid("input 2 (y) must have shape [N,64,56,56], got [N,64,55,55]"));
  EXPECT_THAT(Render(Infer("MaxPoolGrad",
                           {F32({N, 64, 28, 28}), F32({N, 64, 112, 112}), F32({N, 64, 56, 56})},
                           StemPool())),
              IsInvalid("input 0 (dy) must have shape [N,64,56,56], got [N,64,28,28]"));
}

TEST(AvgPoolGradTest, GivesInputShape) {
  const AttrMap attrs = {{"kernel", Ints{7, 7}}, {"input_shape", Ints{N, 2048, 7, 7}}};
  EXPECT_EQ(Render(Infer("AvgPoolGrad", {F32({N, 2048, 1, 1})}, attrs)), "f32[N,2048,7,7]");
  EXPECT_EQ(Render(Infer("AvgPoolGrad", {F32({4, 2048, 1, 1})}, attrs)), "f32[4,2048,7,7]");
}

TEST(AvgPoolGradTest, InputShapeMustReproduceDy) {
  EXPECT_THAT(Render(Infer("AvgPoolGrad", {F32({N, 2048, 2, 2})},
                           {{"kernel", Ints{7, 7}}, {"input_shape", Ints{N, 2048, 7, 7}}})),
              IsInvalid("input 0 (dy) has shape [N,2048,2,2] but pooling input_shape "
                        "[N,2048,7,7] gives an output of [N,2048,1,1]"));
  EXPECT_THAT(Render(Infer("AvgPoolGrad", {F32({N, 2048, 1, 1})}, {{"kernel", Ints{7, 7}}})),
              IsInvalid("missing required attribute 'input_shape'"));
}

TEST(GlobalAvgPoolGradTest, GivesInputShape) {
  EXPECT_EQ(Render(Infer("GlobalAvgPoolGrad", {F32({N, 2048, 1, 1})},
                         {{"input_shape", Ints{N, 2048, 7, 7}}})),
            "f32[N,2048,7,7]");
  EXPECT_THAT(Render(Infer("GlobalAvgPoolGrad", {F32({N, 1024, 1, 1})},
                           {{"input_shape", Ints{N, 2048, 7, 7}}})),
              IsInvalid("input 0 (dy) has shape [N,1024,1,1] but pooling input_shape "
                        "[N,2048,7,7] gives an output of [N,2048,1,1]"));
  EXPECT_THAT(Render(Infer("GlobalAvgPoolGrad", {F32({N, 2048, 1, 1})},
                           {{"input_shape", Ints{N, 2048, 0, 7}}})),
              IsInvalid("attribute input_shape has dimension 2 of size 0"));
}

}  // namespace
}  // namespace gradflow::ops
