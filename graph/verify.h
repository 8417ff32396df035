// Semantic checks of a graph, each error naming the node and tensor at fault.
#pragma once

#include "absl/status/status.h"
#include "graph/ir.h"
#include "graph/op_schema.h"

namespace gradflow::graph {

// Known ops and versions, valid attributes, indices in range, each tensor written at most once
// and never a source tensor (input, label, parameter, constant, state), every read tensor written
// before it is read (otherwise: cycle or bad order), loss and parameter/gradient pairs consistent,
// and declared shapes equal to those shape inference gives.
absl::Status VerifyGraph(const Graph& graph, const OpRegistry& registry);

}  // namespace gradflow::graph
