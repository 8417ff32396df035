// Kernels: the code that runs one node on one device. Registered per (op, device, dtype); a
// kernel is created once per node and shape ("prepare": oneDNN primitive descriptors, cuDNN
// algorithm choice, workspace size) and then run every iteration without allocating.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "graph/ir.h"
#include "graph/op_schema.h"
#include "graph/types.h"

namespace gradflow::ops {

enum class DeviceType : int8_t { kCpu = 0, kCuda = 1 };
const char* DeviceTypeName(DeviceType device);

// How the elements of a tensor sit in memory. Shapes are always logical (NCHW for images); a
// rank-4 tensor in kChannelsLast is stored N,H,W,C. Everything else is row-major.
enum class Layout : int8_t { kRowMajor = 0, kChannelsLast = 1 };

// A tensor as a kernel sees it: where its elements are, their type, bound shape and layout.
struct TensorRef {
  void* data = nullptr;
  graph::DType dtype = graph::DType::kFloat32;
  graph::Shape shape;  // batch bound, never kBatch
  Layout layout = Layout::kRowMajor;

  int64_t num_elements() const { return graph::NumElements(shape); }
  size_t bytes() const { return static_cast<size_t>(num_elements()) * graph::DTypeSize(dtype); }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data);
  }
};

// Execution resources of one device that kernels share (oneDNN engine and stream, CUDA stream
// and library handles). Each device type derives its own.
class DeviceContext {
 public:
  virtual ~DeviceContext() = default;
  virtual DeviceType type() const = 0;
};

// What a kernel knows when it is prepared: the node, its attributes with defaults, the bound
// input and output types, their layouts, and the device it will run on.
struct KernelSpec {
  const graph::Node& node;
  const graph::Attrs& attrs;
  std::span<const graph::TensorType> inputs;
  std::span<const graph::TensorType> outputs;
  std::span<const Layout> input_layouts;
  std::span<const Layout> output_layouts;
  DeviceContext& device;
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  // Scratch bytes the kernel needs on each run, handed to Run from the device's arena.
  virtual size_t workspace_bytes() const { return 0; }
  // Inputs and outputs have the types and layouts the kernel was prepared for. Outputs may hold
  // garbage on entry: a kernel writes every element of every output.
  virtual absl::Status Run(std::span<const TensorRef> inputs, std::span<const TensorRef> outputs,
                           void* workspace) = 0;
};

using KernelFactory = std::function<absl::StatusOr<std::unique_ptr<Kernel>>(const KernelSpec&)>;

class KernelRegistry {
 public:
  // Fails on a second kernel for the same (op, device, dtype).
  absl::Status Register(std::string op, DeviceType device, graph::DType dtype,
                        KernelFactory factory);
  bool Has(std::string_view op, DeviceType device, graph::DType dtype) const;
  // Prepares a kernel for spec.node; NotFound names the op, device and dtype when none exists.
  absl::StatusOr<std::unique_ptr<Kernel>> Create(const KernelSpec& spec, graph::DType dtype) const;
  // Ops that have a kernel on `device`, sorted.
  std::vector<std::string> OpsOn(DeviceType device) const;

 private:
  using Key = std::tuple<std::string, DeviceType, graph::DType>;
  absl::flat_hash_map<Key, KernelFactory> factories_;
};

}  // namespace gradflow::ops
