#include "graph/autodiff.h"

#include <algorithm>
#include <map>
#include <set>

#include "gmock/gmock.h"
#include "graph/verify.h"
#include "gtest/gtest.h"
#include "ops/registry.h"
#include "tests/graph/test_graphs.h"

namespace gradflow::graph {
namespace {

using ::testing::HasSubstr;

const Node* Producer(const Graph& g, int32_t tensor) {
  for (const Node& n : g.nodes) {
    if (std::find(n.outputs.begin(), n.outputs.end(), tensor) != n.outputs.end()) return &n;
  }
  return nullptr;
}

int NodeIndexOf(const Graph& g, const Node* node) { return static_cast<int>(node - g.nodes.data()); }

TEST(AutodiffTest, ResidualJoinAccumulatesBothBranches) {
  const Graph g = testing::ResidualTraining();
  const int32_t grad = g.FindTensor("stem.out.grad");
  ASSERT_NE(grad, kNoTensor);
  const Node* sum = Producer(g, grad);
  ASSERT_NE(sum, nullptr);
  EXPECT_EQ(sum->op, "Add");
  EXPECT_EQ(sum->phase, Phase::kBackward);
  // One addend comes through the block's first conv (backward-data), the other is the gradient
  // the Add of the forward block passed straight through to its shortcut input.
  std::set<std::string> addend_ops;
  for (int32_t in : sum->inputs) addend_ops.insert(Producer(g, in)->op);
  EXPECT_TRUE(addend_ops.contains("Conv2DBackwardData")) << sum->name;
  EXPECT_EQ(sum->inputs.size(), 2u);
  // The stem's ReLU backward consumes exactly the accumulated gradient.
  const Node* relu_grad = nullptr;
  for (const Node& n : g.nodes) {
    if (n.op == "ReluGrad" && n.name.starts_with("stem.relu/")) relu_grad = &n;
  }
  ASSERT_NE(relu_grad, nullptr);
  EXPECT_EQ(relu_grad->inputs[0], grad);
  EXPECT_GT(NodeIndexOf(g, relu_grad), NodeIndexOf(g, sum));
}

TEST(AutodiffTest, EveryParameterGetsExactlyOneGradient) {
  const Graph g = testing::ResidualTraining();
  std::multiset<int32_t> params_with_grad;
  for (const ParamGrad& pg : g.param_grads) {
    params_with_grad.insert(pg.param);
    EXPECT_EQ(g.tensors[pg.grad].name, g.tensors[pg.param].name + ".grad");
    EXPECT_EQ(g.tensors[pg.grad].shape, g.tensors[pg.param].shape);
  }
  for (size_t t = 0; t < g.tensors.size(); ++t) {
    const bool is_param = g.tensors[t].role == TensorRole::kParameter;
    EXPECT_EQ(params_with_grad.count(static_cast<int32_t>(t)), is_param ? 1u : 0u)
        << g.tensors[t].name;
  }
  EXPECT_TRUE(VerifyGraph(g, ops::StandardOps()).ok());
}

TEST(AutodiffTest, GradientsComeInReverseForwardOrder) {
  const Graph g = testing::ResidualTraining();
  // Forward position of each parameter: the first node that reads it.
  std::map<int32_t, int> first_use;
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    if (g.nodes[n].phase != Phase::kForward) continue;
    for (int32_t in : g.nodes[n].inputs) first_use.emplace(in, static_cast<int>(n));
  }
  int previous_use = 1 << 30;
  int previous_producer = -1;
  for (const ParamGrad& pg : g.param_grads) {
    const int use = first_use.at(pg.param);
    const int producer = NodeIndexOf(g, Producer(g, pg.grad));
    EXPECT_LE(use, previous_use) << g.tensors[pg.param].name << " came out of order";
    // Equal when one node yields several gradients (BatchNorm's gamma and beta).
    EXPECT_GE(producer, previous_producer) << g.tensors[pg.grad].name;
    previous_use = use;
    previous_producer = producer;
  }
  EXPECT_EQ(g.tensors[g.param_grads.front().param].name.substr(0, 3), "fc.");
  EXPECT_EQ(g.tensors[g.param_grads.back().param].name, "stem.weight");
}

TEST(AutodiffTest, InputsGetNoGradient) {
  const Graph g = testing::ResidualTraining();
  EXPECT_EQ(g.FindTensor("image.grad"), kNoTensor);
  // The stem conv needs no backward-data node: its input is the image.
  for (const Node& n : g.nodes) {
    EXPECT_FALSE(n.op == "Conv2DBackwardData" && n.name.starts_with("stem/")) << n.name;
  }
}

TEST(AutodiffTest, BackwardNodesFollowForwardNodes) {
  const Graph g = testing::ResidualTraining();
  bool in_backward = false;
  for (const Node& n : g.nodes) {
    if (n.phase == Phase::kBackward) in_backward = true;
    if (in_backward) {
      EXPECT_EQ(n.phase, Phase::kBackward) << n.name;
    }
  }
  EXPECT_TRUE(in_backward);
}

TEST(AutodiffTest, ParameterThatDoesNotReachTheLossIsAnError) {
  Graph g = testing::ResidualForward();
  g.AddTensor(Tensor{.name = "orphan.weight", .shape = {4}, .role = TensorRole::kParameter});
  absl::Status s = AppendBackward(g, ops::StandardOps());
  EXPECT_THAT(s.message(), HasSubstr("'orphan.weight' does not affect the loss"));
  EXPECT_EQ(g, [] {
    Graph expected = testing::ResidualForward();
    expected.AddTensor(Tensor{.name = "orphan.weight", .shape = {4}, .role = TensorRole::kParameter});
    return expected;
  }()) << "a failed pass must leave the graph as it was";
}

TEST(AutodiffTest, GraphWithoutLossIsAnError) {
  Graph g = testing::ResidualForward();
  g.loss = kNoTensor;
  EXPECT_THAT(AppendBackward(g, ops::StandardOps()).message(), HasSubstr("no loss"));
}

TEST(AutodiffTest, SecondPassIsRefused) {
  Graph g = testing::ResidualTraining();
  EXPECT_THAT(AppendBackward(g, ops::StandardOps()).message(),
              HasSubstr("already has a backward pass"));
}

TEST(AutodiffTest, ParameterReadTwiceIsAccumulated) {
  // fc.weight used by two FullyConnected nodes whose outputs are added.
  testing::GraphMaker m;
  const int32_t x = m.Data("x", {kBatch, 4}, TensorRole::kInput);
  const int32_t label = m.Data("label", {kBatch}, TensorRole::kLabel, DType::kInt32);
  const int32_t w = m.Param("shared.weight", {4, 4});
  const int32_t h1 = m.Data("h1", {kBatch, 4});
  const int32_t h2 = m.Data("h2", {kBatch, 4});
  m.Op("fc1", "FullyConnected", {x, w}, {h1});
  m.Op("fc2", "FullyConnected", {h1, w}, {h2});
  const int32_t loss = m.Data("loss", {});
  const int32_t probs = m.Data("probs", {kBatch, 4});
  m.Op("loss", "SoftmaxCrossEntropy", {h2, label}, {loss, probs}, {}, Phase::kLoss);
  Graph g = m.graph();
  g.inputs = {x};
  g.labels = {label};
  g.loss = loss;
  ASSERT_TRUE(AppendBackward(g, ops::StandardOps()).ok());
  ASSERT_EQ(g.param_grads.size(), 1u);
  const Node* sum = Producer(g, g.param_grads[0].grad);
  EXPECT_EQ(sum->op, "Add");
  EXPECT_EQ(g.tensors[g.param_grads[0].grad].name, "shared.weight.grad");
  EXPECT_TRUE(VerifyGraph(g, ops::StandardOps()).ok());
}

}  // namespace
}  // namespace gradflow::graph
