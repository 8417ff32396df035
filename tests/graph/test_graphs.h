// Small hand-built graphs for the graph library's tests. Built without models/ so that these
// tests check graph/ against the real op schemas only.
#pragma once

#include <string>
#include <vector>

#include "graph/ir.h"

namespace gradflow::graph::testing {

// Appends tensors and nodes by hand, with no checking: tests want to build broken graphs too.
class GraphMaker {
 public:
  int32_t Data(const std::string& name, Shape shape, TensorRole role = TensorRole::kActivation,
               DType dtype = DType::kFloat32);
  int32_t Param(const std::string& name, Shape shape);
  int32_t StateTensor(const std::string& name, Shape shape);
  void Op(const std::string& name, const std::string& op, std::vector<int32_t> inputs,
          std::vector<int32_t> outputs, AttrMap attrs = {}, Phase phase = Phase::kForward);
  Graph& graph() { return graph_; }

 private:
  Graph graph_;
};

// image[N,3,8,8] -> stem conv 3->4 3x3 -> relu "stem.out" -> residual block (conv, bn, relu,
// conv, bn, add with "stem.out", relu) -> global pool -> flatten -> fc 4->3 -> softmax
// cross-entropy loss. "stem.out" feeds two nodes, so its gradient must be accumulated.
Graph ResidualForward();

// The same, with the backward pass appended by AppendBackward and the standard ops.
Graph ResidualTraining();

}  // namespace gradflow::graph::testing
