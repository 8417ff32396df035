#include "tests/ops/op_test_util.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "ops/registry.h"

namespace gradflow::ops::testing {
namespace {

using graph::AttrMap;
using graph::Graph;
using graph::Node;
using graph::Tensor;
using graph::TensorRole;
using graph::TensorType;

Node MakeNode(std::string_view op, int num_inputs, int num_outputs, AttrMap attrs) {
  Node node{.name = "node", .op = std::string(op), .attrs = std::move(attrs)};
  for (int i = 0; i < num_inputs; ++i) node.inputs.push_back(i);
  for (int i = 0; i < num_outputs; ++i) node.outputs.push_back(num_inputs + i);
  return node;
}

Graph OneNodeGraph(std::string_view op, const std::vector<TensorType>& inputs, AttrMap attrs,
                   const std::vector<bool>& needs, int num_outputs,
                   const std::vector<int>& grads_into, int loss_output) {
  absl::StatusOr<std::vector<TensorType>> outputs = Infer(op, inputs, attrs, num_outputs);
  if (!outputs.ok()) {
    std::fprintf(stderr, "test graph's %.*s node does not infer: %s\n", static_cast<int>(op.size()),
                 op.data(), outputs.status().ToString().c_str());
    std::abort();
  }
  Graph graph;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const bool param = i < needs.size() && needs[i];
    graph.AddTensor(Tensor{.name = absl::StrCat("in", i),
                           .dtype = inputs[i].dtype,
                           .shape = inputs[i].shape,
                           .role = param ? TensorRole::kParameter : TensorRole::kInput});
  }
  for (size_t i = 0; i < outputs->size(); ++i) {
    graph.AddTensor(Tensor{.name = absl::StrCat("out", i),
                           .dtype = (*outputs)[i].dtype,
                           .shape = (*outputs)[i].shape});
  }
  graph.AddNode(MakeNode(op, static_cast<int>(inputs.size()), num_outputs, std::move(attrs)));
  if (loss_output >= 0) graph.loss = static_cast<int32_t>(inputs.size()) + loss_output;
  for (int out : grads_into) {
    const Tensor& y = graph.tensors[inputs.size() + out];
    graph.AddTensor(Tensor{.name = absl::StrCat(y.name, ".grad"),
                           .dtype = y.dtype,
                           .shape = y.shape,
                           .role = TensorRole::kGradient});
  }
  return graph;
}

}  // namespace

std::string Render(const absl::StatusOr<std::vector<TensorType>>& result) {
  if (!result.ok()) return result.status().ToString();
  std::string text;
  for (const TensorType& type : *result) {
    absl::StrAppend(&text, text.empty() ? "" : ", ", graph::DTypeName(type.dtype),
                    graph::ShapeToString(type.shape));
  }
  return text;
}

::testing::Matcher<std::string> IsInvalid(std::string substring) {
  return ::testing::AllOf(::testing::StartsWith("INVALID_ARGUMENT: "),
                          ::testing::HasSubstr(substring));
}

const graph::OpSchema& Schema(std::string_view op) {
  const graph::OpSchema* schema = StandardOps().Find(op, 1);
  if (schema == nullptr) {
    std::fprintf(stderr, "no standard op %.*s\n", static_cast<int>(op.size()), op.data());
    std::abort();
  }
  return *schema;
}

absl::StatusOr<std::vector<TensorType>> Infer(std::string_view op, std::vector<TensorType> inputs,
                                              AttrMap attrs, int num_outputs) {
  const graph::OpSchema& schema = Schema(op);
  const Node node = MakeNode(op, static_cast<int>(inputs.size()), num_outputs, std::move(attrs));
  if (absl::Status status = graph::ValidateAttributes(node, schema); !status.ok()) return status;
  return graph::InferNodeOutputs(node, schema, inputs);
}

graph::OpCost Cost(std::string_view op, std::vector<TensorType> inputs, AttrMap attrs,
                   int num_outputs) {
  const graph::OpSchema& schema = Schema(op);
  const Node node = MakeNode(op, static_cast<int>(inputs.size()), num_outputs, attrs);
  absl::StatusOr<std::vector<TensorType>> outputs = Infer(op, inputs, attrs, num_outputs);
  if (!outputs.ok() || !schema.cost) return {};
  graph::Attrs node_attrs(node, schema);
  return schema.cost(graph::CostContext{node, node_attrs, inputs, *outputs});
}

RecordingGradContext::RecordingGradContext(std::string_view op, std::vector<TensorType> inputs,
                                           AttrMap attrs, std::vector<bool> needs, int num_outputs,
                                           std::vector<int> grads_into, int loss_output)
    : graph_(
          OneNodeGraph(op, inputs, std::move(attrs), needs, num_outputs, grads_into, loss_output)),
      schema_(Schema(op)),
      attrs_(graph_.nodes[0], schema_),
      needs_(std::move(needs)),
      output_grads_(num_outputs, graph::kNoTensor),
      input_grads_(inputs.size(), graph::kNoTensor) {
  needs_.resize(inputs.size(), false);
  const int32_t first_grad = static_cast<int32_t>(inputs.size()) + num_outputs;
  for (size_t k = 0; k < grads_into.size(); ++k) {
    output_grads_.at(grads_into[k]) = first_grad + static_cast<int32_t>(k);
  }
}

absl::StatusOr<std::vector<int32_t>> RecordingGradContext::Emit(std::string_view op,
                                                                std::vector<int32_t> inputs,
                                                                AttrMap attrs,
                                                                std::string_view suffix) {
  const graph::OpSchema* schema = StandardOps().Find(op, 1);
  if (schema == nullptr) {
    return absl::InternalError(absl::StrCat("emitted unknown op ", std::string(op)));
  }
  Node node{.name = "emitted", .op = std::string(op), .inputs = inputs, .attrs = attrs};
  if (absl::Status status = graph::ValidateAttributes(node, *schema); !status.ok()) return status;
  std::vector<TensorType> input_types;
  for (int32_t id : inputs) input_types.push_back(TypeOf(id));
  absl::StatusOr<std::vector<TensorType>> outputs =
      graph::InferNodeOutputs(node, *schema, input_types);
  if (!outputs.ok()) return outputs.status();
  Emitted record{std::string(op), std::move(inputs), std::move(attrs), std::string(suffix), {}};
  for (const TensorType& type : *outputs) {
    record.outputs.push_back(
        graph_.AddTensor(Tensor{.name = absl::StrCat(record.suffix, ":", record.outputs.size()),
                                .dtype = type.dtype,
                                .shape = type.shape,
                                .role = TensorRole::kGradient}));
  }
  emitted_.push_back(record);
  return record.outputs;
}

absl::Status RecordingGradContext::RunGradient() {
  if (!schema_.gradient) return absl::InternalError("op has no gradient rule");
  return schema_.gradient(*this);
}

}  // namespace gradflow::ops::testing
