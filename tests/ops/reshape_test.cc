// Reshape and Flatten, with the batch dimension kept symbolic.
#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/ops/op_test_util.h"

namespace gradflow::ops {
namespace {

using testing::F32;
using testing::I64;
using testing::Infer;
using testing::IsInvalid;
using testing::N;
using testing::Render;

using Ints = std::vector<int64_t>;

TEST(FlattenTest, KeepsTheBatch) {
  EXPECT_EQ(Render(Infer("Flatten", {F32({N, 2048, 1, 1})})), "f32[N,2048]");
  EXPECT_EQ(Render(Infer("Flatten", {F32({N, 3, 4, 5})}, {{"axis", int64_t{1}}})), "f32[N,60]");
  EXPECT_EQ(Render(Infer("Flatten", {F32({N})})), "f32[N,1]");
}

TEST(FlattenTest, AnyAxisWithoutABatch) {
  EXPECT_EQ(Render(Infer("Flatten", {F32({2, 3, 4, 5})}, {{"axis", int64_t{2}}})), "f32[6,20]");
  EXPECT_EQ(Render(Infer("Flatten", {F32({2, 3, 4, 5})}, {{"axis", int64_t{0}}})), "f32[1,120]");
  EXPECT_EQ(Render(Infer("Flatten", {F32({2, 3, 4, 5})}, {{"axis", int64_t{4}}})), "f32[120,1]");
}

TEST(FlattenTest, Errors) {
  EXPECT_THAT(Render(Infer("Flatten", {F32({2, 3, 4, 5})}, {{"axis", int64_t{5}}})),
              IsInvalid("attribute axis must be in [0, 4] for input 0 (x) [2,3,4,5], got 5"));
  EXPECT_THAT(Render(Infer("Flatten", {F32({2, 3, 4, 5})}, {{"axis", int64_t{-1}}})),
              IsInvalid("attribute axis must be in [0, 4]"));
  EXPECT_THAT(Render(Infer("Flatten", {F32({N, 3, 4})}, {{"axis", int64_t{2}}})),
              IsInvalid("attribute axis 2 would merge the batch dimension of input 0 (x) "
                        "[N,3,4] with other dimensions; use axis 1"));
  EXPECT_THAT(Render(Infer("Flatten", {F32({N, 3, 4})}, {{"axis", int64_t{0}}})),
              IsInvalid("attribute axis 0 would merge the batch dimension"));
}

TEST(ReshapeTest, SameElementsPerExample) {
  EXPECT_EQ(Render(Infer("Reshape", {F32({N, 2048, 1, 1})}, {{"shape", Ints{N, 2048}}})),
            "f32[N,2048]");
  EXPECT_EQ(Render(Infer("Reshape", {F32({N, 6})}, {{"shape", Ints{N, 2, 3}}})), "f32[N,2,3]");
  EXPECT_EQ(Render(Infer("Reshape", {F32({4, 6})}, {{"shape", Ints{2, 12}}})), "f32[2,12]");
  EXPECT_EQ(Render(Infer("Reshape", {F32({1})}, {{"shape", Ints{}}})), "f32[]");
  EXPECT_EQ(Render(Infer("Reshape", {I64({N})}, {{"shape", Ints{N, 1}}})), "i64[N,1]");
}

TEST(ReshapeTest, ElementCountsMustMatch) {
  EXPECT_THAT(Render(Infer("Reshape", {F32({N, 6})}, {{"shape", Ints{N, 4}}})),
              IsInvalid("attribute shape [N,4] holds 4 elements per example but input 0 (x) "
                        "[N,6] holds 6"));
  EXPECT_THAT(Render(Infer("Reshape", {F32({4, 6})}, {{"shape", Ints{5, 5}}})),
              IsInvalid("attribute shape [5,5] holds 25 elements but input 0 (x) [4,6] holds "
                        "24"));
}

TEST(ReshapeTest, BatchOnlyInDimensionZeroAndOnBothSides) {
  EXPECT_THAT(Render(Infer("Reshape", {F32({N, 6})}, {{"shape", Ints{6, N}}})),
              IsInvalid("attribute shape has the batch dimension N at dimension 1"));
  EXPECT_THAT(Render(Infer("Reshape", {F32({N, 6})}, {{"shape", Ints{6}}})),
              IsInvalid("attribute shape [6] must start with N (the batch) because input 0 (x) "
                        "[N,6] does"));
  EXPECT_THAT(Render(Infer("Reshape", {F32({})}, {{"shape", Ints{N}}})),
              IsInvalid("attribute shape [N] starts with N (the batch) but input 0 (x) is a "
                        "scalar"));
}

TEST(ReshapeTest, NInTheAttributeIsTheBoundBatch) {
  // Binding the batch size rewrites tensors, not attributes.
  EXPECT_EQ(Render(Infer("Reshape", {F32({8, 6})}, {{"shape", Ints{N, 2, 3}}})), "f32[8,2,3]");
  EXPECT_THAT(Render(Infer("Reshape", {F32({8, 6})}, {{"shape", Ints{N, 4}}})),
              IsInvalid("attribute shape [N,4] holds 4 elements per example but input 0 (x) "
                        "[8,6] holds 6"));
}

TEST(ReshapeTest, BadShapeValues) {
  EXPECT_THAT(Render(Infer("Reshape", {F32({N, 6})}, {{"shape", Ints{N, 0, 6}}})),
              IsInvalid("attribute shape has dimension 1 of size 0"));
  EXPECT_THAT(Render(Infer("Reshape", {F32({N, 6})}, {{"shape", Ints{N, -2, -3}}})),
              IsInvalid("attribute shape has negative dimension 1 (-2)"));
  EXPECT_THAT(Render(Infer("Reshape", {F32({N, 6})},
                           {{"shape", Ints{N, int64_t{1} << 40, int64_t{1} << 40}}})),
              IsInvalid("attribute shape [N,1099511627776,1099511627776] is too large"));
  EXPECT_THAT(Render(Infer("Reshape", {F32({N, 6})})),
              IsInvalid("missing required attribute 'shape'"));
}

}  // namespace
}  // namespace gradflow::ops
