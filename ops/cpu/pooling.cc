// Pooling kernels (fp32), rank-4 tensors row-major (NCHW) or channels-last (NHWC):
// - MaxPool, AvgPool and AvgPoolGrad on oneDNN's pooling primitives;
// - MaxPoolGrad as a C++ loop that finds each window's argmax again from x: oneDNN's max-pooling
//   backward needs the forward pass's workspace, which the graph does not keep between nodes;
// - GlobalAvgPool and its gradient as C++ loops (a mean and a broadcast need nothing more).
#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <memory>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "ops/cpu/cpu_context.h"
#include "ops/cpu/cpu_kernels.h"
#include "ops/cpu/dnnl_util.h"

namespace gradflow::ops::cpu {
namespace {

using dnnl::memory;

// oneDNN arguments bound once to placeholder memory; each run points them at its buffers, so Run
// neither builds primitives nor allocates.
class BoundArgs {
 public:
  void Bind(int arg, const memory::desc& desc, const dnnl::engine& engine) {
    args_.emplace(arg, memory(desc, engine, DNNL_MEMORY_NONE));
  }
  void Point(int arg, void* data) { args_.at(arg).set_data_handle(data); }
  const std::unordered_map<int, memory>& args() const { return args_; }

 private:
  std::unordered_map<int, memory> args_;
};

absl::Status CheckFloat32Rank4(const KernelSpec& spec) {
  for (const graph::TensorType& type : spec.inputs) {
    if (type.dtype != graph::DType::kFloat32) {
      return absl::UnimplementedError(absl::StrCat(
          spec.node.op, " on the CPU supports float32, got ", graph::DTypeName(type.dtype)));
    }
    if (type.shape.size() != 4) {
      return absl::InvalidArgumentError(absl::StrCat(spec.node.op, " takes rank-4 tensors, got ",
                                                     graph::ShapeToString(type.shape)));
    }
  }
  return absl::OkStatus();
}

// Element strides of a rank-4 tensor along N, C, H and W in its layout.
struct Strides {
  int64_t n, c, h, w;
};
Strides StridesOf(const graph::Shape& shape, Layout layout) {
  const int64_t channels = shape[1], height = shape[2], width = shape[3];
  if (layout == Layout::kChannelsLast) {
    return {height * width * channels, 1, width * channels, channels};
  }
  return {channels * height * width, height * width, width, 1};
}

// One pooling window geometry; output sizes follow the schema (floor mode).
struct Window {
  int64_t batch, channels, height, width, out_height, out_width;
  std::array<int64_t, 2> kernel, strides, pads;

  // oneDNN wants the right/bottom padding that makes its output size exact; in floor mode it may
  // be below the left padding, even negative (the last rows never reached).
  memory::dims PadsEnd() const {
    return {(out_height - 1) * strides[0] + kernel[0] - height - pads[0],
            (out_width - 1) * strides[1] + kernel[1] - width - pads[1]};
  }
};

Window WindowOf(const KernelSpec& spec, const graph::Shape& x, const graph::Shape& y) {
  const std::vector<int64_t>& kernel = spec.attrs.Ints("kernel");
  const std::vector<int64_t>& strides = spec.attrs.Ints("strides");
  const std::vector<int64_t>& pads = spec.attrs.Ints("pads");
  return {.batch = x[0],
          .channels = x[1],
          .height = x[2],
          .width = x[3],
          .out_height = y[2],
          .out_width = y[3],
          .kernel = {kernel[0], kernel[1]},
          .strides = {strides[0], strides[1]},
          .pads = {pads[0], pads[1]}};
}

dnnl::algorithm AvgAlgorithm(const KernelSpec& spec) {
  return spec.attrs.Int("count_include_pad") != 0 ? dnnl::algorithm::pooling_avg_include_padding
                                                  : dnnl::algorithm::pooling_avg_exclude_padding;
}

// A prepared oneDNN primitive with a source and destination (forward) or diff_dst and diff_src
// (backward), run synchronously.
class DnnlPoolKernel final : public Kernel {
 public:
  DnnlPoolKernel(CpuContext& context, dnnl::primitive primitive, BoundArgs args, int input_arg,
                 int output_arg, size_t scratchpad_bytes, const char* what)
      : context_(context),
        primitive_(std::move(primitive)),
        args_(std::move(args)),
        input_arg_(input_arg),
        output_arg_(output_arg),
        scratchpad_bytes_(scratchpad_bytes),
        what_(what) {}

