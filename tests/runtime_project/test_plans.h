// Small hand-made plans for the replay and profile tests.
#pragma once

#include "runtime/project/planned_graph.h"

namespace gradflow::runtime::project::testing {

// Four steps: forward f0 f1, backward b2 b3. Bucket 0 (last layer, read by f1) is made ready by
// b2, bucket 1 (first layer, read by f0) by b3.
inline PlannedGraph FourStepPlan(double bucket0_bytes, double bucket1_bytes) {
  PlannedGraph plan;
  plan.graph_name = "four";
  plan.batch = 8;
  plan.steps = {{.name = "f0", .op = "MatMul", .phase = graph::Phase::kForward, .flops = 100},
                {.name = "f1", .op = "MatMul", .phase = graph::Phase::kForward, .flops = 300},
                {.name = "b2", .op = "MatMul", .phase = graph::Phase::kBackward, .flops = 600},
                {.name = "b3", .op = "MatMul", .phase = graph::Phase::kBackward, .flops = 200}};
  plan.buckets = {{.ready_step = 2, .first_reader_step = 1, .bytes = bucket0_bytes},
                  {.ready_step = 3, .first_reader_step = 0, .bytes = bucket1_bytes}};
  plan.gradient_bytes = bucket0_bytes + bucket1_bytes;
  plan.first_backward_step = 2;
  return plan;
}

}  // namespace gradflow::runtime::project::testing
