#include "ops/schemas/schema_util.h"

#include <cstdio>
#include <cstdlib>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace gradflow::ops {
namespace {

using graph::DType;
using graph::kBatch;
using graph::Shape;
using graph::ShapeToString;

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
// The widest element type: sizing every check by it keeps byte counts in range for any dtype.
constexpr int64_t kMaxElementBytes = 8;

std::string ValuesToString(const std::vector<int64_t>& values) {
  return absl::StrCat("[", absl::StrJoin(values, ","), "]");
}

std::string BoundText(int64_t min_value) {
  if (min_value == 1) return "positive";
  if (min_value == 0) return "non-negative";
  return absl::StrCat("at least ", min_value);
}

}  // namespace

std::optional<int64_t> CheckedAdd(int64_t a, int64_t b) {
  int64_t sum;
  if (__builtin_add_overflow(a, b, &sum)) return std::nullopt;
  return sum;
}

std::optional<int64_t> CheckedMul(int64_t a, int64_t b) {
  int64_t product;
  if (__builtin_mul_overflow(a, b, &product)) return std::nullopt;
  return product;
}

bool IsFloatDType(DType dtype) {
  return dtype == DType::kFloat32 || dtype == DType::kFloat64 || dtype == DType::kFloat16 ||
         dtype == DType::kBFloat16;
}

bool IsLabelDType(DType dtype) { return dtype == DType::kInt32 || dtype == DType::kInt64; }

bool IsKnownDType(DType dtype) { return IsFloatDType(dtype) || IsLabelDType(dtype); }

absl::Status CheckShapeDims(const Shape& shape, bool allow_batch, std::string_view what) {
  int64_t elements = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    const int64_t dim = shape[i];
    if (dim == kBatch && i == 0 && allow_batch) continue;
    if (dim == kBatch) {
      return absl::InvalidArgumentError(
          i == 0 ? absl::StrCat(ToAbsl(what), " must not have a batch dimension, got ",
                                ShapeToString(shape))
                 : absl::StrCat(ToAbsl(what), " has the batch dimension N at dimension ", i, " of ",
                                ShapeToString(shape), "; only dimension 0 may be the batch"));
    }
    if (dim == 0) {
      return absl::InvalidArgumentError(absl::StrCat(ToAbsl(what), " has dimension ", i,
                                                     " of size 0 in ", ShapeToString(shape),
                                                     "; empty tensors are not supported"));
    }
    if (dim < 0) {
      return absl::InvalidArgumentError(absl::StrCat(ToAbsl(what), " has negative dimension ", i,
                                                     " (", dim, ") in ", ShapeToString(shape)));
    }
    std::optional<int64_t> product = CheckedMul(elements, dim);
    if (!product || *product > kInt64Max / kMaxElementBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(ToAbsl(what), " ", ShapeToString(shape),
                       " is too large: one example would exceed 2^63 bytes"));
    }
    elements = *product;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::array<int64_t, 2>> PairAttr(const graph::Attrs& attrs, std::string_view name,
                                                int64_t min_value) {
  const std::vector<int64_t>& values = attrs.Ints(name);
  if (values.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat("attribute ", ToAbsl(name),
                                                   " must have 2 values [h,w], got ", values.size(),
                                                   ": ", ValuesToString(values)));
  }
  if (values[0] < min_value || values[1] < min_value) {
    return absl::InvalidArgumentError(absl::StrCat("attribute ", ToAbsl(name), " must be ",
                                                   BoundText(min_value), ", got ",
                                                   ValuesToString(values)));
  }
  return std::array<int64_t, 2>{values[0], values[1]};
}

absl::StatusOr<int64_t> IntAttrInRange(const graph::Attrs& attrs, std::string_view name,
                                       int64_t min_value, int64_t max_value) {
  const int64_t value = attrs.Int(name);
  if (value >= min_value && value <= max_value) return value;
  std::string expected = max_value == kInt64Max ? BoundText(min_value)
                         : max_value == min_value + 1
                             ? absl::StrCat(min_value, " or ", max_value)
                             : absl::StrCat("in [", min_value, ", ", max_value, "]");
  return absl::InvalidArgumentError(
      absl::StrCat("attribute ", ToAbsl(name), " must be ", expected, ", got ", value));
}

