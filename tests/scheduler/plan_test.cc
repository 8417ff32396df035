#include "scheduler/plan.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "graph/shape_inference.h"
#include "graph/verify.h"
#include "gtest/gtest.h"
#include "models/zoo.h"
#include "ops/registry.h"

namespace gradflow::sched {
namespace {

using ::testing::HasSubstr;

struct ZooCase {
  std::string model;
  models::ModelOptions options;
  int64_t batch = 2;
};

graph::Graph BoundModel(const ZooCase& c) {
  absl::StatusOr<graph::Graph> g = models::BuildModel(c.model, c.options, ops::StandardOps());
  EXPECT_TRUE(g.ok()) << g.status();
  if (!g.ok()) return {};
  graph::Graph bound = graph::BindBatchSize(*g, c.batch);
  EXPECT_TRUE(graph::VerifyGraph(bound, ops::StandardOps()).ok());
  return bound;
}

// Workspaces of varied sizes (some steps none), standing in for what kernels ask for.
int64_t SyntheticWorkspace(int32_t step) { return step % 3 == 0 ? 0 : 4096 * (step % 5 + 1); }

absl::StatusOr<Plan> PlanWithSyntheticWorkspaces(const graph::Graph& g, PlanOptions options = {}) {
  return BuildPlan(g, options, [](const Plan&, int32_t step) -> absl::StatusOr<int64_t> {
    return SyntheticWorkspace(step);
  });
}

int64_t Bytes(const graph::Tensor& t) {
  return graph::NumElements(t.shape) * static_cast<int64_t>(graph::DTypeSize(t.dtype));
}

class ZooPlanTest : public ::testing::TestWithParam<ZooCase> {};

TEST_P(ZooPlanTest, MemoryPlanIsValidAndReported) {
  const graph::Graph g = BoundModel(GetParam());
  ASSERT_FALSE(g.nodes.empty());
  absl::StatusOr<Plan> plan = PlanWithSyntheticWorkspaces(g);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_TRUE(CheckPlan(g, *plan).ok()) << CheckPlan(g, *plan);

  // sched::CheckMemoryPlan on the plan's own blocks, independently of CheckPlan.
  std::vector<LiveRange> ranges;
  MemoryPlan memory;
  memory.arena_bytes = plan->sizes.arena;
  for (const ArenaBlock& block : plan->arena_blocks) {
    ranges.push_back(block.range);
    memory.offsets.push_back(block.tensor >= 0 ? plan->tensors[block.tensor].offset
                                               : plan->workspaces[block.workspace_step].offset);
  }
  ASSERT_TRUE(CheckMemoryPlan(ranges, memory).ok()) << CheckMemoryPlan(ranges, memory);
  EXPECT_EQ(plan->peak_live_bytes, PeakLiveBytes(ranges));
  EXPECT_GE(plan->sizes.arena, plan->peak_live_bytes);
  EXPECT_LE(plan->sizes.arena, plan->arena_sum_of_bytes + 64 * static_cast<int64_t>(ranges.size()));
  // Reuse must actually happen on a network: far below the no-reuse sum.
  EXPECT_LT(plan->sizes.arena, plan->arena_sum_of_bytes / 2);
  RecordProperty("arena_bytes", std::to_string(plan->sizes.arena));
  RecordProperty("peak_live_bytes", std::to_string(plan->peak_live_bytes));
  RecordProperty("no_reuse_bytes", std::to_string(plan->arena_sum_of_bytes));
  RecordProperty("parameter_bytes", std::to_string(plan->sizes.parameters));
  const std::string description = DescribePlan(*plan);
  EXPECT_THAT(description, HasSubstr("arena"));
  EXPECT_THAT(description, HasSubstr("live peak"));
  std::printf("%s: %s\n", GetParam().model.c_str(), description.c_str());

  // Every temporary and every nonzero workspace is in the arena, aligned.
  for (size_t t = 0; t < g.tensors.size(); ++t) {
    const graph::TensorRole role = g.tensors[t].role;
    const Placement& p = plan->tensors[t];
    if (role == graph::TensorRole::kActivation) {
      EXPECT_EQ(p.buffer, BufferKind::kArena) << g.tensors[t].name;
    }
    if (role == graph::TensorRole::kInput || role == graph::TensorRole::kLabel) {
      EXPECT_EQ(p.buffer, BufferKind::kInputs) << g.tensors[t].name;
    }
    if (role == graph::TensorRole::kState) {
      EXPECT_EQ(p.buffer, BufferKind::kState);
    }
    EXPECT_EQ(p.offset % 64, 0);
    EXPECT_EQ(p.bytes, Bytes(g.tensors[t]));
  }
  for (size_t s = 0; s < plan->steps.size(); ++s) {
    const int64_t expected = SyntheticWorkspace(static_cast<int32_t>(s));
    EXPECT_EQ(plan->workspaces[s].bytes, expected);
    if (expected > 0) {
      EXPECT_EQ(plan->workspaces[s].buffer, BufferKind::kArena);
    }
  }

  // The loss and the loss node's outputs (probabilities) stay live to the last step.
  const auto last = static_cast<int32_t>(plan->steps.size()) - 1;
  const graph::Node& loss_node = g.nodes[plan->producer_step[g.loss]];
  for (const ArenaBlock& block : plan->arena_blocks) {
    if (block.tensor < 0) continue;
    const bool read_after =
        std::count(loss_node.outputs.begin(), loss_node.outputs.end(), block.tensor) > 0 ||
        std::count(loss_node.inputs.begin(), loss_node.inputs.end(), block.tensor) > 0;
    if (read_after) {
      EXPECT_EQ(block.range.last, last) << g.tensors[block.tensor].name;
    }
  }
}

TEST_P(ZooPlanTest, ParametersAndGradientsShareOffsetsInBackwardOrder) {
  const graph::Graph g = BoundModel(GetParam());
  absl::StatusOr<Plan> plan = PlanWithSyntheticWorkspaces(g);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->sgd_segments.size(), g.param_grads.size());
  int64_t end = 0;
  for (size_t i = 0; i < g.param_grads.size(); ++i) {
    const graph::ParamGrad& pg = g.param_grads[i];
    const Placement& param = plan->tensors[pg.param];
    const Placement& grad = plan->tensors[pg.grad];
    EXPECT_EQ(param.buffer, BufferKind::kParameters);
    EXPECT_EQ(grad.buffer, BufferKind::kGradients);
    EXPECT_EQ(param.offset, grad.offset) << g.tensors[pg.param].name;
    EXPECT_EQ(param.offset % 64, 0);
    EXPECT_GE(param.offset, end) << "parameters must follow param_grads order";
    EXPECT_LT(param.offset - end, 64) << "only alignment padding between parameters";
    end = param.offset + param.bytes;
    const ops::SgdSegment& segment = plan->sgd_segments[i];
    EXPECT_EQ(segment.offset * 4, param.offset);
    EXPECT_EQ(segment.count, graph::NumElements(g.tensors[pg.param].shape));
    EXPECT_EQ(segment.weight_decay, g.tensors[pg.param].shape.size() != 1)
        << g.tensors[pg.param].name;
  }
  EXPECT_GE(plan->sizes.parameters, end);
  EXPECT_GE(plan->sizes.gradients, end);
  EXPECT_EQ(plan->parameter_dtype, graph::DType::kFloat32);
}

TEST_P(ZooPlanTest, StepsFollowGraphOrderOnOneStream) {
  const graph::Graph g = BoundModel(GetParam());
  absl::StatusOr<Plan> plan = PlanWithSyntheticWorkspaces(g);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->steps.size(), g.nodes.size());
  for (size_t s = 0; s < plan->steps.size(); ++s) {
    const PlanStep& step = plan->steps[s];
    EXPECT_EQ(step.node, static_cast<int32_t>(s));
    EXPECT_EQ(step.stream, kComputeStream);
    if (s == 0) {
      EXPECT_EQ(step.predecessors, 0);
    } else {
      EXPECT_GE(step.predecessors, 1);
    }
    if (s + 1 < plan->steps.size()) {
      // The sequencing edge: the stream runs steps exactly in plan order.
      EXPECT_TRUE(std::binary_search(step.successors.begin(), step.successors.end(),
                                     static_cast<int32_t>(s + 1)));
    }
    for (int32_t succ : step.successors) EXPECT_GT(succ, static_cast<int32_t>(s));
  }
}

