#include "scheduler/prepare_kernels.h"

#include "absl/strings/str_cat.h"

namespace gradflow::sched {

absl::StatusOr<PreparedKernels> PrepareKernels(const graph::Graph& graph, const Plan& plan,
                                               const graph::OpRegistry& ops,
                                               const ops::KernelRegistry& kernels,
                                               ops::DeviceContext& device) {
  if (plan.steps.size() != graph.nodes.size() || plan.layouts.size() != graph.tensors.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("plan does not belong to graph '", graph.name, "'"));
  }
  PreparedKernels prepared;
  for (const PlanStep& step : plan.steps) {
    const graph::Node& node = graph.nodes[step.node];
    auto node_error = [&node](const absl::Status& s) {
      return absl::Status(s.code(),
                          absl::StrCat("node '", node.name, "' (", node.op, "): ", s.message()));
    };
    const graph::OpSchema* schema = ops.Find(node.op, node.op_version);
    if (schema == nullptr) {
      return node_error(
          absl::NotFoundError(absl::StrCat("unknown op ", node.op, " version ", node.op_version)));
    }
    const graph::Attrs attrs(node, *schema);
    std::vector<graph::TensorType> input_types;
    std::vector<graph::TensorType> output_types;
    std::vector<ops::Layout> input_layouts;
    std::vector<ops::Layout> output_layouts;
    for (int32_t t : node.inputs) {
      input_types.push_back({graph.tensors[t].dtype, graph.tensors[t].shape});
      input_layouts.push_back(plan.layouts[t]);
    }
    for (int32_t t : node.outputs) {
      output_types.push_back({graph.tensors[t].dtype, graph.tensors[t].shape});
      output_layouts.push_back(plan.layouts[t]);
    }
    if (input_types.empty() && output_types.empty()) {
      return node_error(absl::InvalidArgumentError("node has neither inputs nor outputs"));
    }
    const graph::DType dtype =
        output_types.empty() ? input_types.front().dtype : output_types.front().dtype;
    const ops::KernelSpec spec{.node = node,
                               .attrs = attrs,
                               .inputs = input_types,
                               .outputs = output_types,
                               .input_layouts = input_layouts,
                               .output_layouts = output_layouts,
                               .device = device};
    absl::StatusOr<std::unique_ptr<ops::Kernel>> kernel = kernels.Create(spec, dtype);
    if (!kernel.ok()) return kernel.status();  // already names the node
    prepared.workspace_bytes.push_back(static_cast<int64_t>((*kernel)->workspace_bytes()));
    prepared.kernels.push_back(*std::move(kernel));
  }
  return prepared;
}

}  // namespace gradflow::sched
