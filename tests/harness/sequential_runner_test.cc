// The sequential runner itself: layout choice, host access in logical order, poisoning, buffer
// alignment, initializers and error reporting. Kernels here are fakes registered in a private
// registry, so that each property is observed directly.
#include "tests/support/sequential_runner.h"

#include <cmath>
#include <cstdint>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "graph/ir.h"
#include "gtest/gtest.h"
#include "ops/kernels.h"
#include "ops/registry.h"
#include "tests/harness/harness_graphs.h"
#include "tests/harness/op_cases.h"
#include "tests/support/test_device.h"

namespace gradflow::test_support {
namespace {

using graph::DType;
using graph::Graph;
using graph::Tensor;
using graph::TensorRole;
using ops::Layout;

// What the fake kernel saw on its last run.
struct Observed {
  std::vector<const void*> pointers;  // inputs, outputs, then the workspace
  std::vector<Layout> input_layouts;
  int runs = 0;
};

// A Relu stand-in that writes only element 0 of its output (a copy of the input's) and asks for
// a workspace, so that poisoning and alignment are visible.
class PartialWriteKernel final : public ops::Kernel {
 public:
  PartialWriteKernel(Observed* observed, std::vector<Layout> layouts)
      : observed_(observed), layouts_(std::move(layouts)) {}
  size_t workspace_bytes() const override { return 100; }
  absl::Status Run(std::span<const ops::TensorRef> inputs, std::span<const ops::TensorRef> outputs,
                   void* workspace) override {
    observed_->pointers.clear();
    for (const ops::TensorRef& in : inputs) observed_->pointers.push_back(in.data);
    for (const ops::TensorRef& out : outputs) observed_->pointers.push_back(out.data);
    observed_->pointers.push_back(workspace);
    observed_->input_layouts = layouts_;
    ++observed_->runs;
    outputs[0].as<float>()[0] = inputs[0].as<const float>()[0];
    return absl::OkStatus();
  }

