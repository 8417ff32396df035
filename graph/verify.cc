#include "graph/verify.h"

#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "graph/shape_inference.h"
#include "graph/topo.h"

namespace gradflow::graph {
namespace {

absl::Status Invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

std::string Describe(const Graph& g, int32_t tensor) {
  return absl::StrCat("tensor ", tensor, " '", g.tensors[tensor].name, "'");
}

bool IsFloat(DType dtype) {
  return dtype == DType::kFloat32 || dtype == DType::kFloat64 || dtype == DType::kFloat16 ||
         dtype == DType::kBFloat16;
}

absl::Status CheckTensors(const Graph& g) {
  absl::flat_hash_set<std::string_view> names;
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    const Tensor& t = g.tensors[i];
    const int32_t id = static_cast<int32_t>(i);
    if (t.name.empty()) return Invalid(absl::StrCat("tensor ", i, " has no name"));
    if (!names.insert(t.name).second) {
      return Invalid(absl::StrCat("tensor name '", t.name, "' is used twice"));
    }
    for (size_t d = 0; d < t.shape.size(); ++d) {
      const int64_t dim = t.shape[d];
      if (dim == kBatch && d == 0 && t.role != TensorRole::kParameter &&
          t.role != TensorRole::kState && t.role != TensorRole::kConstant) {
        continue;
      }
      if (dim < 0) {
        return Invalid(absl::StrCat(Describe(g, id), " (", TensorRoleName(t.role),
                                    ") has invalid dimension ", dim, " at axis ", d,
                                    " (only axis 0 of data tensors may be the batch, -1)"));
      }
    }
    if (t.buffer != -1) {
      if (t.buffer < 0 || static_cast<size_t>(t.buffer) >= g.buffers.size()) {
        return Invalid(absl::StrCat(Describe(g, id), " refers to buffer ", t.buffer, ", but the graph has ",
                                    g.buffers.size()));
      }
      const uint64_t want = static_cast<uint64_t>(NumElements(t.shape)) * DTypeSize(t.dtype);
      if (g.buffers[t.buffer].data.size() != want) {
        return Invalid(absl::StrCat(Describe(g, id), " needs ", want, " bytes of data, buffer ",
                                    t.buffer, " holds ", g.buffers[t.buffer].data.size()));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckRootReferences(const Graph& g) {
  const int32_t count = static_cast<int32_t>(g.tensors.size());
  auto in_range = [count](int32_t t) { return t >= 0 && t < count; };
  for (int32_t t : g.inputs) {
    if (!in_range(t)) return Invalid(absl::StrCat("graph input index ", t, " is out of range (", count, " tensors)"));
    if (g.tensors[t].role != TensorRole::kInput) {
      return Invalid(absl::StrCat("graph input ", Describe(g, t), " has role ",
                                  TensorRoleName(g.tensors[t].role), ", expected input"));
    }
  }
  for (int32_t t : g.labels) {
    if (!in_range(t)) return Invalid(absl::StrCat("graph label index ", t, " is out of range (", count, " tensors)"));
    if (g.tensors[t].role != TensorRole::kLabel) {
      return Invalid(absl::StrCat("graph label ", Describe(g, t), " has role ",
                                  TensorRoleName(g.tensors[t].role), ", expected label"));
    }
  }
  if (g.loss != kNoTensor) {
    if (!in_range(g.loss)) return Invalid(absl::StrCat("loss index ", g.loss, " is out of range (", count, " tensors)"));
    const Tensor& loss = g.tensors[g.loss];
    if (!loss.shape.empty() || !IsFloat(loss.dtype)) {
      return Invalid(absl::StrCat("loss ", Describe(g, g.loss), " must be a float scalar, is ",
                                  DTypeName(loss.dtype), ShapeToString(loss.shape)));
    }
  }
  absl::flat_hash_set<int32_t> params_seen;
  absl::flat_hash_set<int32_t> grads_seen;
  for (const ParamGrad& pg : g.param_grads) {
    if (!in_range(pg.param) || !in_range(pg.grad)) {
      return Invalid(absl::StrCat("parameter/gradient pair (", pg.param, ", ", pg.grad,
                                  ") is out of range (", count, " tensors)"));
    }
    const Tensor& p = g.tensors[pg.param];
    const Tensor& d = g.tensors[pg.grad];
    if (p.role != TensorRole::kParameter) {
      return Invalid(absl::StrCat(Describe(g, pg.param), " has a gradient but is a ",
                                  TensorRoleName(p.role), ", not a parameter"));
    }
    if (d.role != TensorRole::kGradient) {
      return Invalid(absl::StrCat("gradient of '", p.name, "' is ", Describe(g, pg.grad),
                                  " with role ", TensorRoleName(d.role)));
    }
    if (p.shape != d.shape || p.dtype != d.dtype) {
      return Invalid(absl::StrCat("gradient '", d.name, "' is ", DTypeName(d.dtype),
                                  ShapeToString(d.shape), " but parameter '", p.name, "' is ",
                                  DTypeName(p.dtype), ShapeToString(p.shape)));
    }
    if (!params_seen.insert(pg.param).second) {
      return Invalid(absl::StrCat("parameter '", p.name, "' has more than one gradient"));
    }
    if (!grads_seen.insert(pg.grad).second) {
      return Invalid(absl::StrCat("tensor '", d.name, "' is the gradient of two parameters"));
    }
  }
  return absl::OkStatus();
}

// Known op, valid attributes, indices in range, unique node names, single writers.
absl::Status CheckNodes(const Graph& g, const OpRegistry& registry) {
  const int32_t count = static_cast<int32_t>(g.tensors.size());
  absl::flat_hash_set<std::string_view> names;
  std::vector<int32_t> writer(g.tensors.size(), -1);
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const Node& node = g.nodes[n];
    const std::string where = absl::StrCat("node ", n, " '", node.name, "' (", node.op, ")");
    if (node.name.empty()) return Invalid(absl::StrCat("node ", n, " (", node.op, ") has no name"));
    if (!names.insert(node.name).second) {
      return Invalid(absl::StrCat("node name '", node.name, "' is used twice"));
    }
    const OpSchema* schema = registry.Find(node.op, node.op_version);
    if (schema == nullptr) {
      if (!registry.HasOp(node.op)) return Invalid(absl::StrCat(where, ": unknown op '", node.op, "'"));
      return Invalid(absl::StrCat(where, ": op version ", node.op_version,
                                  " is not known (this build knows up to version ",
                                  registry.LatestVersion(node.op), ")"));
    }
    if (absl::Status s = ValidateAttributes(node, *schema); !s.ok()) {
      return Invalid(absl::StrCat(where, ": ", s.message()));
    }
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const int32_t t = node.inputs[i];
      if (t < 0 || t >= count) {
        return Invalid(absl::StrCat(where, ": input ", i, " refers to tensor ", t,
                                    ", out of range (", count, " tensors)"));
      }
    }
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      const int32_t t = node.outputs[i];
      if (t < 0 || t >= count) {
        return Invalid(absl::StrCat(where, ": output ", i, " refers to tensor ", t,
                                    ", out of range (", count, " tensors)"));
      }
      if (IsSourceRole(g.tensors[t].role)) {
        return Invalid(absl::StrCat(where, " writes ", Describe(g, t), ", which is a ",
                                    TensorRoleName(g.tensors[t].role), " and may only be read"));
      }
      if (writer[t] >= 0) {
        return Invalid(absl::StrCat(Describe(g, t), " is written twice: by node '",
                                    g.nodes[writer[t]].name, "' and by node '", node.name, "'"));
      }
      writer[t] = static_cast<int32_t>(n);
    }
  }
  return absl::OkStatus();
}

// Every tensor a node reads exists by then: a source, or written by an earlier node.
absl::Status CheckOrder(const Graph& g) {
  const std::vector<int32_t> writer = g.ProducerOfEachTensor();
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const Node& node = g.nodes[n];
    for (int32_t t : node.inputs) {
      if (IsSourceRole(g.tensors[t].role)) continue;
      if (writer[t] < 0) {
        return Invalid(absl::StrCat("node '", node.name, "' reads ", Describe(g, t),
                                    ", which no node writes"));
      }
      if (static_cast<size_t>(writer[t]) >= n) {
        // Either a cycle, or a valid graph listed out of order: tell which.
        if (absl::StatusOr<std::vector<int32_t>> order = TopologicalOrder(g); !order.ok()) {
          return order.status();
        }
        return Invalid(absl::StrCat("node '", node.name, "' reads ", Describe(g, t),
                                    " before node '", g.nodes[writer[t]].name,
                                    "' writes it (nodes must be listed in execution order)"));
      }
    }
  }
  if (g.loss != kNoTensor && writer[g.loss] < 0) {
    return Invalid(absl::StrCat("loss ", Describe(g, g.loss), " is not written by any node"));
  }
  for (const ParamGrad& pg : g.param_grads) {
    if (writer[pg.grad] < 0) {
      return Invalid(absl::StrCat("gradient ", Describe(g, pg.grad), " of parameter '",
                                  g.tensors[pg.param].name, "' is not written by any node"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckShapes(const Graph& g, const OpRegistry& registry) {
  absl::StatusOr<std::vector<TensorType>> inferred = InferTensorTypes(g, registry);
  if (!inferred.ok()) return inferred.status();
  // Nodes in order, so the first mismatch reported is where the disagreement starts.
  for (const Node& node : g.nodes) {
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      const int32_t t = node.outputs[i];
      const Tensor& declared = g.tensors[t];
      const TensorType& want = (*inferred)[t];
      if (declared.shape != want.shape || declared.dtype != want.dtype) {
        return Invalid(absl::StrCat("node '", node.name, "' (", node.op, "): output ", i, " '",
                                    declared.name, "' is declared ", DTypeName(declared.dtype),
                                    ShapeToString(declared.shape), " but shape inference gives ",
                                    DTypeName(want.dtype), ShapeToString(want.shape)));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status VerifyGraph(const Graph& graph, const OpRegistry& registry) {
  for (auto check : {CheckTensors, CheckRootReferences}) {
    if (absl::Status s = check(graph); !s.ok()) return s;
  }
  if (absl::Status s = CheckNodes(graph, registry); !s.ok()) return s;
  if (absl::Status s = CheckOrder(graph); !s.ok()) return s;
  return CheckShapes(graph, registry);
}

}  // namespace gradflow::graph
