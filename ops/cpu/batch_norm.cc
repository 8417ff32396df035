// BatchNorm (training and inference) and BatchNormGrad on oneDNN (fp32), any layout oneDNN's
// normalization takes: rank 2 [N,C], rank 3, rank 4 row-major or channels-last.
//
// oneDNN reports and consumes the batch variance; the graph keeps 1/sqrt(var + eps) instead
// (saved_invstd, as PyTorch does), so the forward pass converts after oneDNN and the backward pass
// converts back into its workspace before calling oneDNN.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "ops/cpu/cpu_context.h"
#include "ops/cpu/cpu_kernels.h"
#include "ops/cpu/dnnl_util.h"

namespace gradflow::ops::cpu {
namespace {

using dnnl::memory;
using dnnl::normalization_flags;

constexpr size_t kAlignment = 64;
size_t AlignUp(size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

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

absl::Status CheckSpec(const KernelSpec& spec, size_t activations) {
  for (const graph::TensorType& type : spec.inputs) {
    if (type.dtype != graph::DType::kFloat32) {
      return absl::UnimplementedError(absl::StrCat(
          spec.node.op, " on the CPU supports float32, got ", graph::DTypeName(type.dtype)));
    }
  }
  // dy, x and dx (or x and y) are one oneDNN data descriptor: they must share a layout.
  const Layout layout = spec.output_layouts[0];
  for (size_t i = 0; i < activations; ++i) {
    if (spec.input_layouts[i] != layout && spec.inputs[i].shape.size() == 4) {
      return absl::UnimplementedError(
          absl::StrCat(spec.node.op, " needs its activations and their gradients in one layout"));
    }
  }
  return absl::OkStatus();
}

memory::desc ChannelDesc(int64_t channels) {
  return memory::desc({channels}, memory::data_type::f32, memory::format_tag::a);
}

// Values per channel: N times the spatial size.
int64_t ValuesPerChannel(const graph::Shape& shape) { return graph::NumElements(shape) / shape[1]; }

class BatchNormTrainingKernel final : public Kernel {
 public:
  BatchNormTrainingKernel(CpuContext& context, dnnl::batch_normalization_forward primitive,
                          BoundArgs args, size_t scratchpad_bytes, int64_t channels,
                          int64_t values_per_channel, float epsilon, float momentum)
      : context_(context),
        primitive_(std::move(primitive)),
        args_(std::move(args)),
        scratchpad_bytes_(scratchpad_bytes),
        channels_(channels),
        values_per_channel_(values_per_channel),
        epsilon_(epsilon),
        momentum_(momentum) {}

  size_t workspace_bytes() const override { return scratchpad_bytes_; }

  // Inputs x, gamma, beta, running_mean, running_var (the last two updated in place, as State
  // tensors are); outputs y, saved_mean, saved_invstd.
  absl::Status Run(std::span<const TensorRef> inputs, std::span<const TensorRef> outputs,
                   void* workspace) override {
    absl::Status status = CatchDnnl("BatchNorm forward", [&]() -> absl::Status {
      args_.Point(DNNL_ARG_SRC, inputs[0].data);
      args_.Point(DNNL_ARG_SCALE, inputs[1].data);
      args_.Point(DNNL_ARG_SHIFT, inputs[2].data);
      args_.Point(DNNL_ARG_DST, outputs[0].data);
      args_.Point(DNNL_ARG_MEAN, outputs[1].data);
      // oneDNN writes the batch variance here; it becomes saved_invstd below.
      args_.Point(DNNL_ARG_VARIANCE, outputs[2].data);
      args_.Point(DNNL_ARG_SCRATCHPAD, workspace);
      primitive_.execute(context_.stream(), args_.args());
      context_.stream().wait();
      return absl::OkStatus();
    });
    if (!status.ok()) return status;
    const float* mean = outputs[1].as<const float>();
    float* variance_then_invstd = outputs[2].as<float>();
    float* running_mean = inputs[3].as<float>();
    float* running_var = inputs[4].as<float>();
    // PyTorch's running variance is the unbiased estimate.
    const double unbiased =
        static_cast<double>(values_per_channel_) / static_cast<double>(values_per_channel_ - 1);
    const double m = momentum_;
    for (int64_t c = 0; c < channels_; ++c) {
      const double variance = variance_then_invstd[c];
      variance_then_invstd[c] = static_cast<float>(1.0 / std::sqrt(variance + epsilon_));
      running_mean[c] = static_cast<float>((1 - m) * running_mean[c] + m * mean[c]);
      running_var[c] = static_cast<float>((1 - m) * running_var[c] + m * variance * unbiased);
    }
    return absl::OkStatus();
  }

 private:
  CpuContext& context_;
  dnnl::batch_normalization_forward primitive_;
  BoundArgs args_;
  size_t scratchpad_bytes_;
  int64_t channels_;
  int64_t values_per_channel_;
  float epsilon_;
  float momentum_;
};

class BatchNormInferenceKernel final : public Kernel {
 public:
  BatchNormInferenceKernel(CpuContext& context, dnnl::batch_normalization_forward primitive,
                           BoundArgs args, size_t scratchpad_bytes)
      : context_(context),
        primitive_(std::move(primitive)),
        args_(std::move(args)),
        scratchpad_bytes_(scratchpad_bytes) {}

  size_t workspace_bytes() const override { return scratchpad_bytes_; }

  absl::Status Run(std::span<const TensorRef> inputs, std::span<const TensorRef> outputs,
                   void* workspace) override {
    return CatchDnnl("BatchNorm inference", [&]() -> absl::Status {
      args_.Point(DNNL_ARG_SRC, inputs[0].data);
      args_.Point(DNNL_ARG_SCALE, inputs[1].data);
      args_.Point(DNNL_ARG_SHIFT, inputs[2].data);
      args_.Point(DNNL_ARG_MEAN, inputs[3].data);
      args_.Point(DNNL_ARG_VARIANCE, inputs[4].data);
      args_.Point(DNNL_ARG_DST, outputs[0].data);
      args_.Point(DNNL_ARG_SCRATCHPAD, workspace);
      primitive_.execute(context_.stream(), args_.args());
      context_.stream().wait();
      return absl::OkStatus();
    });
  }

 private:
  CpuContext& context_;
  dnnl::batch_normalization_forward primitive_;
  BoundArgs args_;
  size_t scratchpad_bytes_;
};

absl::StatusOr<std::unique_ptr<Kernel>> MakeBatchNorm(const KernelSpec& spec) {
  if (absl::Status s = CheckSpec(spec, 1); !s.ok()) return s;
  const bool training = spec.attrs.Int("training") != 0;
  const size_t expected_outputs = training ? 3 : 1;
  if (spec.outputs.size() != expected_outputs) {
    return absl::InvalidArgumentError(absl::StrCat("BatchNorm with training=", training ? 1 : 0,
                                                   " has ", expected_outputs, " outputs, got ",
                                                   spec.outputs.size()));
  }
  const graph::TensorType& x = spec.inputs[0];
  const int64_t channels = x.shape[1];
  const int64_t values_per_channel = ValuesPerChannel(x.shape);
  if (training && values_per_channel < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "training BatchNorm needs more than one value per channel to estimate a variance, got "
        "input shape ",
        graph::ShapeToString(x.shape)));
  }
  absl::StatusOr<memory::desc> data = DnnlDesc(x, spec.input_layouts[0]);
  if (!data.ok()) return data.status();
  const float epsilon = spec.attrs.Float("epsilon");
  auto& context = static_cast<CpuContext&>(spec.device);
  const dnnl::engine& engine = context.engine();
  std::unique_ptr<Kernel> kernel;
  absl::Status status = CatchDnnl("preparing BatchNorm", [&]() -> absl::Status {
    normalization_flags flags = normalization_flags::use_scale | normalization_flags::use_shift;
    if (!training) flags = flags | normalization_flags::use_global_stats;
    dnnl::batch_normalization_forward::desc desc(
        training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference, *data,
        epsilon, flags);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::batch_normalization_forward::primitive_desc pd(desc, attr, engine);
    BoundArgs args;
    args.Bind(DNNL_ARG_SRC, *data, engine);
    args.Bind(DNNL_ARG_DST, pd.dst_desc(), engine);
    args.Bind(DNNL_ARG_SCALE, ChannelDesc(channels), engine);
    args.Bind(DNNL_ARG_SHIFT, ChannelDesc(channels), engine);
    args.Bind(DNNL_ARG_MEAN, pd.mean_desc(), engine);
    args.Bind(DNNL_ARG_VARIANCE, pd.variance_desc(), engine);
    args.Bind(DNNL_ARG_SCRATCHPAD, pd.scratchpad_desc(), engine);
    const size_t scratchpad = pd.scratchpad_desc().get_size();
    if (training) {
      kernel = std::make_unique<BatchNormTrainingKernel>(
          context, dnnl::batch_normalization_forward(pd), std::move(args), scratchpad, channels,
          values_per_channel, epsilon, spec.attrs.Float("momentum"));
    } else {
      kernel = std::make_unique<BatchNormInferenceKernel>(
          context, dnnl::batch_normalization_forward(pd), std::move(args), scratchpad);
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return kernel;
}

// Inputs dy, x, gamma, saved_mean, saved_invstd; outputs dx, dgamma, dbeta. The workspace holds
// the variance recovered from saved_invstd, then oneDNN's scratchpad.
class BatchNormGradKernel final : public Kernel {
 public:
  BatchNormGradKernel(CpuContext& context, dnnl::batch_normalization_backward primitive,
                      BoundArgs args, size_t scratchpad_bytes, int64_t channels, float epsilon)
      : context_(context),
        primitive_(std::move(primitive)),
        args_(std::move(args)),
        scratchpad_bytes_(scratchpad_bytes),
        variance_bytes_(AlignUp(static_cast<size_t>(channels) * sizeof(float))),
        channels_(channels),
        epsilon_(epsilon) {}

  size_t workspace_bytes() const override { return variance_bytes_ + scratchpad_bytes_; }

  absl::Status Run(std::span<const TensorRef> inputs, std::span<const TensorRef> outputs,
                   void* workspace) override {
    auto* variance = static_cast<float*>(workspace);
    const float* invstd = inputs[4].as<const float>();
    for (int64_t c = 0; c < channels_; ++c) {
      const double inverse = invstd[c];
      // Rounding may push a zero variance a hair below 0; oneDNN adds epsilon back anyway.
      variance[c] = static_cast<float>(std::max(0.0, 1.0 / (inverse * inverse) - epsilon_));
    }
    return CatchDnnl("BatchNormGrad", [&]() -> absl::Status {
      args_.Point(DNNL_ARG_DIFF_DST, inputs[0].data);
      args_.Point(DNNL_ARG_SRC, inputs[1].data);
      args_.Point(DNNL_ARG_SCALE, inputs[2].data);
      // oneDNN 2.6 refuses to run the backward pass with use_shift unless a shift is bound,
      // though the gradient never reads it; gamma is a readable [C] buffer to stand in.
      args_.Point(DNNL_ARG_SHIFT, inputs[2].data);
      args_.Point(DNNL_ARG_MEAN, inputs[3].data);
      args_.Point(DNNL_ARG_VARIANCE, variance);
      args_.Point(DNNL_ARG_DIFF_SRC, outputs[0].data);
      args_.Point(DNNL_ARG_DIFF_SCALE, outputs[1].data);
      args_.Point(DNNL_ARG_DIFF_SHIFT, outputs[2].data);
      args_.Point(DNNL_ARG_SCRATCHPAD, static_cast<std::byte*>(workspace) + variance_bytes_);
      primitive_.execute(context_.stream(), args_.args());
      context_.stream().wait();
      return absl::OkStatus();
    });
  }

 private:
  CpuContext& context_;
  dnnl::batch_normalization_backward primitive_;
  BoundArgs args_;
  size_t scratchpad_bytes_;
  size_t variance_bytes_;
  int64_t channels_;
  float epsilon_;
};

absl::StatusOr<std::unique_ptr<Kernel>> MakeBatchNormGrad(const KernelSpec& spec) {
  if (absl::Status s = CheckSpec(spec, 2); !s.ok()) return s;
  const graph::TensorType& x = spec.inputs[1];
  const int64_t channels = x.shape[1];
  absl::StatusOr<memory::desc> data = DnnlDesc(x, spec.input_layouts[1]);
  if (!data.ok()) return data.status();
  const float epsilon = spec.attrs.Float("epsilon");
  auto& context = static_cast<CpuContext&>(spec.device);
  const dnnl::engine& engine = context.engine();
  std::unique_ptr<Kernel> kernel;
  absl::Status status = CatchDnnl("preparing BatchNormGrad", [&]() -> absl::Status {
    const normalization_flags flags =
        normalization_flags::use_scale | normalization_flags::use_shift;
    const dnnl::batch_normalization_forward::desc forward(dnnl::prop_kind::forward_training, *data,
                                                          epsilon, flags);
    const dnnl::batch_normalization_forward::primitive_desc hint(forward, engine);
    dnnl::batch_normalization_backward::desc desc(dnnl::prop_kind::backward, *data, *data, epsilon,
                                                  flags);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::batch_normalization_backward::primitive_desc pd(desc, attr, engine, hint);
    BoundArgs args;
    args.Bind(DNNL_ARG_DIFF_DST, *data, engine);
    args.Bind(DNNL_ARG_SRC, *data, engine);
    args.Bind(DNNL_ARG_SCALE, ChannelDesc(channels), engine);
    args.Bind(DNNL_ARG_SHIFT, ChannelDesc(channels), engine);
    args.Bind(DNNL_ARG_MEAN, pd.mean_desc(), engine);
    args.Bind(DNNL_ARG_VARIANCE, pd.variance_desc(), engine);
    args.Bind(DNNL_ARG_DIFF_SRC, pd.diff_src_desc(), engine);
    args.Bind(DNNL_ARG_DIFF_SCALE, ChannelDesc(channels), engine);
    args.Bind(DNNL_ARG_DIFF_SHIFT, ChannelDesc(channels), engine);
    args.Bind(DNNL_ARG_SCRATCHPAD, pd.scratchpad_desc(), engine);
    kernel = std::make_unique<BatchNormGradKernel>(context, dnnl::batch_normalization_backward(pd),
                                                   std::move(args), pd.scratchpad_desc().get_size(),
                                                   channels, epsilon);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return kernel;
}

}  // namespace

absl::Status RegisterBatchNormCpu(KernelRegistry& registry) {
  if (absl::Status s =
          registry.Register("BatchNorm", DeviceType::kCpu, graph::DType::kFloat32, MakeBatchNorm);
      !s.ok()) {
    return s;
  }
  return registry.Register("BatchNormGrad", DeviceType::kCpu, graph::DType::kFloat32,
                           MakeBatchNormGrad);
}

}  // namespace gradflow::ops::cpu
