#include "tests/harness/harness_graphs.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "graph/autodiff.h"
#include "graph/op_schema.h"
#include "ops/registry.h"

namespace gradflow::test_support {
namespace {

using graph::Graph;
using graph::Node;
using graph::Phase;
using graph::Tensor;
using graph::TensorRole;
using graph::TensorType;

int32_t AddSource(Graph& g, std::string name, graph::DType dtype, graph::Shape shape,
                  TensorRole role) {
  return g.AddTensor(
      Tensor{.name = std::move(name), .dtype = dtype, .shape = std::move(shape), .role = role});
}

// Appends a node reading `inputs`, with outputs typed by the op's shape function and named
// `output_names` (as many as the op yields).
absl::StatusOr<std::vector<int32_t>> AddNode(Graph& g, std::string name, const std::string& op,
                                             std::vector<int32_t> inputs, graph::AttrMap attrs,
                                             std::vector<std::string> output_names,
                                             Phase phase = Phase::kForward) {
  const graph::OpRegistry& ops = ops::StandardOps();
  const graph::OpSchema* schema = ops.Find(op, ops.LatestVersion(op));
  if (schema == nullptr) return absl::NotFoundError(absl::StrCat("unknown op ", op));
  Node node{.name = std::move(name),
            .op = op,
            .op_version = schema->version,
            .inputs = std::move(inputs),
            .attrs = std::move(attrs),
            .phase = phase};
  if (absl::Status s = graph::ValidateAttributes(node, *schema); !s.ok()) return s;
  std::vector<TensorType> input_types;
  for (int32_t t : node.inputs) input_types.push_back({g.tensors[t].dtype, g.tensors[t].shape});
  absl::StatusOr<std::vector<TensorType>> outputs =
      graph::InferNodeOutputs(node, *schema, input_types);
  if (!outputs.ok()) {
    return absl::Status(outputs.status().code(), absl::StrCat("node '", node.name, "' (", op,
                                                              "): ", outputs.status().message()));
  }
  if (outputs->size() != output_names.size()) {
    return absl::InternalError(absl::StrCat("node '", node.name, "' (", op, ") has ",
                                            outputs->size(), " outputs, the test names ",
                                            output_names.size()));
  }
  for (size_t i = 0; i < outputs->size(); ++i) {
    node.outputs.push_back(g.AddTensor(Tensor{.name = std::move(output_names[i]),
                                              .dtype = (*outputs)[i].dtype,
                                              .shape = (*outputs)[i].shape,
                                              .role = TensorRole::kActivation}));
  }
  std::vector<int32_t> ids = node.outputs;
  g.AddNode(std::move(node));
  return ids;
}

std::vector<std::string> OutputNames(const std::string& prefix, int count) {
  std::vector<std::string> names;
  for (int i = 0; i < count; ++i) names.push_back(absl::StrCat(prefix, i));
  return names;
}

}  // namespace

absl::StatusOr<Graph> OneNodeGraph(const OpCase& op_case) {
  Graph g;
  g.name = op_case.FullName();
  std::vector<int32_t> inputs;
  for (const InputSpec& spec : op_case.inputs) {
    inputs.push_back(AddSource(g, spec.name, spec.dtype(), spec.shape, spec.role));
    if (spec.role == TensorRole::kInput) g.inputs.push_back(inputs.back());
    if (spec.role == TensorRole::kLabel) g.labels.push_back(inputs.back());
  }
  absl::StatusOr<std::vector<int32_t>> outputs = AddNode(
      g, "node", op_case.op, inputs, op_case.attrs, OutputNames("out", op_case.num_outputs));
  if (!outputs.ok()) return outputs.status();
  return g;
}

absl::StatusOr<GradientCheckGraph> BuildGradientCheckGraph(const OpCase& op_case) {
  GradientCheckGraph check;
  Graph& g = check.graph;
  g.name = absl::StrCat(op_case.FullName(), "_gradient");
  std::vector<int32_t> op_inputs;
  for (const InputSpec& spec : op_case.inputs) {
    const bool differentiable =
        spec.role == TensorRole::kInput || spec.role == TensorRole::kParameter;
    if (!differentiable) {
      op_inputs.push_back(AddSource(g, spec.name, spec.dtype(), spec.shape, spec.role));
      if (spec.role == TensorRole::kLabel) g.labels.push_back(op_inputs.back());
      check.input_sources.push_back(op_inputs.back());
      continue;
    }
    if (spec.role == TensorRole::kInput && spec.shape.size() == 4) {
      const int64_t rest = spec.shape[1] * spec.shape[2] * spec.shape[3];
      const int32_t flat = AddSource(g, absl::StrCat(spec.name, ".flat"), spec.dtype(),
                                     {spec.shape[0], rest}, TensorRole::kParameter);
      absl::StatusOr<std::vector<int32_t>> reshaped =
          AddNode(g, absl::StrCat(spec.name, ".reshape"), "Reshape", {flat},
                  {{"shape", spec.shape}}, {spec.name});
      if (!reshaped.ok()) return reshaped.status();
      op_inputs.push_back(reshaped->front());
      check.input_sources.push_back(flat);
      continue;
    }
    op_inputs.push_back(AddSource(g, spec.name, spec.dtype(), spec.shape, TensorRole::kParameter));
    check.input_sources.push_back(op_inputs.back());
  }
  const bool is_loss = op_case.op == "SoftmaxCrossEntropy";
  absl::StatusOr<std::vector<int32_t>> outputs =
      AddNode(g, "op", op_case.op, op_inputs, op_case.attrs,
              OutputNames("out", op_case.num_outputs), is_loss ? Phase::kLoss : Phase::kForward);
  if (!outputs.ok()) return outputs.status();
  if (is_loss) {
    g.loss = outputs->front();
  } else {
    int32_t features = outputs->front();
    const graph::Shape y = g.tensors[features].shape;
    if (y.size() != 2) {
      absl::StatusOr<std::vector<int32_t>> flat =
          AddNode(g, "projection.flatten", "Flatten", {features}, {{"axis", int64_t{1}}},
                  {"projection.features"});
      if (!flat.ok()) return flat.status();
      features = flat->front();
    }
    const graph::Shape& feature_shape = g.tensors[features].shape;
    check.projection_weights =
        AddSource(g, "projection.weights", graph::DType::kFloat32,
                  {kProjectionClasses, feature_shape[1]}, TensorRole::kConstant);
    check.projection_labels = AddSource(g, "projection.labels", graph::DType::kInt32,
                                        {feature_shape[0]}, TensorRole::kLabel);
    g.labels.push_back(check.projection_labels);
    absl::StatusOr<std::vector<int32_t>> logits =
        AddNode(g, "projection.fc", "FullyConnected", {features, check.projection_weights}, {},
                {"projection.logits"});
    if (!logits.ok()) return logits.status();
    absl::StatusOr<std::vector<int32_t>> loss = AddNode(
        g, "projection.loss", "SoftmaxCrossEntropy", {logits->front(), check.projection_labels}, {},
        {"projection.loss", "projection.probs"}, Phase::kLoss);
    if (!loss.ok()) return loss.status();
    g.loss = loss->front();
  }
  if (absl::Status s = graph::AppendBackward(g, ops::StandardOps()); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("AppendBackward on '", g.name, "': ", s.message()));
  }
  return check;
}

}  // namespace gradflow::test_support
