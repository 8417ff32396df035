// Pooling on CUDA (fp32), rank-4 tensors NCHW or NHWC:
// - MaxPool, AvgPool and MaxPoolGrad on cuDNN (its max-pooling backward takes x and y, exactly
//   the graph's MaxPoolGrad inputs, and finds each window's maximum again);
// - AvgPoolGrad, GlobalAvgPool and GlobalAvgPoolGrad as own kernels (launch.h): cuDNN's average
//   backward wants x and y, which the graph's AvgPoolGrad does not have, and the global ones are a
//   mean and a broadcast.
#include <memory>

#include "absl/strings/str_cat.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_kernels.h"
#include "ops/cuda/cudnn_util.h"
#include "ops/cuda/launch.h"

namespace gradflow::ops::cuda {
namespace {

absl::Status CheckRank4OneLayout(const KernelSpec& spec) {
  const Layout layout = spec.output_layouts[0];
  for (size_t i = 0; i < spec.inputs.size(); ++i) {
    if (spec.inputs[i].shape.size() != 4) {
      return absl::InvalidArgumentError(absl::StrCat(
          spec.node.op, " on CUDA takes rank-4 tensors, got ",
          graph::ShapeToString(spec.inputs[i].shape), " (node '", spec.node.name, "')"));
    }
    if (DiffersFromRowMajor(spec.inputs[i].shape, spec.input_layouts[i]) !=
            DiffersFromRowMajor(spec.inputs[i].shape, layout) &&
        spec.input_layouts[i] != layout) {
      return absl::UnimplementedError(absl::StrCat(spec.node.op,
                                                   " on CUDA needs one layout for all its tensors "
                                                   "(node '",
                                                   spec.node.name, "')"));
    }
  }
  if (spec.outputs[0].shape.size() != 4) {
    return absl::InvalidArgumentError(absl::StrCat(spec.node.op,
                                                   " on CUDA writes a rank-4 tensor, got ",
                                                   graph::ShapeToString(spec.outputs[0].shape)));
  }
  return absl::OkStatus();
}

struct Window {
  int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
};

absl::StatusOr<Window> ReadWindow(const KernelSpec& spec) {
  const std::vector<int64_t>& kernel = spec.attrs.Ints("kernel");
  const std::vector<int64_t>& strides = spec.attrs.Ints("strides");
  const std::vector<int64_t>& pads = spec.attrs.Ints("pads");
  if (kernel.size() != 2 || strides.size() != 2 || pads.size() != 2 || kernel[0] < 1 ||
      kernel[1] < 1 || strides[0] < 1 || strides[1] < 1 || pads[0] < 0 || pads[1] < 0 ||
      kernel[0] > (1 << 20) || kernel[1] > (1 << 20) || strides[0] > (1 << 20) ||
      strides[1] > (1 << 20) || pads[0] > kernel[0] / 2 || pads[1] > kernel[1] / 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "node '", spec.node.name, "' (", spec.node.op,
        "): kernel, strides and pads must be pairs (kernel, strides >= 1; 0 <= pads <= kernel/2)"));
  }
  return Window{static_cast<int>(kernel[0]),  static_cast<int>(kernel[1]),
                static_cast<int>(strides[0]), static_cast<int>(strides[1]),
                static_cast<int>(pads[0]),    static_cast<int>(pads[1])};
}