TEST_P(ZooPlanTest, LayoutsFollowThePolicy) {
  const graph::Graph g = BoundModel(GetParam());
  absl::StatusOr<Plan> plan = PlanWithSyntheticWorkspaces(g);
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::vector<bool> param_grad(g.tensors.size(), false);
  for (const graph::ParamGrad& pg : g.param_grads) param_grad[pg.grad] = true;
  std::vector<const graph::Node*> producer(g.tensors.size(), nullptr);
  for (const graph::Node& n : g.nodes) {
    for (int32_t t : n.outputs) producer[t] = &n;
  }
  int channels_last = 0;
  for (size_t t = 0; t < g.tensors.size(); ++t) {
    const graph::Tensor& tensor = g.tensors[t];
    const ops::Layout layout = plan->layouts[t];
    const bool temporary = tensor.role == graph::TensorRole::kActivation ||
                           tensor.role == graph::TensorRole::kGradient;
    if (!temporary || tensor.shape.size() != 4 || param_grad[t] ||
        (producer[t] != nullptr && producer[t]->op == "Conv2DBackwardFilter")) {
      EXPECT_EQ(layout, ops::Layout::kRowMajor) << tensor.name;
    } else {
      EXPECT_EQ(layout, ops::Layout::kChannelsLast) << tensor.name;
      ++channels_last;
    }
  }
  EXPECT_GT(channels_last, 0);

  absl::StatusOr<Plan> row_major = PlanWithSyntheticWorkspaces(g, {.channels_last = false});
  ASSERT_TRUE(row_major.ok()) << row_major.status();
  for (ops::Layout layout : row_major->layouts) EXPECT_EQ(layout, ops::Layout::kRowMajor);
  // A GPU plan stores the same tensors NHWC (cuDNN's tensor cores prefer it).
  absl::StatusOr<Plan> cuda = PlanWithSyntheticWorkspaces(g, {.device = ops::DeviceType::kCuda});
  ASSERT_TRUE(cuda.ok()) << cuda.status();
  EXPECT_EQ(cuda->layouts, plan->layouts);
}

