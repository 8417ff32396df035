// BatchNorm (training and inference) and BatchNormGrad on cuDNN's spatial batch normalization
// (fp32), for x [N,C], [N,C,L] and [N,C,H,W] row-major or channels-last. cuDNN keeps what the
// graph keeps: saved_mean and saved_invstd = 1/sqrt(var + eps) from the forward pass feed the
// backward pass directly, and the running variance is updated with the unbiased batch variance
// (as PyTorch, which calls the same cuDNN routine). running_mean and running_var are updated in
// place, as State tensors are.
#include <memory>

#include "absl/strings/str_cat.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_kernels.h"
#include "ops/cuda/cudnn_util.h"

namespace gradflow::ops::cuda {
namespace {

constexpr cudnnBatchNormMode_t kMode = CUDNN_BATCHNORM_SPATIAL;

struct BatchNormDescs {
  TensorDesc data;     // x, y, dy, dx
  TensorDesc channel;  // [1,C,1,1]: gamma, beta, statistics
};

absl::StatusOr<BatchNormDescs> MakeDescs(const KernelSpec& spec, const graph::TensorType& x,
                                         Layout layout) {
  BatchNormDescs descs;
  absl::StatusOr<TensorDesc> data = MakeTensorDesc(x.shape, layout);
  if (!data.ok()) return data.status();
  descs.data = *std::move(data);
  cudnnTensorDescriptor_t channel = nullptr;
  GF_CUDA_RETURN_IF_ERROR(
      CudnnStatus(cudnnCreateTensorDescriptor(&channel), "cudnnCreateTensorDescriptor"));
  descs.channel.reset(channel);
  GF_CUDA_RETURN_IF_ERROR(CudnnStatus(
      cudnnDeriveBNTensorDescriptor(channel, descs.data.get(), kMode),
      absl::StrCat("cudnnDeriveBNTensorDescriptor (node '", spec.node.name, "')").c_str()));
  return descs;
}

absl::Status CheckActivations(const KernelSpec& spec, size_t count) {
  const Layout layout = spec.output_layouts[0];
  for (size_t i = 0; i < count; ++i) {
    if (spec.inputs[i].shape.size() == 4 && spec.input_layouts[i] != layout) {
      return absl::UnimplementedError(absl::StrCat(
          spec.node.op, " on CUDA needs its activations and their gradients in one layout (node '",
          spec.node.name, "')"));
    }
  }
  return absl::OkStatus();
}

class BatchNormKernel final : public Kernel {
 public:
  BatchNormKernel(CudaContext& ctx, BatchNormDescs descs, bool training, double epsilon,
                  double momentum)
      : ctx_(ctx),
        descs_(std::move(descs)),
        training_(training),
        epsilon_(epsilon),
        momentum_(momentum) {}

  // Inputs x, gamma, beta, running_mean, running_var; outputs y (+ saved_mean, saved_invstd).
  absl::Status Run(std::span<const TensorRef> in, std::span<const TensorRef> out, void*) override {
    const float one = 1.0f, zero = 0.0f;
    if (!training_) {
      return CudnnStatus(cudnnBatchNormalizationForwardInference(
                             ctx_.cudnn(), kMode, &one, &zero, descs_.data.get(), in[0].data,
                             descs_.data.get(), out[0].data, descs_.channel.get(), in[1].data,
                             in[2].data, in[3].data, in[4].data, epsilon_),
                         "cudnnBatchNormalizationForwardInference");
    }
    return CudnnStatus(
        cudnnBatchNormalizationForwardTraining(
            ctx_.cudnn(), kMode, &one, &zero, descs_.data.get(), in[0].data, descs_.data.get(),
            out[0].data, descs_.channel.get(), in[1].data, in[2].data, momentum_, in[3].data,
            in[4].data, epsilon_, out[1].data, out[2].data),
        "cudnnBatchNormalizationForwardTraining");
  }

