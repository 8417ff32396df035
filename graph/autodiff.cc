#include "graph/autodiff.h"

#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "graph/verify.h"

namespace gradflow::graph {
namespace {

// Builds the backward pass of one graph. Holds the bookkeeping of reverse accumulation: which
// tensors need gradients, how many consumers of each are still to be visited, and the gradient
// contributions collected so far.
class BackwardBuilder {
 public:
  BackwardBuilder(Graph& graph, const OpRegistry& registry) : g_(graph), registry_(registry) {
    for (const Tensor& t : g_.tensors) names_.insert(t.name);
    for (const Node& n : g_.nodes) names_.insert(n.name);
  }

  absl::Status Run();

  // Appends a backward node and its gradient-role outputs.
  absl::StatusOr<std::vector<int32_t>> Emit(std::string_view op, std::vector<int32_t> inputs,
                                            AttrMap attrs, std::string node_name);
  std::string UniqueName(std::string base);

 private:
  absl::Status Finalize(int32_t tensor);
  absl::Status VisitNode(size_t index);

  Graph& g_;
  const OpRegistry& registry_;
  absl::flat_hash_set<std::string> names_;
  std::vector<bool> requires_grad_;
  std::vector<bool> reaches_loss_;
  std::vector<int32_t> pending_consumers_;
  std::vector<std::vector<int32_t>> contributions_;
  std::vector<int32_t> final_grad_;
  std::vector<bool> is_final_grad_;  // tensor already stands for some tensor's whole gradient
};

class NodeGradContext final : public GradContext {
 public:
  NodeGradContext(BackwardBuilder& builder, const Graph& graph, Node node, const OpSchema& schema,
                  std::vector<int32_t> output_grads, std::vector<bool> needs_input_grad,
                  int32_t loss)
      : builder_(builder),
        graph_(graph),
        node_(std::move(node)),
        attrs_(node_, schema),
        output_grads_(std::move(output_grads)),
        needs_input_grad_(std::move(needs_input_grad)),
        loss_(loss),
        input_grads_(node_.inputs.size(), kNoTensor) {}

  const Node& node() const override { return node_; }
  const Attrs& attrs() const override { return attrs_; }
  const Graph& graph() const override { return graph_; }
  int32_t output_grad(int i) const override { return output_grads_.at(i); }
  bool is_loss_output(int i) const override { return node_.outputs.at(i) == loss_; }
  bool needs_input_grad(int i) const override { return needs_input_grad_.at(i); }
  absl::StatusOr<std::vector<int32_t>> Emit(std::string_view op, std::vector<int32_t> inputs,
                                            AttrMap attrs, std::string_view suffix) override {
    return builder_.Emit(op, std::move(inputs), std::move(attrs),
                         builder_.UniqueName(absl::StrCat(node_.name, "/", std::string(suffix))));
  }
  void SetInputGrad(int i, int32_t grad) override { input_grads_.at(i) = grad; }
  const std::vector<int32_t>& input_grads() const { return input_grads_; }

