// Conv2D, Conv2DBackwardData and Conv2DBackwardFilter on cuDNN (fp32, TF32 when the context
// allows). Activations are NCHW or NHWC as planned; filters are stored OIHW (PyTorch's order).
// With NHWC activations cuDNN's fast kernels want the filter NHWC too (O,KH,KW,C, as PyTorch's
// channels_last weights), so the kernel transposes it into its workspace on each run (forward,
// backward data) or transposes the NHWC filter gradient back into OIHW (backward filter): a few
// MB per layer, small next to the convolution.
//
// The algorithm for each (direction, shape) is chosen once per context by cudnnFind*, which times
// the candidates on the device, skipping any whose workspace exceeds the context's limit.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_kernels.h"
#include "ops/cuda/cudnn_util.h"
#include "ops/cuda/launch.h"

namespace gradflow::ops::cuda {
namespace {

enum class Direction { kForward, kBackwardData, kBackwardFilter };

constexpr size_t kWorkspaceAlignment = 256;
size_t AlignUp(size_t bytes) {
  return (bytes + kWorkspaceAlignment - 1) / kWorkspaceAlignment * kWorkspaceAlignment;
}

const char* DirectionName(Direction d) {
  switch (d) {
    case Direction::kForward:
      return "forward";
    case Direction::kBackwardData:
      return "backward-data";
    case Direction::kBackwardFilter:
      return "backward-filter";
  }
  return "?";
}

absl::StatusOr<std::vector<int>> PairAttr(const KernelSpec& spec, const char* name,
                                          int64_t min_value) {
  const std::vector<int64_t>& values = spec.attrs.Ints(name);
  if (values.size() != 2 || values[0] < min_value || values[1] < min_value ||
      values[0] > (1 << 20) || values[1] > (1 << 20)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the CUDA ", spec.node.op, " kernel of node '", spec.node.name, "' needs ", name,
        " as two values >= ", min_value, ", got [", absl::StrJoin(values, ","), "]"));
  }
  return std::vector<int>{static_cast<int>(values[0]), static_cast<int>(values[1])};
}

// Finds the fastest algorithm within the workspace limit. `find` fills perf results of type
// Perf (cudnnConvolution*AlgoPerf_t).
template <typename Perf, typename Find>
absl::StatusOr<ConvAlgorithm> ChooseAlgorithm(const CudaContext& ctx, int count, Find find,
                                              const std::string& what) {
  std::vector<Perf> perf(static_cast<size_t>(count));
  int returned = 0;
  GF_CUDA_RETURN_IF_ERROR(CudnnStatus(find(count, &returned, perf.data()),
                                      absl::StrCat("cudnnFind (", what, ")").c_str()));
  for (int i = 0; i < returned; ++i) {
    const Perf& p = perf[static_cast<size_t>(i)];
    if (p.status != CUDNN_STATUS_SUCCESS) continue;
    if (p.memory > ctx.options().max_conv_workspace_bytes) continue;
    // Without TF32 only algorithms that keep IEEE fp32 arithmetic qualify.
    if (!ctx.tf32() && p.mathType != CUDNN_FMA_MATH && p.mathType != CUDNN_DEFAULT_MATH) continue;
    return ConvAlgorithm{.algorithm = static_cast<int>(p.algo),
                         .math = ctx.tf32() ? p.mathType : CUDNN_FMA_MATH,
                         .workspace_bytes = p.memory};
  }
  return absl::UnimplementedError(absl::StrCat("cuDNN has no usable algorithm for ", what,
                                               " within a workspace of ",
                                               ctx.options().max_conv_workspace_bytes, " bytes"));
}

class ConvKernel final : public Kernel {
 public:
  static absl::StatusOr<std::unique_ptr<Kernel>> Prepare(const KernelSpec& spec,
                                                         Direction direction);

  size_t workspace_bytes() const override {
    return staging_bytes_ + x_staging_bytes_ + algorithm_.workspace_bytes;
  }

