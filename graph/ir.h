// The in-memory graph: what a .fb file holds, as plain values that are easy to build and check.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "graph/attribute.h"
#include "graph/types.h"

namespace gradflow::graph {

inline constexpr uint32_t kFormatVersion = 1;
inline constexpr int32_t kNoTensor = -1;

struct Tensor {
  std::string name;
  DType dtype = DType::kFloat32;
  Shape shape;
  TensorRole role = TensorRole::kActivation;
  Initializer init;
  int32_t buffer = -1;  // index into Graph::buffers, or -1
  bool operator==(const Tensor&) const = default;
};

struct Node {
  std::string name;
  std::string op;
  int32_t op_version = 1;
  std::vector<int32_t> inputs;   // tensor indices; optional inputs are trailing and may be absent
  std::vector<int32_t> outputs;  // tensor indices
  AttrMap attrs;
  Phase phase = Phase::kForward;
  bool operator==(const Node&) const = default;
};

struct ParamGrad {
  int32_t param = kNoTensor;
  int32_t grad = kNoTensor;
  bool operator==(const ParamGrad&) const = default;
};

struct Buffer {
  std::vector<uint8_t> data;
  bool operator==(const Buffer&) const = default;
};

struct Graph {
  std::string name;
  std::string producer;
  std::vector<Tensor> tensors;
  std::vector<Node> nodes;  // in a valid execution order
  std::vector<int32_t> inputs;
  std::vector<int32_t> labels;
  int32_t loss = kNoTensor;
  std::vector<ParamGrad> param_grads;  // in the order backward produces them
  std::vector<std::pair<std::string, std::string>> metadata;
  std::vector<Buffer> buffers;

  bool operator==(const Graph&) const = default;

  int32_t AddTensor(Tensor tensor);
  int32_t AddNode(Node node);
  // Index of the tensor with that name, or kNoTensor. Linear: for tools and tests, not hot paths.
  int32_t FindTensor(std::string_view tensor_name) const;
  // Index of the node that writes each tensor (-1 for tensors no node writes).
  std::vector<int32_t> ProducerOfEachTensor() const;
};

}  // namespace gradflow::graph
