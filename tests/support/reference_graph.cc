#include "tests/support/reference_graph.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace gradflow::test_support {
namespace {

using graph::Attrs;
using graph::Shape;

ConvParams ReadConv(const Attrs& attrs) {
  const std::vector<int64_t>& strides = attrs.Ints("strides");
  const std::vector<int64_t>& pads = attrs.Ints("pads");
  const std::vector<int64_t>& dilations = attrs.Ints("dilations");
  return {.strides = {strides[0], strides[1]},
          .pads = {pads[0], pads[1]},
          .dilations = {dilations[0], dilations[1]},
          .groups = attrs.Int("groups")};
}

PoolParams ReadPool(const Attrs& attrs) {
  const std::vector<int64_t>& kernel = attrs.Ints("kernel");
  const std::vector<int64_t>& strides = attrs.Ints("strides");
  const std::vector<int64_t>& pads = attrs.Ints("pads");
  return {.kernel = {kernel[0], kernel[1]},
          .strides = {strides[0], strides[1]},
          .pads = {pads[0], pads[1]}};
}

// A shape attribute recorded at build time keeps kBatch in dimension 0; bind it to the batch of
// the tensor at hand.
Shape BoundShapeAttr(const Attrs& attrs, std::string_view name, int64_t batch) {
  Shape shape = attrs.Ints(name);
  for (int64_t& dim : shape) {
    if (dim == graph::kBatch) dim = batch;
  }
  return shape;
}

Shape FlattenShape(const Shape& x, int64_t axis) {
  int64_t leading = 1;
  int64_t trailing = 1;
  for (size_t i = 0; i < x.size(); ++i)
    (static_cast<int64_t>(i) < axis ? leading : trailing) *= x[i];
  return {leading, trailing};
}

absl::Status CheckArity(const graph::Node& node, std::span<const RefTensor> inputs, size_t min) {
  if (inputs.size() >= min) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("reference for node '", node.name, "' (", node.op,
                                                 ") needs ", min, " inputs, got ", inputs.size()));
}

}  // namespace

absl::StatusOr<ReferenceNodeResult> EvaluateReferenceNode(const graph::Node& node,
                                                          const graph::OpSchema& schema,
                                                          std::span<const RefTensor> in) {
  const Attrs attrs(node, schema);
  const std::string& op = node.op;
  if (absl::Status s = CheckArity(node, in, static_cast<size_t>(schema.min_inputs)); !s.ok()) {
    return s;
  }
  const bool has_third = in.size() > 2;
  ReferenceNodeResult r;
  if (op == "Conv2D") {
    r.outputs = {Conv2D(in[0], in[1], has_third ? &in[2] : nullptr, ReadConv(attrs))};
  } else if (op == "Conv2DBackwardData") {
    r.outputs = {Conv2DBackwardData(
        in[0], in[1], BoundShapeAttr(attrs, "input_shape", in[0].shape[0]), ReadConv(attrs))};
  } else if (op == "Conv2DBackwardFilter") {
    r.outputs = {Conv2DBackwardFilter(in[0], in[1], attrs.Ints("filter_shape"), ReadConv(attrs))};
  } else if (op == "BiasGrad") {
    r.outputs = {BiasGrad(in[0])};
  } else if (op == "BatchNorm") {
    if (attrs.Int("training") != 0) {
      BatchNormTraining bn = BatchNormTrain(in[0], in[1], in[2], in[3], in[4],
                                            attrs.Float("epsilon"), attrs.Float("momentum"));
      r.outputs = {std::move(bn.y), std::move(bn.saved_mean), std::move(bn.saved_invstd)};
      r.updated_inputs = {{3, std::move(bn.running_mean)}, {4, std::move(bn.running_var)}};
    } else {
      r.outputs = {BatchNormInference(in[0], in[1], in[2], in[3], in[4], attrs.Float("epsilon"))};
    }
  } else if (op == "BatchNormGrad") {
    BatchNormGrads g = BatchNormGrad(in[0], in[1], in[2], in[3], in[4]);
    r.outputs = {std::move(g.dx), std::move(g.dgamma), std::move(g.dbeta)};
  } else if (op == "Relu") {
    r.outputs = {Relu(in[0])};
  } else if (op == "ReluGrad") {
    r.outputs = {ReluGrad(in[0], in[1])};
  } else if (op == "MaxPool") {
    r.outputs = {MaxPool(in[0], ReadPool(attrs))};
  } else if (op == "MaxPoolGrad") {
    r.outputs = {MaxPoolGrad(in[0], in[1], ReadPool(attrs))};
  } else if (op == "AvgPool") {
    r.outputs = {AvgPool(in[0], ReadPool(attrs), attrs.Int("count_include_pad") != 0)};
  } else if (op == "AvgPoolGrad") {
    r.outputs = {AvgPoolGrad(in[0], BoundShapeAttr(attrs, "input_shape", in[0].shape[0]),
                             ReadPool(attrs), attrs.Int("count_include_pad") != 0)};
  } else if (op == "GlobalAvgPool") {
    r.outputs = {GlobalAvgPool(in[0])};
  } else if (op == "GlobalAvgPoolGrad") {
    r.outputs = {GlobalAvgPoolGrad(in[0], BoundShapeAttr(attrs, "input_shape", in[0].shape[0]))};
  } else if (op == "Add") {
    r.outputs = {Add(in[0], in[1])};
  } else if (op == "FullyConnected") {
    r.outputs = {FullyConnected(in[0], in[1], has_third ? &in[2] : nullptr)};
  } else if (op == "FullyConnectedBackwardData") {
    r.outputs = {FullyConnectedBackwardData(in[0], in[1])};
  } else if (op == "FullyConnectedBackwardWeights") {
    r.outputs = {FullyConnectedBackwardWeights(in[0], in[1])};
  } else if (op == "Flatten") {
    r.outputs = {Reshape(in[0], FlattenShape(in[0].shape, attrs.Int("axis")))};
  } else if (op == "Reshape") {
    r.outputs = {
        Reshape(in[0], BoundShapeAttr(attrs, "shape", in[0].shape.empty() ? 1 : in[0].shape[0]))};
  } else if (op == "SoftmaxCrossEntropy") {
    SoftmaxCrossEntropyResult sce =
        SoftmaxCrossEntropy(in[0], in[1], attrs.Float("label_smoothing"));
    r.outputs = {std::move(sce.loss), std::move(sce.probs)};
  } else if (op == "SoftmaxCrossEntropyGrad") {
    r.outputs = {SoftmaxCrossEntropyGrad(in[0], in[1], attrs.Float("label_smoothing"))};
  } else {
    return absl::UnimplementedError(
        absl::StrCat("node '", node.name, "': no float64 reference for op ", op));
  }
  return r;
}

