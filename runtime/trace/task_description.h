// What the tracer knows about a replica's task graph before it runs: per plan step the op, phase,
// input shapes and cost, and per gradient bucket its size and the steps around it. Computed once
// when tracing is switched on, so recording an event never formats or looks anything up.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/trainer/device_graph.h"
#include "runtime/trainer/gradient_sync.h"

namespace gradflow::runtime::trace {

struct StepInfo {
  std::string name;    // the graph node's name
  std::string op;      // e.g. "Conv2D"
  std::string phase;   // "forward" | "loss" | "backward"
  std::string inputs;  // input shapes with the batch bound, e.g. "[32,1,28,28], [16,1,3,3]"
  double flops = 0;    // from the op schema's cost at the bound batch
  double bytes = 0;
  int64_t arena_live_bytes = 0;  // arena bytes holding live tensors or workspaces during the step
};

struct BucketInfo {
  int32_t index = 0;
  int64_t bytes = 0;
  int32_t ready_step = 0;         // the step that writes the bucket's last gradient
  int32_t first_reader_step = 0;  // the first forward step reading one of its parameters
  std::vector<int32_t> param_grads;
  int32_t allreduce_node = -1;  // task node issuing the bucket's allreduce
};

struct TaskGraphDescription {
  std::string graph_name;
  int64_t batch = 0;            // images per iteration on this replica
  int64_t task_nodes = 0;       // plan steps plus the work the trainer added
  std::vector<StepInfo> steps;  // task node i is plan step i
  std::vector<BucketInfo> buckets;
  int64_t param_grads = 0;  // gradients in the graph; every one is in exactly one bucket
  int64_t arena_bytes = 0;
};

// After graph.Start() (the task graph is final then). `sync` may be null (no gradient buckets).
// InvalidArgument names a node whose op has no schema.
absl::StatusOr<TaskGraphDescription> DescribeTaskGraph(DeviceGraph& graph,
                                                       const GradientSync* sync);

}  // namespace gradflow::runtime::trace
