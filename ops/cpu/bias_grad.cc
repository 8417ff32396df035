// BiasGrad on the CPU (fp32): db[c] = sum of dy over every dimension but 1, for dy [N,C,...] in
// row-major order or, at rank 4, channels-last. A plain OpenMP loop: the sum is memory-bound, and
// accumulating in double keeps db within float rounding of the exact sum however many elements
// (batch x 56 x 56 in ResNet) feed one channel.
//
// dy is viewed as [outer, channels, inner]: row-major gives (N, C, H*W...), channels-last gives
// (N*H*W, C, 1). Partial sums live in the workspace (the planner owns it), one row of `channels`
// doubles per piece of work; a last serial pass adds the rows up in a fixed order, so the result
// does not depend on how many threads ran.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "ops/cpu/conv_kernel_util.h"
#include "ops/cpu/cpu_context.h"
#include "ops/cpu/cpu_kernels.h"
#include "ops/schemas/schema_util.h"

namespace gradflow::ops::cpu {
namespace {

constexpr std::string_view kOp = "BiasGrad";

class BiasGradKernel final : public Kernel {
 public:
  static absl::StatusOr<std::unique_ptr<Kernel>> Prepare(const KernelSpec& spec) {
    OPS_ASSIGN_OR_RETURN(CpuContext * ctx, CpuDeviceOf(spec, kOp));
    OPS_RETURN_IF_ERROR(CheckOperandCounts(spec, kOp, 1, 1, 1));
    OPS_RETURN_IF_ERROR(RequireFloat32(spec, kOp));
    const graph::Shape& shape = spec.inputs[0].shape;
    if (shape.size() < 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("the CPU BiasGrad kernel needs input 0 (dy) of rank >= 2, got ",
                       graph::ShapeToString(shape)));
    }
    const int64_t channels = shape[1];
    if (spec.outputs[0].shape != graph::Shape{channels}) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the CPU BiasGrad kernel writes [", channels, "] for dy ", graph::ShapeToString(shape),
          ", but output 0 (db) is ", graph::ShapeToString(spec.outputs[0].shape)));
    }
    int64_t inner = 1;
    for (size_t i = 2; i < shape.size(); ++i) inner *= shape[i];
    int64_t outer = shape[0];
    // Channels-last only means something at rank 4 (see DnnlDesc).
    if (shape.size() == 4 && spec.input_layouts[0] == Layout::kChannelsLast) {
      outer *= inner;
      inner = 1;
    }
    return std::unique_ptr<Kernel>(new BiasGradKernel(ctx->threads(), outer, channels, inner));
  }

  size_t workspace_bytes() const override {
    return static_cast<size_t>(partial_rows_ * channels_) * sizeof(double);
  }

  absl::Status Run(std::span<const TensorRef> inputs, std::span<const TensorRef> outputs,
                   void* workspace) override {
    if (inputs.size() != 1 || outputs.size() != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("the CPU BiasGrad kernel takes 1 input and 1 output, run with ",
                       inputs.size(), " and ", outputs.size()));
    }
    if (workspace_bytes() > 0 && workspace == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the CPU BiasGrad kernel needs ", workspace_bytes(), " workspace bytes, got none"));
    }
    const float* dy = inputs[0].as<const float>();
    double* partial = static_cast<double*>(workspace);
    if (inner_ == 1) {
      SumRows(dy, partial);
    } else {
      SumPlanes(dy, partial);
    }
    float* db = outputs[0].as<float>();
    for (int64_t c = 0; c < channels_; ++c) {
      double sum = 0;
      for (int64_t row = 0; row < partial_rows_; ++row) sum += partial[row * channels_ + c];
      db[c] = static_cast<float>(sum);
    }
    return absl::OkStatus();
  }

 private:
  BiasGradKernel(int threads, int64_t outer, int64_t channels, int64_t inner)
      : threads_(std::max(threads, 1)),
        outer_(outer),
        channels_(channels),
        inner_(inner),
        // Rows of [outer, channels] go to one partial row per thread; planes of
        // [outer, channels, inner] each get their own partial sum.
        partial_rows_(inner == 1 ? std::clamp<int64_t>(outer, 1, threads_) : outer) {}

  // inner == 1: dy is [outer, channels]. Each thread adds a contiguous band of rows into its own
  // partial row (element-wise across channels, so the loop vectorizes without reassociation).
  void SumRows(const float* dy, double* partial) const {
    const int64_t bands = partial_rows_;
#pragma omp parallel for num_threads(threads_) schedule(static)
    for (int64_t band = 0; band < bands; ++band) {
      double* sums = partial + band * channels_;
      std::fill(sums, sums + channels_, 0.0);
      const int64_t first = outer_ * band / bands;
      const int64_t last = outer_ * (band + 1) / bands;
      for (int64_t row = first; row < last; ++row) {
        const float* values = dy + row * channels_;
#pragma omp simd
        for (int64_t c = 0; c < channels_; ++c) sums[c] += values[c];
      }
    }
  }

  // inner > 1: each (n, c) plane of `inner` contiguous values is summed on its own.
  void SumPlanes(const float* dy, double* partial) const {
    const int64_t planes = outer_ * channels_;
#pragma omp parallel for num_threads(threads_) schedule(static)
    for (int64_t plane = 0; plane < planes; ++plane) {
      const float* values = dy + plane * inner_;
      double sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t i = 0; i < inner_; ++i) sum += values[i];
      partial[plane] = sum;  // plane = n * channels + c: the [outer, channels] partial layout
    }
  }

  int threads_;
  int64_t outer_;
  int64_t channels_;
  int64_t inner_;
  int64_t partial_rows_;
};

}  // namespace

absl::Status RegisterBiasGradCpu(KernelRegistry& registry) {
  return registry.Register("BiasGrad", DeviceType::kCpu, graph::DType::kFloat32,
                           BiasGradKernel::Prepare);
}

}  // namespace gradflow::ops::cpu