// MaxPool, AvgPool (forward) and MaxPoolGrad through one cuDNN pooling descriptor.
class CudnnPoolKernel final : public Kernel {
 public:
  static absl::StatusOr<std::unique_ptr<Kernel>> Prepare(const KernelSpec& spec) {
    absl::StatusOr<CudaContext*> ctx = CudaContextOf(spec);
    if (!ctx.ok()) return ctx.status();
    const bool backward = spec.node.op == "MaxPoolGrad";
    GF_CUDA_RETURN_IF_ERROR(CheckCounts(spec, backward ? 3 : 1, backward ? 3 : 1, 1));
    GF_CUDA_RETURN_IF_ERROR(RequireFloat32(spec));
    GF_CUDA_RETURN_IF_ERROR(CheckRank4OneLayout(spec));
    absl::StatusOr<Window> window = ReadWindow(spec);
    if (!window.ok()) return window.status();
    cudnnPoolingMode_t mode = CUDNN_POOLING_MAX_DETERMINISTIC;
    if (spec.node.op == "AvgPool") {
      mode = spec.attrs.Int("count_include_pad") != 0 ? CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
                                                      : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
    }
    std::unique_ptr<CudnnPoolKernel> kernel(new CudnnPoolKernel(**ctx, backward));
    const graph::TensorType& x = backward ? spec.inputs[1] : spec.inputs[0];
    const graph::TensorType& y = backward ? spec.inputs[2] : spec.outputs[0];
    const Layout layout = spec.output_layouts[0];
    absl::StatusOr<TensorDesc> x_desc = MakeTensorDesc(x.shape, layout);
    if (!x_desc.ok()) return x_desc.status();
    absl::StatusOr<TensorDesc> y_desc = MakeTensorDesc(y.shape, layout);
    if (!y_desc.ok()) return y_desc.status();
    kernel->x_ = *std::move(x_desc);
    kernel->y_ = *std::move(y_desc);
    cudnnPoolingDescriptor_t pool = nullptr;
    GF_CUDA_RETURN_IF_ERROR(
        CudnnStatus(cudnnCreatePoolingDescriptor(&pool), "cudnnCreatePoolingDescriptor"));
    kernel->pool_.reset(pool);
    GF_CUDA_RETURN_IF_ERROR(
        CudnnStatus(cudnnSetPooling2dDescriptor(pool, mode, CUDNN_NOT_PROPAGATE_NAN,
                                                window->kernel_h, window->kernel_w, window->pad_h,
                                                window->pad_w, window->stride_h, window->stride_w),
                    "cudnnSetPooling2dDescriptor"));
    int dims[4] = {0, 0, 0, 0};
    GF_CUDA_RETURN_IF_ERROR(
        CudnnStatus(cudnnGetPooling2dForwardOutputDim(pool, kernel->x_.get(), &dims[0], &dims[1],
                                                      &dims[2], &dims[3]),
                    "cudnnGetPooling2dForwardOutputDim"));
    if (graph::Shape{dims[0], dims[1], dims[2], dims[3]} != y.shape) {
      return absl::InvalidArgumentError(
          absl::StrCat("node '", spec.node.name, "': cuDNN pools ", graph::ShapeToString(x.shape),
                       " to [", dims[0], ",", dims[1], ",", dims[2], ",", dims[3],
                       "], the graph says ", graph::ShapeToString(y.shape)));
    }
    return std::unique_ptr<Kernel>(std::move(kernel));
  }

  absl::Status Run(std::span<const TensorRef> in, std::span<const TensorRef> out, void*) override {
    const float one = 1.0f, zero = 0.0f;
    if (!backward_) {
      return CudnnStatus(cudnnPoolingForward(ctx_.cudnn(), pool_.get(), &one, x_.get(), in[0].data,
                                             &zero, y_.get(), out[0].data),
                         "cudnnPoolingForward");
    }
    // Inputs dy, x, y; output dx.
    return CudnnStatus(
        cudnnPoolingBackward(ctx_.cudnn(), pool_.get(), &one, y_.get(), in[2].data, y_.get(),
                             in[0].data, x_.get(), in[1].data, &zero, x_.get(), out[0].data),
        "cudnnPoolingBackward");
  }

 private:
  CudnnPoolKernel(CudaContext& ctx, bool backward) : ctx_(ctx), backward_(backward) {}

  CudaContext& ctx_;
  bool backward_;
  TensorDesc x_, y_;
  PoolDesc pool_;
};

class AvgPoolGradKernel final : public Kernel {
 public:
  AvgPoolGradKernel(CudaContext& ctx, launch::Dims4 dx, launch::PoolWindow window)
      : ctx_(ctx), dx_(dx), window_(window) {}
  absl::Status Run(std::span<const TensorRef> in, std::span<const TensorRef> out, void*) override {
    return CudaStatus(launch::AvgPoolGrad(in[0].as<const float>(), out[0].as<float>(), dx_, window_,
                                          ctx_.stream()),
                      "AvgPoolGrad launch");
  }

 private:
  CudaContext& ctx_;
  launch::Dims4 dx_;
  launch::PoolWindow window_;
};

