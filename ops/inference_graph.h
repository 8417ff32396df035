// The evaluation graph of a training graph: what top-1/top-5 on the eval split runs.
#pragma once

#include "absl/status/statusor.h"
#include "graph/ir.h"

namespace gradflow::ops {

// Keeps the forward and loss nodes, drops the backward pass and the parameter/gradient pairs,
// switches every BatchNorm to inference (running statistics, one output) and drops the tensors
// nothing uses any more. Tensor names are kept, so the evaluation plan binds to the training
// run's parameters and running statistics by name.
absl::StatusOr<graph::Graph> InferenceGraph(const graph::Graph& training);

}  // namespace gradflow::ops
