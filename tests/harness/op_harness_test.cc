// The cross-device op harness. For every op case (op_cases.cc), every device that has a kernel for
// the op, and both layouts:
//   KernelTest          the kernel's fp32 outputs (and in-place state updates) against the float64
//                       reference, on fresh random inputs, with outputs NaN-poisoned beforehand;
//                       on devices other than the CPU also against the CPU kernel.
// For every forward op with a gradient rule:
//   ReferenceGradientTest  the float64 reference backward against central finite differences of
//                          the float64 reference forward (this proves the references);
//   GradientRuleTest       autodiff's backward graph for the op, run with the CPU kernels, against
//                          finite differences of the forward graph evaluated in float64.
#include <cmath>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "graph/op_schema.h"
#include "gtest/gtest.h"
#include "ops/kernels.h"
#include "ops/registry.h"
#include "tests/harness/harness_graphs.h"
#include "tests/harness/op_cases.h"
#include "tests/support/assert_ok.h"
#include "tests/support/reference_graph.h"
#include "tests/support/sequential_runner.h"
#include "tests/support/test_device.h"
#include "tests/support/test_values.h"

namespace gradflow::test_support {
namespace {

using graph::DType;
using graph::TensorRole;
using ops::DeviceType;

constexpr double kKernelTolerance = 1e-4;
constexpr double kReferenceGradientTolerance = 1e-6;
constexpr double kGradientRuleTolerance = 1e-4;
constexpr double kFiniteDifferenceStep = 1e-5;
constexpr DeviceType kAllDevices[] = {DeviceType::kCpu, DeviceType::kCuda};
constexpr LayoutPolicy kAllLayouts[] = {LayoutPolicy::kRowMajor, LayoutPolicy::kChannelsLast};

const graph::OpSchema& SchemaOf(const std::string& op) {
  const graph::OpRegistry& ops = ops::StandardOps();
  return *ops.Find(op, ops.LatestVersion(op));
}

std::string DeviceName(DeviceType device) { return ops::DeviceTypeName(device); }

// ---------------------------------------------------------------------------------------------
// Parameters

struct KernelParam {
  size_t case_index;
  DeviceType device;
  LayoutPolicy layout;
};

struct LayoutParam {
  size_t case_index;
  LayoutPolicy layout;
};

void PrintTo(const KernelParam& p, std::ostream* os) {
  *os << AllOpCases()[p.case_index].FullName() << " on " << DeviceName(p.device) << ", "
      << LayoutPolicyName(p.layout);
}
void PrintTo(const LayoutParam& p, std::ostream* os) {
  *os << AllOpCases()[p.case_index].FullName() << ", " << LayoutPolicyName(p.layout);
}

std::vector<KernelParam> KernelParams() {
  std::vector<KernelParam> params;
  for (size_t i = 0; i < AllOpCases().size(); ++i) {
    for (DeviceType device : kAllDevices) {
      if (!ops::StandardKernels().Has(AllOpCases()[i].op, device, DType::kFloat32)) continue;
      for (LayoutPolicy layout : kAllLayouts) params.push_back({i, device, layout});
      // The runtime's first convolution reads row-major images and writes NHWC.
      if (AllOpCases()[i].op.starts_with("Conv2D")) {
        params.push_back({i, device, LayoutPolicy::kChannelsLastInputsRowMajor});
      }
    }
  }
  return params;
}

std::vector<size_t> DifferentiableCases() {
  std::vector<size_t> indices;
  for (size_t i = 0; i < AllOpCases().size(); ++i) {
    if (AllOpCases()[i].differentiable) indices.push_back(i);
  }
  return indices;
}

std::vector<LayoutParam> GradientRuleParams() {
  std::vector<LayoutParam> params;
  for (size_t i : DifferentiableCases()) {
    for (LayoutPolicy layout : kAllLayouts) params.push_back({i, layout});
  }
  return params;
}

// ---------------------------------------------------------------------------------------------
// Running one case

absl::Status WriteSource(SequentialRunner& runner, const graph::Tensor& tensor,
                         const RefTensor& value) {
  if (tensor.dtype == DType::kInt32) {
    std::vector<int32_t> labels;
    for (double v : value.values) labels.push_back(static_cast<int32_t>(v));
    return runner.WriteInt32(tensor.name, labels);
  }
  return runner.Write(tensor.name, ToFloat(value.values));
}

struct KernelRun {
  std::vector<std::vector<float>> outputs;
  std::vector<std::vector<float>> inputs_after;  // state inputs after the step (others empty)
};

absl::StatusOr<KernelRun> RunOnce(SequentialRunner& runner, const OpCase& op_case,
                                  const std::vector<RefTensor>& inputs) {
  const graph::Graph& g = runner.graph();
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (absl::Status s = WriteSource(runner, g.tensors[i], inputs[i]); !s.ok()) return s;
  }
  if (absl::Status s = runner.Step(); !s.ok()) return s;
  KernelRun run;
  for (int32_t out : g.nodes[0].outputs) {
    absl::StatusOr<std::vector<float>> values = runner.Read(g.tensors[out].name);
    if (!values.ok()) return values.status();
    run.outputs.push_back(*std::move(values));
  }
  for (size_t i = 0; i < op_case.inputs.size(); ++i) {
    run.inputs_after.emplace_back();
    if (op_case.inputs[i].role != TensorRole::kState) continue;
    absl::StatusOr<std::vector<float>> values = runner.Read(g.tensors[i].name);
    if (!values.ok()) return values.status();
    run.inputs_after.back() = *std::move(values);
  }
  return run;
}

class KernelTest : public ::testing::TestWithParam<KernelParam> {};

TEST_P(KernelTest, MatchesReference) {
  const KernelParam& param = GetParam();
  const OpCase& op_case = AllOpCases()[param.case_index];
  const uint64_t seed = TestSeed();
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937_64 rng(seed);

  absl::StatusOr<graph::Graph> g = OneNodeGraph(op_case);
  GRADFLOW_ASSERT_OK(g.status());
  absl::StatusOr<std::unique_ptr<TestDevice>> device = CreateTestDevice(param.device);
  GRADFLOW_ASSERT_OK(device.status());
  const RunnerOptions options{.layouts = param.layout, .poison = true};
  absl::StatusOr<std::unique_ptr<SequentialRunner>> runner = SequentialRunner::Create(
      *g, 1, ops::StandardOps(), ops::StandardKernels(), **device, options);
  GRADFLOW_ASSERT_OK(runner.status());
  // Off the CPU, the CPU kernel is a second reference: same fp32 inputs, another implementation.
  std::unique_ptr<TestDevice> cpu_device;
  std::unique_ptr<SequentialRunner> cpu_runner;
  if (param.device != DeviceType::kCpu) {
    absl::StatusOr<std::unique_ptr<TestDevice>> cpu = CreateTestDevice(DeviceType::kCpu);
    GRADFLOW_ASSERT_OK(cpu.status());
    cpu_device = *std::move(cpu);
    absl::StatusOr<std::unique_ptr<SequentialRunner>> r = SequentialRunner::Create(
        *g, 1, ops::StandardOps(), ops::StandardKernels(), *cpu_device, options);
    GRADFLOW_ASSERT_OK(r.status());
    cpu_runner = *std::move(r);
  }

  // Two rounds on one prepared kernel, each with fresh inputs: a kernel that caches data from its
  // first run (weights reordered once, say) fails the second.
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    const std::vector<RefTensor> inputs = MakeInputs(op_case, rng);
    absl::StatusOr<KernelRun> run = RunOnce(**runner, op_case, inputs);
    GRADFLOW_ASSERT_OK(run.status());
    absl::StatusOr<ReferenceNodeResult> ref =
        EvaluateReferenceNode(g->nodes[0], SchemaOf(op_case.op), inputs);
    GRADFLOW_ASSERT_OK(ref.status());
    ASSERT_EQ(ref->outputs.size(), run->outputs.size());
    for (size_t i = 0; i < ref->outputs.size(); ++i) {
      const double error = RelativeError(run->outputs[i], ref->outputs[i].values);
      EXPECT_LT(error, kKernelTolerance)
          << op_case.FullName() << " on " << DeviceName(param.device) << ", "
          << LayoutPolicyName(param.layout) << ": output " << i << " differs from the reference, "
          << WorstElement(run->outputs[i], ref->outputs[i].values);
    }
    std::set<size_t> updated;
    for (const auto& [index, value] : ref->updated_inputs) {
      updated.insert(static_cast<size_t>(index));
      const double error = RelativeError(run->inputs_after[index], value.values);
      EXPECT_LT(error, kKernelTolerance)
          << op_case.FullName() << ": in-place update of input " << index << " ("
          << op_case.inputs[index].name << ") differs from the reference, "
          << WorstElement(run->inputs_after[index], value.values);
    }
    for (size_t i = 0; i < op_case.inputs.size(); ++i) {
      if (op_case.inputs[i].role != TensorRole::kState || updated.contains(i)) continue;
      EXPECT_EQ(RelativeError(run->inputs_after[i], inputs[i].values), 0)
          << op_case.FullName() << ": state input " << op_case.inputs[i].name
          << " was modified, but this op must leave it alone";
    }
    if (cpu_runner != nullptr) {
      absl::StatusOr<KernelRun> cpu_run = RunOnce(*cpu_runner, op_case, inputs);
      GRADFLOW_ASSERT_OK(cpu_run.status());
      for (size_t i = 0; i < cpu_run->outputs.size(); ++i) {
        const std::vector<double> cpu_values = ToDouble(cpu_run->outputs[i]);
        EXPECT_LT(RelativeError(run->outputs[i], cpu_values), kKernelTolerance)
            << op_case.FullName() << ": output " << i << " on " << DeviceName(param.device)
            << " differs from the CPU kernel, " << WorstElement(run->outputs[i], cpu_values);
      }
    }
  }
}

