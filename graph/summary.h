// A readable account of a graph, as `modelc --print` shows it.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "graph/ir.h"
#include "graph/op_schema.h"

namespace gradflow::graph {

struct GraphSummary {
  std::map<std::string, int64_t> forward_ops_by_type;
  std::map<std::string, int64_t> backward_ops_by_type;  // loss and backward phases
  int64_t num_tensors = 0;
  int64_t num_parameter_tensors = 0;
  int64_t parameter_count = 0;  // elements of kParameter tensors
  int64_t state_count = 0;      // elements of kState tensors (not trained)
  double forward_flops_per_example = 0;
  double forward_macs_per_example = 0;
  double training_flops_per_example = 0;  // forward + loss + backward
  int64_t activation_bytes_per_example = 0;  // forward activations, each counted once
  std::string input_shapes;
};

absl::StatusOr<GraphSummary> Summarize(const Graph& graph, const OpRegistry& registry);
std::string FormatSummary(const Graph& graph, const GraphSummary& summary);

}  // namespace gradflow::graph
