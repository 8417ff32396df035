#include "ops/inference_graph.h"

#include <vector>

#include "absl/strings/str_cat.h"

namespace gradflow::ops {

absl::StatusOr<graph::Graph> InferenceGraph(const graph::Graph& training) {
  graph::Graph eval;
  eval.name = training.name;
  eval.producer = training.producer;
  eval.metadata = training.metadata;
  eval.buffers = training.buffers;

  std::vector<int32_t> new_index(training.tensors.size(), -1);
  auto keep = [&](int32_t t) {
    if (new_index[t] < 0) new_index[t] = eval.AddTensor(training.tensors[t]);
    return new_index[t];
  };
  for (const graph::Node& node : training.nodes) {
    if (node.phase == graph::Phase::kBackward) continue;
    graph::Node copy = node;
    if (node.op == "BatchNorm") {
      copy.attrs["training"] = int64_t{0};
      // Batch statistics are a training-mode output only.
      copy.outputs.resize(1);
    }
    for (int32_t& in : copy.inputs) {
      if (in < 0 || static_cast<size_t>(in) >= training.tensors.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("node '", node.name, "' reads tensor ", in, ", out of range"));
      }
      in = keep(in);
    }
    for (int32_t& out : copy.outputs) {
      if (out < 0 || static_cast<size_t>(out) >= training.tensors.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("node '", node.name, "' writes tensor ", out, ", out of range"));
      }
      out = keep(out);
    }
    eval.AddNode(std::move(copy));
  }
  for (int32_t in : training.inputs) eval.inputs.push_back(keep(in));
  for (int32_t label : training.labels) eval.labels.push_back(keep(label));
  if (training.loss != graph::kNoTensor) eval.loss = keep(training.loss);
  return eval;
}

}  // namespace gradflow::ops
