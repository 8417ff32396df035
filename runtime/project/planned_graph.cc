#include "runtime/project/planned_graph.h"

#include "absl/strings/str_cat.h"
#include "graph/op_schema.h"
#include "graph/shape_inference.h"
#include "ops/registry.h"
#include "scheduler/plan.h"

namespace gradflow::runtime::project {

absl::StatusOr<PlannedGraph> PlanForProjection(const graph::Graph& graph, int64_t batch,
                                               int64_t bucket_bytes,
                                               int64_t first_layers_bucket_bytes) {
  if (batch < 1) {
    return absl::InvalidArgumentError(absl::StrCat("batch must be at least 1, got ", batch));
  }
  const graph::Graph bound = graph::BindBatchSize(graph, batch);
  // Buckets depend only on the parameters' order and sizes, not on the device's layouts.
  absl::StatusOr<sched::Plan> plan = sched::PlanLayouts(bound);
  if (!plan.ok()) return plan.status();
  absl::StatusOr<std::vector<sched::Bucket>> buckets =
      sched::PlanBuckets(bound, *plan, bucket_bytes, first_layers_bucket_bytes);
  if (!buckets.ok()) return buckets.status();
  const graph::OpRegistry& registry = ops::StandardOps();
  absl::StatusOr<std::vector<graph::TensorType>> types = graph::InferTensorTypes(bound, registry);
  if (!types.ok()) return types.status();

  PlannedGraph out;
  out.graph_name = graph.name;
  out.batch = batch;
  out.first_backward_step = static_cast<int32_t>(plan->steps.size());
  std::vector<graph::TensorType> in_types;
  std::vector<graph::TensorType> out_types;
  for (size_t i = 0; i < plan->steps.size(); ++i) {
    const graph::Node& node = bound.nodes[plan->steps[i].node];
    PlannedStep step{.name = node.name, .op = node.op, .phase = node.phase};
    if (node.phase == graph::Phase::kBackward &&
        out.first_backward_step == static_cast<int32_t>(plan->steps.size())) {
      out.first_backward_step = static_cast<int32_t>(i);
    }
    const graph::OpSchema* schema = registry.Find(node.op, node.op_version);
    if (schema != nullptr && schema->cost) {
      in_types.clear();
      out_types.clear();
      for (int32_t t : node.inputs) in_types.push_back((*types)[t]);
      for (int32_t t : node.outputs) out_types.push_back((*types)[t]);
      const graph::Attrs attrs(node, *schema);
      step.flops = schema->cost(graph::CostContext{node, attrs, in_types, out_types}).flops;
    }
    out.steps.push_back(std::move(step));
  }
  const int64_t element_size = static_cast<int64_t>(graph::DTypeSize(plan->parameter_dtype));
  for (const sched::Bucket& b : *buckets) {
    const double bytes = static_cast<double>(b.bytes(element_size));
    out.buckets.push_back(
        {.ready_step = b.ready_step, .first_reader_step = b.first_reader_step, .bytes = bytes});
    out.gradient_bytes += bytes;
  }
  return out;
}

}  // namespace gradflow::runtime::project
