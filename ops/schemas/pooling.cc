// MaxPool, AvgPool and GlobalAvgPool (NCHW, floor mode, symmetric padding) and the backward ops
// their gradients emit.
#include <array>
#include <functional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/schemas/schema_util.h"
#include "ops/schemas/schemas.h"

namespace gradflow::ops {
namespace {

using graph::AttrDef;
using graph::AttrMap;
using graph::Attrs;
using graph::CostContext;
using graph::InferContext;
using graph::OpCost;
using graph::Shape;
using graph::ShapeToString;
using graph::TensorType;

constexpr std::string_view kPoolInputs[] = {"x"};
constexpr std::string_view kMaxPoolGradInputs[] = {"dy", "x", "y"};
constexpr std::string_view kGradInputs[] = {"dy"};
constexpr std::string_view kImageLayout = "[N,C,H,W]";
constexpr std::string_view kOutputLayout = "[N,C,OH,OW]";

struct PoolParams {
  std::array<int64_t, 2> kernel;
  std::array<int64_t, 2> strides;
  std::array<int64_t, 2> pads;
};

std::vector<AttrDef> PoolAttrDefs() {
  return {{"kernel", std::vector<int64_t>{}, /*required=*/true},
          {"strides", std::vector<int64_t>{1, 1}},
          {"pads", std::vector<int64_t>{0, 0}}};
}

std::vector<AttrDef> AvgPoolAttrDefs() {
  std::vector<AttrDef> defs = PoolAttrDefs();
  defs.push_back({"count_include_pad", int64_t{1}});
  return defs;
}

absl::StatusOr<PoolParams> ReadPoolParams(const Attrs& attrs) {
  PoolParams params;
  OPS_ASSIGN_OR_RETURN(params.kernel, PairAttr(attrs, "kernel", 1));
  OPS_ASSIGN_OR_RETURN(params.strides, PairAttr(attrs, "strides", 1));
  OPS_ASSIGN_OR_RETURN(params.pads, PairAttr(attrs, "pads", 0));
  // PyTorch's rule: a window never lies wholly in the padding, so every max is of real values.
  for (int i = 0; i < 2; ++i) {
    if (params.pads[i] > params.kernel[i] / 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "attribute pads [", params.pads[0], ",", params.pads[1],
          "] must be at most half of kernel [", params.kernel[0], ",", params.kernel[1], "]"));
    }
  }
  return params;
}

AttrMap PoolAttrMap(const Attrs& attrs) {
  return {{"kernel", attrs.Ints("kernel")},
          {"strides", attrs.Ints("strides")},
          {"pads", attrs.Ints("pads")}};
}

// [N,C,OH,OW] for x [N,C,H,W] (rank 4, dimensions checked).
absl::StatusOr<Shape> PoolOutputShape(const Shape& x, const PoolParams& params) {
  OPS_ASSIGN_OR_RETURN(int64_t height, WindowOutputSize(x[2], params.kernel[0], params.strides[0],
                                                        params.pads[0], 1, "height"));
  OPS_ASSIGN_OR_RETURN(int64_t width, WindowOutputSize(x[3], params.kernel[1], params.strides[1],
                                                       params.pads[1], 1, "width"));
  return Shape{x[0], x[1], height, width};
}

// A backward op's dx from its input_shape attribute, checked against dy: pooling a tensor of
// that shape must give dy's shape.
absl::StatusOr<Shape> GradInputShape(
    const OpInputs& in, const Attrs& attrs,
    const std::function<absl::StatusOr<Shape>(const Shape&)>& forward) {
  OPS_ASSIGN_OR_RETURN(Shape dx, ShapeAttr(attrs, "input_shape", 4, kImageLayout,
                                           /*allow_batch=*/true));
  dx[0] = ResolveBatchDim(dx[0], in.shape(0)[0]);
  OPS_ASSIGN_OR_RETURN(Shape expected_dy, forward(dx));
  if (in.shape(0) != expected_dy) {
    return absl::InvalidArgumentError(absl::StrCat(
        in.Name(0), " has shape ", ShapeToString(in.shape(0)), " but pooling input_shape ",
        ShapeToString(dx), " gives an output of ", ShapeToString(expected_dy)));
  }
  return dx;
}

absl::StatusOr<std::vector<TensorType>> InferMaxPool(const InferContext& ctx) {
  OpInputs in(ctx, kPoolInputs);
  OPS_RETURN_IF_ERROR(in.CheckRank(0, 4, kImageLayout));
  OPS_RETURN_IF_ERROR(in.CheckFloats({0}));
  OPS_ASSIGN_OR_RETURN(PoolParams params, ReadPoolParams(ctx.attrs));
  OPS_ASSIGN_OR_RETURN(Shape y, PoolOutputShape(in.shape(0), params));
  return std::vector<TensorType>{{in.dtype(0), y}};
}

