// Relu, Add, BiasGrad and ReluGrad: ops that keep or reduce one shape.
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

TEST(ReluTest, KeepsTypeOfAnyRank) {
  EXPECT_EQ(Render(Infer("Relu", {F32({N, 64, 56, 56})})), "f32[N,64,56,56]");
  EXPECT_EQ(Render(Infer("Relu", {{DType::kBFloat16, {N, 10}}})), "bf16[N,10]");
  EXPECT_EQ(Render(Infer("Relu", {F32({})})), "f32[]");
  EXPECT_THAT(Render(Infer("Relu", {I64({N, 10})})),
              IsInvalid("input 0 (x) has dtype i64, expected a float type"));
}

TEST(ReluGradTest, ShapesMustMatch) {
  EXPECT_EQ(Render(Infer("ReluGrad", {F32({N, 64}), F32({N, 64})})), "f32[N,64]");
  EXPECT_THAT(Render(Infer("ReluGrad", {F32({N, 64}), F32({N, 32})})),
              IsInvalid("input 1 (y) must have shape [N,64], got [N,32]"));
}

TEST(AddTest, SameShapeAndDType) {
  EXPECT_EQ(Render(Infer("Add", {F32({N, 256, 56, 56}), F32({N, 256, 56, 56})})),
            "f32[N,256,56,56]");
  EXPECT_EQ(Render(Infer("Add", {F16({3}), F16({3})})), "f16[3]");
}

TEST(AddTest, Mismatches) {
  EXPECT_THAT(Render(Infer("Add", {F32({N, 256, 56, 56}), F32({N, 256, 28, 28})})),
              IsInvalid("input 1 (b) must have shape [N,256,56,56], got [N,256,28,28]"));
  // The batch is unknown but one for the whole graph: N and 8 are not known to agree.
  EXPECT_THAT(Render(Infer("Add", {F32({N, 4}), F32({8, 4})})),
              IsInvalid("input 1 (b) must have shape [N,4], got [8,4]"));
  EXPECT_THAT(Render(Infer("Add", {F32({N, 4}), F16({N, 4})})),
              IsInvalid("input 1 (b) has dtype f16 but input 0 (a) has f32"));
  EXPECT_THAT(Render(Infer("Add", {F32({N, 4})})), IsInvalid("got 1"));
}

TEST(BiasGradTest, SumsAllButDimensionOne) {
  EXPECT_EQ(Render(Infer("BiasGrad", {F32({N, 64, 56, 56})})), "f32[64]");
  EXPECT_EQ(Render(Infer("BiasGrad", {F32({N, 1000})})), "f32[1000]");
  EXPECT_THAT(Render(Infer("BiasGrad", {F32({N})})),
              IsInvalid("input 0 (dy) must have rank >= 2 [N,C,...], got [N]"));
}

TEST(AnyOpTest, UnknownDTypeIsAnError) {
  EXPECT_THAT(Render(Infer("Relu", {{static_cast<DType>(42), {N, 4}}})),
              IsInvalid("input 0 (x) has unknown dtype 42"));
}

}  // namespace
}  // namespace gradflow::ops
