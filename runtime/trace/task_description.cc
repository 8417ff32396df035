#include "runtime/trace/task_description.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "graph/op_schema.h"
#include "ops/registry.h"

namespace gradflow::runtime::trace {
namespace {

// Per step, the bytes of arena blocks live during it (a block is live over [first, last] steps).
std::vector<int64_t> ArenaLiveBytes(const sched::Plan& plan) {
  std::vector<int64_t> change(plan.steps.size() + 1, 0);
  for (const sched::ArenaBlock& block : plan.arena_blocks) {
    const int32_t first = block.range.first;
    const int32_t last = block.range.last;
    if (first < 0 || last < first || static_cast<size_t>(last) >= plan.steps.size()) continue;
    change[first] += block.range.bytes;
    change[last + 1] -= block.range.bytes;
  }
  std::vector<int64_t> live(plan.steps.size(), 0);
  int64_t running = 0;
  for (size_t s = 0; s < live.size(); ++s) {
    running += change[s];
    live[s] = running;
  }
  return live;
}

}  // namespace

absl::StatusOr<TaskGraphDescription> DescribeTaskGraph(DeviceGraph& graph,
                                                       const GradientSync* sync) {
  const graph::Graph& g = graph.graph();
  const sched::Plan& plan = graph.plan();
  const graph::OpRegistry& registry = ops::StandardOps();
  TaskGraphDescription d;
  d.graph_name = g.name;
  if (!g.inputs.empty() && !g.tensors[g.inputs[0]].shape.empty()) {
    d.batch = g.tensors[g.inputs[0]].shape[0];
  }
  d.task_nodes = static_cast<int64_t>(graph.executor().size());
  d.param_grads = static_cast<int64_t>(g.param_grads.size());
  d.arena_bytes = plan.sizes.arena;
  const std::vector<int64_t> live = ArenaLiveBytes(plan);

  std::vector<graph::TensorType> in_types;
  std::vector<graph::TensorType> out_types;
  d.steps.reserve(plan.steps.size());
  for (size_t s = 0; s < plan.steps.size(); ++s) {
    const graph::Node& node = g.nodes[plan.steps[s].node];
    StepInfo info;
    info.name = node.name;
    info.op = node.op;
    info.phase = graph::PhaseName(node.phase);
    info.arena_live_bytes = live[s];
    in_types.clear();
    out_types.clear();
    for (int32_t t : node.inputs) {
      const graph::Tensor& tensor = g.tensors[t];
      absl::StrAppend(&info.inputs, info.inputs.empty() ? "" : ", ",
                      graph::ShapeToString(tensor.shape));
      in_types.push_back({tensor.dtype, tensor.shape});
    }
    for (int32_t t : node.outputs) out_types.push_back({g.tensors[t].dtype, g.tensors[t].shape});
    const graph::OpSchema* schema = registry.Find(node.op, node.op_version);
    if (schema == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("tracing graph '", g.name, "': node '",
                                                     node.name, "' has unknown op ", node.op, " v",
                                                     node.op_version));
    }
    if (schema->cost) {
      const graph::Attrs attrs(node, *schema);
      const graph::OpCost cost = schema->cost(graph::CostContext{node, attrs, in_types, out_types});
      info.flops = cost.flops;
      info.bytes = cost.bytes;
    }
    d.steps.push_back(std::move(info));
  }

  if (sync != nullptr) {
    const std::vector<sched::Bucket>& buckets = sync->buckets();
    for (size_t b = 0; b < buckets.size(); ++b) {
      BucketInfo info;
      info.index = static_cast<int32_t>(b);
      info.bytes = buckets[b].bytes(static_cast<int64_t>(sizeof(float)));
      info.ready_step = buckets[b].ready_step;
      info.first_reader_step = buckets[b].first_reader_step;
      info.param_grads = buckets[b].param_grads;
      if (b < sync->allreduce_nodes().size()) info.allreduce_node = sync->allreduce_nodes()[b];
      d.buckets.push_back(std::move(info));
    }
  }
  return d;
}

}  // namespace gradflow::runtime::trace
