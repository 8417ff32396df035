// Relu and ReluGrad (fp32): plain OpenMP loops. Both are elementwise and bound by memory
// bandwidth, so a vectorized loop runs as fast as oneDNN's eltwise primitive and works the same in
// every layout.
#include <cstdint>
#include <memory>

#include "absl/strings/str_cat.h"
#include "ops/cpu/cpu_kernels.h"

namespace gradflow::ops::cpu {
namespace {

// Below this many elements a thread team costs more than it saves.
constexpr int64_t kMinParallelElements = 1 << 15;

// Elementwise kernels pair elements by position in memory, so every operand must order its
// elements alike: one layout, or a rank-4 shape where channels-last and row-major coincide.
absl::Status CheckElementwiseSpec(const KernelSpec& spec) {
  const graph::Shape& shape = spec.outputs[0].shape;
  const bool layout_free = shape.size() != 4 || shape[1] == 1 || shape[2] * shape[3] == 1;
  for (const graph::TensorType& type : spec.inputs) {
    if (type.dtype != graph::DType::kFloat32) {
      return absl::UnimplementedError(absl::StrCat(
          spec.node.op, " on the CPU supports float32, got ", graph::DTypeName(type.dtype)));
    }
  }
  const Layout layout = spec.output_layouts[0];
  for (Layout input_layout : spec.input_layouts) {
    if (!layout_free && input_layout != layout) {
      return absl::UnimplementedError(absl::StrCat(
          spec.node.op, " needs its inputs and output in one layout (row-major or channels-last)"));
    }
  }
  return absl::OkStatus();
}

class ReluKernel final : public Kernel {
 public:
  absl::Status Run(std::span<const TensorRef> inputs, std::span<const TensorRef> outputs,
                   void* /*workspace*/) override {
    const float* __restrict x = inputs[0].as<const float>();
    float* __restrict y = outputs[0].as<float>();
    const int64_t n = outputs[0].num_elements();
    // `x < 0 ? 0 : x` keeps NaN (like PyTorch) and compiles to a vector max.
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] < 0.0f ? 0.0f : x[i];
    return absl::OkStatus();
  }
};

// The mask comes from the output y: y > 0 exactly where x > 0.
class ReluGradKernel final : public Kernel {
 public:
  absl::Status Run(std::span<const TensorRef> inputs, std::span<const TensorRef> outputs,
                   void* /*workspace*/) override {
    const float* __restrict dy = inputs[0].as<const float>();
    const float* __restrict y = inputs[1].as<const float>();
    float* __restrict dx = outputs[0].as<float>();
    const int64_t n = outputs[0].num_elements();
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
    for (int64_t i = 0; i < n; ++i) {
      const float grad = dy[i];  // loaded unconditionally so that the select vectorizes
      dx[i] = y[i] > 0.0f ? grad : 0.0f;
    }
    return absl::OkStatus();
  }
};

template <typename KernelType>
absl::StatusOr<std::unique_ptr<Kernel>> MakeElementwise(const KernelSpec& spec) {
  if (absl::Status s = CheckElementwiseSpec(spec); !s.ok()) return s;
  return std::unique_ptr<Kernel>(new KernelType());
}

}  // namespace

absl::Status RegisterReluCpu(KernelRegistry& registry) {
  if (absl::Status s = registry.Register("Relu", DeviceType::kCpu, graph::DType::kFloat32,
                                         MakeElementwise<ReluKernel>);
      !s.ok()) {
    return s;
  }
  return registry.Register("ReluGrad", DeviceType::kCpu, graph::DType::kFloat32,
                           MakeElementwise<ReluGradKernel>);
}

}  // namespace gradflow::ops::cpu
