// The CUDA kernels that are one launch of gradflow's own kernels (launch.h): Add, Relu, ReluGrad,
// BiasGrad, Reshape/Flatten and the fused softmax cross-entropy with its gradient.
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_kernels.h"
#include "ops/cuda/cudnn_util.h"
#include "ops/cuda/launch.h"

namespace gradflow::ops::cuda {
namespace {

// Elementwise kernels pair elements by memory position: every operand must order its elements
// alike (one layout, or a shape where both layouts coincide).
absl::Status CheckOneOrder(const KernelSpec& spec) {
  const graph::Shape& shape = spec.outputs[0].shape;
  const bool order = DiffersFromRowMajor(shape, spec.output_layouts[0]);
  for (size_t i = 0; i < spec.inputs.size(); ++i) {
    if (DiffersFromRowMajor(spec.inputs[i].shape, spec.input_layouts[i]) != order) {
      return absl::UnimplementedError(
          absl::StrCat(spec.node.op, " on CUDA needs its inputs and output in one layout (node '",
                       spec.node.name, "')"));
    }
  }
  return absl::OkStatus();
}

class AddKernel final : public Kernel {
 public:
  explicit AddKernel(CudaContext& ctx) : ctx_(ctx) {}
  absl::Status Run(std::span<const TensorRef> in, std::span<const TensorRef> out, void*) override {
    return CudaStatus(launch::Add(in[0].as<const float>(), in[1].as<const float>(),
                                  out[0].as<float>(), out[0].num_elements(), ctx_.stream()),
                      "Add launch");
  }

 private:
  CudaContext& ctx_;
};

class ReluKernel final : public Kernel {
 public:
  explicit ReluKernel(CudaContext& ctx) : ctx_(ctx) {}
  absl::Status Run(std::span<const TensorRef> in, std::span<const TensorRef> out, void*) override {
    return CudaStatus(launch::Relu(in[0].as<const float>(), out[0].as<float>(),
                                   out[0].num_elements(), ctx_.stream()),
                      "Relu launch");
  }

 private:
  CudaContext& ctx_;
};

class ReluGradKernel final : public Kernel {
 public:
  explicit ReluGradKernel(CudaContext& ctx) : ctx_(ctx) {}
  absl::Status Run(std::span<const TensorRef> in, std::span<const TensorRef> out, void*) override {
    return CudaStatus(launch::ReluGrad(in[0].as<const float>(), in[1].as<const float>(),
                                       out[0].as<float>(), out[0].num_elements(), ctx_.stream()),
                      "ReluGrad launch");
  }

 private:
  CudaContext& ctx_;
};

template <typename KernelType>
absl::StatusOr<std::unique_ptr<Kernel>> MakeElementwise(const KernelSpec& spec, size_t inputs) {
  absl::StatusOr<CudaContext*> ctx = CudaContextOf(spec);
  if (!ctx.ok()) return ctx.status();
  GF_CUDA_RETURN_IF_ERROR(CheckCounts(spec, inputs, inputs, 1));
  GF_CUDA_RETURN_IF_ERROR(RequireFloat32(spec));
  for (const graph::TensorType& type : spec.inputs) {
    if (type.shape != spec.outputs[0].shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          spec.node.op, " on CUDA needs every input shaped like its output ",
          graph::ShapeToString(spec.outputs[0].shape), ", got ", graph::ShapeToString(type.shape)));
    }
  }
  GF_CUDA_RETURN_IF_ERROR(CheckOneOrder(spec));
  return std::unique_ptr<Kernel>(new KernelType(**ctx));
}

class BiasGradKernel final : public Kernel {
 public:
  BiasGradKernel(CudaContext& ctx, ChannelView view) : ctx_(ctx), view_(view) {}
  absl::Status Run(std::span<const TensorRef> in, std::span<const TensorRef> out, void*) override {
    return CudaStatus(launch::BiasGrad(in[0].as<const float>(), out[0].as<float>(), view_.outer,
                                       view_.channels, view_.inner, ctx_.stream()),
                      "BiasGrad launch");
  }

 private:
  CudaContext& ctx_;
  ChannelView view_;
};