 private:
  CudaContext& ctx_;
  BatchNormDescs descs_;
  bool training_;
  double epsilon_;
  double momentum_;
};

absl::StatusOr<std::unique_ptr<Kernel>> MakeBatchNorm(const KernelSpec& spec) {
  absl::StatusOr<CudaContext*> ctx = CudaContextOf(spec);
  if (!ctx.ok()) return ctx.status();
  const bool training = spec.attrs.Int("training") != 0;
  GF_CUDA_RETURN_IF_ERROR(CheckCounts(spec, 5, 5, training ? 3 : 1));
  GF_CUDA_RETURN_IF_ERROR(RequireFloat32(spec));
  GF_CUDA_RETURN_IF_ERROR(CheckActivations(spec, 1));
  const graph::TensorType& x = spec.inputs[0];
  if (training && graph::NumElements(x.shape) / x.shape[1] < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "training BatchNorm needs more than one value per channel to estimate a variance, got "
        "input shape ",
        graph::ShapeToString(x.shape), " (node '", spec.node.name, "')"));
  }
  absl::StatusOr<BatchNormDescs> descs = MakeDescs(spec, x, spec.input_layouts[0]);
  if (!descs.ok()) return descs.status();
  return std::unique_ptr<Kernel>(new BatchNormKernel(**ctx, *std::move(descs), training,
                                                     spec.attrs.Float("epsilon"),
                                                     spec.attrs.Float("momentum")));
}

class BatchNormGradKernel final : public Kernel {
 public:
  BatchNormGradKernel(CudaContext& ctx, BatchNormDescs descs, double epsilon)
      : ctx_(ctx), descs_(std::move(descs)), epsilon_(epsilon) {}

  // Inputs dy, x, gamma, saved_mean, saved_invstd; outputs dx, dgamma, dbeta.
  absl::Status Run(std::span<const TensorRef> in, std::span<const TensorRef> out, void*) override {
    const float one = 1.0f, zero = 0.0f;
    return CudnnStatus(
        cudnnBatchNormalizationBackward(
            ctx_.cudnn(), kMode, &one, &zero, &one, &zero, descs_.data.get(), in[1].data,
            descs_.data.get(), in[0].data, descs_.data.get(), out[0].data, descs_.channel.get(),
            in[2].data, out[1].data, out[2].data, epsilon_, in[3].data, in[4].data),
        "cudnnBatchNormalizationBackward");
  }

 private:
  CudaContext& ctx_;
  BatchNormDescs descs_;
  double epsilon_;
};

absl::StatusOr<std::unique_ptr<Kernel>> MakeBatchNormGrad(const KernelSpec& spec) {
  absl::StatusOr<CudaContext*> ctx = CudaContextOf(spec);
  if (!ctx.ok()) return ctx.status();
  GF_CUDA_RETURN_IF_ERROR(CheckCounts(spec, 5, 5, 3));
  GF_CUDA_RETURN_IF_ERROR(RequireFloat32(spec));
  GF_CUDA_RETURN_IF_ERROR(CheckActivations(spec, 2));
  absl::StatusOr<BatchNormDescs> descs = MakeDescs(spec, spec.inputs[1], spec.input_layouts[1]);
  if (!descs.ok()) return descs.status();
  return std::unique_ptr<Kernel>(
      new BatchNormGradKernel(**ctx, *std::move(descs), spec.attrs.Float("epsilon")));
}

}  // namespace

absl::Status RegisterBatchNormCuda(KernelRegistry& registry) {
  if (absl::Status s =
          registry.Register("BatchNorm", DeviceType::kCuda, graph::DType::kFloat32, MakeBatchNorm);
      !s.ok()) {
    return s;
  }
  return registry.Register("BatchNormGrad", DeviceType::kCuda, graph::DType::kFloat32,
                           MakeBatchNormGrad);
}

}  // namespace gradflow::ops::cuda
