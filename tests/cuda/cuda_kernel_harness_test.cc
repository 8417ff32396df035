// Every CUDA kernel against the CPU kernel, on the harness's op cases (tests/harness/op_cases.cc:
// every forward and backward op, corner shapes), in both layouts, with TF32 on (within 1e-3
// relative) and off (within 1e-5): same random fp32 inputs, outputs NaN-poisoned beforehand, two
// rounds on one prepared kernel, in-place state updates compared too. The float64 reference
// checks both at the harness's tolerance (TF32's where it is on).
#include <cuda_runtime_api.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ops/cpu/cpu_kernels.h"
#include "ops/cuda/cuda_kernels.h"
#include "ops/cuda/device.h"
#include "ops/kernels.h"
#include "ops/registry.h"
#include "tests/cuda/cuda_test_device.h"
#include "tests/harness/harness_graphs.h"
#include "tests/harness/op_cases.h"
#include "tests/support/assert_ok.h"
#include "tests/support/reference_graph.h"
#include "tests/support/sequential_runner.h"
#include "tests/support/test_values.h"

namespace gradflow::test_support {
namespace {

using graph::DType;
using graph::TensorRole;
using ops::DeviceType;

constexpr double kTf32Tolerance = 1e-3;
constexpr double kFp32Tolerance = 1e-5;
constexpr double kReferenceTolerance = 1e-4;  // the CPU kernels' own bound in the harness

bool HaveGpu() {
  absl::StatusOr<int> count = ops::cuda::CudaDeviceCount();
  return count.ok() && *count > 0;
}

// CPU and CUDA kernels, independent of whether this machine has a GPU.
const ops::KernelRegistry& BothDevices() {
  static const ops::KernelRegistry* const registry = [] {
    auto* r = new ops::KernelRegistry;
    if (!ops::cpu::RegisterCpuKernels(*r).ok() || !ops::cuda::RegisterCudaKernels(*r).ok()) {
      std::abort();
    }
    return r;
  }();
  return *registry;
}

const graph::OpSchema& SchemaOf(const std::string& op) {
  const graph::OpRegistry& ops = ops::StandardOps();
  return *ops.Find(op, ops.LatestVersion(op));
}

struct Param {
  size_t case_index;
  LayoutPolicy layout;
  bool tf32;
};

void PrintTo(const Param& p, std::ostream* os) {
  *os << AllOpCases()[p.case_index].FullName() << ", " << LayoutPolicyName(p.layout)
      << (p.tf32 ? ", tf32" : ", fp32");
}

std::vector<Param> Params() {
  std::vector<Param> params;
  for (size_t i = 0; i < AllOpCases().size(); ++i) {
    if (!BothDevices().Has(AllOpCases()[i].op, DeviceType::kCuda, DType::kFloat32)) continue;
    for (LayoutPolicy layout : {LayoutPolicy::kRowMajor, LayoutPolicy::kChannelsLast}) {
      for (bool tf32 : {true, false}) params.push_back({i, layout, tf32});
    }
    // The runtime's first convolution reads row-major images and writes NHWC.
    if (AllOpCases()[i].op.starts_with("Conv2D")) {
      for (bool tf32 : {true, false}) {
        params.push_back({i, LayoutPolicy::kChannelsLastInputsRowMajor, tf32});
      }
    }
  }
  return params;
}

absl::Status WriteInputs(SequentialRunner& runner, const std::vector<RefTensor>& inputs) {
  const graph::Graph& g = runner.graph();
  for (size_t i = 0; i < inputs.size(); ++i) {
    const graph::Tensor& tensor = g.tensors[i];
    absl::Status s;
    if (tensor.dtype == DType::kInt32) {
      std::vector<int32_t> labels;
      for (double v : inputs[i].values) labels.push_back(static_cast<int32_t>(v));
      s = runner.WriteInt32(tensor.name, labels);
    } else {
      s = runner.Write(tensor.name, ToFloat(inputs[i].values));
    }
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

// Outputs, then every input after the step (state inputs change in place).
absl::StatusOr<std::vector<std::vector<float>>> RunOnce(SequentialRunner& runner,
                                                        const OpCase& op_case,
                                                        const std::vector<RefTensor>& inputs,
                                                        size_t* num_outputs) {
  if (absl::Status s = WriteInputs(runner, inputs); !s.ok()) return s;
  if (absl::Status s = runner.Step(); !s.ok()) return s;
  const graph::Graph& g = runner.graph();
  std::vector<std::vector<float>> values;
  for (int32_t out : g.nodes[0].outputs) {
    absl::StatusOr<std::vector<float>> v = runner.Read(g.tensors[out].name);
    if (!v.ok()) return v.status();
    values.push_back(*std::move(v));
  }
  *num_outputs = values.size();
  for (size_t i = 0; i < op_case.inputs.size(); ++i) {
    if (op_case.inputs[i].role != TensorRole::kState) {
      values.emplace_back();
      continue;
    }
    absl::StatusOr<std::vector<float>> v = runner.Read(g.tensors[i].name);
    if (!v.ok()) return v.status();
    values.push_back(*std::move(v));
  }
  return values;
}

class CudaKernelTest : public ::testing::TestWithParam<Param> {};

TEST_P(CudaKernelTest, MatchesCpuKernel) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU on this machine";
  const Param& param = GetParam();
  const OpCase& op_case = AllOpCases()[param.case_index];
  const uint64_t seed = TestSeed();
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937_64 rng(seed);
  const double tolerance = param.tf32 ? kTf32Tolerance : kFp32Tolerance;

  absl::StatusOr<graph::Graph> g = OneNodeGraph(op_case);
  GRADFLOW_ASSERT_OK(g.status());
  absl::StatusOr<std::unique_ptr<TestDevice>> cuda = CreateCudaTestDevice({.tf32 = param.tf32});
  GRADFLOW_ASSERT_OK(cuda.status());
  absl::StatusOr<std::unique_ptr<TestDevice>> cpu = CreateTestDevice(DeviceType::kCpu);
  GRADFLOW_ASSERT_OK(cpu.status());
  const RunnerOptions options{.layouts = param.layout, .poison = true};
  absl::StatusOr<std::unique_ptr<SequentialRunner>> cuda_runner =
      SequentialRunner::Create(*g, 1, ops::StandardOps(), BothDevices(), **cuda, options);
  GRADFLOW_ASSERT_OK(cuda_runner.status());
  absl::StatusOr<std::unique_ptr<SequentialRunner>> cpu_runner =
      SequentialRunner::Create(*g, 1, ops::StandardOps(), BothDevices(), **cpu, options);
  GRADFLOW_ASSERT_OK(cpu_runner.status());

  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    const std::vector<RefTensor> inputs = MakeInputs(op_case, rng);
    size_t outputs = 0;
    absl::StatusOr<std::vector<std::vector<float>>> on_gpu =
        RunOnce(**cuda_runner, op_case, inputs, &outputs);
    GRADFLOW_ASSERT_OK(on_gpu.status());
    absl::StatusOr<std::vector<std::vector<float>>> on_cpu =
        RunOnce(**cpu_runner, op_case, inputs, &outputs);
    GRADFLOW_ASSERT_OK(on_cpu.status());
    ASSERT_EQ(on_gpu->size(), on_cpu->size());
    for (size_t i = 0; i < on_gpu->size(); ++i) {
      if ((*on_cpu)[i].empty()) continue;
      const std::vector<double> expected = ToDouble((*on_cpu)[i]);
      const std::string what =
          i < outputs ? absl::StrCat("output ", i) : absl::StrCat("state input ", i - outputs);
      EXPECT_LT(RelativeError((*on_gpu)[i], expected), tolerance)
          << op_case.FullName() << ", " << LayoutPolicyName(param.layout) << ": " << what
          << " on CUDA differs from the CPU kernel, " << WorstElement((*on_gpu)[i], expected);
    }
    absl::StatusOr<ReferenceNodeResult> ref =
        EvaluateReferenceNode(g->nodes[0], SchemaOf(op_case.op), inputs);
    GRADFLOW_ASSERT_OK(ref.status());
    const double ref_tolerance = param.tf32 ? kTf32Tolerance : kReferenceTolerance;
    for (size_t i = 0; i < ref->outputs.size() && i < outputs; ++i) {
      EXPECT_LT(RelativeError((*on_gpu)[i], ref->outputs[i].values), ref_tolerance)
          << op_case.FullName() << ": output " << i << " on CUDA differs from the reference, "
          << WorstElement((*on_gpu)[i], ref->outputs[i].values);
    }
  }
}

std::string ParamName(const ::testing::TestParamInfo<Param>& info) {
  return absl::StrCat(AllOpCases()[info.param.case_index].FullName(), "_",
                      LayoutPolicyName(info.param.layout), info.param.tf32 ? "_tf32" : "_fp32");
}

INSTANTIATE_TEST_SUITE_P(AllOps, CudaKernelTest, ::testing::ValuesIn(Params()), ParamName);

// Runs without a GPU: the CUDA registration covers the CPU's.
TEST(CudaKernelCoverageTest, EveryCpuOpHasACudaKernel) {
  ops::KernelRegistry cpu, cuda;
  GRADFLOW_ASSERT_OK(ops::cpu::RegisterCpuKernels(cpu));
  GRADFLOW_ASSERT_OK(ops::cuda::RegisterCudaKernels(cuda));
  EXPECT_EQ(cuda.OpsOn(DeviceType::kCuda), cpu.OpsOn(DeviceType::kCpu));
  EXPECT_TRUE(cuda.OpsOn(DeviceType::kCpu).empty());
}

TEST(CudaKernelCoverageTest, EveryCudaOpHasHarnessCases) {
  std::set<std::string> with_cases;
  for (const OpCase& c : AllOpCases()) with_cases.insert(c.op);
  for (const std::string& op : BothDevices().OpsOn(DeviceType::kCuda)) {
    EXPECT_TRUE(with_cases.contains(op)) << op << " has no case in tests/harness/op_cases.cc";
  }
}

// ops::StandardKernels() offers CUDA kernels exactly where a GPU can run them.
TEST(CudaKernelCoverageTest, StandardKernelsOfferCudaOnlyWithAGpu) {
  const std::vector<std::string> cuda_ops = ops::StandardKernels().OpsOn(DeviceType::kCuda);
  if (HaveGpu()) {
    EXPECT_EQ(cuda_ops, BothDevices().OpsOn(DeviceType::kCuda));
  } else {
    EXPECT_THAT(cuda_ops, ::testing::IsEmpty());
  }
}

// A label out of range is found on the device and reported, naming the node, at the next
// synchronize (the runner's step).
TEST(CudaSoftmaxCrossEntropyTest, LabelOutOfRangeIsAnError) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU on this machine";
  for (const OpCase& op_case : AllOpCases()) {
    if (op_case.op != "SoftmaxCrossEntropy" && op_case.op != "SoftmaxCrossEntropyGrad") continue;
    SCOPED_TRACE(op_case.FullName());
    absl::StatusOr<graph::Graph> g = OneNodeGraph(op_case);
    GRADFLOW_ASSERT_OK(g.status());
    absl::StatusOr<std::unique_ptr<TestDevice>> cuda = CreateCudaTestDevice();
    GRADFLOW_ASSERT_OK(cuda.status());
    absl::StatusOr<std::unique_ptr<SequentialRunner>> runner =
        SequentialRunner::Create(*g, 1, ops::StandardOps(), BothDevices(), **cuda);
    GRADFLOW_ASSERT_OK(runner.status());
    std::mt19937_64 rng(7);
    std::vector<RefTensor> inputs = MakeInputs(op_case, rng);
    size_t label_input = 0;
    for (size_t i = 0; i < op_case.inputs.size(); ++i) {
      if (op_case.inputs[i].fill == Fill::kLabels) label_input = i;
    }
    inputs[label_input].values.back() = static_cast<double>(op_case.inputs[label_input].classes);
    GRADFLOW_ASSERT_OK(WriteInputs(**runner, inputs));
    const absl::Status status = (*runner)->Step();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("outside [0, "));
    EXPECT_THAT(
        std::string(status.message()),
        ::testing::HasSubstr(absl::StrCat("sample ", inputs[label_input].values.size() - 1)));
    // The report is taken: the next good step succeeds.
    inputs[label_input].values.back() = 0;
    GRADFLOW_ASSERT_OK(WriteInputs(**runner, inputs));
    GRADFLOW_ASSERT_OK((*runner)->Step());
  }
}

}  // namespace
}  // namespace gradflow::test_support
