#include "scheduler/plan.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace gradflow::sched {
namespace {

using graph::TensorRole;

int64_t AlignUp(int64_t value, int64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

int64_t TensorBytes(const graph::Tensor& tensor) {
  return graph::NumElements(tensor.shape) * static_cast<int64_t>(graph::DTypeSize(tensor.dtype));
}

std::string TensorLabel(const graph::Graph& graph, int32_t tensor) {
  return absl::StrCat("tensor ", tensor, " '", graph.tensors[tensor].name, "'");
}

std::string NodeLabel(const graph::Graph& graph, int32_t node) {
  return absl::StrCat("node ", node, " '", graph.nodes[node].name, "' (", graph.nodes[node].op,
                      ")");
}

// What the plan relies on and a malformed graph could break: indices, bound shapes.
absl::Status CheckStructure(const graph::Graph& graph) {
  const auto tensor_count = static_cast<int32_t>(graph.tensors.size());
  for (int32_t t = 0; t < tensor_count; ++t) {
    for (int64_t dim : graph.tensors[t].shape) {
      if (dim < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            TensorLabel(graph, t), " has shape ", graph::ShapeToString(graph.tensors[t].shape),
            ": bind the batch size (graph::BindBatchSize) before planning"));
      }
    }
  }
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    const graph::Node& node = graph.nodes[n];
    for (const std::vector<int32_t>* list : {&node.inputs, &node.outputs}) {
      for (int32_t t : *list) {
        if (t < 0 || t >= tensor_count) {
          return absl::InvalidArgumentError(absl::StrCat(NodeLabel(graph, static_cast<int32_t>(n)),
                                                         " refers to tensor ", t, " of ",
                                                         tensor_count));
        }
      }
    }
  }
  for (const graph::ParamGrad& pg : graph.param_grads) {
    if (pg.param < 0 || pg.param >= tensor_count || pg.grad < 0 || pg.grad >= tensor_count) {
      return absl::InvalidArgumentError(
          absl::StrCat("parameter/gradient pair (", pg.param, ", ", pg.grad, ") out of range"));
    }
  }
  for (int32_t t : graph.inputs) {
    if (t < 0 || t >= tensor_count) {
      return absl::InvalidArgumentError(absl::StrCat("graph input ", t, " out of range"));
    }
  }
  if (graph.loss != graph::kNoTensor && (graph.loss < 0 || graph.loss >= tensor_count)) {
    return absl::InvalidArgumentError(absl::StrCat("loss tensor ", graph.loss, " out of range"));
  }
  return absl::OkStatus();
}

// The node that writes each tensor, or -1.
absl::StatusOr<std::vector<int32_t>> ProducerNodes(const graph::Graph& graph) {
  std::vector<int32_t> producer(graph.tensors.size(), -1);
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    for (int32_t t : graph.nodes[n].outputs) {
      if (producer[t] != -1) {
        return absl::InvalidArgumentError(absl::StrCat(
            TensorLabel(graph, t), " is written by both ", NodeLabel(graph, producer[t]), " and ",
            NodeLabel(graph, static_cast<int32_t>(n))));
      }
      producer[t] = static_cast<int32_t>(n);
    }
  }
  return producer;
}

// Data dependencies plus the sequencing edge from the previous step on the same stream.
std::vector<std::vector<int32_t>> Predecessors(const graph::Graph& graph,
                                               const std::vector<int32_t>& producer,
                                               const std::vector<int32_t>& streams) {
  const size_t count = graph.nodes.size();
  std::vector<std::vector<int32_t>> preds(count);
  std::vector<int32_t> last_on_stream;
  for (size_t s = 0; s < count; ++s) {
    std::vector<int32_t>& p = preds[s];
    for (int32_t t : graph.nodes[s].inputs) {
      if (producer[t] >= 0) p.push_back(producer[t]);
    }
    const auto stream = static_cast<size_t>(streams[s]);
    if (last_on_stream.size() <= stream) last_on_stream.resize(stream + 1, -1);
    if (last_on_stream[stream] >= 0) p.push_back(last_on_stream[stream]);
    last_on_stream[stream] = static_cast<int32_t>(s);
    std::sort(p.begin(), p.end());
    p.erase(std::unique(p.begin(), p.end()), p.end());
  }
  return preds;
}