absl::StatusOr<std::unique_ptr<Kernel>> MakeBiasGrad(const KernelSpec& spec) {
  absl::StatusOr<CudaContext*> ctx = CudaContextOf(spec);
  if (!ctx.ok()) return ctx.status();
  GF_CUDA_RETURN_IF_ERROR(CheckCounts(spec, 1, 1, 1));
  GF_CUDA_RETURN_IF_ERROR(RequireFloat32(spec));
  const graph::Shape& shape = spec.inputs[0].shape;
  if (shape.size() < 2 || spec.outputs[0].shape != graph::Shape{shape[1]}) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the CUDA BiasGrad kernel needs dy of rank >= 2 and db [C], got dy ",
        graph::ShapeToString(shape), " and db ", graph::ShapeToString(spec.outputs[0].shape)));
  }
  return std::unique_ptr<Kernel>(
      new BiasGradKernel(**ctx, ChannelViewOf(shape, spec.input_layouts[0])));
}

// Reshape and Flatten keep the logical (row-major) order; a channels-last side at rank 4 makes
// it a transpose, done in one pass without staging.
class ReshapeKernel final : public Kernel {
 public:
  ReshapeKernel(CudaContext& ctx, launch::Dims4 in, launch::Dims4 out)
      : ctx_(ctx), in_(in), out_(out) {}
  absl::Status Run(std::span<const TensorRef> in, std::span<const TensorRef> out, void*) override {
    if (in[0].data == out[0].data) {
      if (!in_.channels_last && !out_.channels_last) return absl::OkStatus();
      return absl::InternalError(
          "a Reshape that changes the memory order cannot run in place; plan distinct buffers");
    }
    return CudaStatus(launch::CopyLogical(in[0].as<const float>(), in_, out[0].as<float>(), out_,
                                          out[0].num_elements(), ctx_.stream()),
                      "Reshape copy");
  }

 private:
  CudaContext& ctx_;
  launch::Dims4 in_, out_;
};

absl::StatusOr<std::unique_ptr<Kernel>> MakeReshape(const KernelSpec& spec) {
  absl::StatusOr<CudaContext*> ctx = CudaContextOf(spec);
  if (!ctx.ok()) return ctx.status();
  GF_CUDA_RETURN_IF_ERROR(CheckCounts(spec, 1, 1, 1));
  GF_CUDA_RETURN_IF_ERROR(RequireFloat32(spec));
  const graph::TensorType& in = spec.inputs[0];
  const graph::TensorType& out = spec.outputs[0];
  if (graph::NumElements(in.shape) != graph::NumElements(out.shape)) {
    return absl::InvalidArgumentError(absl::StrCat(
        spec.node.op, " node '", spec.node.name, "': input ", graph::ShapeToString(in.shape),
        " and output ", graph::ShapeToString(out.shape), " differ in element count"));
  }
  launch::Dims4 in_dims = DimsOf(in.shape, spec.input_layouts[0]);
  launch::Dims4 out_dims = DimsOf(out.shape, spec.output_layouts[0]);
  // Ranks above 4 are row-major: their Dims4 is only used for its storage order.
  return std::unique_ptr<Kernel>(new ReshapeKernel(**ctx, in_dims, out_dims));
}

// SoftmaxCrossEntropy: (logits[N,C], labels[N]) -> (loss[], probs[N,C]); the workspace holds one
// double per row so that the batch mean is summed in a fixed order.
class SoftmaxCrossEntropyKernel final : public Kernel {
 public:
  SoftmaxCrossEntropyKernel(CudaContext& ctx, int64_t batch, int64_t classes, float smoothing,
                            bool int64_labels, int error_source)
      : ctx_(ctx),
        batch_(batch),
        classes_(classes),
        smoothing_(smoothing),
        int64_labels_(int64_labels),
        error_source_(error_source) {}
  size_t workspace_bytes() const override { return static_cast<size_t>(batch_) * sizeof(double); }
  absl::Status Run(std::span<const TensorRef> in, std::span<const TensorRef> out,
                   void* workspace) override {
    return CudaStatus(launch::SoftmaxCrossEntropy(
                          in[0].as<const float>(), in[1].data, int64_labels_, out[1].as<float>(),
                          out[0].as<float>(), static_cast<double*>(workspace), batch_, classes_,
                          smoothing_, ctx_.device_error_word(), error_source_, ctx_.stream()),
                      "SoftmaxCrossEntropy launch");
  }