  absl::Status Run(std::span<const TensorRef> in, std::span<const TensorRef> out,
                   void* workspace) override {
    auto* base = static_cast<std::byte*>(workspace);
    void* staged_filter = staging_bytes_ > 0 ? base : nullptr;
    auto* staged_x =
        x_staging_bytes_ > 0 ? reinterpret_cast<float*>(base + staging_bytes_) : nullptr;
    void* scratch =
        algorithm_.workspace_bytes > 0 ? base + staging_bytes_ + x_staging_bytes_ : nullptr;
    const float one = 1.0f, zero = 0.0f;
    cudnnHandle_t handle = ctx_.cudnn();
    switch (direction_) {
      case Direction::kForward: {
        const void* w = in[1].data;
        if (staged_filter != nullptr) {
          GF_CUDA_RETURN_IF_ERROR(StageFilter(in[1].as<const float>(), staged_filter));
          w = staged_filter;
        }
        const void* x = in[0].data;
        if (staged_x != nullptr) {
          GF_CUDA_RETURN_IF_ERROR(StageX(in[0].as<const float>(), staged_x));
          x = staged_x;
        }
        GF_CUDA_RETURN_IF_ERROR(CudnnStatus(
            cudnnConvolutionForward(handle, &one, x_.get(), x, w_.get(), w, conv_.get(),
                                    static_cast<cudnnConvolutionFwdAlgo_t>(algorithm_.algorithm),
                                    scratch, algorithm_.workspace_bytes, &zero, y_.get(),
                                    out[0].data),
            "cudnnConvolutionForward"));
        if (in.size() > 2) {
          GF_CUDA_RETURN_IF_ERROR(CudaStatus(
              launch::BiasAdd(out[0].as<float>(), in[2].as<const float>(), bias_view_.outer,
                              bias_view_.channels, bias_view_.inner, ctx_.stream()),
              "Conv2D bias launch"));
        }
        return absl::OkStatus();
      }
      case Direction::kBackwardData: {
        const void* w = in[1].data;
        if (staged_filter != nullptr) {
          GF_CUDA_RETURN_IF_ERROR(StageFilter(in[1].as<const float>(), staged_filter));
          w = staged_filter;
        }
        void* dx = staged_x != nullptr ? static_cast<void*>(staged_x) : out[0].data;
        GF_CUDA_RETURN_IF_ERROR(
            CudnnStatus(cudnnConvolutionBackwardData(
                            handle, &one, w_.get(), w, y_.get(), in[0].data, conv_.get(),
                            static_cast<cudnnConvolutionBwdDataAlgo_t>(algorithm_.algorithm),
                            scratch, algorithm_.workspace_bytes, &zero, x_.get(), dx),
                        "cudnnConvolutionBackwardData"));
        if (staged_x == nullptr) return absl::OkStatus();
        return CudaStatus(launch::CopyLogical(staged_x, x_work_dims_, out[0].as<float>(),
                                              x_stored_dims_, x_elements_, ctx_.stream()),
                          "Conv2DBackwardData gradient layout");
      }
      case Direction::kBackwardFilter: {
        void* dw = staged_filter != nullptr ? staged_filter : out[0].data;
        const void* x = in[1].data;
        if (staged_x != nullptr) {
          GF_CUDA_RETURN_IF_ERROR(StageX(in[1].as<const float>(), staged_x));
          x = staged_x;
        }
        GF_CUDA_RETURN_IF_ERROR(
            CudnnStatus(cudnnConvolutionBackwardFilter(
                            handle, &one, x_.get(), x, y_.get(), in[0].data, conv_.get(),
                            static_cast<cudnnConvolutionBwdFilterAlgo_t>(algorithm_.algorithm),
                            scratch, algorithm_.workspace_bytes, &zero, w_.get(), dw),
                        "cudnnConvolutionBackwardFilter"));
        if (staged_filter == nullptr) return absl::OkStatus();
        return CudaStatus(
            launch::CopyLogical(static_cast<const float*>(staged_filter), staged_dims_,
                                out[0].as<float>(), stored_dims_, filter_elements_, ctx_.stream()),
            "Conv2DBackwardFilter filter transpose");
      }
    }
    return absl::InternalError("unknown convolution direction");
  }

