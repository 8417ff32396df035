// The float64 references applied to graph nodes: one node's outputs, the gradient rule of a
// forward node (its vector-Jacobian product built from the reference backward ops), and a whole
// graph's forward pass. What the harness and the parity tests measure the kernels against.
#pragma once

#include <optional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/ir.h"
#include "graph/op_schema.h"
#include "tests/support/reference_ops.h"

namespace gradflow::test_support {

struct ReferenceNodeResult {
  std::vector<RefTensor> outputs;
  // Inputs the op updates in place, by input index: BatchNorm in training writes its running
  // statistics (inputs 3 and 4) the way the kernels do.
  std::vector<std::pair<int, RefTensor>> updated_inputs;
};

// Evaluates one node of any standard op (forward or backward) in double precision. Unimplemented
// names an op the reference does not know.
absl::StatusOr<ReferenceNodeResult> EvaluateReferenceNode(const graph::Node& node,
                                                          const graph::OpSchema& schema,
                                                          std::span<const RefTensor> inputs);

// Gradient of sum(dy * output 0) with respect to each input of a forward node, from the
// reference backward ops, exactly as the op's gradient rule wires them; nullopt for inputs
// without a gradient (labels, running statistics). `outputs` are the node's forward outputs.
absl::StatusOr<std::vector<std::optional<RefTensor>>> ReferenceInputGradients(
    const graph::Node& node, const graph::OpSchema& schema, std::span<const RefTensor> inputs,
    std::span<const RefTensor> outputs, const RefTensor& dy);

// Runs the nodes of `graph` (batch bound) in node order: the forward and loss nodes only, or with
// `include_backward` the whole training step. `values` is indexed by tensor and must hold every
// source tensor the nodes read; on return it holds every tensor those nodes write, and in-place
// updates (running statistics) are applied to the sources.
absl::Status EvaluateGraphReference(const graph::Graph& graph, const graph::OpRegistry& ops,
                                    std::vector<std::optional<RefTensor>>& values,
                                    bool include_backward);

// The forward and loss nodes only.
inline absl::Status EvaluateForwardReference(const graph::Graph& graph,
                                             const graph::OpRegistry& ops,
                                             std::vector<std::optional<RefTensor>>& values) {
  return EvaluateGraphReference(graph, ops, values, /*include_backward=*/false);
}

}  // namespace gradflow::test_support
