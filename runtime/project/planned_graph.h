// What the projection needs from a training graph: its steps in the order the runtime runs them
// and the gradient buckets the runtime would form, both from the runtime's own planners
// (sched::PlanLayouts, sched::PlanBuckets) so the replay follows the real schedule.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/ir.h"
#include "graph/types.h"
#include "scheduler/buckets.h"

namespace gradflow::runtime::project {

struct PlannedStep {
  std::string name;  // the graph node's
  std::string op;
  graph::Phase phase = graph::Phase::kForward;
  double flops = 0;  // from the op schema's cost at the planned batch
};

struct PlannedBucket {
  int32_t ready_step = 0;
  int32_t first_reader_step = 0;
  double bytes = 0;
};

struct PlannedGraph {
  std::string graph_name;
  int64_t batch = 0;
  std::vector<PlannedStep> steps;
  std::vector<PlannedBucket> buckets;  // in backward order, as the runtime issues them
  double gradient_bytes = 0;
  int32_t first_backward_step = 0;  // the step where backward begins
};

// `graph` as loaded (batch not bound yet). batch >= 1, bucket_bytes > 0; first_layers_bucket_bytes
// as sched::PlanBuckets takes it (0: none).
absl::StatusOr<PlannedGraph> PlanForProjection(const graph::Graph& graph, int64_t batch,
                                               int64_t bucket_bytes,
                                               int64_t first_layers_bucket_bytes = 0);

}  // namespace gradflow::runtime::project
