// A small API for writing models as straight-line C++: sources, ops and name scopes in, a verified
// training graph out.
//
// Errors are sticky: the first failure (unknown op, bad shape, duplicate name, ...) is recorded
// with the node or tensor it concerns, every later call does nothing and returns inert values,
// and Finish returns that first error. Model code therefore reads like the architecture it
// describes, without a status check after each layer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "graph/attribute.h"
#include "graph/ir.h"
#include "graph/op_schema.h"
#include "graph/types.h"

namespace gradflow::models {

// A tensor of the graph under construction. Default-constructed and post-error values are inert:
// passing one to the builder records an error (or is ignored once an error is recorded).
struct Value {
  int32_t id = graph::kNoTensor;
  bool valid() const { return id != graph::kNoTensor; }
};

// The outputs of one node. Indexing past the end gives an inert Value, so `Apply(...)[0]` is safe
// even after an error.
class Outputs {
 public:
  Outputs() = default;
  explicit Outputs(std::vector<Value> values) : values_(std::move(values)) {}
  Value operator[](size_t i) const { return i < values_.size() ? values_[i] : Value{}; }
  size_t size() const { return values_.size(); }

 private:
  std::vector<Value> values_;
};

struct ApplyOptions {
  graph::Phase phase = graph::Phase::kForward;
  int32_t op_version = 0;  // 0: the latest version the registry knows
  // Names of the output tensors relative to the current scope. Missing ones default to the node
  // name for output 0 and "<node>.out<i>" for the others.
  std::vector<std::string> output_names;
};

class ModelBuilder;

// Pops its name scope when it goes out of scope. Move-only; a moved-from guard pops nothing.
class [[nodiscard]] ScopeGuard {
 public:
  ScopeGuard(ScopeGuard&& other) noexcept;
  ScopeGuard& operator=(ScopeGuard&&) = delete;
  ScopeGuard(const ScopeGuard&) = delete;
  ScopeGuard& operator=(const ScopeGuard&) = delete;
  ~ScopeGuard();

 private:
  friend class ModelBuilder;
  explicit ScopeGuard(ModelBuilder* builder) : builder_(builder) {}
  ModelBuilder* builder_;
};

class ModelBuilder {
 public:
  // `model_name` becomes the graph name and its "model" metadata. The registry must outlive the
  // builder.
  ModelBuilder(std::string model_name, const graph::OpRegistry& registry);

  ModelBuilder(const ModelBuilder&) = delete;
  ModelBuilder& operator=(const ModelBuilder&) = delete;

  // Source tensors. Names are relative to the current scope and must be unique in the graph.
  Value Input(std::string_view name, graph::Shape shape,
              graph::DType dtype = graph::DType::kFloat32);
  // Class indices, one per example: Int32 of shape [N] unless given otherwise.
  Value Label(std::string_view name, graph::Shape shape = {graph::kBatch});
  Value Parameter(std::string_view name, graph::Shape shape, graph::Initializer init);
  // Persistent tensors that are not trained (batch-norm running statistics).
  Value State(std::string_view name, graph::Shape shape, graph::Initializer init);

  // Adds a node named `name` (relative to the current scope) that reads `inputs`; its outputs get
  // the types the op's shape function gives and role Activation.
  Outputs Apply(std::string_view op, std::vector<Value> inputs, graph::AttrMap attrs,
                std::string_view name, ApplyOptions options = {});

  // Everything named while the guard lives is prefixed with "<outer scopes>.<name>.".
  ScopeGuard Scope(std::string_view name);
  // `local` with the current scope prefix.
  std::string ScopedName(std::string_view local) const;
  // A local name for a new layer: `base` itself when no node or tensor uses its scoped form yet,
  // otherwise the first free "<base>_<k>" (k = 1, 2, ...). For layers that torchvision does not
  // name individually, such as the several ReLUs of one block.
  std::string FreshLocalName(std::string_view base) const;

  // Type and shape of a value; an empty shape for inert values.
  graph::TensorType TypeOf(Value value) const;
  const graph::Shape& ShapeOf(Value value) const;

  // Extra metadata for the graph root; a later value for the same key replaces the earlier one.
  void SetMetadata(std::string_view key, std::string_view value);

  // Records `status` as the builder's error unless one is recorded already. For model code that
  // finds its options invalid.
  void Fail(absl::Status status);
  bool ok() const { return status_.ok(); }
  const absl::Status& status() const { return status_; }

  // Completes the training graph from either the scalar loss or the [N, classes] logits (for
  // which a SoftmaxCrossEntropy against the label, added as "labels" if none was declared, makes
  // the loss). Records inputs, labels, loss, producer and metadata (model, classes, image size,
  // channels, from the input and logits shapes), appends the backward pass and verifies the
  // result. The builder is spent afterwards.
  absl::StatusOr<graph::Graph> Finish(Value logits_or_loss);

 private:
  friend class ScopeGuard;

  Value AddSource(std::string_view name, graph::DType dtype, graph::Shape shape,
                  graph::TensorRole role, graph::Initializer init);
  // Checks that `value` belongs to this graph; records an error naming `user` when it does not.
  bool CheckValue(Value value, std::string_view user);
  bool Owns(Value value) const;
  bool ClaimTensorName(const std::string& full_name);
  std::string InferredMetadata(std::string_view key, Value logits) const;
  Value AddLossFor(Value logits);

  const graph::OpRegistry& registry_;
  graph::Graph graph_;
  absl::Status status_;
  bool finished_ = false;
  std::vector<std::string> scopes_;  // each entry is the full prefix, ending in '.'
  absl::flat_hash_set<std::string> tensor_names_;
  absl::flat_hash_set<std::string> node_names_;
  std::vector<std::pair<std::string, std::string>> extra_metadata_;
};

// The producer string written into every graph ("modelc <version>").
std::string ProducerString();

}  // namespace gradflow::models
