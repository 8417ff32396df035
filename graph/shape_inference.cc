#include "graph/shape_inference.h"

#include "absl/strings/str_cat.h"

namespace gradflow::graph {

absl::StatusOr<std::vector<TensorType>> InferTensorTypes(const Graph& graph,
                                                         const OpRegistry& registry) {
  std::vector<TensorType> types;
  types.reserve(graph.tensors.size());
  for (const Tensor& t : graph.tensors) types.push_back(TensorType{t.dtype, t.shape});

  std::vector<TensorType> inputs;
  for (const Node& node : graph.nodes) {
    const OpSchema* schema = registry.Find(node.op, node.op_version);
    if (schema == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("node '", node.name, "': unknown op ",
                                                     node.op, " version ", node.op_version));
    }
    inputs.clear();
    for (int32_t in : node.inputs) inputs.push_back(types[in]);
    absl::StatusOr<std::vector<TensorType>> outputs = InferNodeOutputs(node, *schema, inputs);
    if (!outputs.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("node '", node.name, "' (", node.op, "): ", outputs.status().message()));
    }
    if (outputs->size() != node.outputs.size()) {
      return absl::InvalidArgumentError(absl::StrCat("node '", node.name, "' (", node.op, ") has ",
                                                     node.outputs.size(), " outputs, expected ",
                                                     outputs->size()));
    }
    for (size_t i = 0; i < outputs->size(); ++i) types[node.outputs[i]] = (*outputs)[i];
  }
  return types;
}

Graph BindBatchSize(const Graph& graph, int64_t batch) {
  Graph bound = graph;
  for (Tensor& t : bound.tensors) t.shape = BindBatch(t.shape, batch);
  return bound;
}

}  // namespace gradflow::graph
