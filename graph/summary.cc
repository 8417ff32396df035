#include "graph/summary.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "graph/shape_inference.h"

namespace gradflow::graph {
namespace {

std::string WithThousands(int64_t value) {
  std::string digits = absl::StrCat(value < 0 ? -value : value);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return value < 0 ? "-" + out : out;
}

std::string Bytes(double bytes) {
  if (bytes >= 1e9) return absl::StrFormat("%.2f GB", bytes / 1e9);
  if (bytes >= 1e6) return absl::StrFormat("%.1f MB", bytes / 1e6);
  if (bytes >= 1e3) return absl::StrFormat("%.1f kB", bytes / 1e3);
  return absl::StrFormat("%.0f B", bytes);
}

std::string Giga(double value) { return absl::StrFormat("%.3f G", value / 1e9); }

std::string OpCounts(const std::map<std::string, int64_t>& counts) {
  return absl::StrJoin(counts, ", ", [](std::string* out, const auto& entry) {
    absl::StrAppend(out, entry.first, " ", entry.second);
  });
}

}  // namespace

absl::StatusOr<GraphSummary> Summarize(const Graph& graph, const OpRegistry& registry) {
  GraphSummary s;
  // Per-example figures: bind the batch to one example.
  const Graph one = BindBatchSize(graph, 1);
  absl::StatusOr<std::vector<TensorType>> types = InferTensorTypes(one, registry);
  if (!types.ok()) return types.status();

  s.num_tensors = static_cast<int64_t>(graph.tensors.size());
  for (const Tensor& t : graph.tensors) {
    if (t.role == TensorRole::kParameter) {
      ++s.num_parameter_tensors;
      s.parameter_count += NumElements(t.shape);
    } else if (t.role == TensorRole::kState) {
      s.state_count += NumElements(t.shape);
    }
  }
  std::vector<std::string> inputs;
  for (int32_t in : graph.inputs) {
    inputs.push_back(absl::StrCat(graph.tensors[in].name, " ", DTypeName(graph.tensors[in].dtype),
                                  ShapeToString(graph.tensors[in].shape)));
  }
  for (int32_t in : graph.labels) {
    inputs.push_back(absl::StrCat(graph.tensors[in].name, " (label) ",
                                  DTypeName(graph.tensors[in].dtype),
                                  ShapeToString(graph.tensors[in].shape)));
  }
  s.input_shapes = absl::StrJoin(inputs, ", ");

  std::vector<TensorType> in_types;
  std::vector<TensorType> out_types;
  for (const Node& node : one.nodes) {
    const OpSchema* schema = registry.Find(node.op, node.op_version);
    if (schema == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("node '", node.name, "': unknown op ", node.op));
    }
    (node.phase == Phase::kForward ? s.forward_ops_by_type : s.backward_ops_by_type)[node.op]++;
    if (node.phase == Phase::kForward) {
      for (int32_t out : node.outputs) {
        if (one.tensors[out].role == TensorRole::kActivation) {
          s.activation_bytes_per_example += NumElements((*types)[out].shape) *
                                            static_cast<int64_t>(DTypeSize((*types)[out].dtype));
        }
      }
    }
    if (!schema->cost) continue;
    in_types.clear();
    out_types.clear();
    for (int32_t in : node.inputs) in_types.push_back((*types)[in]);
    for (int32_t out : node.outputs) out_types.push_back((*types)[out]);
    const Attrs attrs(node, *schema);
    const OpCost cost = schema->cost(CostContext{node, attrs, in_types, out_types});
    if (node.phase == Phase::kForward) {
      s.forward_flops_per_example += cost.flops;
      s.forward_macs_per_example += cost.macs;
    }
    s.training_flops_per_example += cost.flops;
  }
  return s;
}

std::string FormatSummary(const Graph& graph, const GraphSummary& s) {
  std::string out;
  absl::StrAppend(&out, "graph        ", graph.name.empty() ? "(unnamed)" : graph.name,
                  graph.producer.empty() ? "" : absl::StrCat("  (made by ", graph.producer, ")"),
                  "\n");
  absl::StrAppend(&out, "inputs       ", s.input_shapes, "  (N = batch)\n");
  absl::StrAppend(&out, "parameters   ", WithThousands(s.parameter_count), " in ",
                  s.num_parameter_tensors, " tensors (", Bytes(4.0 * s.parameter_count),
                  " as f32)\n");
  if (s.state_count > 0) {
    absl::StrAppend(&out, "state        ", WithThousands(s.state_count),
                    " (batch-norm running statistics)\n");
  }
  absl::StrAppend(&out, "forward      ", Giga(s.forward_macs_per_example), "MACs, ",
                  Giga(s.forward_flops_per_example), "FLOPs per example\n");
  if (s.training_flops_per_example > s.forward_flops_per_example) {
    absl::StrAppend(&out, "training     ", Giga(s.training_flops_per_example),
                    "FLOPs per example (forward + backward)\n");
  }
  absl::StrAppend(&out, "activations  ", Bytes(static_cast<double>(s.activation_bytes_per_example)),
                  " per example (forward outputs)\n");
  absl::StrAppend(&out, "tensors      ", s.num_tensors, ", nodes ", graph.nodes.size(),
                  ", gradients ", graph.param_grads.size(), "\n");
  absl::StrAppend(&out, "forward ops  ", OpCounts(s.forward_ops_by_type), "\n");
  if (!s.backward_ops_by_type.empty()) {
    absl::StrAppend(&out, "loss and backward ops  ", OpCounts(s.backward_ops_by_type), "\n");
  }
  for (const auto& [key, value] : graph.metadata) absl::StrAppend(&out, "meta         ", key, " = ", value, "\n");
  return out;
}

}  // namespace gradflow::graph