absl::StatusOr<Shape> ShapeAttr(const graph::Attrs& attrs, std::string_view name, size_t rank,
                                std::string_view layout, bool allow_batch) {
  const std::vector<int64_t>& values = attrs.Ints(name);
  if (values.size() != rank) {
    return absl::InvalidArgumentError(absl::StrCat("attribute ", ToAbsl(name), " must have ", rank,
                                                   " values ", ToAbsl(layout), ", got ",
                                                   values.size(), ": ", ValuesToString(values)));
  }
  OPS_RETURN_IF_ERROR(
      CheckShapeDims(values, allow_batch, absl::StrCat("attribute ", ToAbsl(name))));
  return values;
}

absl::StatusOr<int64_t> WindowOutputSize(int64_t in, int64_t kernel, int64_t stride, int64_t pad,
                                         int64_t dilation, std::string_view axis) {
  std::optional<int64_t> span = CheckedMul(dilation, kernel - 1);
  std::optional<int64_t> window = span ? CheckedAdd(*span, 1) : std::nullopt;
  std::optional<int64_t> both_pads = CheckedMul(pad, 2);
  std::optional<int64_t> padded = both_pads ? CheckedAdd(in, *both_pads) : std::nullopt;
  if (!window || !padded) {
    return absl::InvalidArgumentError(
        absl::StrCat("window along ", ToAbsl(axis), " overflows int64 (input ", in, ", kernel ",
                     kernel, ", pad ", pad, ", dilation ", dilation, ")"));
  }
  if (*padded < *window) {
    std::string kernel_text = dilation == 1
                                  ? absl::StrCat("kernel ", ToAbsl(axis), " ", kernel)
                                  : absl::StrCat("dilated kernel ", ToAbsl(axis), " ", *window,
                                                 " (kernel ", kernel, ", dilation ", dilation, ")");
    return absl::InvalidArgumentError(absl::StrCat(kernel_text, " exceeds padded input ",
                                                   ToAbsl(axis), " ", *padded, " (", in, " + 2*",
                                                   pad, ")"));
  }
  return (*padded - *window) / stride + 1;
}

std::string OpInputs::Name(int i) const {
  if (i >= 0 && static_cast<size_t>(i) < names_.size()) {
    return absl::StrCat("input ", i, " (", ToAbsl(names_[i]), ")");
  }
  return absl::StrCat("input ", i);
}

absl::Status OpInputs::CheckRank(int i, size_t rank, std::string_view layout) const {
  if (shape(i).size() == rank) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      Name(i), " must have rank ", rank, " ", ToAbsl(layout), ", got ", ShapeToString(shape(i))));
}

absl::Status OpInputs::CheckMinRank(int i, size_t min_rank, std::string_view layout) const {
  if (shape(i).size() >= min_rank) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(Name(i), " must have rank >= ", min_rank, " ",
                                                 ToAbsl(layout), ", got ",
                                                 ShapeToString(shape(i))));
}

absl::Status OpInputs::CheckShape(int i, const Shape& expected) const {
  if (shape(i) == expected) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      Name(i), " must have shape ", ShapeToString(expected), ", got ", ShapeToString(shape(i))));
}

absl::Status OpInputs::CheckNoBatch(int i) const {
  if (shape(i).empty() || shape(i)[0] != kBatch) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(Name(i), " must not have a batch dimension, got ", ShapeToString(shape(i))));
}

absl::Status OpInputs::CheckFloats(std::initializer_list<int> indices) const {
  int first = -1;
  for (int i : indices) {
    if (!has(i)) continue;
    if (!IsFloatDType(dtype(i))) {
      return absl::InvalidArgumentError(absl::StrCat(Name(i), " has dtype ",
                                                     graph::DTypeName(dtype(i)),
                                                     ", expected a float type (f32, f64, f16, "
                                                     "bf16)"));
    }
    if (first < 0) {
      first = i;
    } else if (dtype(i) != dtype(first)) {
      return absl::InvalidArgumentError(absl::StrCat(
          Name(i), " has dtype ", graph::DTypeName(dtype(i)), " but ", Name(first), " has ",
          graph::DTypeName(dtype(first)), "; float operands must share one dtype"));
    }
  }
  return absl::OkStatus();
}

absl::Status OpInputs::CheckLabels(int i) const {
  if (IsLabelDType(dtype(i))) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(Name(i), " has dtype ", graph::DTypeName(dtype(i)),
                                                 ", expected a label type (i32 or i64)"));
}