 private:
  BackwardBuilder& builder_;
  const Graph& graph_;
  const Node node_;  // a copy: Emit grows graph.nodes
  Attrs attrs_;
  std::vector<int32_t> output_grads_;
  std::vector<bool> needs_input_grad_;
  int32_t loss_;
  std::vector<int32_t> input_grads_;
};

std::string BackwardBuilder::UniqueName(std::string base) {
  std::string name = base;
  for (int k = 1; names_.contains(name); ++k) name = absl::StrCat(base, ".", k);
  names_.insert(name);
  return name;
}

absl::StatusOr<std::vector<int32_t>> BackwardBuilder::Emit(std::string_view op,
                                                           std::vector<int32_t> inputs,
                                                           AttrMap attrs, std::string node_name) {
  const OpSchema* schema = registry_.Find(op, registry_.LatestVersion(op));
  if (schema == nullptr) {
    return absl::InternalError(absl::StrCat("gradient rule emits unknown op '", std::string(op), "'"));
  }
  Node node{.name = std::move(node_name),
            .op = std::string(op),
            .op_version = schema->version,
            .inputs = std::move(inputs),
            .outputs = {},
            .attrs = std::move(attrs),
            .phase = Phase::kBackward};
  if (absl::Status s = ValidateAttributes(node, *schema); !s.ok()) {
    return absl::InternalError(absl::StrCat("backward node '", node.name, "': ", s.message()));
  }
  std::vector<TensorType> input_types;
  for (int32_t in : node.inputs) input_types.push_back({g_.tensors[in].dtype, g_.tensors[in].shape});
  absl::StatusOr<std::vector<TensorType>> outputs = InferNodeOutputs(node, *schema, input_types);
  if (!outputs.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("backward node '", node.name, "' (", node.op, "): ", outputs.status().message()));
  }
  for (size_t i = 0; i < outputs->size(); ++i) {
    const std::string tensor_name =
        outputs->size() == 1 ? node.name : UniqueName(absl::StrCat(node.name, ":", i));
    node.outputs.push_back(g_.AddTensor(Tensor{.name = tensor_name,
                                               .dtype = (*outputs)[i].dtype,
                                               .shape = (*outputs)[i].shape,
                                               .role = TensorRole::kGradient}));
  }
  // A single-output node's tensor shares the node's name: tensor and node names live in
  // separate namespaces in the file, and the shared name makes traces easier to read.
  is_final_grad_.resize(g_.tensors.size(), false);
  std::vector<int32_t> ids = node.outputs;
  g_.AddNode(std::move(node));
  return ids;
}

absl::Status BackwardBuilder::Finalize(int32_t tensor) {
  std::vector<int32_t>& parts = contributions_[tensor];
  const Tensor& target = g_.tensors[tensor];
  const bool is_param = target.role == TensorRole::kParameter;
  if (parts.empty()) {
    if (is_param) {
      return absl::InvalidArgumentError(absl::StrCat(
          "parameter '", target.name, "' gets no gradient from the loss (it would never train)"));
    }
    return absl::OkStatus();
  }
  const std::string grad_name = absl::StrCat(target.name, ".grad");
  int32_t total = parts[0];
  for (size_t k = 1; k < parts.size(); ++k) {
    const bool last = k + 1 == parts.size();
    absl::StatusOr<std::vector<int32_t>> sum =
        Emit("Add", {total, parts[k]}, {},
             UniqueName(last ? grad_name : absl::StrCat(grad_name, ".partial", k)));
    if (!sum.ok()) return sum.status();
    total = sum->front();
  }
  if (parts.size() == 1 && is_param && is_final_grad_[total]) {
    // The contribution already stands for another tensor's gradient (an Add passes its input
    // gradient through). A parameter's gradient must be its own tensor, since the runtime
    // places it in a bucket, so copy it.
    absl::StatusOr<std::vector<int32_t>> copy =
        Emit("Reshape", {total}, {{"shape", target.shape}}, UniqueName(grad_name));
    if (!copy.ok()) return copy.status();
    total = copy->front();
  } else if (parts.size() == 1 && !is_final_grad_[total] && !names_.contains(grad_name)) {
    // A fresh tensor made for this gradient alone: give it the readable name.
    names_.insert(grad_name);
    g_.tensors[total].name = grad_name;
  }
  final_grad_[tensor] = total;
  is_final_grad_[total] = true;
  if (is_param) g_.param_grads.push_back(ParamGrad{tensor, total});
  return absl::OkStatus();
}

absl::Status BackwardBuilder::VisitNode(size_t index) {
  const Node node = g_.nodes[index];
  const OpSchema* schema = registry_.Find(node.op, node.op_version);
  std::vector<int32_t> output_grads;
  bool any_grad_flows = false;
  for (int32_t out : node.outputs) {
    output_grads.push_back(final_grad_[out]);
    any_grad_flows |= final_grad_[out] != kNoTensor || out == g_.loss;
  }
  std::vector<bool> needs(node.inputs.size(), false);
  bool any_needed = false;
  for (size_t k = 0; k < node.inputs.size(); ++k) {
    needs[k] = requires_grad_[node.inputs[k]];
    any_needed |= needs[k];
  }
  std::vector<int32_t> input_grads(node.inputs.size(), kNoTensor);
  if (any_grad_flows && any_needed) {
    if (!schema->gradient) {
      return absl::InvalidArgumentError(absl::StrCat(
          "node '", node.name, "' (", node.op, ") has no gradient rule, but the loss needs one"));
    }
    NodeGradContext ctx(*this, g_, node, *schema, std::move(output_grads), needs, g_.loss);
    if (absl::Status s = schema->gradient(ctx); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("gradient of node '", node.name, "' (", node.op,
                                                 "): ", s.message()));
    }
    input_grads = ctx.input_grads();
  }
  for (size_t k = 0; k < node.inputs.size(); ++k) {
    const int32_t in = node.inputs[k];
    if (!needs[k]) continue;
    if (input_grads[k] != kNoTensor) contributions_[in].push_back(input_grads[k]);
    if (--pending_consumers_[in] == 0) {
      if (absl::Status s = Finalize(in); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::Status BackwardBuilder::Run() {
  if (g_.loss == kNoTensor) return absl::InvalidArgumentError("the graph has no loss tensor");
  for (const Node& n : g_.nodes) {
    if (n.phase == Phase::kBackward) {
      return absl::InvalidArgumentError(
          absl::StrCat("the graph already has a backward pass (node '", n.name, "')"));
    }
  }
  if (absl::Status s = VerifyGraph(g_, registry_); !s.ok()) return s;

  const size_t num_tensors = g_.tensors.size();
  const size_t num_forward = g_.nodes.size();
  requires_grad_.assign(num_tensors, false);
  for (size_t t = 0; t < num_tensors; ++t) {
    requires_grad_[t] = g_.tensors[t].role == TensorRole::kParameter;
  }
  for (const Node& n : g_.nodes) {
    bool any = false;
    for (int32_t in : n.inputs) any |= requires_grad_[in];
    for (int32_t out : n.outputs) requires_grad_[out] = requires_grad_[out] || any;
  }
  reaches_loss_.assign(num_tensors, false);
  reaches_loss_[g_.loss] = true;
  std::vector<bool> node_matters(num_forward, false);
  for (size_t i = num_forward; i-- > 0;) {
    for (int32_t out : g_.nodes[i].outputs) node_matters[i] = node_matters[i] || reaches_loss_[out];
    if (node_matters[i]) {
      for (int32_t in : g_.nodes[i].inputs) reaches_loss_[in] = true;
    }
  }
  // Only tensors that both depend on a parameter and feed the loss carry gradients.
  for (size_t t = 0; t < num_tensors; ++t) {
    requires_grad_[t] = requires_grad_[t] && reaches_loss_[t];
  }

  pending_consumers_.assign(num_tensors, 0);
  for (size_t i = 0; i < num_forward; ++i) {
    if (!node_matters[i]) continue;
    for (int32_t in : g_.nodes[i].inputs) {
      if (requires_grad_[in]) ++pending_consumers_[in];
    }
  }
  for (size_t t = 0; t < num_tensors; ++t) {
    if (g_.tensors[t].role == TensorRole::kParameter && pending_consumers_[t] == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "parameter '", g_.tensors[t].name, "' does not affect the loss (it would never train)"));
    }
  }
  contributions_.assign(num_tensors, {});
  final_grad_.assign(num_tensors, kNoTensor);
  is_final_grad_.assign(num_tensors, false);

  for (size_t i = num_forward; i-- > 0;) {
    if (!node_matters[i]) continue;
    if (absl::Status s = VisitNode(i); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status AppendBackward(Graph& graph, const OpRegistry& registry) {
  Graph work = graph;  // the caller's graph is untouched unless the whole pass succeeds
  BackwardBuilder builder(work, registry);
  if (absl::Status s = builder.Run(); !s.ok()) return s;
  graph = std::move(work);
  return absl::OkStatus();
}

}  // namespace gradflow::graph
