// Reverse-mode differentiation of a forward graph into a training graph.
#pragma once

#include "absl/status/status.h"
#include "graph/ir.h"
#include "graph/op_schema.h"

namespace gradflow::graph {

// Appends the backward pass to a graph whose forward (and loss) nodes end in the scalar
// `graph.loss`. Nodes are visited in reverse, so the gradients of the last layers are produced
// first; a tensor read by several nodes gets its contributions summed with Add as soon as the
// last one is known. Every parameter that the loss depends on gets exactly one gradient tensor,
// named "<param>.grad", recorded in graph.param_grads in the order backward produces them.
// Parameters the loss does not depend on are an error (they would never train).
absl::Status AppendBackward(Graph& graph, const OpRegistry& registry);

}  // namespace gradflow::graph
