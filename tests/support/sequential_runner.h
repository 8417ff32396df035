// Runs a whole graph node by node with registered kernels on one device: the simplest correct
// executor, for tests (the planner and the oneTBB executor come later and are tested against it).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "graph/ir.h"
#include "graph/op_schema.h"
#include "ops/kernel.h"
#include "tests/support/test_device.h"

namespace gradflow::test_support {

enum class LayoutPolicy {
  kRowMajor,      // every tensor row-major (NCHW for images)
  kChannelsLast,  // rank-4 activations and their gradients NHWC; weights stay row-major
  // As kChannelsLast, but tensors with the input role stay row-major: what the runtime plans,
  // where images arrive NCHW and the first convolution writes NHWC (mixed layouts in one node).
  kChannelsLastInputsRowMajor,
};
const char* LayoutPolicyName(LayoutPolicy policy);

struct RunnerOptions {
  LayoutPolicy layouts = LayoutPolicy::kChannelsLast;
  // Fill every tensor that nodes write with NaN before each step, so that an element a kernel
  // forgets to write shows up in the results instead of a stale value.
  bool poison = false;
};

class SequentialRunner {
 public:
  // Binds the batch dimension, verifies the graph, allocates one buffer per tensor, prepares
  // every node's kernel and its workspace. Source tensors start zeroed (see ApplyInitializers).
  // The device must outlive the runner.
  static absl::StatusOr<std::unique_ptr<SequentialRunner>> Create(
      const graph::Graph& graph, int64_t batch, const graph::OpRegistry& ops,
      const ops::KernelRegistry& kernels, TestDevice& device, RunnerOptions options = {});

  // Runs every node once, in order. Errors name the node.
  absl::Status Step();

  // Fills parameters and states from their initializers (He / normal draws from `seed`); tensors
  // without one keep their values.
  absl::Status ApplyInitializers(uint64_t seed);

  // Host access by tensor name, in logical order (NCHW for images) whatever the layout.
  absl::Status Write(std::string_view name, std::span<const float> values);
  absl::Status WriteInt32(std::string_view name, std::span<const int32_t> values);
  absl::StatusOr<std::vector<float>> Read(std::string_view name) const;
  absl::StatusOr<std::vector<int32_t>> ReadInt32(std::string_view name) const;

  const graph::Graph& graph() const { return graph_; }  // batch bound
  // NotFound names the tensor.
  absl::StatusOr<int32_t> TensorId(std::string_view name) const;
  ops::Layout layout(int32_t tensor) const { return layouts_[tensor]; }
  TestDevice& device() const { return device_; }

  ~SequentialRunner();

 private:
  struct PreparedNode;

  SequentialRunner(graph::Graph graph, TestDevice& device, RunnerOptions options);
  absl::Status Prepare(const graph::OpRegistry& ops, const ops::KernelRegistry& kernels);
  void ChooseLayouts();
  absl::Status WriteBytes(int32_t tensor, graph::DType dtype, const void* logical, size_t count);
  absl::Status ReadBytes(int32_t tensor, graph::DType dtype, void* logical, size_t count) const;
  absl::Status Poison();

  graph::Graph graph_;
  TestDevice& device_;
  RunnerOptions options_;
  std::vector<ops::Layout> layouts_;
  std::vector<DeviceBuffer> buffers_;
  std::vector<std::unique_ptr<PreparedNode>> nodes_;
};

}  // namespace gradflow::test_support
