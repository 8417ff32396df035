// SoftmaxCrossEntropy, the loss op, and the backward op its gradient emits.
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/schemas/schema_util.h"
#include "ops/schemas/schemas.h"

namespace gradflow::ops {
namespace {

using graph::InferContext;
using graph::TensorType;

constexpr std::string_view kLossInputs[] = {"logits", "labels"};
constexpr std::string_view kGradInputs[] = {"probs", "labels"};

// Per logit: max, subtract, exp, sum and divide for the softmax; the log of the label's
// probability is per example and negligible.
constexpr double kLossFlopsPerElement = 5;
// Per logit: subtract the smoothed one-hot and divide by N.
constexpr double kGradFlopsPerElement = 2;

// (scores[N,C], labels[N]) with float scores and integer labels; the checks both ops share.
absl::Status CheckScoresAndLabels(const OpInputs& in, const graph::Attrs& attrs) {
  OPS_RETURN_IF_ERROR(in.CheckRank(0, 2, "[N,C]"));
  OPS_RETURN_IF_ERROR(in.CheckRank(1, 1, "[N]"));
  OPS_RETURN_IF_ERROR(in.CheckFloats({0}));
  OPS_RETURN_IF_ERROR(in.CheckLabels(1));
  OPS_RETURN_IF_ERROR(in.CheckSameBatch(1, 0));
  const float smoothing = attrs.Float("label_smoothing");
  if (!(smoothing >= 0 && smoothing < 1)) {  // also rejects NaN
    return absl::InvalidArgumentError(
        absl::StrCat("attribute label_smoothing must be in [0, 1), got ", smoothing));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TensorType>> InferSoftmaxCrossEntropy(const InferContext& ctx) {
  OpInputs in(ctx, kLossInputs);
  OPS_RETURN_IF_ERROR(CheckScoresAndLabels(in, ctx.attrs));
  const TensorType loss = {in.dtype(0), {}};
  return std::vector<TensorType>{loss, in.type(0)};
}

absl::StatusOr<std::vector<TensorType>> InferSoftmaxCrossEntropyGrad(const InferContext& ctx) {
  OpInputs in(ctx, kGradInputs);
  OPS_RETURN_IF_ERROR(CheckScoresAndLabels(in, ctx.attrs));
  return std::vector<TensorType>{in.type(0)};
}

// The fused gradient (probs - smoothed one-hot) / N assumes d loss = 1 and nothing else reads
// the loss or the probabilities on the way to it.
absl::Status SoftmaxCrossEntropyGradient(graph::GradContext& ctx) {
  if (!ctx.is_loss_output(0)) {
    return absl::UnimplementedError(
        "SoftmaxCrossEntropy is differentiable only when its output 0 is the graph's loss");
  }
  if (ctx.output_grad(0) != graph::kNoTensor) {
    return absl::UnimplementedError(
        "SoftmaxCrossEntropy's loss output must not feed other differentiated nodes");
  }
  if (ctx.output_grad(1) != graph::kNoTensor) {
    return absl::UnimplementedError(
        "gradients flowing into SoftmaxCrossEntropy's probs output are not supported");
  }
  if (ctx.needs_input_grad(1)) {
    return absl::InvalidArgumentError(
        "input 1 (labels) of SoftmaxCrossEntropy holds class indices and has no gradient");
  }
  if (!ctx.needs_input_grad(0)) return absl::OkStatus();
  OPS_ASSIGN_OR_RETURN(
      int32_t dlogits,
      EmitOne(ctx, "SoftmaxCrossEntropyGrad", {ctx.output(1), ctx.input(1)},
              {{"label_smoothing", ctx.attrs().Float("label_smoothing")}}, "dlogits"));
  ctx.SetInputGrad(0, dlogits);
  return absl::OkStatus();
}

graph::OpCost ScoresCost(const graph::CostContext& ctx, double flops_per_element) {
  graph::OpCost cost;
  if (!ctx.inputs.empty()) cost.flops = flops_per_element * NumElements(ctx.inputs[0]);
  cost.bytes = OperandBytes(ctx);
  return cost;
}

}  // namespace

void RegisterSoftmaxCrossEntropy(graph::OpRegistry& registry) {
  MustRegister(
      registry,
      {.name = "SoftmaxCrossEntropy",
       .min_inputs = 2,
       .max_inputs = 2,
       .attrs = {{"label_smoothing", 0.0f}},
       .doc = "Mean softmax cross-entropy over the batch: (logits[N,C], labels[N]) -> "
              "(loss {}, probs[N,C])",
       .infer = InferSoftmaxCrossEntropy,
       .gradient = SoftmaxCrossEntropyGradient,
       .cost = [](const graph::CostContext& ctx) { return ScoresCost(ctx, kLossFlopsPerElement); }},
      kLossInputs);
  MustRegister(
      registry,
      {.name = "SoftmaxCrossEntropyGrad",
       .min_inputs = 2,
       .max_inputs = 2,
       .attrs = {{"label_smoothing", 0.0f}},
       .doc = "Gradient of the mean SoftmaxCrossEntropy loss: (probs, labels) -> dlogits = "
              "(probs - smoothed one-hot) / N",
       .infer = InferSoftmaxCrossEntropyGrad,
       .cost = [](const graph::CostContext& ctx) { return ScoresCost(ctx, kGradFlopsPerElement); }},
      kGradInputs);
}

}  // namespace gradflow::ops
