// Checks and arithmetic shared by the op schemas. Shape functions run on untrusted files, so every
// helper here reports bad input as an InvalidArgument and never overflows.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "graph/op_schema.h"
#include "graph/types.h"

// Abseil 20220623 has no public RETURN_IF_ERROR / ASSIGN_OR_RETURN. OPS_ASSIGN_OR_RETURN declares
// a temporary named after the line, so use it at most once per line.
#define OPS_RETURN_IF_ERROR(expr)              \
  do {                                         \
    ::absl::Status ops_status_ = (expr);       \
    if (!ops_status_.ok()) return ops_status_; \
  } while (false)

#define OPS_CONCAT_INNER_(a, b) a##b
#define OPS_CONCAT_(a, b) OPS_CONCAT_INNER_(a, b)
#define OPS_ASSIGN_OR_RETURN(lhs, expr) \
  OPS_ASSIGN_OR_RETURN_IMPL_(OPS_CONCAT_(ops_statusor_, __LINE__), lhs, expr)
#define OPS_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                               \
  if (!statusor.ok()) return statusor.status();         \
  lhs = std::move(statusor).value()

namespace gradflow::ops {

// This Abseil is built without std aliases, so absl::StrCat does not take a std::string_view.
inline absl::string_view ToAbsl(std::string_view view) { return {view.data(), view.size()}; }

// nullopt when the result does not fit in int64.
std::optional<int64_t> CheckedAdd(int64_t a, int64_t b);
std::optional<int64_t> CheckedMul(int64_t a, int64_t b);

bool IsFloatDType(graph::DType dtype);
bool IsLabelDType(graph::DType dtype);
// Any of the element types the IR defines (a file may hold any byte there).
bool IsKnownDType(graph::DType dtype);

// A shape every op can work with: dimension 0 may be kBatch when `allow_batch`, every other
// dimension is positive, and one example's bytes (batch taken as 1, 8-byte elements) fit in
// int64, so that element counts computed later cannot overflow. `what` names the shape
// ("input 0 (x)", "attribute input_shape").
absl::Status CheckShapeDims(const graph::Shape& shape, bool allow_batch, std::string_view what);

// Two attribute values [h, w], each at least `min_value`.
absl::StatusOr<std::array<int64_t, 2>> PairAttr(const graph::Attrs& attrs, std::string_view name,
                                                int64_t min_value);
// An int attribute in [min_value, max_value].
absl::StatusOr<int64_t> IntAttrInRange(const graph::Attrs& attrs, std::string_view name,
                                       int64_t min_value, int64_t max_value);

// A shape held in an ints attribute (a backward op's input_shape): `rank` values that pass
// CheckShapeDims. `layout` shows the expected dimensions in errors ("[N,C,H,W]").
absl::StatusOr<graph::Shape> ShapeAttr(const graph::Attrs& attrs, std::string_view name,
                                       size_t rank, std::string_view layout, bool allow_batch);

// Output size of a sliding window along one spatial axis, floor mode:
// floor((in + 2*pad - dilation*(kernel-1) - 1) / stride) + 1. Expects in, kernel, stride and
// dilation positive and pad non-negative; fails when the (dilated) window does not fit the padded
// input or the arithmetic would overflow. `axis` names the axis ("height", "width").
absl::StatusOr<int64_t> WindowOutputSize(int64_t in, int64_t kernel, int64_t stride, int64_t pad,
                                         int64_t dilation, std::string_view axis);

// Dimension 0 of a backward op's result, when a shape attribute recorded the forward input with
// kBatch (attributes are not rebound when the batch is) and the incoming gradient knows it.
inline int64_t ResolveBatchDim(int64_t attr_dim0, int64_t grad_dim0) {
  return attr_dim0 == graph::kBatch ? grad_dim0 : attr_dim0;
}

// The inputs of one node under their schema names, with checks whose errors name the input
// ("input 1 (w)") and show expected and actual shapes.
class OpInputs {
 public:
  OpInputs(const graph::InferContext& ctx, std::span<const std::string_view> names)
      : inputs_(ctx.inputs), names_(names) {}

  int size() const { return static_cast<int>(inputs_.size()); }
  bool has(int i) const { return i >= 0 && i < size(); }
  const graph::TensorType& type(int i) const { return inputs_[i]; }
  const graph::Shape& shape(int i) const { return inputs_[i].shape; }
  graph::DType dtype(int i) const { return inputs_[i].dtype; }
  std::string Name(int i) const;

  absl::Status CheckRank(int i, size_t rank, std::string_view layout) const;
  absl::Status CheckMinRank(int i, size_t min_rank, std::string_view layout) const;
  absl::Status CheckShape(int i, const graph::Shape& expected) const;
  // Parameters and the like: a batch dimension makes no sense there.
  absl::Status CheckNoBatch(int i) const;
  // Each listed input that is present has a float dtype, the same as the first listed one.
  absl::Status CheckFloats(std::initializer_list<int> indices) const;
  absl::Status CheckLabels(int i) const;
  // Dimension 0 of two inputs is the same example count: both kBatch or the same number.
  absl::Status CheckSameBatch(int i, int j) const;

 private:
  std::span<const graph::TensorType> inputs_;
  std::span<const std::string_view> names_;
};

// Registers `schema`, wrapping its shape function so that it runs only on inputs that pass the
// checks every op shares (input count, known dtypes, CheckShapeDims) and that its outputs pass
// CheckShapeDims too: op shape functions may rely on that. `input_names` names each input the
// schema can take. A registration failure is a programming error: it aborts with a message.
void MustRegister(graph::OpRegistry& registry, graph::OpSchema schema,
                  std::span<const std::string_view> input_names);

// Cost helpers: counts in double so that large batches never overflow.
double NumElements(const graph::TensorType& type);
double Bytes(const graph::TensorType& type);
// Bytes of every input and output, each touched once.
double OperandBytes(const graph::CostContext& ctx);
// A cost of `flops_per_element` operations per element of output 0, plus operand bytes.
graph::OpCost ElementwiseCost(const graph::CostContext& ctx, double flops_per_element);
// Dimension i of a shape, 0 when the shape is shorter (costs never index out of range).
double DimOrZero(const graph::Shape& shape, size_t i);

// Emits a backward op that has exactly one output and returns that output.
absl::StatusOr<int32_t> EmitOne(graph::GradContext& ctx, std::string_view op,
                                std::vector<int32_t> inputs, graph::AttrMap attrs,
                                std::string_view suffix);

}  // namespace gradflow::ops
