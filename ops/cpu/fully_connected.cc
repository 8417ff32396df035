// FullyConnected and its two backward ops on oneDNN's inner product (fp32). All operands are
// row-major matrices: x [N,K], w [M,K] (oneDNN's "oi"), y [N,M]. oneDNN's GEMM-based inner
// product takes the weights as they are, so nothing is reordered; only where an implementation
// rejects plain weights does the kernel fall back to oneDNN's own layout and stage them
// (conv_primitive_kernel.h), counting a reorder per run.
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "oneapi/dnnl/dnnl.hpp"
#include "ops/cpu/conv_kernel_util.h"
#include "ops/cpu/conv_primitive_kernel.h"
#include "ops/cpu/cpu_context.h"
#include "ops/cpu/cpu_kernels.h"
#include "ops/cpu/dnnl_util.h"
#include "ops/schemas/schema_util.h"

namespace gradflow::ops::cpu {
namespace {

using dnnl::memory;
using Direction = PrimitiveKernel::Direction;

// The primitive descriptor with the weights as stored when oneDNN accepts them, with its preferred
// weights layout otherwise. `make_desc` builds the op descriptor for a weights descriptor; `hint`
// is the forward primitive descriptor that backward ones take.
template <typename Pd, typename MakeDesc, typename... Hint>
Pd PreferStoredWeights(const dnnl::engine& engine, const memory::desc& weights, MakeDesc make_desc,
                       const Hint&... hint) {
  Pd pd(make_desc(weights), UserScratchpad(), engine, hint..., /*allow_empty=*/true);
  if (pd) return pd;
  return Pd(make_desc(AnyLayout(weights)), UserScratchpad(), engine, hint...);
}

dnnl::inner_product_forward::primitive_desc ForwardPd(const dnnl::engine& engine,
                                                      const memory::desc& src,
                                                      const memory::desc& weights,
                                                      const memory::desc& bias,
                                                      const memory::desc& dst) {
  return PreferStoredWeights<dnnl::inner_product_forward::primitive_desc>(
      engine, weights, [&](const memory::desc& w) {
        return dnnl::inner_product_forward::desc(dnnl::prop_kind::forward_training, src, w, bias,
                                                 dst);
      });
}

struct Operands {
  CpuContext* ctx = nullptr;
  memory::desc a;       // input 0: x or dy
  memory::desc b;       // input 1: w or x
  memory::desc result;  // output 0
};

// Checks shared by the three factories and the descriptors of the two matrix inputs and the
// matrix output.
absl::StatusOr<Operands> Preamble(const KernelSpec& spec, std::string_view op, size_t max_inputs,
                                  const char* a_name, const char* b_name, const char* result_name) {
  Operands operands;
  OPS_ASSIGN_OR_RETURN(operands.ctx, CpuDeviceOf(spec, op));
  OPS_RETURN_IF_ERROR(CheckOperandCounts(spec, op, 2, max_inputs, 1));
  OPS_RETURN_IF_ERROR(RequireFloat32(spec, op));
  OPS_RETURN_IF_ERROR(CheckRank(spec.inputs[0], 2, op, a_name));
  OPS_RETURN_IF_ERROR(CheckRank(spec.inputs[1], 2, op, b_name));
  OPS_RETURN_IF_ERROR(CheckRank(spec.outputs[0], 2, op, result_name));
  OPS_ASSIGN_OR_RETURN(operands.a, DnnlDesc(spec.inputs[0], spec.input_layouts[0]));
  OPS_ASSIGN_OR_RETURN(operands.b, DnnlDesc(spec.inputs[1], spec.input_layouts[1]));
  OPS_ASSIGN_OR_RETURN(operands.result, DnnlDesc(spec.outputs[0], spec.output_layouts[0]));
  return operands;
}

// FullyConnected: (x[N,K], w[M,K], b[M]?) -> y[N,M].
absl::StatusOr<std::unique_ptr<Kernel>> PrepareFullyConnected(const KernelSpec& spec) {
  constexpr std::string_view kOp = "FullyConnected";
  OPS_ASSIGN_OR_RETURN(Operands o,
                       Preamble(spec, kOp, 3, "input 0 (x)", "input 1 (w)", "output 0 (y)"));
  const bool has_bias = spec.inputs.size() > 2;
  memory::desc bias;
  if (has_bias) {
    OPS_RETURN_IF_ERROR(CheckRank(spec.inputs[2], 1, kOp, "input 2 (b)"));
    OPS_ASSIGN_OR_RETURN(bias, DnnlDesc(spec.inputs[2], spec.input_layouts[2]));
  }
  std::unique_ptr<PrimitiveKernel> kernel;
  OPS_RETURN_IF_ERROR(CatchDnnl("preparing FullyConnected", [&]() -> absl::Status {
    auto pd = ForwardPd(o.ctx->engine(), o.a, o.b, bias, o.result);
    kernel = std::make_unique<PrimitiveKernel>(
        *o.ctx, std::string(kOp), spec, dnnl::inner_product_forward(pd), pd.scratchpad_desc());
    kernel->Bind(DNNL_ARG_SRC, InputSlot(0), o.a);
    kernel->BindStaged(DNNL_ARG_WEIGHTS, InputSlot(1), o.b, pd.weights_desc(),
                       Direction::kIntoPrimitive);
    if (has_bias) kernel->Bind(DNNL_ARG_BIAS, InputSlot(2), bias);
    kernel->Bind(DNNL_ARG_DST, OutputSlot(0), o.result);
    return absl::OkStatus();
  }));
  return std::unique_ptr<Kernel>(std::move(kernel));
}

// FullyConnectedBackwardData: (dy[N,M], w[M,K]) -> dx[N,K] = dy w.
absl::StatusOr<std::unique_ptr<Kernel>> PrepareBackwardData(const KernelSpec& spec) {
  constexpr std::string_view kOp = "FullyConnectedBackwardData";
  OPS_ASSIGN_OR_RETURN(Operands o,
                       Preamble(spec, kOp, 2, "input 0 (dy)", "input 1 (w)", "output 0 (dx)"));
  const memory::desc& diff_dst = o.a;
  const memory::desc& weights = o.b;
  const memory::desc& diff_src = o.result;
  std::unique_ptr<PrimitiveKernel> kernel;
  OPS_RETURN_IF_ERROR(CatchDnnl("preparing FullyConnectedBackwardData", [&]() -> absl::Status {
    const dnnl::engine& engine = o.ctx->engine();
    auto hint = ForwardPd(engine, diff_src, weights, memory::desc(), diff_dst);
    auto pd = PreferStoredWeights<dnnl::inner_product_backward_data::primitive_desc>(
        engine, weights,
        [&](const memory::desc& w) {
          return dnnl::inner_product_backward_data::desc(diff_src, w, diff_dst);
        },
        hint);
    kernel = std::make_unique<PrimitiveKernel>(*o.ctx, std::string(kOp), spec,
                                               dnnl::inner_product_backward_data(pd),
                                               pd.scratchpad_desc());
    kernel->Bind(DNNL_ARG_DIFF_DST, InputSlot(0), diff_dst);
    kernel->BindStaged(DNNL_ARG_WEIGHTS, InputSlot(1), weights, pd.weights_desc(),
                       Direction::kIntoPrimitive);
    kernel->Bind(DNNL_ARG_DIFF_SRC, OutputSlot(0), diff_src);
    return absl::OkStatus();
  }));
  return std::unique_ptr<Kernel>(std::move(kernel));
}

// FullyConnectedBackwardWeights: (dy[N,M], x[N,K]) -> dw[M,K] = dy^T x. The bias gradient is
// BiasGrad's job.
absl::StatusOr<std::unique_ptr<Kernel>> PrepareBackwardWeights(const KernelSpec& spec) {
  constexpr std::string_view kOp = "FullyConnectedBackwardWeights";
  OPS_ASSIGN_OR_RETURN(Operands o,
                       Preamble(spec, kOp, 2, "input 0 (dy)", "input 1 (x)", "output 0 (dw)"));
  const memory::desc& diff_dst = o.a;
  const memory::desc& src = o.b;
  const memory::desc& diff_weights = o.result;
  std::unique_ptr<PrimitiveKernel> kernel;
  OPS_RETURN_IF_ERROR(CatchDnnl("preparing FullyConnectedBackwardWeights", [&]() -> absl::Status {
    const dnnl::engine& engine = o.ctx->engine();
    auto hint = ForwardPd(engine, src, diff_weights, memory::desc(), diff_dst);
    auto pd = PreferStoredWeights<dnnl::inner_product_backward_weights::primitive_desc>(
        engine, diff_weights,
        [&](const memory::desc& w) {
          return dnnl::inner_product_backward_weights::desc(src, w, diff_dst);
        },
        hint);
    kernel = std::make_unique<PrimitiveKernel>(*o.ctx, std::string(kOp), spec,
                                               dnnl::inner_product_backward_weights(pd),
                                               pd.scratchpad_desc());
    kernel->Bind(DNNL_ARG_DIFF_DST, InputSlot(0), diff_dst);
    kernel->Bind(DNNL_ARG_SRC, InputSlot(1), src);
    kernel->BindStaged(DNNL_ARG_DIFF_WEIGHTS, OutputSlot(0), diff_weights, pd.diff_weights_desc(),
                       Direction::kOutOfPrimitive);
    return absl::OkStatus();
  }));
  return std::unique_ptr<Kernel>(std::move(kernel));
}

}  // namespace

absl::Status RegisterFullyConnectedCpu(KernelRegistry& registry) {
  const std::pair<const char*, KernelFactory> kernels[] = {
      {"FullyConnected", PrepareFullyConnected},
      {"FullyConnectedBackwardData", PrepareBackwardData},
      {"FullyConnectedBackwardWeights", PrepareBackwardWeights}};
  for (const auto& [op, factory] : kernels) {
    OPS_RETURN_IF_ERROR(registry.Register(op, DeviceType::kCpu, graph::DType::kFloat32, factory));
  }
  return absl::OkStatus();
}

}  // namespace gradflow::ops::cpu
