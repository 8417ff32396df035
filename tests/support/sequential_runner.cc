#include "tests/support/sequential_runner.h"

#include "runtime/trainer/initialize.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "graph/shape_inference.h"
#include "graph/verify.h"

namespace gradflow::test_support {
namespace {

using graph::DType;
using graph::TensorRole;
using ops::Layout;

bool IsWeightRole(TensorRole role) {
  return role == TensorRole::kParameter || role == TensorRole::kState;
}

// Copies a rank-4 tensor between logical NCHW order and NHWC storage, element by element.
void PermuteNchwNhwc(const graph::Shape& shape, size_t element, const uint8_t* src, uint8_t* dst,
                     bool to_nhwc) {
  const int64_t n_size = shape[0];
  const int64_t c_size = shape[1];
  const int64_t h_size = shape[2];
  const int64_t w_size = shape[3];
  for (int64_t n = 0; n < n_size; ++n) {
    for (int64_t c = 0; c < c_size; ++c) {
      for (int64_t h = 0; h < h_size; ++h) {
        for (int64_t w = 0; w < w_size; ++w) {
          const int64_t nchw = ((n * c_size + c) * h_size + h) * w_size + w;
          const int64_t nhwc = ((n * h_size + h) * w_size + w) * c_size + c;
          const int64_t from = to_nhwc ? nchw : nhwc;
          const int64_t to = to_nhwc ? nhwc : nchw;
          std::memcpy(dst + to * element, src + from * element, element);
        }
      }
    }
  }
}

// Bytes of one element that read as NaN for floats and as an absurd value otherwise.
std::vector<uint8_t> PoisonPattern(DType dtype) {
  std::vector<uint8_t> pattern(graph::DTypeSize(dtype), 0xFF);
  if (dtype == DType::kFloat32) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(pattern.data(), &nan, sizeof(nan));
  } else if (dtype == DType::kFloat64) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    std::memcpy(pattern.data(), &nan, sizeof(nan));
  }
  return pattern;
}

}  // namespace

const char* LayoutPolicyName(LayoutPolicy policy) {
  switch (policy) {
    case LayoutPolicy::kRowMajor:
      return "row_major";
    case LayoutPolicy::kChannelsLast:
      return "channels_last";
    case LayoutPolicy::kChannelsLastInputsRowMajor:
      return "channels_last_inputs_row_major";
  }
  return "?";
}

struct SequentialRunner::PreparedNode {
  PreparedNode(const graph::Node& graph_node, const graph::OpSchema& schema)
      : node(graph_node), attrs(graph_node, schema) {}
  const graph::Node& node;
  graph::Attrs attrs;
  std::vector<graph::TensorType> input_types;
  std::vector<graph::TensorType> output_types;
  std::vector<Layout> input_layouts;
  std::vector<Layout> output_layouts;
  std::unique_ptr<ops::Kernel> kernel;
  DeviceBuffer workspace;
  std::vector<ops::TensorRef> inputs;
  std::vector<ops::TensorRef> outputs;
};

SequentialRunner::SequentialRunner(graph::Graph graph, TestDevice& device, RunnerOptions options)
    : graph_(std::move(graph)), device_(device), options_(options) {}

SequentialRunner::~SequentialRunner() = default;

absl::StatusOr<std::unique_ptr<SequentialRunner>> SequentialRunner::Create(
    const graph::Graph& graph, int64_t batch, const graph::OpRegistry& ops,
    const ops::KernelRegistry& kernels, TestDevice& device, RunnerOptions options) {
  if (batch < 1) return absl::InvalidArgumentError(absl::StrCat("batch must be >= 1, got ", batch));
  graph::Graph bound = graph::BindBatchSize(graph, batch);
  if (absl::Status s = graph::VerifyGraph(bound, ops); !s.ok()) {
    return absl::Status(
        s.code(), absl::StrCat("graph '", graph.name, "' at batch ", batch, ": ", s.message()));
  }
  std::unique_ptr<SequentialRunner> runner(new SequentialRunner(std::move(bound), device, options));
  if (absl::Status s = runner->Prepare(ops, kernels); !s.ok()) return s;
  return runner;
}