// Which gradients are gradients of weights: they must share their weight's row-major layout
// (the optimizer updates a weight elementwise from its gradient). A weight gradient is a
// parameter gradient, what Conv2DBackwardFilter writes, or a sum or reshape of weight gradients
// (autodiff's accumulation of a weight used twice).
std::vector<bool> WeightGradients(const graph::Graph& graph) {
  std::vector<bool> weight_grad(graph.tensors.size(), false);
  for (const graph::Node& node : graph.nodes) {
    bool from_weight_grads = node.op == "Conv2DBackwardFilter";
    if (node.op == "Add" || node.op == "Reshape") {
      from_weight_grads = !node.inputs.empty();
      for (int32_t in : node.inputs) from_weight_grads = from_weight_grads && weight_grad[in];
    }
    for (int32_t out : node.outputs) weight_grad[out] = weight_grad[out] || from_weight_grads;
  }
  for (const graph::ParamGrad& pg : graph.param_grads) weight_grad[pg.grad] = true;
  return weight_grad;
}

std::vector<ops::Layout> ChooseLayouts(const graph::Graph& graph, const PlanOptions& options) {
  std::vector<ops::Layout> layouts(graph.tensors.size(), ops::Layout::kRowMajor);
  if (!options.channels_last) return layouts;
  const std::vector<bool> weight_grad = WeightGradients(graph);
  for (size_t t = 0; t < graph.tensors.size(); ++t) {
    const graph::Tensor& tensor = graph.tensors[t];
    const bool temporary =
        tensor.role == TensorRole::kActivation || tensor.role == TensorRole::kGradient;
    if (temporary && tensor.shape.size() == 4 && !weight_grad[t]) {
      layouts[t] = ops::Layout::kChannelsLast;
    }
  }
  return layouts;
}

// Tensors whose values the host reads after an iteration: they must survive to the last step.
std::vector<int32_t> KeptLiveTensors(const graph::Graph& graph,
                                     const std::vector<int32_t>& producer,
                                     const PlanOptions& options) {
  std::vector<int32_t> kept = options.keep_live;
  if (graph.loss != graph::kNoTensor) {
    kept.push_back(graph.loss);
    if (producer[graph.loss] >= 0) {
      const graph::Node& loss_node = graph.nodes[producer[graph.loss]];
      kept.insert(kept.end(), loss_node.inputs.begin(), loss_node.inputs.end());
      kept.insert(kept.end(), loss_node.outputs.begin(), loss_node.outputs.end());
    }
  }
  std::sort(kept.begin(), kept.end());
  kept.erase(std::unique(kept.begin(), kept.end()), kept.end());
  return kept;
}

// Which buffer a tensor belongs in by its role; kArena for temporaries (placed later).
absl::StatusOr<BufferKind> BufferFor(const graph::Graph& graph, int32_t t,
                                     const std::vector<bool>& is_param_grad,
                                     const std::vector<bool>& used,
                                     const std::vector<int32_t>& producer) {
  switch (graph.tensors[t].role) {
    case TensorRole::kInput:
    case TensorRole::kLabel:
      return BufferKind::kInputs;
    case TensorRole::kParameter:
      return BufferKind::kParameters;
    case TensorRole::kState:
    case TensorRole::kConstant:
      return BufferKind::kState;
    case TensorRole::kActivation:
    case TensorRole::kGradient:
      if (is_param_grad[t]) return BufferKind::kGradients;
      if (!used[t]) return BufferKind::kNone;
      if (producer[t] < 0) {
        return absl::InvalidArgumentError(absl::StrCat(TensorLabel(graph, t), " (",
                                                       graph::TensorRoleName(graph.tensors[t].role),
                                                       ") is read but no node writes it"));
      }
      return BufferKind::kArena;
  }
  return absl::InvalidArgumentError(absl::StrCat(TensorLabel(graph, t), " has an unknown role ",
                                                 static_cast<int>(graph.tensors[t].role)));
}

