// Add (fp32): a plain OpenMP loop. It is bound by memory bandwidth, so a vectorized loop runs as
// fast as oneDNN's binary primitive, and it needs nothing prepared.
#include <cstdint>
#include <memory>

#include "absl/strings/str_cat.h"
#include "ops/cpu/cpu_kernels.h"

namespace gradflow::ops::cpu {
namespace {

// Below this many elements a thread team costs more than it saves.
constexpr int64_t kMinParallelElements = 1 << 15;

class AddKernel final : public Kernel {
 public:
  absl::Status Run(std::span<const TensorRef> inputs, std::span<const TensorRef> outputs,
                   void* /*workspace*/) override {
    const float* a = inputs[0].as<const float>();
    const float* b = inputs[1].as<const float>();
    float* y = outputs[0].as<float>();
    const int64_t n = outputs[0].num_elements();
    // No __restrict: the planner may let y share memory with a or b, which is safe elementwise.
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
    for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
    return absl::OkStatus();
  }
};

absl::StatusOr<std::unique_ptr<Kernel>> MakeAdd(const KernelSpec& spec) {
  for (const graph::TensorType& type : spec.inputs) {
    if (type.dtype != graph::DType::kFloat32) {
      return absl::UnimplementedError(
          absl::StrCat("Add on the CPU supports float32, got ", graph::DTypeName(type.dtype)));
    }
  }
  // Elements are paired by position in memory, so the operands must order them alike.
  const graph::Shape& shape = spec.outputs[0].shape;
  const bool layout_free = shape.size() != 4 || shape[1] == 1 || shape[2] * shape[3] == 1;
  if (!layout_free && (spec.input_layouts[0] != spec.output_layouts[0] ||
                       spec.input_layouts[1] != spec.output_layouts[0])) {
    return absl::UnimplementedError(
        "Add needs a, b and y in one layout (row-major or channels-last)");
  }
  return std::unique_ptr<Kernel>(new AddKernel());
}

}  // namespace

absl::Status RegisterAddCpu(KernelRegistry& registry) {
  return registry.Register("Add", DeviceType::kCpu, graph::DType::kFloat32, MakeAdd);
}

}  // namespace gradflow::ops::cpu