 private:
  Observed* observed_;
  std::vector<Layout> layouts_;
};

ops::KernelRegistry FakeRelu(Observed* observed) {
  ops::KernelRegistry registry;
  absl::Status s = registry.Register(
      "Relu", ops::DeviceType::kCpu, DType::kFloat32,
      [observed](const ops::KernelSpec& spec) -> absl::StatusOr<std::unique_ptr<ops::Kernel>> {
        return std::make_unique<PartialWriteKernel>(
            observed, std::vector<Layout>(spec.input_layouts.begin(), spec.input_layouts.end()));
      });
  EXPECT_TRUE(s.ok()) << s;
  return registry;
}

// x [N,2,3,4] -> Relu -> y, with the batch symbolic.
Graph ReluGraph() {
  Graph g;
  g.name = "relu";
  g.inputs.push_back(g.AddTensor(
      Tensor{.name = "x", .shape = {graph::kBatch, 2, 3, 4}, .role = TensorRole::kInput}));
  g.AddTensor(Tensor{.name = "y", .shape = {graph::kBatch, 2, 3, 4}});
  g.AddNode(graph::Node{.name = "relu", .op = "Relu", .inputs = {0}, .outputs = {1}});
  return g;
}

std::unique_ptr<TestDevice> Cpu() {
  absl::StatusOr<std::unique_ptr<TestDevice>> device = CreateTestDevice(ops::DeviceType::kCpu);
  EXPECT_TRUE(device.ok()) << device.status();
  return device.ok() ? *std::move(device) : nullptr;
}

TEST(SequentialRunnerTest, BindsTheBatchAndReadsBackInLogicalOrder) {
  std::unique_ptr<TestDevice> device = Cpu();
  ASSERT_NE(device, nullptr);
  Observed observed;
  const ops::KernelRegistry kernels = FakeRelu(&observed);
  for (LayoutPolicy policy : {LayoutPolicy::kRowMajor, LayoutPolicy::kChannelsLast}) {
    absl::StatusOr<std::unique_ptr<SequentialRunner>> runner = SequentialRunner::Create(
        ReluGraph(), 3, ops::StandardOps(), kernels, *device, {.layouts = policy});
    ASSERT_TRUE(runner.ok()) << runner.status();
    EXPECT_EQ((*runner)->graph().tensors[0].shape, (graph::Shape{3, 2, 3, 4}));
    const Layout expected =
        policy == LayoutPolicy::kChannelsLast ? Layout::kChannelsLast : Layout::kRowMajor;
    EXPECT_EQ((*runner)->layout(0), expected);
    ASSERT_EQ(observed.input_layouts.size(), 0u);  // prepared, not run
    std::vector<float> x(72);
    std::iota(x.begin(), x.end(), 1.0f);
    ASSERT_TRUE((*runner)->Write("x", x).ok());
    absl::StatusOr<std::vector<float>> back = (*runner)->Read("x");
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, x);
    ASSERT_TRUE((*runner)->Step().ok());
    EXPECT_EQ(observed.input_layouts, std::vector<Layout>{expected});
    // Element [0,0,0,0] is first in both NCHW and NHWC storage; [0,1,0,0] is not.
    EXPECT_EQ(static_cast<const float*>(observed.pointers[0])[0], 1.0f);
    const float second = static_cast<const float*>(observed.pointers[0])[1];
    EXPECT_EQ(second, policy == LayoutPolicy::kChannelsLast ? x[12] : x[1]);
    observed = Observed{};
  }
}

TEST(SequentialRunnerTest, PoisonMakesUnwrittenElementsNaN) {
  std::unique_ptr<TestDevice> device = Cpu();
  ASSERT_NE(device, nullptr);
  Observed observed;
  const ops::KernelRegistry kernels = FakeRelu(&observed);
  for (bool poison : {false, true}) {
    absl::StatusOr<std::unique_ptr<SequentialRunner>> runner = SequentialRunner::Create(
        ReluGraph(), 1, ops::StandardOps(), kernels, *device, {.poison = poison});
    ASSERT_TRUE(runner.ok()) << runner.status();
    ASSERT_TRUE((*runner)->Write("x", std::vector<float>(24, 5.0f)).ok());
    ASSERT_TRUE((*runner)->Step().ok());
    absl::StatusOr<std::vector<float>> y = (*runner)->Read("y");
    ASSERT_TRUE(y.ok());
    EXPECT_EQ((*y)[0], 5.0f);
    EXPECT_EQ(std::isnan((*y)[1]), poison) << (*y)[1];
    // Sources are never poisoned.
    EXPECT_EQ((*(*runner)->Read("x"))[1], 5.0f);
  }
}

TEST(SequentialRunnerTest, BuffersAndWorkspacesAreAligned) {
  std::unique_ptr<TestDevice> device = Cpu();
  ASSERT_NE(device, nullptr);
  Observed observed;
  const ops::KernelRegistry kernels = FakeRelu(&observed);
  absl::StatusOr<std::unique_ptr<SequentialRunner>> runner =
      SequentialRunner::Create(ReluGraph(), 1, ops::StandardOps(), kernels, *device);
  ASSERT_TRUE(runner.ok()) << runner.status();
  ASSERT_TRUE((*runner)->Step().ok());
  ASSERT_TRUE((*runner)->Step().ok());
  EXPECT_EQ(observed.runs, 2);
  ASSERT_EQ(observed.pointers.size(), 3u);
  for (const void* p : observed.pointers) {
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kBufferAlignment, 0u) << p;
  }
}

TEST(SequentialRunnerTest, KeepsWeightsAndTheirGradientsRowMajor) {
  const OpCase* conv = nullptr;
  for (const OpCase& c : AllOpCases()) {
    if (c.op == "Conv2D" && c.inputs.size() == 3) conv = &c;
  }
  ASSERT_NE(conv, nullptr);
  absl::StatusOr<GradientCheckGraph> check = BuildGradientCheckGraph(*conv);
  ASSERT_TRUE(check.ok()) << check.status();
  std::unique_ptr<TestDevice> device = Cpu();
  ASSERT_NE(device, nullptr);
  absl::StatusOr<std::unique_ptr<SequentialRunner>> runner =
      SequentialRunner::Create(check->graph, 1, ops::StandardOps(), ops::StandardKernels(), *device,
                               {.layouts = LayoutPolicy::kChannelsLast});
  ASSERT_TRUE(runner.ok()) << runner.status();
  auto layout_of = [&](const std::string& name) {
    absl::StatusOr<int32_t> id = (*runner)->TensorId(name);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.ok() ? (*runner)->layout(*id) : Layout::kRowMajor;
  };
  EXPECT_EQ(layout_of("x"), Layout::kChannelsLast);     // activation
  EXPECT_EQ(layout_of("out0"), Layout::kChannelsLast);  // activation
  EXPECT_EQ(layout_of("w"), Layout::kRowMajor);         // weight
  EXPECT_EQ(layout_of("w.grad"), Layout::kRowMajor);    // its gradient
  EXPECT_EQ(layout_of("x.flat"), Layout::kRowMajor);    // rank 2
  int channels_last_gradients = 0;
  for (size_t t = 0; t < check->graph.tensors.size(); ++t) {
    const Tensor& tensor = check->graph.tensors[t];
    if (tensor.role == TensorRole::kGradient && tensor.shape.size() == 4 &&
        tensor.name != "w.grad") {
      EXPECT_EQ((*runner)->layout(static_cast<int32_t>(t)), Layout::kChannelsLast) << tensor.name;
      ++channels_last_gradients;
    }
  }
  EXPECT_GT(channels_last_gradients, 0);  // dy and dx of the convolution
}