std::string KernelParamName(const ::testing::TestParamInfo<KernelParam>& info) {
  return absl::StrCat(AllOpCases()[info.param.case_index].FullName(), "_",
                      DeviceName(info.param.device), "_", LayoutPolicyName(info.param.layout));
}

INSTANTIATE_TEST_SUITE_P(AllOps, KernelTest, ::testing::ValuesIn(KernelParams()), KernelParamName);

// ---------------------------------------------------------------------------------------------
// The references' own gradients

// sum(r * output 0) of the reference forward.
double ProjectedOutput(const graph::Node& node, const graph::OpSchema& schema,
                       const std::vector<RefTensor>& inputs, const RefTensor& r) {
  absl::StatusOr<ReferenceNodeResult> result = EvaluateReferenceNode(node, schema, inputs);
  if (!result.ok()) return std::nan("");
  double sum = 0;
  for (size_t i = 0; i < r.values.size(); ++i) sum += r.values[i] * result->outputs[0].values[i];
  return sum;
}

class ReferenceGradientTest : public ::testing::TestWithParam<size_t> {};

TEST_P(ReferenceGradientTest, MatchesFiniteDifferences) {
  const OpCase& op_case = AllOpCases()[GetParam()];
  const uint64_t seed = TestSeed();
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937_64 rng(seed);
  absl::StatusOr<graph::Graph> g = OneNodeGraph(op_case);
  GRADFLOW_ASSERT_OK(g.status());
  const graph::Node& node = g->nodes[0];
  const graph::OpSchema& schema = SchemaOf(op_case.op);

  std::vector<RefTensor> inputs = MakeInputs(op_case, rng);
  absl::StatusOr<ReferenceNodeResult> forward = EvaluateReferenceNode(node, schema, inputs);
  GRADFLOW_ASSERT_OK(forward.status());
  RefTensor r(forward->outputs[0].shape);
  std::uniform_real_distribution<double> uniform(-1, 1);
  for (double& v : r.values) v = uniform(rng);
  absl::StatusOr<std::vector<std::optional<RefTensor>>> grads =
      ReferenceInputGradients(node, schema, inputs, forward->outputs, r);
  GRADFLOW_ASSERT_OK(grads.status());

  int checked = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!(*grads)[i].has_value()) continue;
    ++checked;
    std::vector<double> numeric(inputs[i].values.size());
    for (size_t j = 0; j < numeric.size(); ++j) {
      const double original = inputs[i].values[j];
      inputs[i].values[j] = original + kFiniteDifferenceStep;
      const double plus = ProjectedOutput(node, schema, inputs, r);
      inputs[i].values[j] = original - kFiniteDifferenceStep;
      const double minus = ProjectedOutput(node, schema, inputs, r);
      inputs[i].values[j] = original;
      numeric[j] = (plus - minus) / (2 * kFiniteDifferenceStep);
    }
    EXPECT_LT(RelativeError((*grads)[i]->values, numeric), kReferenceGradientTolerance)
        << op_case.FullName() << ": reference gradient of input " << i << " ("
        << op_case.inputs[i].name << ") differs from finite differences, "
        << WorstElement((*grads)[i]->values, numeric);
  }
  EXPECT_GT(checked, 0) << op_case.FullName() << " has a gradient rule but no input gradient";
}

