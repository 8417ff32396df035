// Reshape and Flatten: the same data under another shape. Both differentiate to a Reshape back.
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/schemas/schema_util.h"
#include "ops/schemas/schemas.h"

namespace gradflow::ops {
namespace {

using graph::InferContext;
using graph::kBatch;
using graph::Shape;
using graph::ShapeToString;
using graph::TensorType;

constexpr std::string_view kReshapeInputs[] = {"x"};

bool HasBatch(const Shape& shape) { return !shape.empty() && shape[0] == kBatch; }

// Product of dims[begin, end), the batch counted as 1. Cannot overflow: every shape reaching a
// shape function passed CheckShapeDims.
int64_t Product(const Shape& dims, size_t begin, size_t end) {
  int64_t product = 1;
  for (size_t i = begin; i < end; ++i) product *= dims[i] == kBatch ? 1 : dims[i];
  return product;
}

absl::StatusOr<std::vector<TensorType>> InferFlatten(const InferContext& ctx) {
  OpInputs in(ctx, kReshapeInputs);
  const Shape& x = in.shape(0);
  const int64_t axis = ctx.attrs.Int("axis");
  const auto rank = static_cast<int64_t>(x.size());
  if (axis < 0 || axis > rank) {
    return absl::InvalidArgumentError(absl::StrCat("attribute axis must be in [0, ", rank, "] for ",
                                                   in.Name(0), " ", ShapeToString(x), ", got ",
                                                   axis));
  }
  const auto split = static_cast<size_t>(axis);
  int64_t leading = Product(x, 0, split);
  if (HasBatch(x)) {
    // The batch can only stay symbolic as a whole leading dimension of its own.
    if (axis != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("attribute axis ", axis, " would merge the batch dimension of ", in.Name(0),
                       " ", ShapeToString(x), " with other dimensions; use axis 1"));
    }
    leading = kBatch;
  }
  return std::vector<TensorType>{{in.dtype(0), {leading, Product(x, split, x.size())}}};
}

absl::StatusOr<std::vector<TensorType>> InferReshape(const InferContext& ctx) {
  OpInputs in(ctx, kReshapeInputs);
  const Shape& x = in.shape(0);
  Shape target = ctx.attrs.Ints("shape");
  OPS_RETURN_IF_ERROR(CheckShapeDims(target, /*allow_batch=*/true, "attribute shape"));
  if (HasBatch(x) && !HasBatch(target)) {
    return absl::InvalidArgumentError(absl::StrCat("attribute shape ", ShapeToString(target),
                                                   " must start with N (the batch) because ",
                                                   in.Name(0), " ", ShapeToString(x), " does"));
  }
  // Binding the batch rewrites tensor shapes but not attributes: an N in the attribute then
  // stands for x's bound dimension 0.
  const bool per_example = HasBatch(target);
  if (per_example && !HasBatch(x)) {
    if (x.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("attribute shape ", ShapeToString(target),
                                                     " starts with N (the batch) but ", in.Name(0),
                                                     " is a scalar"));
    }
    target[0] = x[0];
  }
  const size_t first = per_example ? 1 : 0;
  const int64_t target_elements = Product(target, first, target.size());
  const int64_t x_elements = Product(x, first, x.size());
  if (target_elements != x_elements) {
    return absl::InvalidArgumentError(
        absl::StrCat("attribute shape ", ShapeToString(ctx.attrs.Ints("shape")), " holds ",
                     target_elements, per_example ? " elements per example" : " elements", " but ",
                     in.Name(0), " ", ShapeToString(x), " holds ", x_elements));
  }
  return std::vector<TensorType>{{in.dtype(0), target}};
}

absl::Status ReshapeBackGradient(graph::GradContext& ctx) {
  const int32_t dy = ctx.output_grad(0);
  if (dy == graph::kNoTensor || !ctx.needs_input_grad(0)) return absl::OkStatus();
  OPS_ASSIGN_OR_RETURN(
      int32_t dx, EmitOne(ctx, "Reshape", {dy}, {{"shape", ctx.tensor(ctx.input(0)).shape}}, "dx"));
  ctx.SetInputGrad(0, dx);
  return absl::OkStatus();
}

graph::OpCost CopyCost(const graph::CostContext& ctx) { return ElementwiseCost(ctx, 0); }

}  // namespace

void RegisterReshape(graph::OpRegistry& registry) {
  MustRegister(registry,
               {.name = "Reshape",
                .attrs = {{"shape", std::vector<int64_t>{}, /*required=*/true}},
                .doc = "Same elements under attribute shape (N in dimension 0 is the batch)",
                .infer = InferReshape,
                .gradient = ReshapeBackGradient,
                .cost = CopyCost},
               kReshapeInputs);
  MustRegister(registry,
               {.name = "Flatten",
                .attrs = {{"axis", int64_t{1}}},
                .doc = "Collapse to 2-D: x -> [prod(dims before axis), prod(dims from axis)]",
                .infer = InferFlatten,
                .gradient = ReshapeBackGradient,
                .cost = CopyCost},
               kReshapeInputs);
}

}  // namespace gradflow::ops
