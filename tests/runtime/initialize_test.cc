#include "runtime/trainer/initialize.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gradflow::runtime {
namespace {

graph::Tensor Param(const std::string& name, graph::Shape shape, graph::Initializer init) {
  return graph::Tensor{.name = name, .shape = std::move(shape),
                       .role = graph::TensorRole::kParameter, .init = init};
}

std::vector<float> Init(const graph::Tensor& t, uint64_t seed) {
  std::vector<float> values(graph::NumElements(t.shape), -99.0f);
  EXPECT_TRUE(InitializeTensor(graph::Graph{}, t, seed, values).ok());
  return values;
}

TEST(InitializeTest, NormalHasTheRequestedSpread) {
  const std::vector<float> v = Init(Param("w", {200, 100}, {graph::InitKind::kHeNormal, 0.05f}), 1);
  double sum = 0, sq = 0;
  for (float x : v) {
    sum += x;
    sq += x * x;
  }
  const double mean = sum / v.size();
  EXPECT_NEAR(mean, 0.0, 0.002);
  EXPECT_NEAR(std::sqrt(sq / v.size() - mean * mean), 0.05, 0.001);
}

TEST(InitializeTest, UniformStaysWithinItsBoundAndFillsIt) {
  const std::vector<float> v = Init(Param("w", {10000}, {graph::InitKind::kUniform, 0.25f}), 1);
  float lo = 1, hi = -1;
  for (float x : v) {
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  EXPECT_GE(lo, -0.25f);
  EXPECT_LE(hi, 0.25f);
  EXPECT_LT(lo, -0.24f);
  EXPECT_GT(hi, 0.24f);
}

TEST(InitializeTest, ValuesDependOnSeedAndNameOnly) {
  const graph::Initializer init{graph::InitKind::kNormal, 1.0f};
  EXPECT_EQ(Init(Param("a", {64}, init), 3), Init(Param("a", {64}, init), 3));
  EXPECT_NE(Init(Param("a", {64}, init), 3), Init(Param("b", {64}, init), 3));
  EXPECT_NE(Init(Param("a", {64}, init), 3), Init(Param("a", {64}, init), 4));
}

TEST(InitializeTest, ConstantsAndStoredData) {
  EXPECT_EQ(Init(Param("z", {3}, {graph::InitKind::kZeros, 0}), 1), std::vector<float>(3, 0.0f));
  EXPECT_EQ(Init(Param("o", {3}, {graph::InitKind::kOnes, 0}), 1), std::vector<float>(3, 1.0f));
  EXPECT_EQ(Init(Param("c", {2}, {graph::InitKind::kConstant, 2.5f}), 1),
            std::vector<float>(2, 2.5f));
  graph::Graph g;
  const float stored[2] = {7.0f, -1.0f};
  g.buffers.push_back(graph::Buffer{std::vector<uint8_t>(reinterpret_cast<const uint8_t*>(stored),
                                                         reinterpret_cast<const uint8_t*>(stored) + 8)});
  graph::Tensor t = Param("s", {2}, {graph::InitKind::kNormal, 1.0f});
  t.buffer = 0;
  std::vector<float> values(2);
  ASSERT_TRUE(InitializeTensor(g, t, 1, values).ok());
  EXPECT_EQ(values, (std::vector<float>{7.0f, -1.0f}));
}

TEST(InitializeTest, BadRequestsAreRefused) {
  std::vector<float> small(2);
  EXPECT_THAT(InitializeTensor(graph::Graph{}, Param("w", {3}, {graph::InitKind::kOnes, 0}), 1, small)
                  .message(),
              ::testing::HasSubstr("'w' has 3 elements"));
  std::vector<float> three(3);
  EXPECT_FALSE(
      InitializeTensor(graph::Graph{}, Param("w", {3}, {graph::InitKind::kNormal, -1.0f}), 1, three)
          .ok());
}

}  // namespace
}  // namespace gradflow::runtime