INSTANTIATE_TEST_SUITE_P(
    Zoo, ZooPlanTest,
    ::testing::Values(ZooCase{"fmnist-cnn", {}, 4}, ZooCase{"resnet-fmnist", {}, 2},
                      ZooCase{"resnet18", {.classes = 10, .image_size = 32}, 2}),
    [](const ::testing::TestParamInfo<ZooCase>& param_info) {
      std::string name = param_info.param.model;
      std::replace(name.begin(), name.end(), '-', '_');
      return name;
    });

class PlanErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    graph_ = BoundModel({"fmnist-cnn", {}, 2});
    absl::StatusOr<Plan> plan = PlanWithSyntheticWorkspaces(graph_);
    ASSERT_TRUE(plan.ok()) << plan.status();
    plan_ = *std::move(plan);
  }
  int32_t FirstArenaTensorLiveWith(int32_t tensor) const {
    const ArenaBlock* mine = nullptr;
    for (const ArenaBlock& b : plan_.arena_blocks) {
      if (b.tensor == tensor) mine = &b;
    }
    for (const ArenaBlock& b : plan_.arena_blocks) {
      if (b.tensor >= 0 && b.tensor != tensor && b.range.first <= mine->range.last &&
          mine->range.first <= b.range.last) {
        return b.tensor;
      }
    }
    return -1;
  }
  graph::Graph graph_;
  Plan plan_;
};