absl::Status OpInputs::CheckSameBatch(int i, int j) const {
  if (!shape(i).empty() && !shape(j).empty() && shape(i)[0] == shape(j)[0]) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(Name(i), " has shape ", ShapeToString(shape(i)),
                                                 " but ", Name(j), " has ", ShapeToString(shape(j)),
                                                 "; their dimension 0 (the batch) must match"));
}

void MustRegister(graph::OpRegistry& registry, graph::OpSchema schema,
                  std::span<const std::string_view> input_names) {
  const std::string name = schema.name;
  if (input_names.size() != static_cast<size_t>(schema.max_inputs) || !schema.infer) {
    std::fprintf(stderr, "gradflow: op %s must name its %d inputs and have a shape function\n",
                 name.c_str(), schema.max_inputs);
    std::abort();
  }
  schema.infer =
      [infer = std::move(schema.infer),
       names = std::vector<std::string_view>(input_names.begin(), input_names.end()),
       min_inputs = schema.min_inputs, max_inputs = schema.max_inputs](
          const graph::InferContext& ctx) -> absl::StatusOr<std::vector<graph::TensorType>> {
    const int count = static_cast<int>(ctx.inputs.size());
    if (count < min_inputs || count > max_inputs) {
      return absl::InvalidArgumentError(
          min_inputs == max_inputs
              ? absl::StrCat("takes ", min_inputs, " inputs, got ", count)
              : absl::StrCat("takes ", min_inputs, " to ", max_inputs, " inputs, got ", count));
    }
    OpInputs in(ctx, names);
    for (int i = 0; i < count; ++i) {
      if (!IsKnownDType(in.dtype(i))) {
        return absl::InvalidArgumentError(
            absl::StrCat(in.Name(i), " has unknown dtype ", static_cast<int>(in.dtype(i))));
      }
      OPS_RETURN_IF_ERROR(CheckShapeDims(in.shape(i), /*allow_batch=*/true, in.Name(i)));
    }
    OPS_ASSIGN_OR_RETURN(std::vector<graph::TensorType> outputs, infer(ctx));
    for (size_t i = 0; i < outputs.size(); ++i) {
      OPS_RETURN_IF_ERROR(
          CheckShapeDims(outputs[i].shape, /*allow_batch=*/true, absl::StrCat("output ", i)));
    }
    return outputs;
  };
  if (absl::Status status = registry.Register(std::move(schema)); !status.ok()) {
    std::fprintf(stderr, "gradflow: registering op %s failed: %s\n", name.c_str(),
                 status.ToString().c_str());
    std::abort();
  }
}

double NumElements(const graph::TensorType& type) {
  double count = 1;
  for (int64_t dim : type.shape) count *= dim == kBatch ? 1.0 : static_cast<double>(dim);
  return count;
}

double Bytes(const graph::TensorType& type) {
  return NumElements(type) * static_cast<double>(graph::DTypeSize(type.dtype));
}

double OperandBytes(const graph::CostContext& ctx) {
  double bytes = 0;
  for (const graph::TensorType& type : ctx.inputs) bytes += Bytes(type);
  for (const graph::TensorType& type : ctx.outputs) bytes += Bytes(type);
  return bytes;
}

graph::OpCost ElementwiseCost(const graph::CostContext& ctx, double flops_per_element) {
  graph::OpCost cost;
  if (!ctx.outputs.empty()) cost.flops = flops_per_element * NumElements(ctx.outputs[0]);
  cost.bytes = OperandBytes(ctx);
  return cost;
}

double DimOrZero(const Shape& shape, size_t i) {
  return i < shape.size() ? static_cast<double>(shape[i]) : 0.0;
}

absl::StatusOr<int32_t> EmitOne(graph::GradContext& ctx, std::string_view op,
                                std::vector<int32_t> inputs, graph::AttrMap attrs,
                                std::string_view suffix) {
  OPS_ASSIGN_OR_RETURN(std::vector<int32_t> outputs,
                       ctx.Emit(op, std::move(inputs), std::move(attrs), suffix));
  if (outputs.size() != 1) {
    return absl::InternalError(
        absl::StrCat(ToAbsl(op), " was expected to produce 1 output, got ", outputs.size()));
  }
  return outputs[0];
}

}  // namespace gradflow::ops