// Appends `bytes` at the aligned end of a fixed buffer.
Placement Append(BufferKind kind, int64_t bytes, int64_t alignment, int64_t& end) {
  const Placement placement{kind, AlignUp(end, alignment), bytes};
  end = placement.offset + bytes;
  return placement;
}

absl::Status PlaceFixedBuffers(const graph::Graph& graph, Plan& plan) {
  const int64_t alignment = plan.options.alignment;
  const size_t count = graph.tensors.size();
  std::vector<bool> is_param_grad(count, false);
  std::vector<bool> used(count, false);
  for (const graph::Node& node : graph.nodes) {
    for (int32_t t : node.inputs) used[t] = true;
    for (int32_t t : node.outputs) used[t] = true;
  }
  std::vector<bool> placed(count, false);
  int64_t param_end = 0;
  bool have_dtype = false;
  for (const graph::ParamGrad& pg : graph.param_grads) {
    const graph::Tensor& param = graph.tensors[pg.param];
    const graph::Tensor& grad = graph.tensors[pg.grad];
    if (param.role != TensorRole::kParameter) {
      return absl::InvalidArgumentError(absl::StrCat(TensorLabel(graph, pg.param),
                                                     " is listed as a parameter but has role ",
                                                     graph::TensorRoleName(param.role)));
    }
    if (placed[pg.param] || is_param_grad[pg.grad]) {
      return absl::InvalidArgumentError(
          absl::StrCat("parameter/gradient pair (", TensorLabel(graph, pg.param), ", ",
                       TensorLabel(graph, pg.grad), ") repeats a tensor of an earlier pair"));
    }
    if (param.dtype != grad.dtype || param.shape != grad.shape) {
      return absl::InvalidArgumentError(
          absl::StrCat(TensorLabel(graph, pg.grad), " is ", graph::DTypeName(grad.dtype),
                       graph::ShapeToString(grad.shape), " but its parameter '", param.name,
                       "' is ", graph::DTypeName(param.dtype), graph::ShapeToString(param.shape)));
    }
    if (plan.producer_step[pg.grad] < 0) {
      return absl::InvalidArgumentError(absl::StrCat("no node writes ", TensorLabel(graph, pg.grad),
                                                     ", the gradient of '", param.name, "'"));
    }
    if (have_dtype && param.dtype != plan.parameter_dtype) {
      return absl::InvalidArgumentError(
          absl::StrCat(TensorLabel(graph, pg.param), " is ", graph::DTypeName(param.dtype),
                       " but earlier parameters are ", graph::DTypeName(plan.parameter_dtype),
                       ": the flat parameter buffer holds one element type"));
    }
    have_dtype = true;
    plan.parameter_dtype = param.dtype;
    const Placement p = Append(BufferKind::kParameters, TensorBytes(param), alignment, param_end);
    plan.tensors[pg.param] = p;
    plan.tensors[pg.grad] = {BufferKind::kGradients, p.offset, p.bytes};
    placed[pg.param] = true;
    is_param_grad[pg.grad] = true;
    const auto element = static_cast<int64_t>(graph::DTypeSize(param.dtype));
    // Rank-1 parameters are batch-norm gamma/beta and biases, which the paper leaves undecayed.
    plan.sgd_segments.push_back(
        {p.offset / element, p.bytes / element, /*weight_decay=*/param.shape.size() != 1});
  }
  plan.sizes.gradients = AlignUp(param_end, alignment);

  int64_t state_end = 0;
  int64_t input_end = 0;
  for (size_t i = 0; i < count; ++i) {
    const auto t = static_cast<int32_t>(i);
    if (placed[t] || is_param_grad[t]) continue;
    absl::StatusOr<BufferKind> kind = BufferFor(graph, t, is_param_grad, used, plan.producer_step);
    if (!kind.ok()) return kind.status();
    const int64_t bytes = TensorBytes(graph.tensors[t]);
    switch (*kind) {
      case BufferKind::kParameters:  // a parameter without a gradient: stored, never trained
        plan.tensors[t] = Append(*kind, bytes, alignment, param_end);
        break;
      case BufferKind::kState:
        plan.tensors[t] = Append(*kind, bytes, alignment, state_end);
        break;
      case BufferKind::kInputs:
        plan.tensors[t] = Append(*kind, bytes, alignment, input_end);
        break;
      case BufferKind::kArena:  // offset chosen by PlanMemory
      case BufferKind::kNone:
      case BufferKind::kGradients:
        plan.tensors[t] = {*kind, 0, bytes};
        break;
    }
  }
  plan.sizes.parameters = AlignUp(param_end, alignment);
  plan.sizes.state = AlignUp(state_end, alignment);
  plan.sizes.inputs = AlignUp(input_end, alignment);
  return absl::OkStatus();
}

