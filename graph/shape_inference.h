// Shape inference over a whole graph.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "graph/ir.h"
#include "graph/op_schema.h"

namespace gradflow::graph {

// Types of every tensor as the shape functions compute them from the source tensors, in node
// order. The graph must be structurally valid (VerifyGraph's index and order checks).
absl::StatusOr<std::vector<TensorType>> InferTensorTypes(const Graph& graph,
                                                         const OpRegistry& registry);

// A copy of the graph with every kBatch dimension replaced by `batch`.
Graph BindBatchSize(const Graph& graph, int64_t batch);

}  // namespace gradflow::graph