void SequentialRunner::ChooseLayouts() {
  const size_t count = graph_.tensors.size();
  layouts_.assign(count, Layout::kRowMajor);
  if (options_.layouts == LayoutPolicy::kRowMajor) return;
  // Weights and their gradients stay row-major (OIHW, like PyTorch): the optimizer updates a
  // weight elementwise from its gradient, so both must share one layout. A weight gradient is
  // what Conv2DBackwardFilter writes, or a sum or copy of such (autodiff's Add and Reshape).
  std::vector<bool> weight_grad(count, false);
  for (const graph::Node& node : graph_.nodes) {
    bool from_weight_grads = node.op == "Conv2DBackwardFilter";
    if (node.op == "Add" || node.op == "Reshape") {
      from_weight_grads = !node.inputs.empty();
      for (int32_t in : node.inputs) from_weight_grads = from_weight_grads && weight_grad[in];
    }
    for (int32_t out : node.outputs) weight_grad[out] = weight_grad[out] || from_weight_grads;
  }
  for (const graph::ParamGrad& pg : graph_.param_grads) weight_grad[pg.grad] = true;
  std::vector<bool> weight_like(count, false);
  for (size_t t = 0; t < count; ++t) {
    weight_like[t] = IsWeightRole(graph_.tensors[t].role) || weight_grad[t];
  }
  const bool inputs_row_major = options_.layouts == LayoutPolicy::kChannelsLastInputsRowMajor;
  for (size_t t = 0; t < count; ++t) {
    if (inputs_row_major && graph_.tensors[t].role == graph::TensorRole::kInput) continue;
    if (graph_.tensors[t].shape.size() == 4 && !weight_like[t]) {
      layouts_[t] = Layout::kChannelsLast;
    }
  }
}

absl::Status SequentialRunner::Prepare(const graph::OpRegistry& ops,
                                       const ops::KernelRegistry& kernels) {
  ChooseLayouts();
  buffers_.reserve(graph_.tensors.size());
  for (const graph::Tensor& t : graph_.tensors) {
    const size_t bytes =
        static_cast<size_t>(graph::NumElements(t.shape)) * graph::DTypeSize(t.dtype);
    absl::StatusOr<DeviceBuffer> buffer = DeviceBuffer::Allocate(device_, bytes);
    if (!buffer.ok()) {
      return absl::Status(buffer.status().code(),
                          absl::StrCat("tensor '", t.name, "': ", buffer.status().message()));
    }
    const std::vector<uint8_t> zeros(bytes, 0);
    if (absl::Status s = device_.CopyToDevice(buffer->data(), zeros.data(), bytes); !s.ok()) {
      return s;
    }
    buffers_.push_back(*std::move(buffer));
  }
  auto ref = [this](int32_t t) {
    const graph::Tensor& tensor = graph_.tensors[t];
    return ops::TensorRef{buffers_[t].data(), tensor.dtype, tensor.shape, layouts_[t]};
  };
  for (const graph::Node& node : graph_.nodes) {
    const graph::OpSchema* schema = ops.Find(node.op, node.op_version);
    if (schema == nullptr) {
      return absl::NotFoundError(absl::StrCat("node '", node.name, "': unknown op ", node.op));
    }
    auto prepared = std::make_unique<PreparedNode>(node, *schema);
    for (int32_t in : node.inputs) {
      prepared->input_types.push_back({graph_.tensors[in].dtype, graph_.tensors[in].shape});
      prepared->input_layouts.push_back(layouts_[in]);
      prepared->inputs.push_back(ref(in));
    }
    for (int32_t out : node.outputs) {
      prepared->output_types.push_back({graph_.tensors[out].dtype, graph_.tensors[out].shape});
      prepared->output_layouts.push_back(layouts_[out]);
      prepared->outputs.push_back(ref(out));
    }
    const ops::KernelSpec spec{.node = node,
                               .attrs = prepared->attrs,
                               .inputs = prepared->input_types,
                               .outputs = prepared->output_types,
                               .input_layouts = prepared->input_layouts,
                               .output_layouts = prepared->output_layouts,
                               .device = device_.context()};
    // Kernels are registered by the element type they compute in: that of output 0.
    const DType dtype = prepared->output_types.empty() ? prepared->input_types.at(0).dtype
                                                       : prepared->output_types[0].dtype;
    absl::StatusOr<std::unique_ptr<ops::Kernel>> kernel = kernels.Create(spec, dtype);
    if (!kernel.ok()) return kernel.status();
    prepared->kernel = *std::move(kernel);
    absl::StatusOr<DeviceBuffer> workspace =
        DeviceBuffer::Allocate(device_, prepared->kernel->workspace_bytes());
    if (!workspace.ok()) {
      return absl::Status(
          workspace.status().code(),
          absl::StrCat("node '", node.name, "' workspace: ", workspace.status().message()));
    }
    prepared->workspace = *std::move(workspace);
    nodes_.push_back(std::move(prepared));
  }
  return absl::OkStatus();
}