 private:
  explicit ConvKernel(CudaContext& ctx, Direction direction) : ctx_(ctx), direction_(direction) {}

  absl::Status StageFilter(const float* w, void* staged) {
    return CudaStatus(launch::CopyLogical(w, stored_dims_, static_cast<float*>(staged),
                                          staged_dims_, filter_elements_, ctx_.stream()),
                      "convolution filter transpose");
  }

  // The activation in the output's layout, when it is stored in another (the runtime's first
  // convolution reads row-major images and writes NHWC): cuDNN takes one layout for both.
  absl::Status StageX(const float* x, float* staged) {
    return CudaStatus(
        launch::CopyLogical(x, x_stored_dims_, staged, x_work_dims_, x_elements_, ctx_.stream()),
        "convolution input layout");
  }

  CudaContext& ctx_;
  Direction direction_;
  TensorDesc x_, y_;  // the convolution's input and output (or their gradients), in y's layout
  FilterDesc w_;
  ConvDesc conv_;
  ConvAlgorithm algorithm_;
  ChannelView bias_view_{1, 1, 1};
  size_t staging_bytes_ = 0;
  launch::Dims4 stored_dims_, staged_dims_;  // the filter as stored (OIHW) and as cuDNN sees it
  int64_t filter_elements_ = 0;
  size_t x_staging_bytes_ = 0;                 // x stored in another layout than y
  launch::Dims4 x_stored_dims_, x_work_dims_;  // x as stored and in y's layout
  int64_t x_elements_ = 0;
};

