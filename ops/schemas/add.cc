// Add of two tensors of one shape; autodiff also uses it to sum gradient contributions.
#include <vector>

#include "ops/schemas/schema_util.h"
#include "ops/schemas/schemas.h"

namespace gradflow::ops {
namespace {

using graph::InferContext;
using graph::TensorType;

constexpr std::string_view kAddInputs[] = {"a", "b"};

absl::StatusOr<std::vector<TensorType>> InferAdd(const InferContext& ctx) {
  OpInputs in(ctx, kAddInputs);
  OPS_RETURN_IF_ERROR(in.CheckFloats({0, 1}));
  // No broadcasting: a residual add joins two tensors of one shape.
  OPS_RETURN_IF_ERROR(in.CheckShape(1, in.shape(0)));
  return std::vector<TensorType>{in.type(0)};
}

absl::Status AddGradient(graph::GradContext& ctx) {
  const int32_t dy = ctx.output_grad(0);
  if (dy == graph::kNoTensor) return absl::OkStatus();
  for (int i = 0; i < 2; ++i) {
    if (ctx.needs_input_grad(i)) ctx.SetInputGrad(i, dy);
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterAdd(graph::OpRegistry& registry) {
  MustRegister(
      registry,
      {.name = "Add",
       .min_inputs = 2,
       .max_inputs = 2,
       .doc = "Elementwise sum of two tensors of the same shape and dtype: (a, b) -> a + b",
       .infer = InferAdd,
       .gradient = AddGradient,
       .cost = [](const graph::CostContext& ctx) { return ElementwiseCost(ctx, 1); }},
      kAddInputs);
}

}  // namespace gradflow::ops