// Live ranges of every arena tensor and workspace, derived from the graph; used by PlanMemory
// and, recomputed, by CheckPlan.
std::vector<ArenaBlock> ArenaBlocks(const graph::Graph& graph, const Plan& plan,
                                    std::span<const int64_t> workspace_bytes,
                                    const std::vector<int32_t>& producer) {
  const auto last_step = static_cast<int32_t>(plan.steps.size()) - 1;
  std::vector<int32_t> last_use(graph.tensors.size(), -1);
  for (size_t s = 0; s < plan.steps.size(); ++s) {
    for (int32_t t : graph.nodes[plan.steps[s].node].inputs) {
      last_use[t] = std::max(last_use[t], static_cast<int32_t>(s));
    }
  }
  for (int32_t t : KeptLiveTensors(graph, producer, plan.options)) last_use[t] = last_step;
  std::vector<ArenaBlock> blocks;
  for (size_t i = 0; i < graph.tensors.size(); ++i) {
    const auto t = static_cast<int32_t>(i);
    if (plan.tensors[t].buffer != BufferKind::kArena) continue;
    const int32_t first = plan.step_of_node[producer[t]];
    blocks.push_back({{plan.tensors[t].bytes, first, std::max(first, last_use[t])}, t, -1});
  }
  for (size_t s = 0; s < workspace_bytes.size(); ++s) {
    if (workspace_bytes[s] <= 0) continue;
    const auto step = static_cast<int32_t>(s);
    blocks.push_back({{workspace_bytes[s], step, step}, -1, step});
  }
  return blocks;
}

absl::Status CheckPlaced(const graph::Graph& graph, const Plan& plan, int32_t t,
                         const std::string& user) {
  const Placement& p = plan.tensors[t];
  const int64_t bytes = TensorBytes(graph.tensors[t]);
  if (p.buffer == BufferKind::kNone) {
    return absl::InternalError(
        absl::StrCat(TensorLabel(graph, t), ", used by ", user, ", is not placed in any buffer"));
  }
  if (p.bytes != bytes || p.offset < 0 || p.offset % plan.options.alignment != 0 ||
      p.offset + p.bytes > plan.sizes.of(p.buffer)) {
    return absl::InternalError(
        absl::StrCat(TensorLabel(graph, t), " (", bytes, " bytes) is placed at ",
                     BufferKindName(p.buffer), " offset ", p.offset, " with ", p.bytes,
                     " bytes, outside the ", plan.sizes.of(p.buffer), "-byte buffer or unaligned"));
  }
  return absl::OkStatus();
}