absl::StatusOr<std::vector<TensorType>> InferAvgPool(const InferContext& ctx) {
  OPS_RETURN_IF_ERROR(IntAttrInRange(ctx.attrs, "count_include_pad", 0, 1).status());
  return InferMaxPool(ctx);
}

absl::StatusOr<std::vector<TensorType>> InferMaxPoolGrad(const InferContext& ctx) {
  OpInputs in(ctx, kMaxPoolGradInputs);
  OPS_RETURN_IF_ERROR(in.CheckRank(1, 4, kImageLayout));
  OPS_RETURN_IF_ERROR(in.CheckFloats({0, 1, 2}));
  OPS_ASSIGN_OR_RETURN(PoolParams params, ReadPoolParams(ctx.attrs));
  OPS_ASSIGN_OR_RETURN(Shape y, PoolOutputShape(in.shape(1), params));
  OPS_RETURN_IF_ERROR(in.CheckShape(2, y));
  OPS_RETURN_IF_ERROR(in.CheckShape(0, y));
  return std::vector<TensorType>{in.type(1)};
}

absl::StatusOr<std::vector<TensorType>> InferAvgPoolGrad(const InferContext& ctx) {
  OpInputs in(ctx, kGradInputs);
  OPS_RETURN_IF_ERROR(in.CheckRank(0, 4, kOutputLayout));
  OPS_RETURN_IF_ERROR(in.CheckFloats({0}));
  OPS_RETURN_IF_ERROR(IntAttrInRange(ctx.attrs, "count_include_pad", 0, 1).status());
  OPS_ASSIGN_OR_RETURN(PoolParams params, ReadPoolParams(ctx.attrs));
  OPS_ASSIGN_OR_RETURN(Shape dx, GradInputShape(in, ctx.attrs, [&](const Shape& x) {
                         return PoolOutputShape(x, params);
                       }));
  return std::vector<TensorType>{{in.dtype(0), dx}};
}

absl::StatusOr<std::vector<TensorType>> InferGlobalAvgPool(const InferContext& ctx) {
  OpInputs in(ctx, kPoolInputs);
  OPS_RETURN_IF_ERROR(in.CheckRank(0, 4, kImageLayout));
  OPS_RETURN_IF_ERROR(in.CheckFloats({0}));
  return std::vector<TensorType>{{in.dtype(0), {in.shape(0)[0], in.shape(0)[1], 1, 1}}};
}

absl::StatusOr<std::vector<TensorType>> InferGlobalAvgPoolGrad(const InferContext& ctx) {
  OpInputs in(ctx, kGradInputs);
  OPS_RETURN_IF_ERROR(in.CheckRank(0, 4, "[N,C,1,1]"));
  OPS_RETURN_IF_ERROR(in.CheckFloats({0}));
  OPS_ASSIGN_OR_RETURN(Shape dx, GradInputShape(in, ctx.attrs, [](const Shape& x) {
                         return absl::StatusOr<Shape>(Shape{x[0], x[1], 1, 1});
                       }));
  return std::vector<TensorType>{{in.dtype(0), dx}};
}

double KernelArea(const Attrs& attrs) {
  const std::vector<int64_t>& kernel = attrs.Ints("kernel");
  return kernel.size() == 2 ? static_cast<double>(kernel[0]) * static_cast<double>(kernel[1]) : 0;
}

// One comparison (max) or add (average) per window element of every pooled element; the average
// adds a division per pooled element.
OpCost WindowCost(const CostContext& ctx, const TensorType& pooled, double extra_per_element) {
  OpCost cost;
  cost.flops = NumElements(pooled) * (KernelArea(ctx.attrs) + extra_per_element);
  cost.bytes = OperandBytes(ctx);
  return cost;
}

OpCost MaxPoolCost(const CostContext& ctx) {
  return ctx.outputs.empty() ? OpCost{} : WindowCost(ctx, ctx.outputs[0], 0);
}
OpCost AvgPoolCost(const CostContext& ctx) {
  return ctx.outputs.empty() ? OpCost{} : WindowCost(ctx, ctx.outputs[0], 1);
}
OpCost MaxPoolGradCost(const CostContext& ctx) {
  return ctx.inputs.empty() ? OpCost{} : WindowCost(ctx, ctx.inputs[0], 0);
}
OpCost AvgPoolGradCost(const CostContext& ctx) {
  return ctx.inputs.empty() ? OpCost{} : WindowCost(ctx, ctx.inputs[0], 1);
}

