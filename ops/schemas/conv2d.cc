// Conv2D (NCHW, symmetric padding, groups, dilation) and the two backward ops its gradient emits.
#include <array>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/schemas/schema_util.h"
#include "ops/schemas/schemas.h"

namespace gradflow::ops {
namespace {

using graph::AttrMap;
using graph::Attrs;
using graph::CostContext;
using graph::InferContext;
using graph::OpCost;
using graph::Shape;
using graph::ShapeToString;
using graph::TensorType;

constexpr std::string_view kConvInputs[] = {"x", "w", "b"};
constexpr std::string_view kBackwardDataInputs[] = {"dy", "w"};
constexpr std::string_view kBackwardFilterInputs[] = {"dy", "x"};
constexpr std::string_view kImageLayout = "[N,C,H,W]";
constexpr std::string_view kFilterLayout = "[O,C/groups,KH,KW]";
constexpr std::string_view kOutputLayout = "[N,O,OH,OW]";

struct ConvParams {
  std::array<int64_t, 2> strides;
  std::array<int64_t, 2> pads;
  std::array<int64_t, 2> dilations;
  int64_t groups;
};

std::vector<graph::AttrDef> ConvAttrDefs() {
  return {{"strides", std::vector<int64_t>{1, 1}},
          {"pads", std::vector<int64_t>{0, 0}},
          {"dilations", std::vector<int64_t>{1, 1}},
          {"groups", int64_t{1}}};
}

absl::StatusOr<ConvParams> ReadConvParams(const Attrs& attrs) {
  ConvParams params;
  OPS_ASSIGN_OR_RETURN(params.strides, PairAttr(attrs, "strides", 1));
  OPS_ASSIGN_OR_RETURN(params.pads, PairAttr(attrs, "pads", 0));
  OPS_ASSIGN_OR_RETURN(params.dilations, PairAttr(attrs, "dilations", 1));
  OPS_ASSIGN_OR_RETURN(params.groups,
                       IntAttrInRange(attrs, "groups", 1, std::numeric_limits<int64_t>::max()));
  return params;
}

// The attributes a backward op repeats so that it describes the same convolution.
AttrMap ConvAttrMap(const Attrs& attrs) {
  return {{"strides", attrs.Ints("strides")},
          {"pads", attrs.Ints("pads")},
          {"dilations", attrs.Ints("dilations")},
          {"groups", attrs.Int("groups")}};
}

// [N,O,OH,OW] for x [N,C,H,W] and w [O,C/groups,KH,KW], both of rank 4 with dimensions that
// passed CheckShapeDims. The names say where each shape came from (an input or an attribute).
absl::StatusOr<Shape> ConvOutputShape(const Shape& x, std::string_view x_name, const Shape& w,
                                      std::string_view w_name, const ConvParams& params) {
  const int64_t channels = x[1];
  const int64_t out_channels = w[0];
  if (channels % params.groups != 0) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(x_name), " ", ShapeToString(x), " has ",
                                                   channels, " channels, not divisible by groups ",
                                                   params.groups));
  }
  if (out_channels % params.groups != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(w_name), " ", ShapeToString(w), " has ", out_channels,
                     " output channels, not divisible by groups ", params.groups));
  }
  if (w[1] != channels / params.groups) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(w_name), " ", ShapeToString(w),
                     " must have dimension 1 = C/groups = ", channels / params.groups, " (",
                     channels, " input channels, groups ", params.groups, "), got ", w[1]));
  }
  OPS_ASSIGN_OR_RETURN(int64_t height,
                       WindowOutputSize(x[2], w[2], params.strides[0], params.pads[0],
                                        params.dilations[0], "height"));
  OPS_ASSIGN_OR_RETURN(int64_t width,
                       WindowOutputSize(x[3], w[3], params.strides[1], params.pads[1],
                                        params.dilations[1], "width"));
  return Shape{x[0], out_channels, height, width};
}

absl::Status CheckGradMatchesForward(const OpInputs& in, const Shape& expected_dy,
                                     std::string_view what) {
  if (in.shape(0) == expected_dy) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(in.Name(0), " has shape ", ShapeToString(in.shape(0)), " but ", ToAbsl(what),
                   " gives an output of ", ShapeToString(expected_dy)));
}

