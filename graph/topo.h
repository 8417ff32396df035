// Execution order of a graph's nodes.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/ir.h"

namespace gradflow::graph {

// Node indices such that every node comes after the producers of its inputs; among ready nodes
// the one listed first in the graph goes first, so an already valid order is returned unchanged.
// A cycle is an error that names the nodes on it. Indices must already be in range.
absl::StatusOr<std::vector<int32_t>> TopologicalOrder(const Graph& graph);

// For each node, the nodes whose outputs it reads (deduplicated, ascending).
std::vector<std::vector<int32_t>> NodePredecessors(const Graph& graph);

}  // namespace gradflow::graph