absl::Status CheckSteps(const graph::Graph& graph, const Plan& plan,
                        const std::vector<int32_t>& producer) {
  const size_t count = graph.nodes.size();
  if (plan.steps.size() != count || plan.step_of_node.size() != count) {
    return absl::InternalError(
        absl::StrCat("plan has ", plan.steps.size(), " steps for ", count, " nodes"));
  }
  std::vector<int32_t> node_streams(count, 0);
  for (size_t s = 0; s < count; ++s) {
    const int32_t node = plan.steps[s].node;
    if (node < 0 || static_cast<size_t>(node) >= count ||
        plan.step_of_node[node] != static_cast<int32_t>(s)) {
      return absl::InternalError(
          absl::StrCat("step ", s, " runs node ", node, ", which step_of_node does not map back"));
    }
    if (plan.steps[s].stream < 0) {
      return absl::InternalError(absl::StrCat("step ", s, " has stream ", plan.steps[s].stream));
    }
    node_streams[node] = plan.steps[s].stream;
  }
  // Recompute the edges over steps, then compare with what the plan lists.
  std::vector<std::vector<int32_t>> expected_succ(count);
  std::vector<int32_t> expected_pred_count(count, 0);
  std::vector<int32_t> last_on_stream;
  for (size_t s = 0; s < count; ++s) {
    const graph::Node& node = graph.nodes[plan.steps[s].node];
    std::vector<int32_t> preds;
    for (int32_t t : node.inputs) {
      if (producer[t] < 0) continue;
      const int32_t p = plan.step_of_node[producer[t]];
      if (p >= static_cast<int32_t>(s)) {
        return absl::InternalError(absl::StrCat(NodeLabel(graph, plan.steps[s].node), " at step ",
                                                s, " reads ", TensorLabel(graph, t), " which step ",
                                                p, " writes later"));
      }
      preds.push_back(p);
    }
    const auto stream = static_cast<size_t>(plan.steps[s].stream);
    if (last_on_stream.size() <= stream) last_on_stream.resize(stream + 1, -1);
    if (last_on_stream[stream] >= 0) preds.push_back(last_on_stream[stream]);
    last_on_stream[stream] = static_cast<int32_t>(s);
    std::sort(preds.begin(), preds.end());
    preds.erase(std::unique(preds.begin(), preds.end()), preds.end());
    expected_pred_count[s] = static_cast<int32_t>(preds.size());
    for (int32_t p : preds) expected_succ[p].push_back(static_cast<int32_t>(s));
  }
  for (size_t s = 0; s < count; ++s) {
    if (plan.steps[s].predecessors != expected_pred_count[s] ||
        plan.steps[s].successors != expected_succ[s]) {
      return absl::InternalError(absl::StrCat(
          "step ", s, " (", NodeLabel(graph, plan.steps[s].node), ") has ",
          plan.steps[s].predecessors, " predecessors and ", plan.steps[s].successors.size(),
          " successors; its data and stream dependencies give ", expected_pred_count[s], " and ",
          expected_succ[s].size()));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckFixedBuffers(const graph::Graph& graph, const Plan& plan) {
  int64_t previous_end = 0;
  for (const graph::ParamGrad& pg : graph.param_grads) {
    const Placement& param = plan.tensors[pg.param];
    const Placement& grad = plan.tensors[pg.grad];
    if (param.buffer != BufferKind::kParameters || grad.buffer != BufferKind::kGradients ||
        param.offset != grad.offset || param.bytes != grad.bytes) {
      return absl::InternalError(absl::StrCat(TensorLabel(graph, pg.param),
                                              " and its gradient are not at one offset of the ",
                                              "parameter and gradient buffers"));
    }
    if (param.offset < previous_end) {
      return absl::InternalError(
          absl::StrCat(TensorLabel(graph, pg.param), " is not after the previous parameter"));
    }
    previous_end = param.offset + param.bytes;
  }
  // Within each fixed buffer no two tensors share a byte.
  for (BufferKind kind :
       {BufferKind::kParameters, BufferKind::kGradients, BufferKind::kState, BufferKind::kInputs}) {
    std::vector<std::pair<int64_t, int64_t>> extents;
    for (const Placement& p : plan.tensors) {
      if (p.buffer == kind && p.bytes > 0) extents.emplace_back(p.offset, p.offset + p.bytes);
    }
    std::sort(extents.begin(), extents.end());
    for (size_t i = 1; i < extents.size(); ++i) {
      if (extents[i].first < extents[i - 1].second) {
        return absl::InternalError(absl::StrCat("two tensors overlap in the ", BufferKindName(kind),
                                                " buffer at offset ", extents[i].first));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

const char* BufferKindName(BufferKind kind) {
  switch (kind) {
    case BufferKind::kNone:
      return "none";
    case BufferKind::kParameters:
      return "parameters";
    case BufferKind::kGradients:
      return "gradients";
    case BufferKind::kState:
      return "state";
    case BufferKind::kInputs:
      return "inputs";
    case BufferKind::kArena:
      return "arena";
  }
  return "unknown";
}

int64_t BufferSizes::of(BufferKind kind) const {
  switch (kind) {
    case BufferKind::kParameters:
      return parameters;
    case BufferKind::kGradients:
      return gradients;
    case BufferKind::kState:
      return state;
    case BufferKind::kInputs:
      return inputs;
    case BufferKind::kArena:
      return arena;
    case BufferKind::kNone:
      return 0;
  }
  return 0;
}

absl::StatusOr<Plan> PlanLayouts(const graph::Graph& graph, const PlanOptions& options) {
  if (options.alignment <= 0 || (options.alignment & (options.alignment - 1)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("plan alignment ", options.alignment, " is not a power of two"));
  }
  if (absl::Status s = CheckStructure(graph); !s.ok()) return s;
  for (int32_t t : options.keep_live) {
    if (t < 0 || static_cast<size_t>(t) >= graph.tensors.size()) {
      return absl::InvalidArgumentError(absl::StrCat("keep_live tensor ", t, " out of range"));
    }
  }
  absl::StatusOr<std::vector<int32_t>> producer = ProducerNodes(graph);
  if (!producer.ok()) return producer.status();

  Plan plan;
  plan.options = options;
  const size_t count = graph.nodes.size();
  // The graph's node order is a valid topological order (VerifyGraph checks it); keeping it keeps
  // the plan predictable and the same as the order autodiff wrote backward in.
  for (size_t n = 0; n < count; ++n) {
    for (int32_t t : graph.nodes[n].inputs) {
      if ((*producer)[t] >= static_cast<int32_t>(n)) {
        return absl::InvalidArgumentError(absl::StrCat(
            NodeLabel(graph, static_cast<int32_t>(n)), " reads ", TensorLabel(graph, t), " before ",
            NodeLabel(graph, (*producer)[t]), " writes it"));
      }
    }
  }
  const std::vector<int32_t> streams(count, kComputeStream);
  const std::vector<std::vector<int32_t>> preds = Predecessors(graph, *producer, streams);
  plan.steps.resize(count);
  plan.step_of_node.resize(count);
  for (size_t s = 0; s < count; ++s) {
    plan.steps[s].node = static_cast<int32_t>(s);
    plan.steps[s].stream = streams[s];
    plan.steps[s].predecessors = static_cast<int32_t>(preds[s].size());
    plan.step_of_node[s] = static_cast<int32_t>(s);
    for (int32_t p : preds[s]) plan.steps[p].successors.push_back(static_cast<int32_t>(s));
  }
  plan.producer_step.assign(graph.tensors.size(), -1);
  for (size_t t = 0; t < graph.tensors.size(); ++t) {
    if ((*producer)[t] >= 0) plan.producer_step[t] = plan.step_of_node[(*producer)[t]];
  }
  plan.layouts = ChooseLayouts(graph, options);
  plan.tensors.assign(graph.tensors.size(), Placement{});
  if (absl::Status s = PlaceFixedBuffers(graph, plan); !s.ok()) return s;
  return plan;
}

absl::Status PlanMemory(const graph::Graph& graph, std::span<const int64_t> workspace_bytes,
                        Plan& plan) {
  if (plan.steps.size() != graph.nodes.size() || plan.tensors.size() != graph.tensors.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("plan of ", plan.steps.size(), " steps and ", plan.tensors.size(),
                     " tensors does not belong to graph '", graph.name, "' (", graph.nodes.size(),
                     " nodes, ", graph.tensors.size(), " tensors)"));
  }
  if (workspace_bytes.size() != plan.steps.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "got ", workspace_bytes.size(), " workspace sizes for ", plan.steps.size(), " steps"));
  }
  for (size_t s = 0; s < workspace_bytes.size(); ++s) {
    if (workspace_bytes[s] < 0) {
      return absl::InvalidArgumentError(absl::StrCat(NodeLabel(graph, plan.steps[s].node),
                                                     " asks for ", workspace_bytes[s],
                                                     " workspace bytes"));
    }
  }
  absl::StatusOr<std::vector<int32_t>> producer = ProducerNodes(graph);
  if (!producer.ok()) return producer.status();
  plan.arena_blocks = ArenaBlocks(graph, plan, workspace_bytes, *producer);
  std::vector<LiveRange> ranges;
  ranges.reserve(plan.arena_blocks.size());
  for (const ArenaBlock& block : plan.arena_blocks) ranges.push_back(block.range);
  absl::StatusOr<MemoryPlan> memory = sched::PlanMemory(ranges, plan.options.alignment);
  if (!memory.ok()) return memory.status();

  plan.workspaces.assign(plan.steps.size(), Placement{});
  for (size_t b = 0; b < plan.arena_blocks.size(); ++b) {
    const ArenaBlock& block = plan.arena_blocks[b];
    const Placement placement{BufferKind::kArena, memory->offsets[b], block.range.bytes};
    if (block.tensor >= 0) {
      plan.tensors[block.tensor] = placement;
    } else {
      plan.workspaces[block.workspace_step] = placement;
    }
  }
  plan.sizes.arena = memory->arena_bytes;
  plan.arena_sum_of_bytes = memory->sum_of_bytes;
  plan.peak_live_bytes = PeakLiveBytes(ranges);
  plan.memory_planned = true;
  return CheckPlan(graph, plan);
}

absl::StatusOr<Plan> BuildPlan(const graph::Graph& graph, const PlanOptions& options,
                               const WorkspaceFn& workspace_bytes) {
  absl::StatusOr<Plan> plan = PlanLayouts(graph, options);
  if (!plan.ok()) return plan.status();
  std::vector<int64_t> bytes(plan->steps.size(), 0);
  for (size_t s = 0; s < bytes.size(); ++s) {
    absl::StatusOr<int64_t> b = workspace_bytes(*plan, static_cast<int32_t>(s));
    if (!b.ok()) return b.status();
    bytes[s] = *b;
  }
  if (absl::Status s = PlanMemory(graph, bytes, *plan); !s.ok()) return s;
  return plan;
}

absl::Status CheckPlan(const graph::Graph& graph, const Plan& plan) {
  if (!plan.memory_planned) {
    return absl::FailedPreconditionError("the plan's memory is not planned yet (PlanMemory)");
  }
  if (plan.tensors.size() != graph.tensors.size() || plan.layouts.size() != graph.tensors.size() ||
      plan.workspaces.size() != graph.nodes.size()) {
    return absl::InternalError(
        absl::StrCat("plan has ", plan.tensors.size(), " placements, ", plan.layouts.size(),
                     " layouts and ", plan.workspaces.size(), " workspaces for ",
                     graph.tensors.size(), " tensors and ", graph.nodes.size(), " nodes"));
  }
  if (absl::Status s = CheckStructure(graph); !s.ok()) return s;
  absl::StatusOr<std::vector<int32_t>> producer = ProducerNodes(graph);
  if (!producer.ok()) return producer.status();
  if (absl::Status s = CheckSteps(graph, plan, *producer); !s.ok()) return s;

  for (const PlanStep& step : plan.steps) {
    const graph::Node& node = graph.nodes[step.node];
    for (const std::vector<int32_t>* list : {&node.inputs, &node.outputs}) {
      for (int32_t t : *list) {
        if (absl::Status s = CheckPlaced(graph, plan, t, NodeLabel(graph, step.node)); !s.ok()) {
          return s;
        }
      }
    }
    for (int32_t t : node.outputs) {
      const BufferKind kind = plan.tensors[t].buffer;
      if (kind != BufferKind::kArena && kind != BufferKind::kGradients) {
        return absl::InternalError(absl::StrCat(NodeLabel(graph, step.node), " writes ",
                                                TensorLabel(graph, t), " in the ",
                                                BufferKindName(kind), " buffer"));
      }
    }
  }
  if (absl::Status s = CheckFixedBuffers(graph, plan); !s.ok()) return s;

  // The arena, with liveness recomputed from the graph and offsets taken from the placements.
  std::vector<int64_t> workspace_bytes(plan.workspaces.size(), 0);
  for (size_t s = 0; s < plan.workspaces.size(); ++s) {
    const Placement& w = plan.workspaces[s];
    if (w.bytes > 0 && w.buffer != BufferKind::kArena) {
      return absl::InternalError(absl::StrCat("workspace of step ", s, " is outside the arena"));
    }
    workspace_bytes[s] = w.bytes;
  }
  const std::vector<ArenaBlock> blocks = ArenaBlocks(graph, plan, workspace_bytes, *producer);
  std::vector<LiveRange> ranges;
  MemoryPlan memory;
  memory.arena_bytes = plan.sizes.arena;
  for (const ArenaBlock& block : blocks) {
    ranges.push_back(block.range);
    const Placement& p =
        block.tensor >= 0 ? plan.tensors[block.tensor] : plan.workspaces[block.workspace_step];
    if (p.offset % plan.options.alignment != 0) {
      return absl::InternalError(
          absl::StrCat(block.tensor >= 0 ? TensorLabel(graph, block.tensor)
                                         : absl::StrCat("workspace of step ", block.workspace_step),
                       " is at unaligned arena offset ", p.offset));
    }
    memory.offsets.push_back(p.offset);
  }
  if (absl::Status s = CheckMemoryPlan(ranges, memory); !s.ok()) {
    return absl::InternalError(absl::StrCat("arena of graph '", graph.name, "': ", s.message()));
  }
  if (plan.peak_live_bytes > plan.sizes.arena) {
    return absl::InternalError(absl::StrCat(
        "arena of ", plan.sizes.arena, " bytes is below the live peak of ", plan.peak_live_bytes));
  }
  return absl::OkStatus();
}

std::string DescribePlan(const Plan& plan) {
  auto mb = [](int64_t bytes) {
    return absl::StrFormat("%.2f MB", static_cast<double>(bytes) / 1e6);
  };
  std::string text =
      absl::StrCat(plan.steps.size(), " steps; parameters ", mb(plan.sizes.parameters),
                   ", gradients ", mb(plan.sizes.gradients), ", state ", mb(plan.sizes.state),
                   ", inputs ", mb(plan.sizes.inputs), ", arena ", mb(plan.sizes.arena));
  if (plan.memory_planned) {
    absl::StrAppend(&text, " (live peak ", mb(plan.peak_live_bytes), ", without reuse ",
                    mb(plan.arena_sum_of_bytes), ")");
  }
  return text;
}

}  // namespace gradflow::sched
