// The overflow-checked arithmetic and shape checks every schema relies on.
#include "ops/schemas/schema_util.h"

#include <cstdint>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gradflow::ops {
namespace {

using graph::kBatch;
using ::testing::HasSubstr;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

TEST(CheckedArithmeticTest, DetectsOverflow) {
  EXPECT_EQ(CheckedAdd(2, 3), 5);
  EXPECT_EQ(CheckedAdd(kMax, 1), std::nullopt);
  EXPECT_EQ(CheckedAdd(kMin, -1), std::nullopt);
  EXPECT_EQ(CheckedMul(int64_t{1} << 31, int64_t{1} << 31), int64_t{1} << 62);
  EXPECT_EQ(CheckedMul(int64_t{1} << 32, int64_t{1} << 31), std::nullopt);
  EXPECT_EQ(CheckedMul(kMin, -1), std::nullopt);
}

TEST(WindowOutputSizeTest, Arithmetic) {
  EXPECT_EQ(*WindowOutputSize(224, 7, 2, 3, 1, "height"), 112);
  EXPECT_EQ(*WindowOutputSize(112, 3, 2, 1, 1, "height"), 56);
  EXPECT_EQ(*WindowOutputSize(32, 3, 1, 0, 2, "height"), 28);
  EXPECT_EQ(*WindowOutputSize(5, 5, 1, 0, 1, "height"), 1);
  EXPECT_EQ(*WindowOutputSize(1, 1, kMax, 0, 1, "height"), 1);
}

TEST(WindowOutputSizeTest, Errors) {
  EXPECT_THAT(WindowOutputSize(4, 5, 1, 0, 1, "width").status().message(),
              HasSubstr("kernel width 5 exceeds padded input width 4 (4 + 2*0)"));
  EXPECT_THAT(WindowOutputSize(4, 3, 1, kMax, 1, "width").status().message(),
              HasSubstr("overflows int64"));
  EXPECT_THAT(WindowOutputSize(4, kMax, 1, 0, 2, "width").status().message(),
              HasSubstr("overflows int64"));
}

TEST(CheckShapeDimsTest, AcceptsBatchOnlyInDimensionZero) {
  EXPECT_TRUE(CheckShapeDims({kBatch, 3, 4}, true, "x").ok());
  EXPECT_TRUE(CheckShapeDims({}, true, "x").ok());
  EXPECT_THAT(CheckShapeDims({kBatch, 3}, false, "w").message(),
              HasSubstr("w must not have a batch dimension"));
  EXPECT_THAT(CheckShapeDims({3, kBatch}, true, "x").message(),
              HasSubstr("x has the batch dimension N at dimension 1"));
}

TEST(CheckShapeDimsTest, BoundsBytesPerExample) {
  // 2^59 elements of 8 bytes is 2^62 bytes: fine. 2^61 elements would be 2^64 bytes.
  EXPECT_TRUE(CheckShapeDims({kBatch, int64_t{1} << 30, int64_t{1} << 29}, true, "x").ok());
  EXPECT_THAT(CheckShapeDims({kBatch, int64_t{1} << 31, int64_t{1} << 30}, true, "x").message(),
              HasSubstr("is too large"));
  EXPECT_THAT(CheckShapeDims({kMax, kMax}, true, "x").message(), HasSubstr("is too large"));
}

}  // namespace
}  // namespace gradflow::ops