absl::Status SequentialRunner::Poison() {
  std::vector<uint8_t> host;
  for (size_t t = 0; t < graph_.tensors.size(); ++t) {
    const graph::Tensor& tensor = graph_.tensors[t];
    if (graph::IsSourceRole(tensor.role)) continue;
    const std::vector<uint8_t> pattern = PoisonPattern(tensor.dtype);
    const size_t bytes = buffers_[t].bytes();
    host.resize(bytes);
    for (size_t i = 0; i + pattern.size() <= bytes; i += pattern.size()) {
      std::memcpy(host.data() + i, pattern.data(), pattern.size());
    }
    if (absl::Status s = device_.CopyToDevice(buffers_[t].data(), host.data(), bytes); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status SequentialRunner::Step() {
  if (options_.poison) {
    if (absl::Status s = Poison(); !s.ok()) return s;
  }
  for (const std::unique_ptr<PreparedNode>& prepared : nodes_) {
    absl::Status s =
        prepared->kernel->Run(prepared->inputs, prepared->outputs, prepared->workspace.data());
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat("node '", prepared->node.name, "' (",
                                                 prepared->node.op, "): ", s.message()));
    }
  }
  return device_.Synchronize();
}

absl::Status SequentialRunner::ApplyInitializers(uint64_t seed) {
  // The runtime's own initialization, so that tests start where training starts.
  for (const graph::Tensor& tensor : graph_.tensors) {
    if (tensor.init.kind == graph::InitKind::kNone) continue;
    std::vector<float> values(static_cast<size_t>(graph::NumElements(tensor.shape)));
    if (absl::Status s = runtime::InitializeTensor(graph_, tensor, seed, values); !s.ok()) return s;
    if (absl::Status s = Write(tensor.name, values); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<int32_t> SequentialRunner::TensorId(std::string_view name) const {
  const int32_t id = graph_.FindTensor(name);
  if (id == graph::kNoTensor) {
    return absl::NotFoundError(
        absl::StrCat("graph '", graph_.name, "' has no tensor '", std::string(name), "'"));
  }
  return id;
}

absl::Status SequentialRunner::WriteBytes(int32_t tensor, DType dtype, const void* logical,
                                          size_t count) {
  const graph::Tensor& t = graph_.tensors[tensor];
  const auto expected = static_cast<size_t>(graph::NumElements(t.shape));
  if (t.dtype != dtype || count != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor '", t.name, "' is ", graph::DTypeName(t.dtype), graph::ShapeToString(t.shape), " (",
        expected, " elements); got ", count, " ", graph::DTypeName(dtype), " values"));
  }
  const size_t element = graph::DTypeSize(dtype);
  const auto* src = static_cast<const uint8_t*>(logical);
  if (layouts_[tensor] == Layout::kChannelsLast) {
    std::vector<uint8_t> stored(count * element);
    PermuteNchwNhwc(t.shape, element, src, stored.data(), /*to_nhwc=*/true);
    return device_.CopyToDevice(buffers_[tensor].data(), stored.data(), stored.size());
  }
  return device_.CopyToDevice(buffers_[tensor].data(), src, count * element);
}

absl::Status SequentialRunner::ReadBytes(int32_t tensor, DType dtype, void* logical,
                                         size_t count) const {
  const graph::Tensor& t = graph_.tensors[tensor];
  if (t.dtype != dtype) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", t.name, "' is ",
                                                   graph::DTypeName(t.dtype), ", read as ",
                                                   graph::DTypeName(dtype)));
  }
  const size_t element = graph::DTypeSize(dtype);
  auto* dst = static_cast<uint8_t*>(logical);
  if (layouts_[tensor] == Layout::kChannelsLast) {
    std::vector<uint8_t> stored(count * element);
    if (absl::Status s = device_.CopyToHost(stored.data(), buffers_[tensor].data(), stored.size());
        !s.ok()) {
      return s;
    }
    PermuteNchwNhwc(t.shape, element, stored.data(), dst, /*to_nhwc=*/false);
    return absl::OkStatus();
  }
  return device_.CopyToHost(dst, buffers_[tensor].data(), count * element);
}

absl::Status SequentialRunner::Write(std::string_view name, std::span<const float> values) {
  absl::StatusOr<int32_t> id = TensorId(name);
  if (!id.ok()) return id.status();
  return WriteBytes(*id, DType::kFloat32, values.data(), values.size());
}

absl::Status SequentialRunner::WriteInt32(std::string_view name, std::span<const int32_t> values) {
  absl::StatusOr<int32_t> id = TensorId(name);
  if (!id.ok()) return id.status();
  return WriteBytes(*id, DType::kInt32, values.data(), values.size());
}

absl::StatusOr<std::vector<float>> SequentialRunner::Read(std::string_view name) const {
  absl::StatusOr<int32_t> id = TensorId(name);
  if (!id.ok()) return id.status();
  std::vector<float> values(static_cast<size_t>(graph::NumElements(graph_.tensors[*id].shape)));
  if (absl::Status s = ReadBytes(*id, DType::kFloat32, values.data(), values.size()); !s.ok()) {
    return s;
  }
  return values;
}

absl::StatusOr<std::vector<int32_t>> SequentialRunner::ReadInt32(std::string_view name) const {
  absl::StatusOr<int32_t> id = TensorId(name);
  if (!id.ok()) return id.status();
  std::vector<int32_t> values(static_cast<size_t>(graph::NumElements(graph_.tensors[*id].shape)));
  if (absl::Status s = ReadBytes(*id, DType::kInt32, values.data(), values.size()); !s.ok()) {
    return s;
  }
  return values;
}

}  // namespace gradflow::test_support