TEST_F(PlanErrorsTest, UnboundBatchIsRefused) {
  absl::StatusOr<graph::Graph> g = models::BuildModel("fmnist-cnn", {}, ops::StandardOps());
  ASSERT_TRUE(g.ok());
  const absl::Status s = PlanLayouts(*g).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("BindBatchSize"));
}

TEST_F(PlanErrorsTest, WrongWorkspaceCountIsRefused) {
  absl::StatusOr<Plan> plan = PlanLayouts(graph_);
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(plan->memory_planned);
  EXPECT_EQ(CheckPlan(graph_, *plan).code(), absl::StatusCode::kFailedPrecondition);
  std::vector<int64_t> too_few(plan->steps.size() - 1, 0);
  EXPECT_EQ(PlanMemory(graph_, too_few, *plan).code(), absl::StatusCode::kInvalidArgument);
  std::vector<int64_t> negative(plan->steps.size(), 0);
  negative[3] = -5;
  const absl::Status s = PlanMemory(graph_, negative, *plan);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr(graph_.nodes[3].name));
}

TEST_F(PlanErrorsTest, CheckPlanFindsOverlappingLiveTensors) {
  const int32_t victim = graph_.nodes[0].outputs[0];
  const int32_t other = FirstArenaTensorLiveWith(victim);
  ASSERT_GE(other, 0);
  Plan broken = plan_;
  broken.tensors[other].offset = broken.tensors[victim].offset;
  const absl::Status s = CheckPlan(graph_, broken);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(s.message()), HasSubstr("arena"));
}

TEST_F(PlanErrorsTest, CheckPlanFindsMismatchedGradientOffsets) {
  Plan broken = plan_;
  const graph::ParamGrad& pg = graph_.param_grads[1];
  broken.tensors[pg.grad].offset += 64;
  const absl::Status s = CheckPlan(graph_, broken);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(s.message()), HasSubstr(graph_.tensors[pg.param].name));
}

TEST_F(PlanErrorsTest, CheckPlanFindsWrongDependencies) {
  Plan broken = plan_;
  broken.steps[5].predecessors += 1;
  EXPECT_EQ(CheckPlan(graph_, broken).code(), absl::StatusCode::kInternal);
  broken = plan_;
  broken.steps[2].successors.clear();
  EXPECT_EQ(CheckPlan(graph_, broken).code(), absl::StatusCode::kInternal);
}

TEST_F(PlanErrorsTest, CheckPlanFindsUnplacedInputs) {
  Plan broken = plan_;
  const int32_t input = graph_.nodes[0].inputs[0];  // the image batch
  broken.tensors[input].buffer = BufferKind::kNone;
  const absl::Status s = CheckPlan(graph_, broken);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(s.message()), HasSubstr(graph_.tensors[input].name));
  EXPECT_THAT(std::string(s.message()), HasSubstr(graph_.nodes[0].name));
  EXPECT_THAT(std::string(s.message()), HasSubstr("not placed"));
}

TEST_F(PlanErrorsTest, KeepLiveExtendsALifetime) {
  const int32_t early = graph_.nodes[0].outputs[0];
  absl::StatusOr<Plan> plan =
      BuildPlan(graph_, {.keep_live = {early}},
                [](const Plan&, int32_t) -> absl::StatusOr<int64_t> { return 0; });
  ASSERT_TRUE(plan.ok()) << plan.status();
  int found = 0;
  for (const ArenaBlock& b : plan->arena_blocks) {
    if (b.tensor != early) continue;
    ++found;
    EXPECT_EQ(b.range.last, static_cast<int32_t>(plan->steps.size()) - 1);
  }
  EXPECT_EQ(found, 1);
  for (const ArenaBlock& b : plan_.arena_blocks) {
    if (b.tensor == early) {
      EXPECT_LT(b.range.last, static_cast<int32_t>(plan_.steps.size()) - 1);
    }
  }
  EXPECT_EQ(PlanLayouts(graph_, {.keep_live = {9999}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gradflow::sched
