#include "models/builder.h"

#include <span>

#include "absl/strings/str_cat.h"
#include "graph/autodiff.h"
#include "graph/verify.h"
#include "models/string_util.h"

#ifndef GRADFLOW_VERSION
#error "GRADFLOW_VERSION must be defined by the build (models/CMakeLists.txt)"
#endif

namespace gradflow::models {
namespace {

absl::Status WithContext(const absl::Status& status, std::string_view context) {
  return absl::Status(status.code(), absl::StrCat(Sv(context), ": ", status.message()));
}

}  // namespace

std::string ProducerString() { return absl::StrCat("modelc ", GRADFLOW_VERSION); }

ScopeGuard::ScopeGuard(ScopeGuard&& other) noexcept : builder_(other.builder_) {
  other.builder_ = nullptr;
}

ScopeGuard::~ScopeGuard() {
  if (builder_ != nullptr) builder_->scopes_.pop_back();
}

ModelBuilder::ModelBuilder(std::string model_name, const graph::OpRegistry& registry)
    : registry_(registry) {
  graph_.name = std::move(model_name);
  if (graph_.name.empty()) Fail(absl::InvalidArgumentError("the model needs a name"));
}

ScopeGuard ModelBuilder::Scope(std::string_view name) {
  // Scopes are pushed even after an error so that every guard pops exactly what it pushed.
  if (name.empty() && ok()) Fail(absl::InvalidArgumentError("empty scope name"));
  scopes_.push_back(absl::StrCat(ScopedName(name), "."));
  return ScopeGuard(this);
}

std::string ModelBuilder::ScopedName(std::string_view local) const {
  return scopes_.empty() ? std::string(local) : absl::StrCat(scopes_.back(), Sv(local));
}

std::string ModelBuilder::FreshLocalName(std::string_view base) const {
  auto taken = [this](const std::string& local) {
    std::string full = ScopedName(local);
    return node_names_.contains(full) || tensor_names_.contains(full);
  };
  std::string candidate(base);
  for (int k = 1; taken(candidate); ++k) candidate = absl::StrCat(Sv(base), "_", k);
  return candidate;
}

graph::TensorType ModelBuilder::TypeOf(Value value) const {
  if (!Owns(value)) return {};
  const graph::Tensor& tensor = graph_.tensors[value.id];
  return graph::TensorType{tensor.dtype, tensor.shape};
}

const graph::Shape& ModelBuilder::ShapeOf(Value value) const {
  static const graph::Shape kNoShape;
  return Owns(value) ? graph_.tensors[value.id].shape : kNoShape;
}

bool ModelBuilder::Owns(Value value) const {
  return value.id >= 0 && static_cast<size_t>(value.id) < graph_.tensors.size();
}

void ModelBuilder::SetMetadata(std::string_view key, std::string_view value) {
  for (auto& [existing_key, existing_value] : extra_metadata_) {
    if (existing_key == key) {
      existing_value = std::string(value);
      return;
    }
  }
  extra_metadata_.emplace_back(std::string(key), std::string(value));
}

void ModelBuilder::Fail(absl::Status status) {
  if (status_.ok() && !status.ok()) {
    status_ = WithContext(status, absl::StrCat("model '", graph_.name, "'"));
  }
}

bool ModelBuilder::ClaimTensorName(const std::string& full_name) {
  if (full_name.empty()) {
    Fail(absl::InvalidArgumentError("a tensor needs a name"));
    return false;
  }
  if (!tensor_names_.insert(full_name).second) {
    Fail(absl::InvalidArgumentError(absl::StrCat("duplicate tensor name '", full_name, "'")));
    return false;
  }
  return true;
}

bool ModelBuilder::CheckValue(Value value, std::string_view user) {
  if (!ok()) return false;
  if (!value.valid()) {
    Fail(absl::InvalidArgumentError(absl::StrCat(Sv(user), ": reads an undefined value")));
    return false;
  }
  if (!Owns(value)) {
    Fail(absl::InvalidArgumentError(
        absl::StrCat(Sv(user), ": value ", value.id, " does not belong to this model")));
    return false;
  }
  return true;
}

Value ModelBuilder::AddSource(std::string_view name, graph::DType dtype, graph::Shape shape,
                              graph::TensorRole role, graph::Initializer init) {
  if (!ok() || finished_) return {};
  std::string full_name = ScopedName(name);
  for (size_t d = 0; d < shape.size(); ++d) {
    bool batch_ok =
        d == 0 && (role == graph::TensorRole::kInput || role == graph::TensorRole::kLabel);
    if (shape[d] > 0 || (shape[d] == graph::kBatch && batch_ok)) continue;
    Fail(absl::InvalidArgumentError(
        absl::StrCat("tensor '", full_name, "' (", Sv(graph::TensorRoleName(role)), ") has shape ",
                     graph::ShapeToString(shape), ": dimension ", d, " must be positive")));
    return {};
  }
  if (!ClaimTensorName(full_name)) return {};
  graph::Tensor tensor;
  tensor.name = std::move(full_name);
  tensor.dtype = dtype;
  tensor.shape = std::move(shape);
  tensor.role = role;
  tensor.init = init;
  return Value{graph_.AddTensor(std::move(tensor))};
}

Value ModelBuilder::Input(std::string_view name, graph::Shape shape, graph::DType dtype) {
  Value value = AddSource(name, dtype, std::move(shape), graph::TensorRole::kInput, {});
  if (value.valid()) graph_.inputs.push_back(value.id);
  return value;
}

Value ModelBuilder::Label(std::string_view name, graph::Shape shape) {
  Value value =
      AddSource(name, graph::DType::kInt32, std::move(shape), graph::TensorRole::kLabel, {});
  if (value.valid()) graph_.labels.push_back(value.id);
  return value;
}

Value ModelBuilder::Parameter(std::string_view name, graph::Shape shape, graph::Initializer init) {
  return AddSource(name, graph::DType::kFloat32, std::move(shape), graph::TensorRole::kParameter,
                   init);
}

Value ModelBuilder::State(std::string_view name, graph::Shape shape, graph::Initializer init) {
  return AddSource(name, graph::DType::kFloat32, std::move(shape), graph::TensorRole::kState, init);
}

Outputs ModelBuilder::Apply(std::string_view op, std::vector<Value> inputs, graph::AttrMap attrs,
                            std::string_view name, ApplyOptions options) {
  if (!ok() || finished_) return {};
  std::string node_name = ScopedName(name);
  std::string context = absl::StrCat("node '", node_name, "' (", Sv(op), ")");
  if (name.empty()) {
    Fail(absl::InvalidArgumentError(absl::StrCat(context, ": a node needs a name")));
    return {};
  }
  if (node_names_.contains(node_name)) {
    Fail(absl::InvalidArgumentError(absl::StrCat(context, ": duplicate node name")));
    return {};
  }
  int32_t version = options.op_version != 0 ? options.op_version : registry_.LatestVersion(op);
  const graph::OpSchema* schema = registry_.Find(op, version);
  if (schema == nullptr) {
    Fail(absl::InvalidArgumentError(
        registry_.HasOp(op) ? absl::StrCat(context, ": the op registry has no version ", version)
                            : absl::StrCat(context, ": unknown op")));
    return {};
  }

  graph::Node node;
  node.name = node_name;
  node.op = std::string(op);
  node.op_version = version;
  node.attrs = std::move(attrs);
  node.phase = options.phase;
  std::vector<graph::TensorType> input_types;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!CheckValue(inputs[i], absl::StrCat(context, " input ", i))) return {};
    node.inputs.push_back(inputs[i].id);
    const graph::Tensor& tensor = graph_.tensors[inputs[i].id];
    input_types.push_back(graph::TensorType{tensor.dtype, tensor.shape});
  }
  if (absl::Status valid = graph::ValidateAttributes(node, *schema); !valid.ok()) {
    Fail(WithContext(valid, context));
    return {};
  }
  absl::StatusOr<std::vector<graph::TensorType>> output_types =
      graph::InferNodeOutputs(node, *schema, input_types);
  if (!output_types.ok()) {
    Fail(WithContext(output_types.status(), context));
    return {};
  }

  std::vector<Value> outputs;
  for (size_t i = 0; i < output_types->size(); ++i) {
    std::string output_name;
    if (i < options.output_names.size() && !options.output_names[i].empty()) {
      output_name = ScopedName(options.output_names[i]);
    } else {
      output_name = i == 0 ? node_name : absl::StrCat(node_name, ".out", i);
    }
    if (!ClaimTensorName(output_name)) return {};
    graph::Tensor tensor;
    tensor.name = std::move(output_name);
    tensor.dtype = (*output_types)[i].dtype;
    tensor.shape = (*output_types)[i].shape;
    tensor.role = graph::TensorRole::kActivation;
    int32_t id = graph_.AddTensor(std::move(tensor));
    node.outputs.push_back(id);
    outputs.push_back(Value{id});
  }
  node_names_.insert(node_name);
  graph_.AddNode(std::move(node));
  return Outputs(std::move(outputs));
}