absl::StatusOr<std::vector<TensorType>> InferConv2D(const InferContext& ctx) {
  OpInputs in(ctx, kConvInputs);
  OPS_RETURN_IF_ERROR(in.CheckRank(0, 4, kImageLayout));
  OPS_RETURN_IF_ERROR(in.CheckRank(1, 4, kFilterLayout));
  OPS_RETURN_IF_ERROR(in.CheckNoBatch(1));
  OPS_RETURN_IF_ERROR(in.CheckFloats({0, 1, 2}));
  OPS_ASSIGN_OR_RETURN(ConvParams params, ReadConvParams(ctx.attrs));
  OPS_ASSIGN_OR_RETURN(Shape y,
                       ConvOutputShape(in.shape(0), in.Name(0), in.shape(1), in.Name(1), params));
  if (in.has(2)) OPS_RETURN_IF_ERROR(in.CheckShape(2, {in.shape(1)[0]}));
  return std::vector<TensorType>{{in.dtype(0), y}};
}

absl::StatusOr<std::vector<TensorType>> InferConv2DBackwardData(const InferContext& ctx) {
  OpInputs in(ctx, kBackwardDataInputs);
  OPS_RETURN_IF_ERROR(in.CheckRank(0, 4, kOutputLayout));
  OPS_RETURN_IF_ERROR(in.CheckRank(1, 4, kFilterLayout));
  OPS_RETURN_IF_ERROR(in.CheckNoBatch(1));
  OPS_RETURN_IF_ERROR(in.CheckFloats({0, 1}));
  OPS_ASSIGN_OR_RETURN(ConvParams params, ReadConvParams(ctx.attrs));
  OPS_ASSIGN_OR_RETURN(Shape dx, ShapeAttr(ctx.attrs, "input_shape", 4, kImageLayout,
                                           /*allow_batch=*/true));
  dx[0] = ResolveBatchDim(dx[0], in.shape(0)[0]);
  OPS_ASSIGN_OR_RETURN(Shape expected_dy, ConvOutputShape(dx, "attribute input_shape", in.shape(1),
                                                          in.Name(1), params));
  OPS_RETURN_IF_ERROR(
      CheckGradMatchesForward(in, expected_dy,
                              absl::StrCat("convolving input_shape ", ShapeToString(dx), " with w ",
                                           ShapeToString(in.shape(1)))));
  return std::vector<TensorType>{{in.dtype(0), dx}};
}

absl::StatusOr<std::vector<TensorType>> InferConv2DBackwardFilter(const InferContext& ctx) {
  OpInputs in(ctx, kBackwardFilterInputs);
  OPS_RETURN_IF_ERROR(in.CheckRank(0, 4, kOutputLayout));
  OPS_RETURN_IF_ERROR(in.CheckRank(1, 4, kImageLayout));
  OPS_RETURN_IF_ERROR(in.CheckFloats({0, 1}));
  OPS_ASSIGN_OR_RETURN(ConvParams params, ReadConvParams(ctx.attrs));
  OPS_ASSIGN_OR_RETURN(Shape dw, ShapeAttr(ctx.attrs, "filter_shape", 4, kFilterLayout,
                                           /*allow_batch=*/false));
  OPS_ASSIGN_OR_RETURN(Shape expected_dy, ConvOutputShape(in.shape(1), in.Name(1), dw,
                                                          "attribute filter_shape", params));
  OPS_RETURN_IF_ERROR(
      CheckGradMatchesForward(in, expected_dy,
                              absl::StrCat("convolving x ", ShapeToString(in.shape(1)),
                                           " with filter_shape ", ShapeToString(dw))));
  return std::vector<TensorType>{{in.dtype(0), dw}};
}

// Multiply-accumulates of a convolution: each element of its output [N,O,OH,OW] sums
// (C/groups)*KH*KW products; the backward ops do the same work in another order.
double ConvMacs(const TensorType& conv_output, const Shape& filter) {
  return NumElements(conv_output) * DimOrZero(filter, 1) * DimOrZero(filter, 2) *
         DimOrZero(filter, 3);
}

