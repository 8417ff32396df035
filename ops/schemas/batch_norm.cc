// BatchNorm over dimension 1 (channels) of x[N,C,...] and the backward op its gradient emits.
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/schemas/schema_util.h"
#include "ops/schemas/schemas.h"

namespace gradflow::ops {
namespace {

using graph::Attrs;
using graph::CostContext;
using graph::InferContext;
using graph::OpCost;
using graph::Shape;
using graph::TensorType;

constexpr std::string_view kBatchNormInputs[] = {"x", "gamma", "beta", "running_mean",
                                                 "running_var"};
constexpr std::string_view kBatchNormGradInputs[] = {"dy", "x", "gamma", "saved_mean",
                                                     "saved_invstd"};
constexpr std::string_view kLayout = "[N,C,...]";

// Per element of x: training computes the mean (1 add) and variance (sub, mul, add) and applies
// the folded scale and shift (mul, add); inference applies only the scale and shift; the
// backward pass needs two reductions (dbeta, dgamma) and the dx formula (about 9 in all).
constexpr double kTrainingFlopsPerElement = 6;
constexpr double kInferenceFlopsPerElement = 2;
constexpr double kGradFlopsPerElement = 9;

absl::Status CheckEpsilon(const Attrs& attrs) {
  const float epsilon = attrs.Float("epsilon");
  if (std::isfinite(epsilon) && epsilon > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("attribute epsilon must be a positive finite number, got ", epsilon));
}

// Every per-channel input (from index `first` on) is [C] for the C of x.
absl::Status CheckPerChannel(const OpInputs& in, int x_index, int first) {
  const Shape channels = {in.shape(x_index)[1]};
  for (int i = first; i < in.size(); ++i) OPS_RETURN_IF_ERROR(in.CheckShape(i, channels));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TensorType>> InferBatchNorm(const InferContext& ctx) {
  OpInputs in(ctx, kBatchNormInputs);
  OPS_RETURN_IF_ERROR(in.CheckMinRank(0, 2, kLayout));
  OPS_RETURN_IF_ERROR(in.CheckFloats({0, 1, 2, 3, 4}));
  OPS_RETURN_IF_ERROR(CheckPerChannel(in, 0, 1));
  OPS_RETURN_IF_ERROR(CheckEpsilon(ctx.attrs));
  const float momentum = ctx.attrs.Float("momentum");
  if (!(momentum >= 0 && momentum <= 1)) {  // also rejects NaN
    return absl::InvalidArgumentError(
        absl::StrCat("attribute momentum must be in [0, 1], got ", momentum));
  }
  OPS_ASSIGN_OR_RETURN(int64_t training, IntAttrInRange(ctx.attrs, "training", 0, 1));
  const TensorType y = in.type(0);
  if (training == 0) return std::vector<TensorType>{y};
  const TensorType per_channel = {in.dtype(0), {in.shape(0)[1]}};
  return std::vector<TensorType>{y, per_channel, per_channel};
}

absl::StatusOr<std::vector<TensorType>> InferBatchNormGrad(const InferContext& ctx) {
  OpInputs in(ctx, kBatchNormGradInputs);
  OPS_RETURN_IF_ERROR(in.CheckMinRank(0, 2, kLayout));
  OPS_RETURN_IF_ERROR(in.CheckShape(1, in.shape(0)));
  OPS_RETURN_IF_ERROR(in.CheckFloats({0, 1, 2, 3, 4}));
  OPS_RETURN_IF_ERROR(CheckPerChannel(in, 0, 2));
  OPS_RETURN_IF_ERROR(CheckEpsilon(ctx.attrs));
  const TensorType per_channel = {in.dtype(0), {in.shape(0)[1]}};
  return std::vector<TensorType>{in.type(1), per_channel, per_channel};
}

OpCost BatchNormCost(const CostContext& ctx) {
  OpCost cost;
  if (ctx.inputs.empty()) return cost;
  const bool training = ctx.attrs.Int("training") != 0;
  cost.flops = NumElements(ctx.inputs[0]) *
               (training ? kTrainingFlopsPerElement : kInferenceFlopsPerElement);
  cost.bytes = OperandBytes(ctx);
  return cost;
}

OpCost BatchNormGradCost(const CostContext& ctx) {
  OpCost cost;
  if (ctx.inputs.empty()) return cost;
  cost.flops = NumElements(ctx.inputs[0]) * kGradFlopsPerElement;
  cost.bytes = OperandBytes(ctx);
  return cost;
}

absl::Status BatchNormGradient(graph::GradContext& ctx) {
  if (ctx.attrs().Int("training") == 0) {
    return absl::UnimplementedError(
        "BatchNorm with training=0 has no gradient (its statistics are constants); train with "
        "training=1 or freeze the layer's inputs");
  }
  if (ctx.output_grad(1) != graph::kNoTensor || ctx.output_grad(2) != graph::kNoTensor) {
    return absl::UnimplementedError(
        "gradients flowing into BatchNorm's saved_mean or saved_invstd outputs are not supported");
  }
  const int32_t dy = ctx.output_grad(0);
  if (dy == graph::kNoTensor) return absl::OkStatus();
  if (!ctx.needs_input_grad(0) && !ctx.needs_input_grad(1) && !ctx.needs_input_grad(2)) {
    return absl::OkStatus();
  }
  OPS_ASSIGN_OR_RETURN(
      std::vector<int32_t> grads,
      ctx.Emit("BatchNormGrad", {dy, ctx.input(0), ctx.input(1), ctx.output(1), ctx.output(2)},
               {{"epsilon", ctx.attrs().Float("epsilon")}}, "grad"));
  if (grads.size() != 3) {
    return absl::InternalError(
        absl::StrCat("BatchNormGrad was expected to produce 3 outputs, got ", grads.size()));
  }
  for (int i = 0; i < 3; ++i) {
    if (ctx.needs_input_grad(i)) ctx.SetInputGrad(i, grads[i]);
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterBatchNorm(graph::OpRegistry& registry) {
  MustRegister(registry,
               {.name = "BatchNorm",
                .min_inputs = 5,
                .max_inputs = 5,
                .attrs = {{"epsilon", 1e-5f}, {"momentum", 0.1f}, {"training", int64_t{1}}},
                .doc = "Batch normalization over channels: (x[N,C,...], gamma, beta, "
                       "running_mean, running_var [C]) -> y (+ saved_mean, saved_invstd when "
                       "training)",
                .infer = InferBatchNorm,
                .gradient = BatchNormGradient,
                .cost = BatchNormCost},
               kBatchNormInputs);
  MustRegister(registry,
               {.name = "BatchNormGrad",
                .min_inputs = 5,
                .max_inputs = 5,
                .attrs = {{"epsilon", 1e-5f}},
                .doc = "Gradient of training-mode BatchNorm: (dy, x, gamma, saved_mean, "
                       "saved_invstd) -> (dx, dgamma, dbeta)",
                .infer = InferBatchNormGrad,
                .cost = BatchNormGradCost},
               kBatchNormGradInputs);
}

}  // namespace gradflow::ops
