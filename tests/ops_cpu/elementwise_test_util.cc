#include "tests/ops_cpu/elementwise_test_util.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <random>

#include "absl/strings/str_cat.h"
#include "graph/ir.h"
#include "graph/op_schema.h"
#include "ops/cpu/cpu_kernels.h"
#include "ops/registry.h"

namespace gradflow::ops::cpu::testing {
namespace {

// Physical index of logical element i of a rank-4 tensor stored channels-last.
int64_t ChannelsLastIndex(const graph::Shape& shape, int64_t i) {
  const int64_t channels = shape[1], height = shape[2], width = shape[3];
  const int64_t w = i % width, h = (i / width) % height, c = (i / (width * height)) % channels;
  const int64_t n = i / (width * height * channels);
  return ((n * height + h) * width + w) * channels + c;
}

int64_t PhysicalIndex(const TestTensor& tensor, int64_t i) {
  if (tensor.layout == Layout::kChannelsLast && tensor.type.shape.size() == 4) {
    return ChannelsLastIndex(tensor.type.shape, i);
  }
  return i;
}

TestTensor Allocate(const graph::TensorType& type, Layout layout) {
  TestTensor tensor{.type = type, .layout = layout};
  const size_t bytes = static_cast<size_t>(tensor.size()) * graph::DTypeSize(type.dtype);
  tensor.storage.resize((bytes + sizeof(uint64_t) - 1) / sizeof(uint64_t) + 1);
  return tensor;
}

const KernelRegistry& TestKernels() {
  static const KernelRegistry* const registry = [] {
    auto* r = new KernelRegistry;
    for (auto register_kernels :
         {RegisterAddCpu, RegisterBatchNormCpu, RegisterPoolingCpu, RegisterReluCpu,
          RegisterReshapeCpu, RegisterSoftmaxCrossEntropyCpu}) {
      if (!register_kernels(*r).ok()) std::abort();
    }
    return r;
  }();
  return *registry;
}

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

}  // namespace

CpuContext& TestContext() {
  static CpuContext* const context = [] {
    absl::StatusOr<std::unique_ptr<CpuContext>> created = CpuContext::Create(2);
    if (!created.ok()) std::abort();
    return created->release();
  }();
  return *context;
}

TestTensor Float32(const graph::Shape& shape, const std::vector<double>& logical, Layout layout) {
  TestTensor tensor = Allocate({graph::DType::kFloat32, shape}, layout);
  if (static_cast<int64_t>(logical.size()) != tensor.size()) std::abort();
  for (int64_t i = 0; i < tensor.size(); ++i) {
    tensor.f32()[PhysicalIndex(tensor, i)] = static_cast<float>(logical[i]);
  }
  return tensor;
}

TestTensor Poisoned(const graph::Shape& shape, Layout layout) {
  TestTensor tensor = Allocate({graph::DType::kFloat32, shape}, layout);
  std::fill(tensor.f32(), tensor.f32() + tensor.size(), std::numeric_limits<float>::quiet_NaN());
  return tensor;
}

TestTensor Labels(const std::vector<int64_t>& labels, graph::DType dtype) {
  TestTensor tensor = Allocate({dtype, {static_cast<int64_t>(labels.size())}}, Layout::kRowMajor);
  for (size_t i = 0; i < labels.size(); ++i) {
    if (dtype == graph::DType::kInt32) {
      static_cast<int32_t*>(tensor.data())[i] = static_cast<int32_t>(labels[i]);
    } else {
      static_cast<int64_t*>(tensor.data())[i] = labels[i];
    }
  }
  return tensor;
}

std::vector<double> Logical(TestTensor& tensor) {
  std::vector<double> values(static_cast<size_t>(tensor.size()));
  for (int64_t i = 0; i < tensor.size(); ++i) values[i] = tensor.f32()[PhysicalIndex(tensor, i)];
  return values;
}

std::vector<double> Uniform(int64_t count, double low, double high, uint32_t seed) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<double> distribution(low, high);
  std::vector<double> values(static_cast<size_t>(count));
  for (double& value : values) value = static_cast<float>(distribution(generator));
  return values;
}

absl::Status RunOp(const std::string& op, const graph::AttrMap& attrs,
                   const std::vector<TestTensor*>& inputs,
                   const std::vector<TestTensor*>& outputs) {
  const graph::OpSchema* schema = StandardOps().Find(op, 1);
  if (schema == nullptr) return absl::NotFoundError(absl::StrCat("no schema for ", op));
  graph::Node node{.name = "test_" + op, .op = op, .attrs = attrs};
  std::vector<graph::TensorType> input_types, output_types;
  std::vector<Layout> input_layouts, output_layouts;
  for (TestTensor* t : inputs) {
    input_types.push_back(t->type);
    input_layouts.push_back(t->layout);
  }
  for (TestTensor* t : outputs) {
    output_types.push_back(t->type);
    output_layouts.push_back(t->layout);
  }
  if (absl::Status s = graph::ValidateAttributes(node, *schema); !s.ok()) return s;
  absl::StatusOr<std::vector<graph::TensorType>> inferred =
      graph::InferNodeOutputs(node, *schema, input_types);
  if (!inferred.ok()) return inferred.status();
  if (*inferred != output_types) {
    return absl::InternalError(
        absl::StrCat("test bug: the outputs given to ", op, " differ from what its schema infers"));
  }
  const graph::Attrs bound_attrs(node, *schema);
  const KernelSpec spec{.node = node,
                        .attrs = bound_attrs,
                        .inputs = input_types,
                        .outputs = output_types,
                        .input_layouts = input_layouts,
                        .output_layouts = output_layouts,
                        .device = TestContext()};
  absl::StatusOr<std::unique_ptr<Kernel>> kernel = TestKernels().Create(spec, input_types[0].dtype);
  if (!kernel.ok()) return kernel.status();
  const size_t workspace_bytes = (*kernel)->workspace_bytes();
  std::unique_ptr<std::byte, FreeDeleter> workspace;
  if (workspace_bytes > 0) {
    workspace.reset(
        static_cast<std::byte*>(std::aligned_alloc(64, (workspace_bytes + 63) / 64 * 64)));
    std::memset(workspace.get(), 0xff, workspace_bytes);  // all-ones bytes read as NaN floats
  }
  std::vector<TensorRef> input_refs, output_refs;
  for (TestTensor* t : inputs)
    input_refs.push_back({t->data(), t->type.dtype, t->type.shape, t->layout});
  for (TestTensor* t : outputs)
    output_refs.push_back({t->data(), t->type.dtype, t->type.shape, t->layout});
  return (*kernel)->Run(input_refs, output_refs, workspace.get());
}

double RelativeError(const std::vector<double>& actual, const std::vector<double>& expected) {
  if (actual.size() != expected.size()) return std::numeric_limits<double>::infinity();
  double max_diff = 0, max_ref = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    if (std::isnan(actual[i]) != std::isnan(expected[i])) {
      return std::numeric_limits<double>::infinity();
    }
    if (std::isnan(expected[i])) continue;
    max_diff = std::max(max_diff, std::abs(actual[i] - expected[i]));
    max_ref = std::max(max_ref, std::abs(expected[i]));
  }
  return max_ref > 0 ? max_diff / max_ref : max_diff;
}

std::string LayoutName(Layout layout) {
  return layout == Layout::kChannelsLast ? "ChannelsLast" : "RowMajor";
}

}  // namespace gradflow::ops::cpu::testing