std::string CaseParamName(const ::testing::TestParamInfo<size_t>& info) {
  return AllOpCases()[info.param].FullName();
}

INSTANTIATE_TEST_SUITE_P(ForwardOps, ReferenceGradientTest,
                         ::testing::ValuesIn(DifferentiableCases()), CaseParamName);

// ---------------------------------------------------------------------------------------------
// Gradient rules, through autodiff and the CPU kernels

double ForwardLoss(const graph::Graph& g, std::vector<std::optional<RefTensor>> values) {
  if (!EvaluateForwardReference(g, ops::StandardOps(), values).ok()) return std::nan("");
  return values[g.loss]->values[0];
}

class GradientRuleTest : public ::testing::TestWithParam<LayoutParam> {};

TEST_P(GradientRuleTest, BackwardGraphMatchesFiniteDifferences) {
  const OpCase& op_case = AllOpCases()[GetParam().case_index];
  const uint64_t seed = TestSeed();
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937_64 rng(seed);
  absl::StatusOr<GradientCheckGraph> check = BuildGradientCheckGraph(op_case);
  GRADFLOW_ASSERT_OK(check.status());
  const graph::Graph& g = check->graph;

  // Source values: the case's inputs, then the projection's weights and labels.
  std::vector<std::optional<RefTensor>> sources(g.tensors.size());
  const std::vector<RefTensor> inputs = MakeInputs(op_case, rng);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const int32_t source = check->input_sources[i];
    sources[source] = RefTensor(g.tensors[source].shape, inputs[i].values);
  }
  std::uniform_real_distribution<double> uniform(-1, 1);
  std::uniform_int_distribution<int64_t> label(0, kProjectionClasses - 1);
  if (check->projection_weights != graph::kNoTensor) {
    RefTensor weights(g.tensors[check->projection_weights].shape);
    // Scaled so that the logits stay O(1): a saturated softmax would leave gradients made of
    // (p - 1) with p within float rounding of 1, noise rather than signal.
    const double scale = 1.0 / std::sqrt(static_cast<double>(weights.shape[1]));
    for (double& v : weights.values) v = scale * uniform(rng);
    weights.values = RoundedToFloat(weights.values);
    sources[check->projection_weights] = std::move(weights);
    RefTensor labels(g.tensors[check->projection_labels].shape);
    for (double& v : labels.values) v = static_cast<double>(label(rng));
    sources[check->projection_labels] = std::move(labels);
  }

  absl::StatusOr<std::unique_ptr<TestDevice>> device = CreateTestDevice(DeviceType::kCpu);
  GRADFLOW_ASSERT_OK(device.status());
  absl::StatusOr<std::unique_ptr<SequentialRunner>> runner =
      SequentialRunner::Create(g, 1, ops::StandardOps(), ops::StandardKernels(), **device,
                               {.layouts = GetParam().layout, .poison = true});
  GRADFLOW_ASSERT_OK(runner.status());
  for (size_t t = 0; t < g.tensors.size(); ++t) {
    if (sources[t].has_value())
      GRADFLOW_ASSERT_OK(WriteSource(**runner, g.tensors[t], *sources[t]));
  }
  GRADFLOW_ASSERT_OK((*runner)->Step());

  ASSERT_FALSE(g.param_grads.empty()) << "autodiff produced no parameter gradient";
  for (const graph::ParamGrad& pg : g.param_grads) {
    const std::string& param_name = g.tensors[pg.param].name;
    absl::StatusOr<std::vector<float>> kernel_grad = (*runner)->Read(g.tensors[pg.grad].name);
    GRADFLOW_ASSERT_OK(kernel_grad.status());
    std::vector<std::optional<RefTensor>> values = sources;
    std::vector<double> numeric(values[pg.param]->values.size());
    for (size_t j = 0; j < numeric.size(); ++j) {
      const double original = values[pg.param]->values[j];
      values[pg.param]->values[j] = original + kFiniteDifferenceStep;
      const double plus = ForwardLoss(g, values);
      values[pg.param]->values[j] = original - kFiniteDifferenceStep;
      const double minus = ForwardLoss(g, values);
      values[pg.param]->values[j] = original;
      numeric[j] = (plus - minus) / (2 * kFiniteDifferenceStep);
    }
    EXPECT_LT(RelativeError(*kernel_grad, numeric), kGradientRuleTolerance)
        << op_case.FullName() << ", " << LayoutPolicyName(GetParam().layout) << ": gradient '"
        << g.tensors[pg.grad].name << "' of '" << param_name
        << "' from the backward graph differs from finite differences, "
        << WorstElement(*kernel_grad, numeric);
  }
}