 private:
  CudaContext& ctx_;
  int64_t batch_, classes_;
  float smoothing_;
  bool int64_labels_;
  int error_source_;
};

class SoftmaxCrossEntropyGradKernel final : public Kernel {
 public:
  SoftmaxCrossEntropyGradKernel(CudaContext& ctx, int64_t batch, int64_t classes, float smoothing,
                                bool int64_labels, int error_source)
      : ctx_(ctx),
        batch_(batch),
        classes_(classes),
        smoothing_(smoothing),
        int64_labels_(int64_labels),
        error_source_(error_source) {}
  absl::Status Run(std::span<const TensorRef> in, std::span<const TensorRef> out, void*) override {
    return CudaStatus(
        launch::SoftmaxCrossEntropyGrad(in[0].as<const float>(), in[1].data, int64_labels_,
                                        out[0].as<float>(), batch_, classes_, smoothing_,
                                        ctx_.device_error_word(), error_source_, ctx_.stream()),
        "SoftmaxCrossEntropyGrad launch");
  }

 private:
  CudaContext& ctx_;
  int64_t batch_, classes_;
  float smoothing_;
  bool int64_labels_;
  int error_source_;
};

template <typename KernelType>
absl::StatusOr<std::unique_ptr<Kernel>> MakeScoresKernel(const KernelSpec& spec) {
  absl::StatusOr<CudaContext*> ctx = CudaContextOf(spec);
  if (!ctx.ok()) return ctx.status();
  const bool is_loss = spec.node.op == "SoftmaxCrossEntropy";
  GF_CUDA_RETURN_IF_ERROR(CheckCounts(spec, 2, 2, is_loss ? 2 : 1));
  GF_CUDA_RETURN_IF_ERROR(RequireFloat32(spec, /*except_input=*/1));
  const graph::Shape& scores = spec.inputs[0].shape;
  if (scores.size() != 2 || spec.inputs[1].shape != graph::Shape{scores[0]}) {
    return absl::InvalidArgumentError(absl::StrCat(
        spec.node.op, " on CUDA takes scores [N,C] and labels [N], got ",
        graph::ShapeToString(scores), " and ", graph::ShapeToString(spec.inputs[1].shape)));
  }
  const graph::DType labels = spec.inputs[1].dtype;
  if (labels != graph::DType::kInt32 && labels != graph::DType::kInt64) {
    return absl::UnimplementedError(
        absl::StrCat(spec.node.op, " takes int32 or int64 labels, got ", graph::DTypeName(labels)));
  }
  const int64_t batch = scores[0], classes = scores[1];
  const int source = (*ctx)->RegisterErrorSource(
      absl::StrCat("node '", spec.node.name, "' (", spec.node.op, "): a label is outside [0, ",
                   classes, "), at sample "));
  return std::unique_ptr<Kernel>(new KernelType(**ctx, batch, classes,
                                                spec.attrs.Float("label_smoothing"),
                                                labels == graph::DType::kInt64, source));
}

}  // namespace

absl::Status RegisterElementwiseCuda(KernelRegistry& registry) {
  const std::pair<const char*, KernelFactory> kernels[] = {
      {"Add", [](const KernelSpec& s) { return MakeElementwise<AddKernel>(s, 2); }},
      {"Relu", [](const KernelSpec& s) { return MakeElementwise<ReluKernel>(s, 1); }},
      {"ReluGrad", [](const KernelSpec& s) { return MakeElementwise<ReluGradKernel>(s, 2); }},
      {"BiasGrad", MakeBiasGrad},
      {"Reshape", MakeReshape},
      {"Flatten", MakeReshape},
      {"SoftmaxCrossEntropy", MakeScoresKernel<SoftmaxCrossEntropyKernel>},
      {"SoftmaxCrossEntropyGrad", MakeScoresKernel<SoftmaxCrossEntropyGradKernel>},
  };
  for (const auto& [op, factory] : kernels) {
    if (absl::Status s = registry.Register(op, DeviceType::kCuda, graph::DType::kFloat32, factory);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace gradflow::ops::cuda