absl::StatusOr<std::unique_ptr<Kernel>> MakeAvgPoolGrad(const KernelSpec& spec) {
  absl::StatusOr<CudaContext*> ctx = CudaContextOf(spec);
  if (!ctx.ok()) return ctx.status();
  GF_CUDA_RETURN_IF_ERROR(CheckCounts(spec, 1, 1, 1));
  GF_CUDA_RETURN_IF_ERROR(RequireFloat32(spec));
  GF_CUDA_RETURN_IF_ERROR(CheckRank4OneLayout(spec));
  absl::StatusOr<Window> w = ReadWindow(spec);
  if (!w.ok()) return w.status();
  const graph::Shape& dy = spec.inputs[0].shape;
  // Channels-last in both or neither: the kernel indexes dy with dx's storage order.
  launch::Dims4 dx = DimsOf(spec.outputs[0].shape, spec.output_layouts[0]);
  dx.channels_last = spec.output_layouts[0] == Layout::kChannelsLast;
  const launch::PoolWindow window{.kernel_h = w->kernel_h,
                                  .kernel_w = w->kernel_w,
                                  .stride_h = w->stride_h,
                                  .stride_w = w->stride_w,
                                  .pad_h = w->pad_h,
                                  .pad_w = w->pad_w,
                                  .out_h = dy[2],
                                  .out_w = dy[3],
                                  .count_include_pad = spec.attrs.Int("count_include_pad") != 0};
  return std::unique_ptr<Kernel>(new AvgPoolGradKernel(**ctx, dx, window));
}

class GlobalAvgPoolKernel final : public Kernel {
 public:
  GlobalAvgPoolKernel(CudaContext& ctx, launch::Dims4 x, bool backward)
      : ctx_(ctx), x_(x), backward_(backward) {}
  absl::Status Run(std::span<const TensorRef> in, std::span<const TensorRef> out, void*) override {
    if (backward_) {
      return CudaStatus(
          launch::GlobalAvgPoolGrad(in[0].as<const float>(), out[0].as<float>(), x_, ctx_.stream()),
          "GlobalAvgPoolGrad launch");
    }
    return CudaStatus(
        launch::GlobalAvgPool(in[0].as<const float>(), x_, out[0].as<float>(), ctx_.stream()),
        "GlobalAvgPool launch");
  }

 private:
  CudaContext& ctx_;
  launch::Dims4 x_;
  bool backward_;
};

absl::StatusOr<std::unique_ptr<Kernel>> MakeGlobalAvgPool(const KernelSpec& spec) {
  absl::StatusOr<CudaContext*> ctx = CudaContextOf(spec);
  if (!ctx.ok()) return ctx.status();
  GF_CUDA_RETURN_IF_ERROR(CheckCounts(spec, 1, 1, 1));
  GF_CUDA_RETURN_IF_ERROR(RequireFloat32(spec));
  const bool backward = spec.node.op == "GlobalAvgPoolGrad";
  const graph::TensorType& x = backward ? spec.outputs[0] : spec.inputs[0];
  const Layout layout = backward ? spec.output_layouts[0] : spec.input_layouts[0];
  if (x.shape.size() != 4) {
    return absl::InvalidArgumentError(absl::StrCat(spec.node.op, " on CUDA takes [N,C,H,W], got ",
                                                   graph::ShapeToString(x.shape)));
  }
  launch::Dims4 dims = DimsOf(x.shape, layout);
  dims.channels_last = layout == Layout::kChannelsLast;
  return std::unique_ptr<Kernel>(new GlobalAvgPoolKernel(**ctx, dims, backward));
}

}  // namespace

absl::Status RegisterPoolingCuda(KernelRegistry& registry) {
  const std::pair<const char*, KernelFactory> kernels[] = {
      {"MaxPool", CudnnPoolKernel::Prepare},     {"AvgPool", CudnnPoolKernel::Prepare},
      {"MaxPoolGrad", CudnnPoolKernel::Prepare}, {"AvgPoolGrad", MakeAvgPoolGrad},
      {"GlobalAvgPool", MakeGlobalAvgPool},      {"GlobalAvgPoolGrad", MakeGlobalAvgPool}};
  for (const auto& [op, factory] : kernels) {
    if (absl::Status s = registry.Register(op, DeviceType::kCuda, graph::DType::kFloat32, factory);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace gradflow::ops::cuda
