#include "graph/ir.h"

namespace gradflow::graph {

int32_t Graph::AddTensor(Tensor tensor) {
  tensors.push_back(std::move(tensor));
  return static_cast<int32_t>(tensors.size() - 1);
}

int32_t Graph::AddNode(Node node) {
  nodes.push_back(std::move(node));
  return static_cast<int32_t>(nodes.size() - 1);
}

int32_t Graph::FindTensor(std::string_view tensor_name) const {
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].name == tensor_name) return static_cast<int32_t>(i);
  }
  return kNoTensor;
}

std::vector<int32_t> Graph::ProducerOfEachTensor() const {
  std::vector<int32_t> writer(tensors.size(), -1);
  for (size_t n = 0; n < nodes.size(); ++n) {
    for (int32_t out : nodes[n].outputs) {
      if (out >= 0 && static_cast<size_t>(out) < tensors.size() && writer[out] < 0) {
        writer[out] = static_cast<int32_t>(n);
      }
    }
  }
  return writer;
}

}  // namespace gradflow::graph
