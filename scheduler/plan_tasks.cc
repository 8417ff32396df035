#include "scheduler/plan_tasks.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace gradflow::sched {

ops::TensorRef TensorRefOf(const graph::Graph& graph, const Plan& plan, const Buffers& buffers,
                           int32_t tensor) {
  const graph::Tensor& t = graph.tensors[tensor];
  return ops::TensorRef{buffers.data(plan.tensors[tensor]), t.dtype, t.shape, plan.layouts[tensor]};
}

absl::StatusOr<TaskGraph> BuildTaskGraph(const graph::Graph& graph, const Plan& plan,
                                         std::span<const std::unique_ptr<ops::Kernel>> kernels,
                                         const Buffers& buffers) {
  if (!plan.memory_planned) {
    return absl::FailedPreconditionError("the plan's memory is not planned yet (PlanMemory)");
  }
  if (kernels.size() != plan.steps.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("got ", kernels.size(), " kernels for ", plan.steps.size(), " plan steps"));
  }
  for (BufferKind kind : {BufferKind::kParameters, BufferKind::kGradients, BufferKind::kState,
                          BufferKind::kInputs, BufferKind::kArena}) {
    if (buffers.size(kind) < plan.sizes.of(kind)) {
      return absl::InvalidArgumentError(absl::StrCat("the ", BufferKindName(kind), " buffer has ",
                                                     buffers.size(kind), " bytes; the plan needs ",
                                                     plan.sizes.of(kind)));
    }
  }
  TaskGraph tasks;
  for (size_t s = 0; s < plan.steps.size(); ++s) {
    const PlanStep& step = plan.steps[s];
    const graph::Node& node = graph.nodes[step.node];
    ops::Kernel* kernel = kernels[s].get();
    if (kernel == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("node '", node.name, "' has no kernel"));
    }
    std::vector<ops::TensorRef> inputs;
    std::vector<ops::TensorRef> outputs;
    for (int32_t t : node.inputs) inputs.push_back(TensorRefOf(graph, plan, buffers, t));
    for (int32_t t : node.outputs) outputs.push_back(TensorRefOf(graph, plan, buffers, t));
    void* workspace = plan.workspaces[s].bytes > 0 ? buffers.data(plan.workspaces[s]) : nullptr;
    NodeWork work = [kernel, inputs = std::move(inputs), outputs = std::move(outputs), workspace,
                     op = node.op]() -> absl::Status {
      absl::Status status = kernel->Run(inputs, outputs, workspace);
      if (status.ok()) return status;
      return absl::Status(status.code(), absl::StrCat(op, ": ", status.message()));
    };
    const int32_t id = tasks.AddNode(node.name, step.stream, std::move(work));
    if (id != static_cast<int32_t>(s)) {
      return absl::InternalError("task ids must equal plan steps");
    }
  }
  for (size_t s = 0; s < plan.steps.size(); ++s) {
    for (int32_t successor : plan.steps[s].successors) {
      tasks.AddEdge(static_cast<int32_t>(s), successor);
    }
  }
  return tasks;
}

absl::Status OnTensorWritten(Executor& executor, const graph::Graph& graph, const Plan& plan,
                             int32_t tensor, std::function<void()> callback) {
  if (tensor < 0 || static_cast<size_t>(tensor) >= plan.producer_step.size()) {
    return absl::InvalidArgumentError(absl::StrCat("tensor ", tensor, " is out of range"));
  }
  const int32_t step = plan.producer_step[tensor];
  if (step < 0) {
    return absl::NotFoundError(
        absl::StrCat("no node writes tensor '", graph.tensors[tensor].name, "'"));
  }
  return executor.OnNodeComplete(step, std::move(callback));
}

}  // namespace gradflow::sched
