// Conv2D and its two backward ops on oneDNN (fp32). Activations are NCHW or NHWC as the planner
// laid them out; filters are OIHW like PyTorch's. oneDNN's direct convolutions are fastest on
// their own blocked filter layouts, so the primitives take the filter as format_tag::any and the
// kernel stages it (see conv_primitive_kernel.h): one reorder per run into the blocked layout for
// Conv2D and Conv2DBackwardData, and one out of it into OIHW for Conv2DBackwardFilter.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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

// The convolution all three ops describe, in oneDNN's terms.
struct ConvGeometry {
  memory::dims strides;
  memory::dims dilates;  // oneDNN counts the gaps between taps: our dilation minus one
  memory::dims padding;  // symmetric: the same before and after
  int64_t groups = 1;
};

absl::StatusOr<memory::dims> ReadPair(const graph::Attrs& attrs, std::string_view op,
                                      const char* name, int64_t min_value) {
  const std::vector<int64_t>& values = attrs.Ints(name);
  if (values.size() != 2 || values[0] < min_value || values[1] < min_value) {
    return absl::InvalidArgumentError(absl::StrCat("the CPU ", std::string(op), " kernel needs ",
                                                   name, " as two values >= ", min_value, ", got [",
                                                   absl::StrJoin(values, ","), "]"));
  }
  return memory::dims{values[0], values[1]};
}

absl::StatusOr<ConvGeometry> ReadGeometry(const graph::Attrs& attrs, std::string_view op) {
  ConvGeometry geometry;
  OPS_ASSIGN_OR_RETURN(geometry.strides, ReadPair(attrs, op, "strides", 1));
  OPS_ASSIGN_OR_RETURN(geometry.padding, ReadPair(attrs, op, "pads", 0));
  OPS_ASSIGN_OR_RETURN(memory::dims dilations, ReadPair(attrs, op, "dilations", 1));
  geometry.dilates = {dilations[0] - 1, dilations[1] - 1};
  geometry.groups = attrs.Int("groups");
  if (geometry.groups < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the CPU ", std::string(op), " kernel needs groups >= 1, got ", geometry.groups));
  }
  return geometry;
}

// Activations (x, y and their gradients) of rank 4 in the layout the planner chose.
absl::StatusOr<memory::desc> ImageDesc(const KernelSpec& spec, TensorSlot slot, std::string_view op,
                                       const char* name) {
  const graph::TensorType& type = TypeAt(spec, slot);
  OPS_RETURN_IF_ERROR(CheckRank(type, 4, op, name));
  return DnnlDesc(type, LayoutAt(spec, slot));
}

// The filter [O, C/groups, KH, KW] as stored. With groups, oneDNN wants a leading groups
// dimension (goihw): the same memory, split along O.
absl::StatusOr<memory::desc> FilterDesc(const KernelSpec& spec, TensorSlot slot,
                                        const ConvGeometry& geometry, std::string_view op) {
  const graph::TensorType& type = TypeAt(spec, slot);
  OPS_RETURN_IF_ERROR(CheckRank(type, 4, op, "the filter"));
  OPS_ASSIGN_OR_RETURN(memory::desc desc, DnnlDesc(type, LayoutAt(spec, slot)));
  if (geometry.groups == 1) return desc;
  const graph::Shape& shape = type.shape;
  if (shape[0] % geometry.groups != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the CPU ", std::string(op), " kernel: filter ", graph::ShapeToString(shape),
                     " has output channels not divisible by groups ", geometry.groups));
  }
  memory::desc grouped;
  OPS_RETURN_IF_ERROR(CatchDnnl("grouping the filter", [&]() -> absl::Status {
    grouped =
        desc.reshape({geometry.groups, shape[0] / geometry.groups, shape[1], shape[2], shape[3]});
    return absl::OkStatus();
  }));
  return grouped;
}

// The layout the convolution computes `image` in: that of its other activation `like`. oneDNN
// only has reference implementations (two orders of magnitude slower) for convolutions whose
// activations disagree, so an image in the other layout is staged into this one (counted as a
// reorder) unless both layouts are the same bytes (one channel, or one pixel).
struct ImageBinding {
  memory::desc as_stored;
  memory::desc as_computed;
};

absl::StatusOr<ImageBinding> ImageInLayoutOf(const KernelSpec& spec, TensorSlot image,
                                             TensorSlot like, std::string_view op,
                                             const char* name) {
  ImageBinding binding;
  OPS_ASSIGN_OR_RETURN(binding.as_stored, ImageDesc(spec, image, op, name));
  const Layout want = LayoutAt(spec, like);
  if (LayoutAt(spec, image) == want) {
    binding.as_computed = binding.as_stored;
    return binding;
  }
  const graph::TensorType& type = TypeAt(spec, image);
  OPS_ASSIGN_OR_RETURN(binding.as_computed, DnnlDesc(type, want));
  if (type.shape[1] == 1 || type.shape[2] * type.shape[3] == 1) {
    binding.as_stored = binding.as_computed;  // same bytes: relabel, nothing to move
  }
  return binding;
}