absl::StatusOr<std::unique_ptr<Kernel>> ConvKernel::Prepare(const KernelSpec& spec,
                                                            Direction direction) {
  absl::StatusOr<CudaContext*> context = CudaContextOf(spec);
  if (!context.ok()) return context.status();
  CudaContext& ctx = **context;
  const bool forward = direction == Direction::kForward;
  GF_CUDA_RETURN_IF_ERROR(CheckCounts(spec, 2, forward ? 3 : 2, 1));
  GF_CUDA_RETURN_IF_ERROR(RequireFloat32(spec));

  // Which operand is which: x/y are the convolution's input/output, w its filter.
  const graph::TensorType* x = nullptr;
  const graph::TensorType* y = nullptr;
  const graph::TensorType* w = nullptr;
  Layout x_layout = Layout::kRowMajor, y_layout = Layout::kRowMajor, w_layout = Layout::kRowMajor;
  switch (direction) {
    case Direction::kForward:
      x = &spec.inputs[0], w = &spec.inputs[1], y = &spec.outputs[0];
      x_layout = spec.input_layouts[0], w_layout = spec.input_layouts[1];
      y_layout = spec.output_layouts[0];
      break;
    case Direction::kBackwardData:
      y = &spec.inputs[0], w = &spec.inputs[1], x = &spec.outputs[0];
      y_layout = spec.input_layouts[0], w_layout = spec.input_layouts[1];
      x_layout = spec.output_layouts[0];
      break;
    case Direction::kBackwardFilter:
      y = &spec.inputs[0], x = &spec.inputs[1], w = &spec.outputs[0];
      y_layout = spec.input_layouts[0], x_layout = spec.input_layouts[1];
      w_layout = spec.output_layouts[0];
      break;
  }
  for (const graph::TensorType* t : {x, y, w}) {
    if (t->shape.size() != 4) {
      return absl::InvalidArgumentError(absl::StrCat("the CUDA ", spec.node.op, " kernel of node '",
                                                     spec.node.name, "' takes rank-4 tensors, got ",
                                                     graph::ShapeToString(t->shape)));
    }
  }
  if (DiffersFromRowMajor(w->shape, w_layout)) {
    return absl::UnimplementedError(absl::StrCat(
        spec.node.op, " on CUDA takes the filter row-major (OIHW), node '", spec.node.name, "'"));
  }

  absl::StatusOr<std::vector<int>> strides = PairAttr(spec, "strides", 1);
  if (!strides.ok()) return strides.status();
  absl::StatusOr<std::vector<int>> pads = PairAttr(spec, "pads", 0);
  if (!pads.ok()) return pads.status();
  absl::StatusOr<std::vector<int>> dilations = PairAttr(spec, "dilations", 1);
  if (!dilations.ok()) return dilations.status();
  const int64_t groups = spec.attrs.Int("groups");
  if (groups < 1 || groups > (1 << 20) || x->shape[1] % groups != 0) {
    return absl::InvalidArgumentError(absl::StrCat("the CUDA ", spec.node.op, " kernel of node '",
                                                   spec.node.name, "' got groups ", groups, " for ",
                                                   x->shape[1], " channels"));
  }

  std::unique_ptr<ConvKernel> kernel(new ConvKernel(ctx, direction));
  // cuDNN convolves in one layout, y's; an x stored otherwise goes through the workspace.
  const Layout work_layout = y_layout;
  if (DiffersFromRowMajor(x->shape, x_layout) != DiffersFromRowMajor(x->shape, work_layout)) {
    kernel->x_stored_dims_ = DimsOf(x->shape, x_layout);
    kernel->x_work_dims_ = DimsOf(x->shape, work_layout);
    kernel->x_elements_ = graph::NumElements(x->shape);
    kernel->x_staging_bytes_ = AlignUp(static_cast<size_t>(kernel->x_elements_) * sizeof(float));
  }
  const bool nhwc = work_layout == Layout::kChannelsLast;
  absl::StatusOr<TensorDesc> x_desc = MakeTensorDesc(x->shape, work_layout);
  if (!x_desc.ok()) return x_desc.status();
  absl::StatusOr<TensorDesc> y_desc = MakeTensorDesc(y->shape, y_layout);
  if (!y_desc.ok()) return y_desc.status();
  absl::StatusOr<FilterDesc> w_desc = MakeFilterDesc(w->shape, nhwc);
  if (!w_desc.ok()) return w_desc.status();
  kernel->x_ = *std::move(x_desc);
  kernel->y_ = *std::move(y_desc);
  kernel->w_ = *std::move(w_desc);

  cudnnConvolutionDescriptor_t conv = nullptr;
  GF_CUDA_RETURN_IF_ERROR(
      CudnnStatus(cudnnCreateConvolutionDescriptor(&conv), "cudnnCreateConvolutionDescriptor"));
  kernel->conv_.reset(conv);
  GF_CUDA_RETURN_IF_ERROR(
      CudnnStatus(cudnnSetConvolution2dDescriptor(conv, (*pads)[0], (*pads)[1], (*strides)[0],
                                                  (*strides)[1], (*dilations)[0], (*dilations)[1],
                                                  CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                  "cudnnSetConvolution2dDescriptor"));
  GF_CUDA_RETURN_IF_ERROR(CudnnStatus(cudnnSetConvolutionGroupCount(conv, static_cast<int>(groups)),
                                      "cudnnSetConvolutionGroupCount"));
  GF_CUDA_RETURN_IF_ERROR(CudnnStatus(
      cudnnSetConvolutionMathType(conv, ctx.tf32() ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH),
      "cudnnSetConvolutionMathType"));

  int dims[4] = {0, 0, 0, 0};
  GF_CUDA_RETURN_IF_ERROR(
      CudnnStatus(cudnnGetConvolution2dForwardOutputDim(conv, kernel->x_.get(), kernel->w_.get(),
                                                        &dims[0], &dims[1], &dims[2], &dims[3]),
                  "cudnnGetConvolution2dForwardOutputDim"));
  const graph::Shape expected = {dims[0], dims[1], dims[2], dims[3]};
  if (expected != y->shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        "node '", spec.node.name, "': cuDNN computes a convolution output of ",
        graph::ShapeToString(expected), " but the graph says ", graph::ShapeToString(y->shape)));
  }

  const std::string key =
      absl::StrCat(DirectionName(direction), " x", graph::ShapeToString(x->shape), " w",
                   graph::ShapeToString(w->shape), nhwc ? " nhwc" : " nchw", " s", (*strides)[0],
                   ",", (*strides)[1], " p", (*pads)[0], ",", (*pads)[1], " d", (*dilations)[0],
                   ",", (*dilations)[1], " g", groups);
  cudnnHandle_t handle = ctx.cudnn();
  ConvKernel* k = kernel.get();
  absl::StatusOr<ConvAlgorithm> algorithm = ctx.ConvAlgorithmFor(key, [&] {
    switch (direction) {
      case Direction::kForward:
        return ChooseAlgorithm<cudnnConvolutionFwdAlgoPerf_t>(
            ctx, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
            [&](int n, int* returned, cudnnConvolutionFwdAlgoPerf_t* perf) {
              return cudnnFindConvolutionForwardAlgorithm(
                  handle, k->x_.get(), k->w_.get(), k->conv_.get(), k->y_.get(), n, returned, perf);
            },
            key);
      case Direction::kBackwardData:
        return ChooseAlgorithm<cudnnConvolutionBwdDataAlgoPerf_t>(
            ctx, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
            [&](int n, int* returned, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
              return cudnnFindConvolutionBackwardDataAlgorithm(
                  handle, k->w_.get(), k->y_.get(), k->conv_.get(), k->x_.get(), n, returned, perf);
            },
            key);
      case Direction::kBackwardFilter:
        break;
    }
    return ChooseAlgorithm<cudnnConvolutionBwdFilterAlgoPerf_t>(
        ctx, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
        [&](int n, int* returned, cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
          return cudnnFindConvolutionBackwardFilterAlgorithm(
              handle, k->x_.get(), k->y_.get(), k->conv_.get(), k->w_.get(), n, returned, perf);
        },
        key);
  });
  if (!algorithm.ok()) {
    return absl::Status(
        algorithm.status().code(),
        absl::StrCat("node '", spec.node.name, "': ", algorithm.status().message()));
  }
  kernel->algorithm_ = *algorithm;
  GF_CUDA_RETURN_IF_ERROR(CudnnStatus(cudnnSetConvolutionMathType(conv, algorithm->math),
                                      "cudnnSetConvolutionMathType"));

  kernel->stored_dims_ = DimsOf(w->shape, Layout::kRowMajor);
  kernel->staged_dims_ = DimsOf(w->shape, Layout::kChannelsLast);
  kernel->filter_elements_ = graph::NumElements(w->shape);
  if (nhwc && kernel->staged_dims_.channels_last) {
    kernel->staging_bytes_ = AlignUp(static_cast<size_t>(kernel->filter_elements_) * sizeof(float));
  }
  if (forward && spec.inputs.size() > 2) {
    kernel->bias_view_ = ChannelViewOf(y->shape, y_layout);
  }
  return std::unique_ptr<Kernel>(std::move(kernel));
}

}  // namespace

absl::Status RegisterConv2DCuda(KernelRegistry& registry) {
  const std::pair<const char*, Direction> kernels[] = {
      {"Conv2D", Direction::kForward},
      {"Conv2DBackwardData", Direction::kBackwardData},
      {"Conv2DBackwardFilter", Direction::kBackwardFilter}};
  for (const auto& [op, direction] : kernels) {
    const Direction d = direction;
    if (absl::Status s =
            registry.Register(op, DeviceType::kCuda, graph::DType::kFloat32,
                              [d](const KernelSpec& spec) { return ConvKernel::Prepare(spec, d); });
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace gradflow::ops::cuda
