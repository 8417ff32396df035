// The bridge from a plan to the generic executor: one stream node per plan step whose work runs
// the step's prepared kernel on tensors inside the Buffers, with the plan's dependencies. The
// runtime then appends its host and stream nodes (bucket allreduces, optimizer updates) to the
// same TaskGraph before creating the Executor.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "graph/ir.h"
#include "ops/kernel.h"
#include "scheduler/buffers.h"
#include "scheduler/executor.h"
#include "scheduler/plan.h"

namespace gradflow::sched {

// The kernel's view of a placed tensor: buffer base + offset, dtype, bound shape, plan layout.
ops::TensorRef TensorRefOf(const graph::Graph& graph, const Plan& plan, const Buffers& buffers,
                           int32_t tensor);

// Node i of the result is plan step i (named after its graph node, on executor stream
// plan.steps[i].stream); edges are the plan's successors. `kernels` (one per step) and `buffers`
// must outlive the executor built from it. A kernel error comes back from Executor::Run as
// "node '<name>': <Op>: <message>".
absl::StatusOr<TaskGraph> BuildTaskGraph(const graph::Graph& graph, const Plan& plan,
                                         std::span<const std::unique_ptr<ops::Kernel>> kernels,
                                         const Buffers& buffers);

// Calls `callback` every iteration as soon as `tensor` has been written: when the step that
// produces it has completed (e.g. to start the allreduce of the bucket whose last gradient this
// is). `executor` must have been built from BuildTaskGraph(plan). NotFound when no step writes
// the tensor.
absl::Status OnTensorWritten(Executor& executor, const graph::Graph& graph, const Plan& plan,
                             int32_t tensor, std::function<void()> callback);

}  // namespace gradflow::sched