// The forward convolution from `src` to `dst`: the kernel of Conv2D and the layout hint of the
// backward ops (oneDNN pairs backward implementations with the forward one it would pick).
dnnl::convolution_forward::primitive_desc ForwardPd(
    const dnnl::engine& engine, const ConvGeometry& geometry, const memory::desc& src,
    const memory::desc& weights, const memory::desc& bias, const memory::desc& dst) {
  dnnl::convolution_forward::desc desc(
      dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, src, weights, bias,
      dst, geometry.strides, geometry.dilates, geometry.padding, geometry.padding);
  return {desc, UserScratchpad(), engine};
}

// Common preamble of the three factories.
struct Prepared {
  CpuContext* ctx = nullptr;
  ConvGeometry geometry;
};

absl::StatusOr<Prepared> Preamble(const KernelSpec& spec, std::string_view op, size_t min_inputs,
                                  size_t max_inputs) {
  Prepared prepared;
  OPS_ASSIGN_OR_RETURN(prepared.ctx, CpuDeviceOf(spec, op));
  OPS_RETURN_IF_ERROR(CheckOperandCounts(spec, op, min_inputs, max_inputs, 1));
  OPS_RETURN_IF_ERROR(RequireFloat32(spec, op));
  OPS_ASSIGN_OR_RETURN(prepared.geometry, ReadGeometry(spec.attrs, op));
  return prepared;
}

// Conv2D: (x, w, b?) -> y.
absl::StatusOr<std::unique_ptr<Kernel>> PrepareConv2D(const KernelSpec& spec) {
  constexpr std::string_view kOp = "Conv2D";
  OPS_ASSIGN_OR_RETURN(Prepared p, Preamble(spec, kOp, 2, 3));
  OPS_ASSIGN_OR_RETURN(ImageBinding x,
                       ImageInLayoutOf(spec, InputSlot(0), OutputSlot(0), kOp, "input 0 (x)"));
  const memory::desc& src = x.as_computed;
  OPS_ASSIGN_OR_RETURN(memory::desc weights, FilterDesc(spec, InputSlot(1), p.geometry, kOp));
  OPS_ASSIGN_OR_RETURN(memory::desc dst, ImageDesc(spec, OutputSlot(0), kOp, "output 0 (y)"));
  const bool has_bias = spec.inputs.size() > 2;
  memory::desc bias;
  if (has_bias) {
    OPS_RETURN_IF_ERROR(CheckRank(spec.inputs[2], 1, kOp, "input 2 (b)"));
    OPS_ASSIGN_OR_RETURN(bias, DnnlDesc(spec.inputs[2], spec.input_layouts[2]));
  }
  std::unique_ptr<PrimitiveKernel> kernel;
  OPS_RETURN_IF_ERROR(CatchDnnl("preparing Conv2D", [&]() -> absl::Status {
    auto pd = ForwardPd(p.ctx->engine(), p.geometry, src, AnyLayout(weights), bias, dst);
    kernel = std::make_unique<PrimitiveKernel>(*p.ctx, std::string(kOp), spec,
                                               dnnl::convolution_forward(pd), pd.scratchpad_desc());
    kernel->BindStaged(DNNL_ARG_SRC, InputSlot(0), x.as_stored, src, Direction::kIntoPrimitive);
    kernel->BindStaged(DNNL_ARG_WEIGHTS, InputSlot(1), weights, pd.weights_desc(),
                       Direction::kIntoPrimitive);
    if (has_bias) kernel->Bind(DNNL_ARG_BIAS, InputSlot(2), bias);
    kernel->Bind(DNNL_ARG_DST, OutputSlot(0), dst);
    return absl::OkStatus();
  }));
  return std::unique_ptr<Kernel>(std::move(kernel));
}

