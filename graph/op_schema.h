// What the graph library knows about an operator, without any kernel: attributes, shape function,
// gradient rule and cost. Schemas are defined in ops/ and handed to graph functions through an
// OpRegistry, so that graph/ never depends on ops/.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "graph/attribute.h"
#include "graph/ir.h"
#include "graph/types.h"

namespace gradflow::graph {

struct OpSchema;

struct AttrDef {
  std::string name;
  AttrValue default_value;  // also fixes the attribute's type
  bool required = false;    // when true, default_value only gives the type
};

// Read access to a node's attributes with the schema's defaults filled in. Only valid on nodes
// whose attributes passed ValidateAttributes (names known, types right, required ones present).
class Attrs {
 public:
  Attrs(const Node& node, const OpSchema& schema) : node_(node), schema_(schema) {}
  int64_t Int(std::string_view name) const;
  float Float(std::string_view name) const;
  const std::vector<int64_t>& Ints(std::string_view name) const;
  const std::vector<float>& Floats(std::string_view name) const;
  const std::string& String(std::string_view name) const;

 private:
  const AttrValue& Get(std::string_view name) const;
  const Node& node_;
  const OpSchema& schema_;
};

// What a shape function sees: the node, its attributes and the types of its inputs. Shapes may
// hold kBatch in the leading dimension; shape functions carry it through.
struct InferContext {
  const Node& node;
  const Attrs& attrs;
  std::span<const TensorType> inputs;
};

// Work and traffic of one node at a bound batch size, for the planner, tracer and summary.
struct OpCost {
  double flops = 0;  // floating-point operations (a multiply-add counts 2)
  double macs = 0;   // multiply-accumulates of conv/matmul work (the usual "GMACs" figure)
  double bytes = 0;  // bytes read and written, assuming each operand is touched once
};

struct CostContext {
  const Node& node;
  const Attrs& attrs;
  std::span<const TensorType> inputs;   // batch bound
  std::span<const TensorType> outputs;  // batch bound
};

class GradContext;

struct OpSchema {
  std::string name;
  int32_t version = 1;
  int min_inputs = 1;
  int max_inputs = 1;  // inputs past min_inputs are optional and trailing
  std::vector<AttrDef> attrs;
  std::string doc;  // one line, shown by `modelc --ops`

  // Output types from input types; an InvalidArgument names what is wrong (the caller adds the
  // node). The number of types returned is the number of outputs a node must list (it may depend
  // on attributes, e.g. BatchNorm in training mode). Must never crash on bad attribute values or
  // shapes: loading runs it on untrusted files.
  std::function<absl::StatusOr<std::vector<TensorType>>(const InferContext&)> infer;
  // Emits the backward nodes of one forward node. Null for ops that have no gradient
  // (backward ops themselves).
  std::function<absl::Status(GradContext&)> gradient;
  std::function<OpCost(const CostContext&)> cost;

  const AttrDef* FindAttr(std::string_view attr_name) const;
};

class OpRegistry {
 public:
  // Fails on a second schema with the same (name, version).
  absl::Status Register(OpSchema schema);
  // Null when unknown.
  const OpSchema* Find(std::string_view op, int32_t version) const;
  // Any version of the op is known (to tell "unknown op" from "unknown version").
  bool HasOp(std::string_view op) const;
  int32_t LatestVersion(std::string_view op) const;  // 0 when unknown
  std::vector<const OpSchema*> All() const;          // sorted by name, then version

 private:
  absl::flat_hash_map<std::string, std::vector<std::unique_ptr<OpSchema>>> by_name_;
};

// Unknown names, wrong types and missing required attributes, as one InvalidArgument.
absl::Status ValidateAttributes(const Node& node, const OpSchema& schema);

// Checks the input count and attributes, and runs the node's shape function on the given input
// types. Does not look at node.outputs (builders call this before the outputs exist);
// VerifyGraph checks that a node lists as many outputs as this returns.
absl::StatusOr<std::vector<TensorType>> InferNodeOutputs(const Node& node, const OpSchema& schema,
                                                         std::span<const TensorType> inputs);

// The handle a gradient rule works through while autodiff builds the backward pass.
class GradContext {
 public:
  virtual ~GradContext() = default;
  virtual const Node& node() const = 0;
  virtual const Attrs& attrs() const = 0;
  virtual const Graph& graph() const = 0;
  int32_t input(int i) const { return node().inputs[i]; }
  int32_t output(int i) const { return node().outputs[i]; }
  int num_inputs() const { return static_cast<int>(node().inputs.size()); }
  // Emit appends tensors: a reference from tensor() does not survive a call to Emit.
  const Tensor& tensor(int32_t id) const { return graph().tensors[id]; }
  // Gradient flowing into output i, or kNoTensor when none does. For the loss tensor the seed is
  // implicit: an op that produces the loss treats a missing gradient as ones.
  virtual int32_t output_grad(int i) const = 0;
  virtual bool is_loss_output(int i) const = 0;
  // Whether input i needs a gradient (it is a parameter or depends on one).
  virtual bool needs_input_grad(int i) const = 0;
  // Appends a backward node named "<forward node>/<suffix>" and returns its output tensors, whose
  // types come from the op's shape function and whose role is kGradient.
  virtual absl::StatusOr<std::vector<int32_t>> Emit(std::string_view op,
                                                    std::vector<int32_t> inputs, AttrMap attrs,
                                                    std::string_view suffix) = 0;
  // Declares `grad` as this node's contribution to the gradient of input i.
  virtual void SetInputGrad(int i, int32_t grad) = 0;
};

}  // namespace gradflow::graph