OpCost Conv2DCost(const CostContext& ctx) {
  OpCost cost;
  if (ctx.inputs.size() < 2 || ctx.outputs.empty()) return cost;
  cost.macs = ConvMacs(ctx.outputs[0], ctx.inputs[1].shape);
  const double bias_adds = ctx.inputs.size() > 2 ? NumElements(ctx.outputs[0]) : 0;
  cost.flops = 2 * cost.macs + bias_adds;
  cost.bytes = OperandBytes(ctx);
  return cost;
}

OpCost Conv2DBackwardDataCost(const CostContext& ctx) {
  OpCost cost;
  if (ctx.inputs.size() < 2) return cost;
  cost.macs = ConvMacs(ctx.inputs[0], ctx.inputs[1].shape);
  cost.flops = 2 * cost.macs;
  cost.bytes = OperandBytes(ctx);
  return cost;
}

OpCost Conv2DBackwardFilterCost(const CostContext& ctx) {
  OpCost cost;
  if (ctx.inputs.empty() || ctx.outputs.empty()) return cost;
  cost.macs = ConvMacs(ctx.inputs[0], ctx.outputs[0].shape);
  cost.flops = 2 * cost.macs;
  cost.bytes = OperandBytes(ctx);
  return cost;
}

absl::Status Conv2DGradient(graph::GradContext& ctx) {
  const int32_t dy = ctx.output_grad(0);
  if (dy == graph::kNoTensor) return absl::OkStatus();
  if (ctx.needs_input_grad(0)) {
    AttrMap attrs = ConvAttrMap(ctx.attrs());
    attrs["input_shape"] = ctx.tensor(ctx.input(0)).shape;
    OPS_ASSIGN_OR_RETURN(
        int32_t dx, EmitOne(ctx, "Conv2DBackwardData", {dy, ctx.input(1)}, std::move(attrs), "dx"));
    ctx.SetInputGrad(0, dx);
  }
  if (ctx.needs_input_grad(1)) {
    AttrMap attrs = ConvAttrMap(ctx.attrs());
    attrs["filter_shape"] = ctx.tensor(ctx.input(1)).shape;
    OPS_ASSIGN_OR_RETURN(int32_t dw, EmitOne(ctx, "Conv2DBackwardFilter", {dy, ctx.input(0)},
                                             std::move(attrs), "dw"));
    ctx.SetInputGrad(1, dw);
  }
  if (ctx.num_inputs() > 2 && ctx.input(2) != graph::kNoTensor && ctx.needs_input_grad(2)) {
    OPS_ASSIGN_OR_RETURN(int32_t db, EmitOne(ctx, "BiasGrad", {dy}, {}, "db"));
    ctx.SetInputGrad(2, db);
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterConv2D(graph::OpRegistry& registry) {
  MustRegister(registry,
               {.name = "Conv2D",
                .min_inputs = 2,
                .max_inputs = 3,
                .attrs = ConvAttrDefs(),
                .doc = "2-D convolution, NCHW: (x[N,C,H,W], w[O,C/groups,KH,KW], b[O]?) -> "
                       "y[N,O,OH,OW]",
                .infer = InferConv2D,
                .gradient = Conv2DGradient,
                .cost = Conv2DCost},
               kConvInputs);

  std::vector<graph::AttrDef> data_attrs = ConvAttrDefs();
  data_attrs.push_back({"input_shape", std::vector<int64_t>{}, /*required=*/true});
  MustRegister(registry,
               {.name = "Conv2DBackwardData",
                .min_inputs = 2,
                .max_inputs = 2,
                .attrs = std::move(data_attrs),
                .doc = "Gradient of Conv2D for its input: (dy, w) -> dx of shape input_shape",
                .infer = InferConv2DBackwardData,
                .cost = Conv2DBackwardDataCost},
               kBackwardDataInputs);

  std::vector<graph::AttrDef> filter_attrs = ConvAttrDefs();
  filter_attrs.push_back({"filter_shape", std::vector<int64_t>{}, /*required=*/true});
  MustRegister(registry,
               {.name = "Conv2DBackwardFilter",
                .min_inputs = 2,
                .max_inputs = 2,
                .attrs = std::move(filter_attrs),
                .doc = "Gradient of Conv2D for its filter: (dy, x) -> dw of shape filter_shape",
                .infer = InferConv2DBackwardFilter,
                .cost = Conv2DBackwardFilterCost},
               kBackwardFilterInputs);
}

}  // namespace gradflow::ops