// Conv2DBackwardData: (dy, w) -> dx.
absl::StatusOr<std::unique_ptr<Kernel>> PrepareConv2DBackwardData(const KernelSpec& spec) {
  constexpr std::string_view kOp = "Conv2DBackwardData";
  OPS_ASSIGN_OR_RETURN(Prepared p, Preamble(spec, kOp, 2, 2));
  OPS_ASSIGN_OR_RETURN(memory::desc diff_dst, ImageDesc(spec, InputSlot(0), kOp, "input 0 (dy)"));
  OPS_ASSIGN_OR_RETURN(memory::desc weights, FilterDesc(spec, InputSlot(1), p.geometry, kOp));
  OPS_ASSIGN_OR_RETURN(memory::desc diff_src, ImageDesc(spec, OutputSlot(0), kOp, "output 0 (dx)"));
  std::unique_ptr<PrimitiveKernel> kernel;
  OPS_RETURN_IF_ERROR(CatchDnnl("preparing Conv2DBackwardData", [&]() -> absl::Status {
    const dnnl::engine& engine = p.ctx->engine();
    const ConvGeometry& g = p.geometry;
    auto hint = ForwardPd(engine, g, diff_src, AnyLayout(weights), memory::desc(), diff_dst);
    dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, diff_src,
                                               AnyLayout(weights), diff_dst, g.strides, g.dilates,
                                               g.padding, g.padding);
    dnnl::convolution_backward_data::primitive_desc pd(desc, UserScratchpad(), engine, hint);
    kernel = std::make_unique<PrimitiveKernel>(
        *p.ctx, std::string(kOp), spec, dnnl::convolution_backward_data(pd), pd.scratchpad_desc());
    kernel->Bind(DNNL_ARG_DIFF_DST, InputSlot(0), diff_dst);
    kernel->BindStaged(DNNL_ARG_WEIGHTS, InputSlot(1), weights, pd.weights_desc(),
                       Direction::kIntoPrimitive);
    kernel->Bind(DNNL_ARG_DIFF_SRC, OutputSlot(0), diff_src);
    return absl::OkStatus();
  }));
  return std::unique_ptr<Kernel>(std::move(kernel));
}

// Conv2DBackwardFilter: (dy, x) -> dw. The bias gradient is BiasGrad's job.
absl::StatusOr<std::unique_ptr<Kernel>> PrepareConv2DBackwardFilter(const KernelSpec& spec) {
  constexpr std::string_view kOp = "Conv2DBackwardFilter";
  OPS_ASSIGN_OR_RETURN(Prepared p, Preamble(spec, kOp, 2, 2));
  OPS_ASSIGN_OR_RETURN(memory::desc diff_dst, ImageDesc(spec, InputSlot(0), kOp, "input 0 (dy)"));
  OPS_ASSIGN_OR_RETURN(ImageBinding x,
                       ImageInLayoutOf(spec, InputSlot(1), InputSlot(0), kOp, "input 1 (x)"));
  const memory::desc& src = x.as_computed;
  OPS_ASSIGN_OR_RETURN(memory::desc diff_weights, FilterDesc(spec, OutputSlot(0), p.geometry, kOp));
  std::unique_ptr<PrimitiveKernel> kernel;
  OPS_RETURN_IF_ERROR(CatchDnnl("preparing Conv2DBackwardFilter", [&]() -> absl::Status {
    const dnnl::engine& engine = p.ctx->engine();
    const ConvGeometry& g = p.geometry;
    auto hint = ForwardPd(engine, g, src, AnyLayout(diff_weights), memory::desc(), diff_dst);
    dnnl::convolution_backward_weights::desc desc(dnnl::algorithm::convolution_direct, src,
                                                  AnyLayout(diff_weights), diff_dst, g.strides,
                                                  g.dilates, g.padding, g.padding);
    dnnl::convolution_backward_weights::primitive_desc pd(desc, UserScratchpad(), engine, hint);
    kernel = std::make_unique<PrimitiveKernel>(*p.ctx, std::string(kOp), spec,
                                               dnnl::convolution_backward_weights(pd),
                                               pd.scratchpad_desc());
    kernel->Bind(DNNL_ARG_DIFF_DST, InputSlot(0), diff_dst);
    kernel->BindStaged(DNNL_ARG_SRC, InputSlot(1), x.as_stored, src, Direction::kIntoPrimitive);
    kernel->BindStaged(DNNL_ARG_DIFF_WEIGHTS, OutputSlot(0), diff_weights, pd.diff_weights_desc(),
                       Direction::kOutOfPrimitive);
    return absl::OkStatus();
  }));
  return std::unique_ptr<Kernel>(std::move(kernel));
}

}  // namespace

absl::Status RegisterConv2DCpu(KernelRegistry& registry) {
  const std::pair<const char*, KernelFactory> kernels[] = {
      {"Conv2D", PrepareConv2D},
      {"Conv2DBackwardData", PrepareConv2DBackwardData},
      {"Conv2DBackwardFilter", PrepareConv2DBackwardFilter}};
  for (const auto& [op, factory] : kernels) {
    OPS_RETURN_IF_ERROR(registry.Register(op, DeviceType::kCpu, graph::DType::kFloat32, factory));
  }
  return absl::OkStatus();
}

}  // namespace gradflow::ops::cpu