std::string LayoutParamName(const ::testing::TestParamInfo<LayoutParam>& info) {
  return absl::StrCat(AllOpCases()[info.param.case_index].FullName(), "_",
                      LayoutPolicyName(info.param.layout));
}

INSTANTIATE_TEST_SUITE_P(ForwardOps, GradientRuleTest, ::testing::ValuesIn(GradientRuleParams()),
                         LayoutParamName);

// ---------------------------------------------------------------------------------------------
// Coverage: the harness must grow with the contract.

TEST(HarnessCoverageTest, EveryOpHasCasesAndACpuKernel) {
  std::set<std::string> ops_with_cases;
  std::set<std::string> ops_with_gradient_cases;
  for (const OpCase& c : AllOpCases()) {
    ops_with_cases.insert(c.op);
    if (c.differentiable) ops_with_gradient_cases.insert(c.op);
  }
  for (const graph::OpSchema* schema : ops::StandardOps().All()) {
    EXPECT_TRUE(ops_with_cases.contains(schema->name))
        << "op " << schema->name << " has no case in tests/harness/op_cases.cc";
    EXPECT_TRUE(ops::StandardKernels().Has(schema->name, DeviceType::kCpu, DType::kFloat32))
        << "op " << schema->name << " has no fp32 CPU kernel";
    if (schema->gradient) {
      EXPECT_TRUE(ops_with_gradient_cases.contains(schema->name))
          << "op " << schema->name << " has a gradient rule but no differentiable case";
    }
  }
}

TEST(HarnessCoverageTest, CaseNamesAreUnique) {
  std::set<std::string> names;
  for (const OpCase& c : AllOpCases()) {
    EXPECT_TRUE(names.insert(c.FullName()).second) << "duplicate case " << c.FullName();
  }
}

}  // namespace
}  // namespace gradflow::test_support
