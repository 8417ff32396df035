#include "tests/graph/test_graphs.h"

#include <cstdlib>
#include <iostream>

#include "graph/autodiff.h"
#include "ops/registry.h"

namespace gradflow::graph::testing {

int32_t GraphMaker::Data(const std::string& name, Shape shape, TensorRole role, DType dtype) {
  return graph_.AddTensor(Tensor{.name = name, .dtype = dtype, .shape = std::move(shape), .role = role});
}

int32_t GraphMaker::Param(const std::string& name, Shape shape) {
  return graph_.AddTensor(Tensor{.name = name,
                                 .shape = std::move(shape),
                                 .role = TensorRole::kParameter,
                                 .init = {InitKind::kHeNormal, 0.1f}});
}

int32_t GraphMaker::StateTensor(const std::string& name, Shape shape) {
  return graph_.AddTensor(Tensor{.name = name,
                                 .shape = std::move(shape),
                                 .role = TensorRole::kState,
                                 .init = {InitKind::kZeros, 0}});
}

void GraphMaker::Op(const std::string& name, const std::string& op, std::vector<int32_t> inputs,
                    std::vector<int32_t> outputs, AttrMap attrs, Phase phase) {
  graph_.AddNode(Node{.name = name,
                      .op = op,
                      .op_version = 1,
                      .inputs = std::move(inputs),
                      .outputs = std::move(outputs),
                      .attrs = std::move(attrs),
                      .phase = phase});
}

namespace {

int32_t ConvBn(GraphMaker& m, const std::string& prefix, int32_t x, bool relu) {
  const Shape act = {kBatch, 4, 8, 8};
  const int32_t w = m.Param(prefix + "conv.weight", {4, 4, 3, 3});
  const int32_t conv = m.Data(prefix + "conv.out", act);
  m.Op(prefix + "conv", "Conv2D", {x, w}, {conv}, {{"pads", std::vector<int64_t>{1, 1}}});
  const int32_t gamma = m.Param(prefix + "bn.weight", {4});
  const int32_t beta = m.Param(prefix + "bn.bias", {4});
  const int32_t mean = m.StateTensor(prefix + "bn.running_mean", {4});
  const int32_t var = m.StateTensor(prefix + "bn.running_var", {4});
  const int32_t y = m.Data(prefix + "bn.out", act);
  const int32_t saved_mean = m.Data(prefix + "bn.saved_mean", {4});
  const int32_t saved_invstd = m.Data(prefix + "bn.saved_invstd", {4});
  m.Op(prefix + "bn", "BatchNorm", {conv, gamma, beta, mean, var}, {y, saved_mean, saved_invstd});
  if (!relu) return y;
  const int32_t r = m.Data(prefix + "relu.out", act);
  m.Op(prefix + "relu", "Relu", {y}, {r});
  return r;
}

}  // namespace

Graph ResidualForward() {
  GraphMaker m;
  const int32_t image = m.Data("image", {kBatch, 3, 8, 8}, TensorRole::kInput);
  const int32_t label = m.Data("label", {kBatch}, TensorRole::kLabel, DType::kInt32);
  const int32_t stem_w = m.Param("stem.weight", {4, 3, 3, 3});
  const int32_t stem = m.Data("stem.conv", {kBatch, 4, 8, 8});
  m.Op("stem", "Conv2D", {image, stem_w}, {stem}, {{"pads", std::vector<int64_t>{1, 1}}});
  const int32_t stem_out = m.Data("stem.out", {kBatch, 4, 8, 8});
  m.Op("stem.relu", "Relu", {stem}, {stem_out});
  const int32_t a = ConvBn(m, "block.1.", stem_out, /*relu=*/true);
  const int32_t b = ConvBn(m, "block.2.", a, /*relu=*/false);
  const int32_t sum = m.Data("block.sum", {kBatch, 4, 8, 8});
  m.Op("block.add", "Add", {b, stem_out}, {sum});
  const int32_t out = m.Data("block.out", {kBatch, 4, 8, 8});
  m.Op("block.relu", "Relu", {sum}, {out});
  const int32_t pooled = m.Data("pool.out", {kBatch, 4, 1, 1});
  m.Op("pool", "GlobalAvgPool", {out}, {pooled});
  const int32_t flat = m.Data("flatten.out", {kBatch, 4});
  m.Op("flatten", "Flatten", {pooled}, {flat});
  const int32_t fc_w = m.Param("fc.weight", {3, 4});
  const int32_t fc_b = m.Param("fc.bias", {3});
  const int32_t logits = m.Data("fc.out", {kBatch, 3});
  m.Op("fc", "FullyConnected", {flat, fc_w, fc_b}, {logits});
  const int32_t loss = m.Data("loss", {});
  const int32_t probs = m.Data("probs", {kBatch, 3});
  m.Op("loss", "SoftmaxCrossEntropy", {logits, label}, {loss, probs}, {}, Phase::kLoss);
  Graph& g = m.graph();
  g.name = "residual";
  g.producer = "gradflow tests";
  g.inputs = {image};
  g.labels = {label};
  g.loss = loss;
  return g;
}

Graph ResidualTraining() {
  Graph g = ResidualForward();
  if (absl::Status s = AppendBackward(g, ops::StandardOps()); !s.ok()) {
    std::cerr << "ResidualTraining: " << s << "\n";
    std::abort();
  }
  return g;
}

}  // namespace gradflow::graph::testing
