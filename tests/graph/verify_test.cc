#include "graph/verify.h"

#include "gmock/gmock.h"
#include "graph/serialize.h"
#include "gtest/gtest.h"
#include "ops/registry.h"
#include "tests/graph/test_graphs.h"

namespace gradflow::graph {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// Verifies directly and through a save/load round trip: the loader must give the same verdict.
std::string VerifyError(const Graph& g) {
  absl::Status direct = VerifyGraph(g, ops::StandardOps());
  absl::StatusOr<Graph> loaded = ParseGraph(Serialize(g), "bad.fb", ops::StandardOps());
  EXPECT_EQ(direct.ok(), loaded.ok());
  if (direct.ok()) return "";
  EXPECT_THAT(loaded.status().message(), HasSubstr(std::string(direct.message())));
  EXPECT_THAT(loaded.status().message(), HasSubstr("bad.fb: "));
  return std::string(direct.message());
}

Node& NodeNamed(Graph& g, const std::string& name) {
  for (Node& n : g.nodes) {
    if (n.name == name) return n;
  }
  ADD_FAILURE() << "no node " << name;
  return g.nodes.front();
}

TEST(VerifyTest, ForwardAndTrainingGraphsAreValid) {
  EXPECT_EQ(VerifyError(testing::ResidualForward()), "");
  EXPECT_EQ(VerifyError(testing::ResidualTraining()), "");
}

TEST(VerifyTest, UnknownOp) {
  Graph g = testing::ResidualForward();
  NodeNamed(g, "stem.relu").op = "Gelu";
  EXPECT_THAT(VerifyError(g), AllOf(HasSubstr("'stem.relu'"), HasSubstr("unknown op 'Gelu'")));
}

TEST(VerifyTest, UnknownOpVersion) {
  Graph g = testing::ResidualForward();
  NodeNamed(g, "stem.relu").op_version = 9;
  EXPECT_THAT(VerifyError(g), AllOf(HasSubstr("'stem.relu'"), HasSubstr("op version 9"),
                                    HasSubstr("up to version 1")));
}

TEST(VerifyTest, NodeInputIndexOutOfRange) {
  Graph g = testing::ResidualForward();
  NodeNamed(g, "pool").inputs[0] = 100000;
  EXPECT_THAT(VerifyError(g), AllOf(HasSubstr("'pool'"), HasSubstr("tensor 100000, out of range")));
}

TEST(VerifyTest, NegativeOutputIndex) {
  Graph g = testing::ResidualForward();
  NodeNamed(g, "pool").outputs[0] = -3;
  EXPECT_THAT(VerifyError(g), AllOf(HasSubstr("'pool'"), HasSubstr("output 0 refers to tensor -3")));
}

TEST(VerifyTest, RootIndicesOutOfRange) {
  Graph g = testing::ResidualForward();
  g.loss = 5000;
  EXPECT_THAT(VerifyError(g), HasSubstr("loss index 5000 is out of range"));
  g = testing::ResidualForward();
  g.inputs.push_back(-2);
  EXPECT_THAT(VerifyError(g), HasSubstr("graph input index -2 is out of range"));
  g = testing::ResidualTraining();
  g.param_grads[0].grad = 1 << 30;
  EXPECT_THAT(VerifyError(g), HasSubstr("out of range"));
}

TEST(VerifyTest, TensorWrittenTwice) {
  Graph g = testing::ResidualForward();
  NodeNamed(g, "block.relu").outputs[0] = g.FindTensor("block.sum");
  EXPECT_THAT(VerifyError(g), AllOf(HasSubstr("'block.sum' is written twice"),
                                    HasSubstr("'block.add'"), HasSubstr("'block.relu'")));
}

TEST(VerifyTest, WritingAParameterIsRefused) {
  Graph g = testing::ResidualForward();
  NodeNamed(g, "stem.relu").outputs[0] = g.FindTensor("fc.weight");
  EXPECT_THAT(VerifyError(g), HasSubstr("'fc.weight', which is a parameter and may only be read"));
}

TEST(VerifyTest, Cycle) {
  Graph g = testing::ResidualForward();
  // The stem now reads the block's output: stem -> ... -> block.relu -> stem.
  NodeNamed(g, "stem").inputs[0] = g.FindTensor("block.out");
  g.tensors[g.FindTensor("block.out")].shape = {kBatch, 4, 8, 8};
  EXPECT_THAT(VerifyError(g), AllOf(HasSubstr("cycle"), HasSubstr("'stem'"),
                                    HasSubstr("'block.relu'")));
}

TEST(VerifyTest, SelfLoop) {
  Graph g = testing::ResidualForward();
  NodeNamed(g, "stem.relu").inputs[0] = g.FindTensor("stem.out");
  EXPECT_THAT(VerifyError(g), HasSubstr("cycle: 'stem.relu' -> 'stem.relu'"));
}

TEST(VerifyTest, ValidGraphListedOutOfOrder) {
  Graph g = testing::ResidualForward();
  std::swap(g.nodes[0], g.nodes[1]);  // relu before the conv that feeds it
  EXPECT_THAT(VerifyError(g), AllOf(HasSubstr("reads tensor"), HasSubstr("execution order")));
}

TEST(VerifyTest, ReadOfTensorNobodyWrites) {
  Graph g = testing::ResidualForward();
  g.AddTensor(Tensor{.name = "ghost", .shape = {kBatch, 4, 8, 8}});
  NodeNamed(g, "block.relu").inputs[0] = g.FindTensor("ghost");
  EXPECT_THAT(VerifyError(g), HasSubstr("'ghost', which no node writes"));
}

TEST(VerifyTest, ShapeMismatch) {
  Graph g = testing::ResidualForward();
  g.tensors[g.FindTensor("pool.out")].shape = {kBatch, 4, 2, 2};
  EXPECT_THAT(VerifyError(g), AllOf(HasSubstr("'pool' (GlobalAvgPool)"),
                                    HasSubstr("declared f32[N,4,2,2]"),
                                    HasSubstr("inference gives f32[N,4,1,1]")));
}

TEST(VerifyTest, ParameterShapeThatBreaksAConv) {
  Graph g = testing::ResidualForward();
  g.tensors[g.FindTensor("block.1.conv.weight")].shape = {4, 5, 3, 3};
  EXPECT_THAT(VerifyError(g), HasSubstr("'block.1.conv' (Conv2D)"));
}

TEST(VerifyTest, BadAttributes) {
  Graph g = testing::ResidualForward();
  NodeNamed(g, "stem").attrs["pads"] = 1.5f;
  EXPECT_THAT(VerifyError(g), AllOf(HasSubstr("'stem'"), HasSubstr("attribute 'pads' is float")));
  g = testing::ResidualForward();
  NodeNamed(g, "stem").attrs["colour"] = int64_t{3};
  EXPECT_THAT(VerifyError(g), HasSubstr("unknown attribute 'colour'"));
  g = testing::ResidualForward();
  NodeNamed(g, "stem").attrs["strides"] = std::vector<int64_t>{0, 0};
  EXPECT_THAT(VerifyError(g), HasSubstr("'stem' (Conv2D)"));
}

TEST(VerifyTest, WrongNumberOfOutputs) {
  Graph g = testing::ResidualForward();
  NodeNamed(g, "block.1.bn").outputs.pop_back();
  EXPECT_THAT(VerifyError(g), AllOf(HasSubstr("'block.1.bn'"), HasSubstr("outputs")));
}

TEST(VerifyTest, DuplicateNames) {
  Graph g = testing::ResidualForward();
  g.tensors[1].name = g.tensors[0].name;
  EXPECT_THAT(VerifyError(g), HasSubstr("is used twice"));
  g = testing::ResidualForward();
  g.nodes[1].name = g.nodes[0].name;
  EXPECT_THAT(VerifyError(g), HasSubstr("node name 'stem' is used twice"));
}

TEST(VerifyTest, BatchDimensionOnlyOnDataAxisZero) {
  Graph g = testing::ResidualForward();
  g.tensors[g.FindTensor("fc.weight")].shape = {kBatch, 4};
  EXPECT_THAT(VerifyError(g), HasSubstr("'fc.weight' (parameter) has invalid dimension -1"));
}

TEST(VerifyTest, LossMustBeScalar) {
  Graph g = testing::ResidualForward();
  g.loss = g.FindTensor("probs");
  EXPECT_THAT(VerifyError(g), HasSubstr("must be a float scalar"));
}

TEST(VerifyTest, GradientPairsAreChecked) {
  Graph g = testing::ResidualTraining();
  g.param_grads.push_back(g.param_grads.front());
  EXPECT_THAT(VerifyError(g), HasSubstr("has more than one gradient"));
  g = testing::ResidualTraining();
  std::swap(g.param_grads[0].grad, g.param_grads[1].grad);  // fc.weight [3,4] vs fc.bias [3]
  EXPECT_THAT(VerifyError(g), HasSubstr("but parameter"));
}

TEST(VerifyTest, BufferSizeMustMatchTensor) {
  Graph g = testing::ResidualForward();
  g.buffers.push_back(Buffer{std::vector<uint8_t>(5)});
  g.tensors[g.FindTensor("fc.bias")].buffer = 0;
  EXPECT_THAT(VerifyError(g), HasSubstr("'fc.bias' needs 12 bytes of data, buffer 0 holds 5"));
  g.tensors[g.FindTensor("fc.bias")].buffer = 3;
  EXPECT_THAT(VerifyError(g), HasSubstr("refers to buffer 3"));
}

}  // namespace
}  // namespace gradflow::graph