  size_t workspace_bytes() const override { return scratchpad_bytes_; }

  absl::Status Run(std::span<const TensorRef> inputs, std::span<const TensorRef> outputs,
                   void* workspace) override {
    return CatchDnnl(what_, [&]() -> absl::Status {
      args_.Point(input_arg_, inputs[0].data);
      args_.Point(output_arg_, outputs[0].data);
      args_.Point(DNNL_ARG_SCRATCHPAD, workspace);
      primitive_.execute(context_.stream(), args_.args());
      context_.stream().wait();
      return absl::OkStatus();
    });
  }

 private:
  CpuContext& context_;
  dnnl::primitive primitive_;
  BoundArgs args_;
  int input_arg_;
  int output_arg_;
  size_t scratchpad_bytes_;
  const char* what_;
};

dnnl::pooling_forward::desc ForwardDesc(dnnl::prop_kind prop, dnnl::algorithm algorithm,
                                        const memory::desc& src, const memory::desc& dst,
                                        const Window& window) {
  return dnnl::pooling_forward::desc(
      prop, algorithm, src, dst, {window.strides[0], window.strides[1]},
      {window.kernel[0], window.kernel[1]}, {window.pads[0], window.pads[1]}, window.PadsEnd());
}

// MaxPool and AvgPool: x -> y.
absl::StatusOr<std::unique_ptr<Kernel>> MakeForwardPool(const KernelSpec& spec,
                                                        dnnl::algorithm algorithm) {
  if (absl::Status s = CheckFloat32Rank4(spec); !s.ok()) return s;
  const Window window = WindowOf(spec, spec.inputs[0].shape, spec.outputs[0].shape);
  absl::StatusOr<memory::desc> src = DnnlDesc(spec.inputs[0], spec.input_layouts[0]);
  if (!src.ok()) return src.status();
  absl::StatusOr<memory::desc> dst = DnnlDesc(spec.outputs[0], spec.output_layouts[0]);
  if (!dst.ok()) return dst.status();
  auto& context = static_cast<CpuContext&>(spec.device);
  const dnnl::engine& engine = context.engine();
  std::unique_ptr<Kernel> kernel;
  absl::Status status = CatchDnnl("preparing pooling", [&]() -> absl::Status {
    // Inference needs no workspace even for max pooling; the backward pass does without it.
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::pooling_forward::primitive_desc pd(
        ForwardDesc(dnnl::prop_kind::forward_inference, algorithm, *src, *dst, window), attr,
        engine);
    BoundArgs args;
    args.Bind(DNNL_ARG_SRC, *src, engine);
    args.Bind(DNNL_ARG_DST, *dst, engine);
    args.Bind(DNNL_ARG_SCRATCHPAD, pd.scratchpad_desc(), engine);
    kernel = std::make_unique<DnnlPoolKernel>(context, dnnl::pooling_forward(pd), std::move(args),
                                              DNNL_ARG_SRC, DNNL_ARG_DST,
                                              pd.scratchpad_desc().get_size(), "pooling forward");
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return kernel;
}

absl::StatusOr<std::unique_ptr<Kernel>> MakeMaxPool(const KernelSpec& spec) {
  return MakeForwardPool(spec, dnnl::algorithm::pooling_max);
}

absl::StatusOr<std::unique_ptr<Kernel>> MakeAvgPool(const KernelSpec& spec) {
  return MakeForwardPool(spec, AvgAlgorithm(spec));
}

// AvgPoolGrad: dy -> dx (shape from the bound output type).
absl::StatusOr<std::unique_ptr<Kernel>> MakeAvgPoolGrad(const KernelSpec& spec) {
  if (absl::Status s = CheckFloat32Rank4(spec); !s.ok()) return s;
  const Window window = WindowOf(spec, spec.outputs[0].shape, spec.inputs[0].shape);
  absl::StatusOr<memory::desc> diff_dst = DnnlDesc(spec.inputs[0], spec.input_layouts[0]);
  if (!diff_dst.ok()) return diff_dst.status();
  absl::StatusOr<memory::desc> diff_src = DnnlDesc(spec.outputs[0], spec.output_layouts[0]);
  if (!diff_src.ok()) return diff_src.status();
  auto& context = static_cast<CpuContext&>(spec.device);
  const dnnl::engine& engine = context.engine();
  const dnnl::algorithm algorithm = AvgAlgorithm(spec);
  std::unique_ptr<Kernel> kernel;
  absl::Status status = CatchDnnl("preparing AvgPoolGrad", [&]() -> absl::Status {
    const dnnl::pooling_forward::primitive_desc hint(
        ForwardDesc(dnnl::prop_kind::forward_training, algorithm, *diff_src, *diff_dst, window),
        engine);
    const dnnl::pooling_backward::desc desc(
        algorithm, *diff_src, *diff_dst, {window.strides[0], window.strides[1]},
        {window.kernel[0], window.kernel[1]}, {window.pads[0], window.pads[1]}, window.PadsEnd());
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::pooling_backward::primitive_desc pd(desc, attr, engine, hint);
    BoundArgs args;
    args.Bind(DNNL_ARG_DIFF_DST, *diff_dst, engine);
    args.Bind(DNNL_ARG_DIFF_SRC, *diff_src, engine);
    args.Bind(DNNL_ARG_SCRATCHPAD, pd.scratchpad_desc(), engine);
    kernel = std::make_unique<DnnlPoolKernel>(context, dnnl::pooling_backward(pd), std::move(args),
                                              DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC,
                                              pd.scratchpad_desc().get_size(), "AvgPoolGrad");
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return kernel;
}

// PyTorch's rule for ties and NaN: the first maximum in row-major window order wins, and a NaN
// replaces whatever came before it. Written without short-circuit so that the callers' selects
// compile to blends: on real data the outcome is random and a branch would mispredict half the
// time.
inline bool TakesOver(float value, float best) {
  return static_cast<bool>(static_cast<int>(value > best) | static_cast<int>(value != value));
}

// MaxPoolGrad (dy, x, y) -> dx: dy of each window goes to the window's argmax in x, summed where
// windows overlap. x and dx share a layout; dy may have either.
class MaxPoolGradKernel final : public Kernel {
 public:
  MaxPoolGradKernel(const Window& window, Layout layout, Strides dy_strides)
      : window_(window), layout_(layout), dy_strides_(dy_strides) {}

  absl::Status Run(std::span<const TensorRef> inputs, std::span<const TensorRef> outputs,
                   void* /*workspace*/) override {
    const float* dy = inputs[0].as<const float>();
    const float* x = inputs[1].as<const float>();
    float* dx = outputs[0].as<float>();
    if (layout_ == Layout::kChannelsLast) {
      RunChannelsLast(dy, x, dx);
    } else {
      RunPlanar(dy, x, dx);
    }
    return absl::OkStatus();
  }

 private:
  // Window rows [begin, end) of output row `o` along one axis, clipped to the input.
  static std::pair<int64_t, int64_t> Span(int64_t o, int64_t stride, int64_t pad, int64_t kernel,
                                          int64_t size) {
    const int64_t start = o * stride - pad;
    return {std::max<int64_t>(start, 0), std::min(start + kernel, size)};
  }

  // Argmax (index into the plane) of the window at (oh, ow), clipped to the input.
  int64_t WindowArgmax(const float* x_plane, int64_t h_begin, int64_t h_end, int64_t ow) const {
    const Window& w = window_;
    const auto [w_begin, w_end] = Span(ow, w.strides[1], w.pads[1], w.kernel[1], w.width);
    int64_t best_at = h_begin * w.width + w_begin;
    float best = -std::numeric_limits<float>::infinity();
    for (int64_t h = h_begin; h < h_end; ++h) {
      for (int64_t col = w_begin; col < w_end; ++col) {
        const float value = x_plane[h * w.width + col];
        const bool takes_over = TakesOver(value, best);
        best = takes_over ? value : best;
        best_at = takes_over ? h * w.width + col : best_at;
      }
    }
    return best_at;
  }

  // One (n, c) plane per task: planes are contiguous and never share dx elements. Windows that
  // overlap the left or right padding are found one by one; the interior ones in chunks that
  // advance together through the window positions, so that the selects vectorize across windows.
  void RunPlanar(const float* dy, const float* x, float* dx) const {
    constexpr int64_t kChunk = 64;
    const Window& w = window_;
    const int64_t plane_size = w.height * w.width;
    const int64_t stride = w.strides[1], pad = w.pads[1], kernel = w.kernel[1];
    // Interior windows: ow * stride - pad >= 0 and ow * stride - pad + kernel <= width.
    const int64_t interior_begin = std::min((pad + stride - 1) / stride, w.out_width);
    const int64_t interior_end =
        std::max(interior_begin, std::min((w.width + pad - kernel) / stride + 1, w.out_width));
#pragma omp parallel for schedule(static)
    for (int64_t plane = 0; plane < w.batch * w.channels; ++plane) {
      const int64_t n = plane / w.channels, c = plane % w.channels;
      const float* x_plane = x + plane * plane_size;
      float* dx_plane = dx + plane * plane_size;
      const float* dy_plane = dy + n * dy_strides_.n + c * dy_strides_.c;
      std::fill(dx_plane, dx_plane + plane_size, 0.0f);
      std::array<float, kChunk> best;
      std::array<int32_t, kChunk> best_at;  // int32 so that the selects vectorize with floats
      for (int64_t oh = 0; oh < w.out_height; ++oh) {
        const auto [h_begin, h_end] = Span(oh, w.strides[0], w.pads[0], w.kernel[0], w.height);
        const float* dy_row = dy_plane + oh * dy_strides_.h;
        for (int64_t ow = 0; ow < interior_begin; ++ow) {
          dx_plane[WindowArgmax(x_plane, h_begin, h_end, ow)] += dy_row[ow * dy_strides_.w];
        }
        for (int64_t ow = interior_end; ow < w.out_width; ++ow) {
          dx_plane[WindowArgmax(x_plane, h_begin, h_end, ow)] += dy_row[ow * dy_strides_.w];
        }
        for (int64_t ow0 = interior_begin; ow0 < interior_end; ow0 += kChunk) {
          const int64_t count = std::min(kChunk, interior_end - ow0);
          const float* x_first = x_plane + ow0 * stride - pad;  // window ow0's first column
          for (int64_t j = 0; j < count; ++j) {
            best[j] = -std::numeric_limits<float>::infinity();
            best_at[j] = static_cast<int32_t>(h_begin * w.width + (ow0 + j) * stride - pad);
          }
          for (int64_t h = h_begin; h < h_end; ++h) {
            for (int64_t kw = 0; kw < kernel; ++kw) {
              const float* x_tap = x_first + h * w.width + kw;
              const auto tap_at = static_cast<int32_t>(h * w.width + ow0 * stride - pad + kw);
              const auto step = static_cast<int32_t>(stride);
#pragma omp simd
              for (int64_t j = 0; j < count; ++j) {
                const float value = x_tap[j * stride];
                const bool takes_over = TakesOver(value, best[j]);
                best[j] = takes_over ? value : best[j];
                best_at[j] = takes_over ? tap_at + static_cast<int32_t>(j) * step : best_at[j];
              }
            }
          }
          for (int64_t j = 0; j < count; ++j) {
            dx_plane[best_at[j]] += dy_row[(ow0 + j) * dy_strides_.w];
          }
        }
      }
    }
  }

  // One (n, block of channels) per task, the channel loop innermost so that it vectorizes.
  void RunChannelsLast(const float* dy, const float* x, float* dx) const {
    constexpr int64_t kBlock = 64;
    const Window& w = window_;
    const int64_t channels = w.channels;
    const int64_t blocks = (channels + kBlock - 1) / kBlock;
    const int64_t image_size = w.height * w.width * channels;
#pragma omp parallel for schedule(static)
    for (int64_t task = 0; task < w.batch * blocks; ++task) {
      const int64_t n = task / blocks;
      const int64_t c0 = (task % blocks) * kBlock;
      const int64_t count = std::min(kBlock, channels - c0);
      const float* x_image = x + n * image_size + c0;
      float* dx_image = dx + n * image_size + c0;
      const float* dy_image = dy + n * dy_strides_.n + c0 * dy_strides_.c;
      for (int64_t pixel = 0; pixel < w.height * w.width; ++pixel) {
        std::fill(dx_image + pixel * channels, dx_image + pixel * channels + count, 0.0f);
      }
      std::array<float, kBlock> best;
      std::array<int32_t, kBlock> best_pixel;  // int32 so that the selects vectorize with floats
      for (int64_t oh = 0; oh < w.out_height; ++oh) {
        const auto [h_begin, h_end] = Span(oh, w.strides[0], w.pads[0], w.kernel[0], w.height);
        for (int64_t ow = 0; ow < w.out_width; ++ow) {
          const auto [w_begin, w_end] = Span(ow, w.strides[1], w.pads[1], w.kernel[1], w.width);
          const auto first = static_cast<int32_t>(h_begin * w.width + w_begin);
          for (int64_t c = 0; c < count; ++c) {
            best[c] = -std::numeric_limits<float>::infinity();
            best_pixel[c] = first;
          }
          for (int64_t h = h_begin; h < h_end; ++h) {
            for (int64_t col = w_begin; col < w_end; ++col) {
              const auto pixel = static_cast<int32_t>(h * w.width + col);
              const float* x_pixel = x_image + pixel * channels;
#pragma omp simd
              for (int64_t c = 0; c < count; ++c) {
                const bool takes_over = TakesOver(x_pixel[c], best[c]);
                best[c] = takes_over ? x_pixel[c] : best[c];
                best_pixel[c] = takes_over ? pixel : best_pixel[c];
              }
            }
          }
          const float* dy_pixel = dy_image + oh * dy_strides_.h + ow * dy_strides_.w;
          for (int64_t c = 0; c < count; ++c) {
            dx_image[best_pixel[c] * channels + c] += dy_pixel[c * dy_strides_.c];
          }
        }
      }
    }
  }

  Window window_;
  Layout layout_;
  Strides dy_strides_;
};

absl::StatusOr<std::unique_ptr<Kernel>> MakeMaxPoolGrad(const KernelSpec& spec) {
  if (absl::Status s = CheckFloat32Rank4(spec); !s.ok()) return s;
  const graph::Shape& x = spec.inputs[1].shape;
  if (x[2] * x[3] > std::numeric_limits<int32_t>::max()) {
    return absl::UnimplementedError(absl::StrCat(
        "MaxPoolGrad supports at most 2^31 pixels per image, got ", graph::ShapeToString(x)));
  }
  if (spec.input_layouts[1] != spec.output_layouts[0]) {
    return absl::UnimplementedError("MaxPoolGrad needs x and dx in one layout");
  }
  const Window window = WindowOf(spec, spec.inputs[1].shape, spec.inputs[0].shape);
  return std::unique_ptr<Kernel>(new MaxPoolGradKernel(
      window, spec.output_layouts[0], StridesOf(spec.inputs[0].shape, spec.input_layouts[0])));
}

// GlobalAvgPool: x[N,C,H,W] -> y[N,C,1,1]; y is the same memory in either layout.
class GlobalAvgPoolKernel final : public Kernel {
 public:
  GlobalAvgPoolKernel(const graph::Shape& x, Layout layout) : x_(x), layout_(layout) {}

  absl::Status Run(std::span<const TensorRef> inputs, std::span<const TensorRef> outputs,
                   void* /*workspace*/) override {
    const float* x = inputs[0].as<const float>();
    float* y = outputs[0].as<float>();
    const int64_t batch = x_[0], channels = x_[1], pixels = x_[2] * x_[3];
    const float scale = 1.0f / static_cast<float>(pixels);
    if (layout_ == Layout::kChannelsLast) {
#pragma omp parallel for schedule(static)
      for (int64_t n = 0; n < batch; ++n) {
        const float* image = x + n * pixels * channels;
        float* sums = y + n * channels;
        std::fill(sums, sums + channels, 0.0f);
        for (int64_t p = 0; p < pixels; ++p) {
#pragma omp simd
          for (int64_t c = 0; c < channels; ++c) sums[c] += image[p * channels + c];
        }
        for (int64_t c = 0; c < channels; ++c) sums[c] *= scale;
      }
    } else {
#pragma omp parallel for schedule(static)
      for (int64_t plane = 0; plane < batch * channels; ++plane) {
        const float* values = x + plane * pixels;
        float sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int64_t p = 0; p < pixels; ++p) sum += values[p];
        y[plane] = sum * scale;
      }
    }
    return absl::OkStatus();
  }

 private:
  graph::Shape x_;
  Layout layout_;
};

// GlobalAvgPoolGrad: dy[N,C,1,1] -> dx = dy / (H*W) at every pixel.
class GlobalAvgPoolGradKernel final : public Kernel {
 public:
  GlobalAvgPoolGradKernel(const graph::Shape& dx, Layout layout) : dx_(dx), layout_(layout) {}

  absl::Status Run(std::span<const TensorRef> inputs, std::span<const TensorRef> outputs,
                   void* /*workspace*/) override {
    const float* dy = inputs[0].as<const float>();
    float* dx = outputs[0].as<float>();
    const int64_t batch = dx_[0], channels = dx_[1], pixels = dx_[2] * dx_[3];
    const float scale = 1.0f / static_cast<float>(pixels);
    if (layout_ == Layout::kChannelsLast) {
#pragma omp parallel for schedule(static)
      for (int64_t row = 0; row < batch * pixels; ++row) {
        const float* grads = dy + (row / pixels) * channels;
        float* out = dx + row * channels;
#pragma omp simd
        for (int64_t c = 0; c < channels; ++c) out[c] = grads[c] * scale;
      }
    } else {
#pragma omp parallel for schedule(static)
      for (int64_t plane = 0; plane < batch * channels; ++plane) {
        std::fill(dx + plane * pixels, dx + (plane + 1) * pixels, dy[plane] * scale);
      }
    }
    return absl::OkStatus();
  }

 private:
  graph::Shape dx_;
  Layout layout_;
};

absl::StatusOr<std::unique_ptr<Kernel>> MakeGlobalAvgPool(const KernelSpec& spec) {
  if (absl::Status s = CheckFloat32Rank4(spec); !s.ok()) return s;
  return std::unique_ptr<Kernel>(
      new GlobalAvgPoolKernel(spec.inputs[0].shape, spec.input_layouts[0]));
}

absl::StatusOr<std::unique_ptr<Kernel>> MakeGlobalAvgPoolGrad(const KernelSpec& spec) {
  if (absl::Status s = CheckFloat32Rank4(spec); !s.ok()) return s;
  return std::unique_ptr<Kernel>(
      new GlobalAvgPoolGradKernel(spec.outputs[0].shape, spec.output_layouts[0]));
}

}  // namespace

absl::Status RegisterPoolingCpu(KernelRegistry& registry) {
  const std::pair<const char*, KernelFactory> factories[] = {
      {"MaxPool", MakeMaxPool},
      {"MaxPoolGrad", MakeMaxPoolGrad},
      {"AvgPool", MakeAvgPool},
      {"AvgPoolGrad", MakeAvgPoolGrad},
      {"GlobalAvgPool", MakeGlobalAvgPool},
      {"GlobalAvgPoolGrad", MakeGlobalAvgPoolGrad},
  };
  for (const auto& [op, factory] : factories) {
    if (absl::Status s = registry.Register(op, DeviceType::kCpu, graph::DType::kFloat32, factory);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace gradflow::ops::cpu