absl::StatusOr<std::vector<std::optional<RefTensor>>> ReferenceInputGradients(
    const graph::Node& node, const graph::OpSchema& schema, std::span<const RefTensor> in,
    std::span<const RefTensor> out, const RefTensor& dy) {
  const Attrs attrs(node, schema);
  const std::string& op = node.op;
  std::vector<std::optional<RefTensor>> grads(in.size());
  const bool has_third = in.size() > 2;
  if (op == "Conv2D") {
    const ConvParams params = ReadConv(attrs);
    grads[0] = Conv2DBackwardData(dy, in[1], in[0].shape, params);
    grads[1] = Conv2DBackwardFilter(dy, in[0], in[1].shape, params);
    if (has_third) grads[2] = BiasGrad(dy);
  } else if (op == "BatchNorm") {
    if (attrs.Int("training") == 0) {
      return absl::UnimplementedError("inference-mode BatchNorm has no gradient rule");
    }
    BatchNormGrads g = BatchNormGrad(dy, in[0], in[1], out[1], out[2]);
    grads[0] = std::move(g.dx);
    grads[1] = std::move(g.dgamma);
    grads[2] = std::move(g.dbeta);
  } else if (op == "Relu") {
    grads[0] = ReluGrad(dy, out[0]);
  } else if (op == "MaxPool") {
    grads[0] = MaxPoolGrad(dy, in[0], ReadPool(attrs));
  } else if (op == "AvgPool") {
    grads[0] = AvgPoolGrad(dy, in[0].shape, ReadPool(attrs), attrs.Int("count_include_pad") != 0);
  } else if (op == "GlobalAvgPool") {
    grads[0] = GlobalAvgPoolGrad(dy, in[0].shape);
  } else if (op == "Add") {
    grads[0] = dy;
    grads[1] = dy;
  } else if (op == "FullyConnected") {
    grads[0] = FullyConnectedBackwardData(dy, in[1]);
    grads[1] = FullyConnectedBackwardWeights(dy, in[0]);
    if (has_third) grads[2] = BiasGrad(dy);
  } else if (op == "Flatten" || op == "Reshape") {
    grads[0] = Reshape(dy, in[0].shape);
  } else if (op == "SoftmaxCrossEntropy") {
    // The loss is a scalar: its gradient is the fused (probs - targets) / N scaled by dy.
    RefTensor dlogits = SoftmaxCrossEntropyGrad(out[1], in[1], attrs.Float("label_smoothing"));
    for (double& v : dlogits.values) v *= dy.values[0];
    grads[0] = std::move(dlogits);
  } else {
    return absl::UnimplementedError(
        absl::StrCat("node '", node.name, "': no float64 gradient reference for op ", op));
  }
  return grads;
}

absl::Status EvaluateGraphReference(const graph::Graph& graph, const graph::OpRegistry& ops,
                                    std::vector<std::optional<RefTensor>>& values,
                                    bool include_backward) {
  if (values.size() != graph.tensors.size()) {
    return absl::InvalidArgumentError(absl::StrCat("EvaluateGraphReference: ", values.size(),
                                                   " values for ", graph.tensors.size(),
                                                   " tensors"));
  }
  for (const graph::Node& node : graph.nodes) {
    if (node.phase == graph::Phase::kBackward && !include_backward) continue;
    const graph::OpSchema* schema = ops.Find(node.op, node.op_version);
    if (schema == nullptr) {
      return absl::NotFoundError(absl::StrCat("node '", node.name, "': unknown op ", node.op));
    }
    std::vector<RefTensor> inputs;
    for (int32_t t : node.inputs) {
      if (!values[t].has_value()) {
        return absl::FailedPreconditionError(absl::StrCat("node '", node.name, "' reads tensor '",
                                                          graph.tensors[t].name,
                                                          "', which has no value"));
      }
      inputs.push_back(*values[t]);
    }
    absl::StatusOr<ReferenceNodeResult> result = EvaluateReferenceNode(node, *schema, inputs);
    if (!result.ok()) return result.status();
    if (result->outputs.size() != node.outputs.size()) {
      return absl::InternalError(absl::StrCat("node '", node.name, "' lists ", node.outputs.size(),
                                              " outputs, the reference made ",
                                              result->outputs.size()));
    }
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      values[node.outputs[i]] = std::move(result->outputs[i]);
    }
    for (auto& [index, updated] : result->updated_inputs) {
      values[node.inputs[index]] = std::move(updated);
    }
  }
  return absl::OkStatus();
}

}  // namespace gradflow::test_support