Value ModelBuilder::AddLossFor(Value logits) {
  // Outside any scope, so that every model names its labels and loss the same way.
  std::vector<std::string> saved_scopes;
  saved_scopes.swap(scopes_);
  Value labels = graph_.labels.empty() ? Label("labels") : Value{graph_.labels.front()};
  std::string name = FreshLocalName("loss");
  Value loss = Apply("SoftmaxCrossEntropy", {logits, labels}, {}, name,
                     {.phase = graph::Phase::kLoss, .output_names = {"", name + ".probs"}})[0];
  saved_scopes.swap(scopes_);
  return loss;
}

std::string ModelBuilder::InferredMetadata(std::string_view key, Value logits) const {
  if (key == "classes") {
    const graph::Shape& shape = ShapeOf(logits);
    return shape.size() == 2 ? absl::StrCat(shape[1]) : "";
  }
  if (graph_.inputs.empty()) return "";
  const graph::Shape& input = graph_.tensors[graph_.inputs.front()].shape;
  if (input.size() != 4) return "";
  if (key == "channels") return absl::StrCat(input[1]);
  if (key == "image_size") {
    return input[2] == input[3] ? absl::StrCat(input[2]) : absl::StrCat(input[2], "x", input[3]);
  }
  return "";
}

absl::StatusOr<graph::Graph> ModelBuilder::Finish(Value logits_or_loss) {
  if (finished_) {
    return absl::FailedPreconditionError(
        absl::StrCat("model '", graph_.name, "': Finish was already called"));
  }
  if (!CheckValue(logits_or_loss, "Finish")) return status_;
  if (graph_.inputs.empty()) {
    Fail(absl::InvalidArgumentError("the model has no input"));
    return status_;
  }

  const std::vector<int32_t> producers = graph_.ProducerOfEachTensor();
  int32_t producer = producers[logits_or_loss.id];
  bool is_loss = producer >= 0 && graph_.nodes[producer].phase == graph::Phase::kLoss &&
                 ShapeOf(logits_or_loss).empty();
  Value logits;
  Value loss = logits_or_loss;
  if (!is_loss) {
    const graph::Shape& shape = ShapeOf(logits_or_loss);
    if (shape.size() != 2) {
      Fail(absl::InvalidArgumentError(absl::StrCat(
          "Finish needs the scalar loss or [N, classes] logits, got '",
          graph_.tensors[logits_or_loss.id].name, "' of shape ", graph::ShapeToString(shape))));
      return status_;
    }
    logits = logits_or_loss;
    loss = AddLossFor(logits);
    if (!ok()) return status_;
  } else {
    // The loss reads the logits first (SoftmaxCrossEntropy(logits, labels)).
    logits = Value{graph_.nodes[producer].inputs.front()};
  }
  finished_ = true;

  graph_.loss = loss.id;
  graph_.producer = ProducerString();
  graph_.metadata.clear();
  graph_.metadata.emplace_back("model", graph_.name);
  for (std::string_view key : {"classes", "image_size", "channels"}) {
    std::string value = InferredMetadata(key, logits);
    if (!value.empty()) graph_.metadata.emplace_back(std::string(key), std::move(value));
  }
  for (const auto& [key, value] : extra_metadata_) {
    bool replaced = false;
    for (auto& [existing_key, existing_value] : graph_.metadata) {
      if (existing_key == key) {
        existing_value = value;
        replaced = true;
      }
    }
    if (!replaced) graph_.metadata.emplace_back(key, value);
  }

  std::string context = absl::StrCat("model '", graph_.name, "'");
  if (absl::Status backward = graph::AppendBackward(graph_, registry_); !backward.ok()) {
    status_ = WithContext(backward, absl::StrCat(context, ": building the backward pass"));
    return status_;
  }
  if (absl::Status verified = graph::VerifyGraph(graph_, registry_); !verified.ok()) {
    status_ = WithContext(verified, absl::StrCat(context, ": verifying the training graph"));
    return status_;
  }
  return std::move(graph_);
}

}  // namespace gradflow::models