OpCost GlobalAvgPoolCost(const CostContext& ctx) {
  OpCost cost;
  if (!ctx.inputs.empty()) cost.flops = NumElements(ctx.inputs[0]);     // one add per input element
  if (!ctx.outputs.empty()) cost.flops += NumElements(ctx.outputs[0]);  // one divide per mean
  cost.bytes = OperandBytes(ctx);
  return cost;
}

absl::Status MaxPoolGradient(graph::GradContext& ctx) {
  const int32_t dy = ctx.output_grad(0);
  if (dy == graph::kNoTensor || !ctx.needs_input_grad(0)) return absl::OkStatus();
  OPS_ASSIGN_OR_RETURN(int32_t dx, EmitOne(ctx, "MaxPoolGrad", {dy, ctx.input(0), ctx.output(0)},
                                           PoolAttrMap(ctx.attrs()), "dx"));
  ctx.SetInputGrad(0, dx);
  return absl::OkStatus();
}

absl::Status AvgPoolGradient(graph::GradContext& ctx) {
  const int32_t dy = ctx.output_grad(0);
  if (dy == graph::kNoTensor || !ctx.needs_input_grad(0)) return absl::OkStatus();
  AttrMap attrs = PoolAttrMap(ctx.attrs());
  attrs["count_include_pad"] = ctx.attrs().Int("count_include_pad");
  attrs["input_shape"] = ctx.tensor(ctx.input(0)).shape;
  OPS_ASSIGN_OR_RETURN(int32_t dx, EmitOne(ctx, "AvgPoolGrad", {dy}, std::move(attrs), "dx"));
  ctx.SetInputGrad(0, dx);
  return absl::OkStatus();
}

absl::Status GlobalAvgPoolGradient(graph::GradContext& ctx) {
  const int32_t dy = ctx.output_grad(0);
  if (dy == graph::kNoTensor || !ctx.needs_input_grad(0)) return absl::OkStatus();
  OPS_ASSIGN_OR_RETURN(int32_t dx,
                       EmitOne(ctx, "GlobalAvgPoolGrad", {dy},
                               {{"input_shape", ctx.tensor(ctx.input(0)).shape}}, "dx"));
  ctx.SetInputGrad(0, dx);
  return absl::OkStatus();
}

}  // namespace

void RegisterPooling(graph::OpRegistry& registry) {
  MustRegister(registry,
               {.name = "MaxPool",
                .attrs = PoolAttrDefs(),
                .doc = "2-D max pooling, NCHW, floor mode: x[N,C,H,W] -> y[N,C,OH,OW]",
                .infer = InferMaxPool,
                .gradient = MaxPoolGradient,
                .cost = MaxPoolCost},
               kPoolInputs);
  MustRegister(registry,
               {.name = "MaxPoolGrad",
                .min_inputs = 3,
                .max_inputs = 3,
                .attrs = PoolAttrDefs(),
                .doc = "Gradient of MaxPool: (dy, x, y) -> dx, dy routed to each window's max",
                .infer = InferMaxPoolGrad,
                .cost = MaxPoolGradCost},
               kMaxPoolGradInputs);
  MustRegister(registry,
               {.name = "AvgPool",
                .attrs = AvgPoolAttrDefs(),
                .doc = "2-D average pooling, NCHW, floor mode: x[N,C,H,W] -> y[N,C,OH,OW]",
                .infer = InferAvgPool,
                .gradient = AvgPoolGradient,
                .cost = AvgPoolCost},
               kPoolInputs);
  std::vector<AttrDef> avg_grad_attrs = AvgPoolAttrDefs();
  avg_grad_attrs.push_back({"input_shape", std::vector<int64_t>{}, /*required=*/true});
  MustRegister(registry,
               {.name = "AvgPoolGrad",
                .attrs = std::move(avg_grad_attrs),
                .doc = "Gradient of AvgPool: dy -> dx of shape input_shape",
                .infer = InferAvgPoolGrad,
                .cost = AvgPoolGradCost},
               kGradInputs);
  MustRegister(registry,
               {.name = "GlobalAvgPool",
                .doc = "Mean over height and width: x[N,C,H,W] -> y[N,C,1,1]",
                .infer = InferGlobalAvgPool,
                .gradient = GlobalAvgPoolGradient,
                .cost = GlobalAvgPoolCost},
               kPoolInputs);
  MustRegister(registry,
               {.name = "GlobalAvgPoolGrad",
                .attrs = {{"input_shape", std::vector<int64_t>{}, /*required=*/true}},
                .doc = "Gradient of GlobalAvgPool: dy[N,C,1,1] -> dx of shape input_shape",
                .infer = InferGlobalAvgPoolGrad,
                .cost = GlobalAvgPoolCost},
               kGradInputs);
}

}  // namespace gradflow::ops
