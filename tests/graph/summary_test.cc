#include "graph/summary.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ops/registry.h"
#include "tests/graph/test_graphs.h"

namespace gradflow::graph {
namespace {

using ::testing::HasSubstr;

TEST(SummaryTest, CountsOfTheResidualGraphMatchHandArithmetic) {
  const Graph g = testing::ResidualTraining();
  absl::StatusOr<GraphSummary> s = Summarize(g, ops::StandardOps());
  ASSERT_TRUE(s.ok()) << s.status();
  // stem 4*3*3*3 + two convs 4*4*3*3 + two BNs 2*4 + fc 3*4+3
  EXPECT_EQ(s->parameter_count, 108 + 2 * 144 + 2 * 8 + 15);
  EXPECT_EQ(s->num_parameter_tensors, 9);
  EXPECT_EQ(s->state_count, 16);
  // Per example: each conv writes 4x8x8 outputs; stem 3x3x3 MACs each, block convs 4x3x3; fc 3x4.
  EXPECT_DOUBLE_EQ(s->forward_macs_per_example, 256 * 27 + 2 * 256 * 36 + 12);
  EXPECT_GE(s->forward_flops_per_example, 2 * s->forward_macs_per_example);
  // Backward does about twice the forward work (data and filter gradients).
  EXPECT_GT(s->training_flops_per_example, 2.5 * s->forward_flops_per_example);
  // Forward activations per example, in f32: see test_graphs.cc for the tensors.
  EXPECT_EQ(s->activation_bytes_per_example, 4 * (512 + 776 + 520 + 512 + 8 + 3));
  EXPECT_EQ(s->forward_ops_by_type.at("Conv2D"), 3);
  EXPECT_EQ(s->forward_ops_by_type.at("BatchNorm"), 2);
  EXPECT_EQ(s->backward_ops_by_type.at("SoftmaxCrossEntropy"), 1);
  EXPECT_EQ(s->backward_ops_by_type.at("Conv2DBackwardFilter"), 3);
  EXPECT_EQ(s->backward_ops_by_type.at("Conv2DBackwardData"), 2);
}

TEST(SummaryTest, FormattedSummaryReadsWell) {
  const Graph g = testing::ResidualTraining();
  absl::StatusOr<GraphSummary> s = Summarize(g, ops::StandardOps());
  ASSERT_TRUE(s.ok());
  const std::string text = FormatSummary(g, *s);
  EXPECT_THAT(text, HasSubstr("parameters   427 in 9 tensors"));
  EXPECT_THAT(text, HasSubstr("image f32[N,3,8,8]"));
  EXPECT_THAT(text, HasSubstr("Conv2D 3"));
}

}  // namespace
}  // namespace gradflow::graph