TEST(SequentialRunnerTest, AppliesInitializers) {
  Graph g;
  g.name = "init";
  g.AddTensor(Tensor{.name = "ones",
                     .shape = {3},
                     .role = TensorRole::kParameter,
                     .init = {graph::InitKind::kOnes}});
  g.AddTensor(Tensor{.name = "half",
                     .shape = {3},
                     .role = TensorRole::kState,
                     .init = {graph::InitKind::kConstant, 0.5f}});
  g.AddTensor(Tensor{.name = "normal",
                     .shape = {20000},
                     .role = TensorRole::kParameter,
                     .init = {graph::InitKind::kNormal, 2.0f}});
  g.AddTensor(Tensor{.name = "kept", .shape = {2}, .role = TensorRole::kConstant});
  std::unique_ptr<TestDevice> device = Cpu();
  ASSERT_NE(device, nullptr);
  absl::StatusOr<std::unique_ptr<SequentialRunner>> runner =
      SequentialRunner::Create(g, 1, ops::StandardOps(), ops::StandardKernels(), *device);
  ASSERT_TRUE(runner.ok()) << runner.status();
  ASSERT_TRUE((*runner)->Write("kept", std::vector<float>{7, 8}).ok());
  ASSERT_TRUE((*runner)->ApplyInitializers(42).ok());
  EXPECT_EQ(*(*runner)->Read("ones"), (std::vector<float>{1, 1, 1}));
  EXPECT_EQ(*(*runner)->Read("half"), (std::vector<float>{0.5f, 0.5f, 0.5f}));
  EXPECT_EQ(*(*runner)->Read("kept"), (std::vector<float>{7, 8}));
  const std::vector<float> normal = *(*runner)->Read("normal");
  double sum = 0;
  double squares = 0;
  for (float v : normal) {
    sum += v;
    squares += static_cast<double>(v) * v;
  }
  const double mean = sum / normal.size();
  EXPECT_NEAR(mean, 0.0, 0.1);
  EXPECT_NEAR(std::sqrt(squares / normal.size() - mean * mean), 2.0, 0.1);
}

TEST(SequentialRunnerTest, ReportsBadRequestsByName) {
  std::unique_ptr<TestDevice> device = Cpu();
  ASSERT_NE(device, nullptr);
  const ops::KernelRegistry empty;
  absl::StatusOr<std::unique_ptr<SequentialRunner>> missing =
      SequentialRunner::Create(ReluGraph(), 1, ops::StandardOps(), empty, *device);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(missing.status().message()).find("Relu"), std::string::npos)
      << missing.status();

  EXPECT_FALSE(SequentialRunner::Create(ReluGraph(), 0, ops::StandardOps(), empty, *device).ok());

  Observed observed;
  const ops::KernelRegistry kernels = FakeRelu(&observed);
  absl::StatusOr<std::unique_ptr<SequentialRunner>> runner =
      SequentialRunner::Create(ReluGraph(), 2, ops::StandardOps(), kernels, *device);
  ASSERT_TRUE(runner.ok()) << runner.status();
  const absl::Status unknown = (*runner)->Write("nope", std::vector<float>(48));
  EXPECT_EQ(unknown.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(unknown.message()).find("nope"), std::string::npos) << unknown;
  const absl::Status short_write = (*runner)->Write("x", std::vector<float>(47));
  EXPECT_EQ(short_write.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(short_write.message()).find("'x'"), std::string::npos) << short_write;
  EXPECT_EQ((*runner)->WriteInt32("x", std::vector<int32_t>(48)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*runner)->ReadInt32("y").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gradflow::test_support
