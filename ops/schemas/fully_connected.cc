// FullyConnected (y = x w^T + b) and the backward ops its gradient emits.
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/schemas/schema_util.h"
#include "ops/schemas/schemas.h"

namespace gradflow::ops {
namespace {

using graph::CostContext;
using graph::InferContext;
using graph::OpCost;
using graph::ShapeToString;
using graph::TensorType;

constexpr std::string_view kFcInputs[] = {"x", "w", "b"};
constexpr std::string_view kBackwardDataInputs[] = {"dy", "w"};
constexpr std::string_view kBackwardWeightsInputs[] = {"dy", "x"};

// Dimension `dim_i` of input i equals dimension `dim_j` of input j (the shared K or M).
absl::Status CheckSharedDim(const OpInputs& in, int i, size_t dim_i, int j, size_t dim_j,
                            std::string_view dim_name) {
  if (in.shape(i)[dim_i] == in.shape(j)[dim_j]) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      in.Name(i), " ", ShapeToString(in.shape(i)), " must have dimension ", dim_i, " = ",
      ToAbsl(dim_name), " = ", in.shape(j)[dim_j], " (dimension ", dim_j, " of ", in.Name(j), " ",
      ShapeToString(in.shape(j)), "), got ", in.shape(i)[dim_i]));
}

absl::StatusOr<std::vector<TensorType>> InferFullyConnected(const InferContext& ctx) {
  OpInputs in(ctx, kFcInputs);
  OPS_RETURN_IF_ERROR(in.CheckRank(0, 2, "[N,K]"));
  OPS_RETURN_IF_ERROR(in.CheckRank(1, 2, "[M,K]"));
  OPS_RETURN_IF_ERROR(in.CheckNoBatch(1));
  OPS_RETURN_IF_ERROR(in.CheckFloats({0, 1, 2}));
  OPS_RETURN_IF_ERROR(CheckSharedDim(in, 1, 1, 0, 1, "K"));
  const int64_t outputs = in.shape(1)[0];
  if (in.has(2)) OPS_RETURN_IF_ERROR(in.CheckShape(2, {outputs}));
  return std::vector<TensorType>{{in.dtype(0), {in.shape(0)[0], outputs}}};
}

absl::StatusOr<std::vector<TensorType>> InferBackwardData(const InferContext& ctx) {
  OpInputs in(ctx, kBackwardDataInputs);
  OPS_RETURN_IF_ERROR(in.CheckRank(0, 2, "[N,M]"));
  OPS_RETURN_IF_ERROR(in.CheckRank(1, 2, "[M,K]"));
  OPS_RETURN_IF_ERROR(in.CheckNoBatch(1));
  OPS_RETURN_IF_ERROR(in.CheckFloats({0, 1}));
  OPS_RETURN_IF_ERROR(CheckSharedDim(in, 1, 0, 0, 1, "M"));
  return std::vector<TensorType>{{in.dtype(0), {in.shape(0)[0], in.shape(1)[1]}}};
}

absl::StatusOr<std::vector<TensorType>> InferBackwardWeights(const InferContext& ctx) {
  OpInputs in(ctx, kBackwardWeightsInputs);
  OPS_RETURN_IF_ERROR(in.CheckRank(0, 2, "[N,M]"));
  OPS_RETURN_IF_ERROR(in.CheckRank(1, 2, "[N,K]"));
  OPS_RETURN_IF_ERROR(in.CheckFloats({0, 1}));
  OPS_RETURN_IF_ERROR(in.CheckSameBatch(1, 0));
  return std::vector<TensorType>{{in.dtype(0), {in.shape(0)[1], in.shape(1)[1]}}};
}

// Every op here is one [N,M,K] matrix product: N*M*K multiply-accumulates.
OpCost MatmulCost(const CostContext& ctx, double macs, double extra_flops) {
  OpCost cost;
  cost.macs = macs;
  cost.flops = 2 * macs + extra_flops;
  cost.bytes = OperandBytes(ctx);
  return cost;
}

OpCost FullyConnectedCost(const CostContext& ctx) {
  if (ctx.inputs.empty() || ctx.outputs.empty()) return {};
  const double y_elements = NumElements(ctx.outputs[0]);  // N*M
  const double bias_adds = ctx.inputs.size() > 2 ? y_elements : 0;
  return MatmulCost(ctx, y_elements * DimOrZero(ctx.inputs[0].shape, 1), bias_adds);
}

// Both backward ops read dy[N,M] and an [*,K] operand (w[M,K] or x[N,K]).
OpCost BackwardCost(const CostContext& ctx) {
  if (ctx.inputs.size() < 2) return {};
  return MatmulCost(ctx, NumElements(ctx.inputs[0]) * DimOrZero(ctx.inputs[1].shape, 1), 0);
}

absl::Status FullyConnectedGradient(graph::GradContext& ctx) {
  const int32_t dy = ctx.output_grad(0);
  if (dy == graph::kNoTensor) return absl::OkStatus();
  if (ctx.needs_input_grad(0)) {
    OPS_ASSIGN_OR_RETURN(int32_t dx,
                         EmitOne(ctx, "FullyConnectedBackwardData", {dy, ctx.input(1)}, {}, "dx"));
    ctx.SetInputGrad(0, dx);
  }
  if (ctx.needs_input_grad(1)) {
    OPS_ASSIGN_OR_RETURN(
        int32_t dw, EmitOne(ctx, "FullyConnectedBackwardWeights", {dy, ctx.input(0)}, {}, "dw"));
    ctx.SetInputGrad(1, dw);
  }
  if (ctx.num_inputs() > 2 && ctx.input(2) != graph::kNoTensor && ctx.needs_input_grad(2)) {
    OPS_ASSIGN_OR_RETURN(int32_t db, EmitOne(ctx, "BiasGrad", {dy}, {}, "db"));
    ctx.SetInputGrad(2, db);
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterFullyConnected(graph::OpRegistry& registry) {
  MustRegister(registry,
               {.name = "FullyConnected",
                .min_inputs = 2,
                .max_inputs = 3,
                .doc = "Dense layer: (x[N,K], w[M,K], b[M]?) -> y[N,M] = x w^T + b",
                .infer = InferFullyConnected,
                .gradient = FullyConnectedGradient,
                .cost = FullyConnectedCost},
               kFcInputs);
  MustRegister(registry,
               {.name = "FullyConnectedBackwardData",
                .min_inputs = 2,
                .max_inputs = 2,
                .doc = "Gradient of FullyConnected for x: (dy[N,M], w[M,K]) -> dx[N,K] = dy w",
                .infer = InferBackwardData,
                .cost = BackwardCost},
               kBackwardDataInputs);
  MustRegister(registry,
               {.name = "FullyConnectedBackwardWeights",
                .min_inputs = 2,
                .max_inputs = 2,
                .doc = "Gradient of FullyConnected for w: (dy[N,M], x[N,K]) -> dw[M,K] = dy^T x",
                .infer = InferBackwardWeights,
                .cost = BackwardCost},
               kBackwardWeightsInputs);
}

}  // namespace gradflow::ops
