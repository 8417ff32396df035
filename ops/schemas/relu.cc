// Relu and the backward op its gradient emits.
#include <vector>

#include "ops/schemas/schema_util.h"
#include "ops/schemas/schemas.h"

namespace gradflow::ops {
namespace {

using graph::InferContext;
using graph::TensorType;

constexpr std::string_view kReluInputs[] = {"x"};
constexpr std::string_view kReluGradInputs[] = {"dy", "y"};

absl::StatusOr<std::vector<TensorType>> InferRelu(const InferContext& ctx) {
  OpInputs in(ctx, kReluInputs);
  OPS_RETURN_IF_ERROR(in.CheckFloats({0}));
  return std::vector<TensorType>{in.type(0)};
}

absl::StatusOr<std::vector<TensorType>> InferReluGrad(const InferContext& ctx) {
  OpInputs in(ctx, kReluGradInputs);
  OPS_RETURN_IF_ERROR(in.CheckFloats({0, 1}));
  OPS_RETURN_IF_ERROR(in.CheckShape(1, in.shape(0)));
  return std::vector<TensorType>{in.type(0)};
}

// The mask comes from the output (y > 0 exactly where x > 0), so x need not stay alive.
absl::Status ReluGradient(graph::GradContext& ctx) {
  const int32_t dy = ctx.output_grad(0);
  if (dy == graph::kNoTensor || !ctx.needs_input_grad(0)) return absl::OkStatus();
  OPS_ASSIGN_OR_RETURN(int32_t dx, EmitOne(ctx, "ReluGrad", {dy, ctx.output(0)}, {}, "dx"));
  ctx.SetInputGrad(0, dx);
  return absl::OkStatus();
}

}  // namespace

void RegisterRelu(graph::OpRegistry& registry) {
  MustRegister(registry,
               {.name = "Relu",
                .doc = "Rectified linear unit, elementwise: x -> max(x, 0)",
                .infer = InferRelu,
                .gradient = ReluGradient,
                .cost = [](const graph::CostContext& ctx) { return ElementwiseCost(ctx, 1); }},
               kReluInputs);
  MustRegister(registry,
               {.name = "ReluGrad",
                .min_inputs = 2,
                .max_inputs = 2,
                .doc = "Gradient of Relu: (dy, y) -> dy where y > 0, else 0",
                .infer = InferReluGrad,
                .cost = [](const graph::CostContext& ctx) { return ElementwiseCost(ctx, 1); }},
               kReluGradInputs);
}

}  // namespace gradflow::ops
