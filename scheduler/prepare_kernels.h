// Prepares the kernel of every plan step with the layouts the plan chose: the step between
// PlanLayouts and PlanMemory (kernels report the workspace bytes the arena must hold).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/ir.h"
#include "graph/op_schema.h"
#include "ops/kernel.h"
#include "scheduler/plan.h"

namespace gradflow::sched {

struct PreparedKernels {
  std::vector<std::unique_ptr<ops::Kernel>> kernels;  // per step
  std::vector<int64_t> workspace_bytes;               // per step, for PlanMemory
};

// Each kernel is created for its node's bound types and plan.layouts, on `device` (which must
// outlive the kernels). Kernels are looked up by the element type they compute in: that of
// output 0 (input 0 for nodes without outputs). Errors name the node.
absl::StatusOr<PreparedKernels> PrepareKernels(const graph::Graph& graph, const Plan& plan,
                                               const graph::OpRegistry& ops,
                                               const ops::KernelRegistry& kernels,
                                               ops::DeviceContext& device);

}  // namespace gradflow::sched
