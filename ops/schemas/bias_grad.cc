// BiasGrad: the bias gradient of Conv2D and FullyConnected, a sum of dy over all dimensions but
// dimension 1.
#include <vector>

#include "ops/schemas/schema_util.h"
#include "ops/schemas/schemas.h"

namespace gradflow::ops {
namespace {

using graph::InferContext;
using graph::TensorType;

constexpr std::string_view kBiasGradInputs[] = {"dy"};

absl::StatusOr<std::vector<TensorType>> InferBiasGrad(const InferContext& ctx) {
  OpInputs in(ctx, kBiasGradInputs);
  OPS_RETURN_IF_ERROR(in.CheckMinRank(0, 2, "[N,C,...]"));
  OPS_RETURN_IF_ERROR(in.CheckFloats({0}));
  return std::vector<TensorType>{{in.dtype(0), {in.shape(0)[1]}}};
}

graph::OpCost BiasGradCost(const graph::CostContext& ctx) {
  graph::OpCost cost;
  if (!ctx.inputs.empty()) cost.flops = NumElements(ctx.inputs[0]);  // one add per element of dy
  cost.bytes = OperandBytes(ctx);
  return cost;
}

}  // namespace

void RegisterBiasGrad(graph::OpRegistry& registry) {
  MustRegister(registry,
               {.name = "BiasGrad",
                .doc = "Bias gradient: dy[N,C,...] summed over every dimension but 1 -> [C]",
                .infer = InferBiasGrad,
                .cost = BiasGradCost},
               kBiasGradInputs);
}

}  // namespace gradflow::ops
