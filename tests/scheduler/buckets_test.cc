#include "scheduler/buckets.h"

#include <string>

#include "gmock/gmock.h"
#include "graph/shape_inference.h"
#include "gtest/gtest.h"
#include "models/zoo.h"
#include "ops/registry.h"

namespace gradflow::sched {
namespace {

using ::testing::HasSubstr;

struct Planned {
  graph::Graph graph;
  Plan plan;
};

Planned PlanModel(const std::string& model) {
  absl::StatusOr<graph::Graph> g = models::BuildModel(model, {}, ops::StandardOps());
  EXPECT_TRUE(g.ok()) << g.status();
  Planned p;
  p.graph = graph::BindBatchSize(*g, 2);
  absl::StatusOr<Plan> plan = PlanLayouts(p.graph);
  EXPECT_TRUE(plan.ok()) << plan.status();
  p.plan = *std::move(plan);
  return p;
}

int64_t GradientBytes(const Planned& p) {
  int64_t bytes = 0;
  for (const graph::ParamGrad& pg : p.graph.param_grads) bytes += p.plan.tensors[pg.grad].bytes;
  return bytes;
}

TEST(BucketsTest, HugeCapGivesOneBucketOverEverything) {
  const Planned p = PlanModel("resnet18");
  absl::StatusOr<std::vector<Bucket>> buckets = PlanBuckets(p.graph, p.plan, int64_t{1} << 40);
  ASSERT_TRUE(buckets.ok()) << buckets.status();
  ASSERT_EQ(buckets->size(), 1u);
  EXPECT_EQ((*buckets)[0].param_grads.size(), p.graph.param_grads.size());
  EXPECT_EQ((*buckets)[0].begin, 0);
  // The bucket is ready only when backward has written its last gradient.
  int32_t last_gradient_step = 0;
  for (const graph::ParamGrad& pg : p.graph.param_grads) {
    last_gradient_step = std::max(last_gradient_step, p.plan.producer_step[pg.grad]);
  }
  EXPECT_EQ((*buckets)[0].ready_step, last_gradient_step);
}

TEST(BucketsTest, CapBoundsEveryBucketHoldingMoreThanOneParameter) {
  const Planned p = PlanModel("resnet50");
  const int64_t cap = 25 << 20;  // the paper's and DDP's default
  absl::StatusOr<std::vector<Bucket>> buckets = PlanBuckets(p.graph, p.plan, cap);
  ASSERT_TRUE(buckets.ok()) << buckets.status();
  // ResNet-50 holds ~102 MB of fp32 gradients: at least 5 buckets of at most 25 MB.
  EXPECT_GE(buckets->size(), static_cast<size_t>(GradientBytes(p) / cap + 1));
  for (const Bucket& b : *buckets) {
    if (b.param_grads.size() > 1) {
      EXPECT_LE(b.bytes(4), cap);
    }
  }
  EXPECT_TRUE(CheckBuckets(p.graph, p.plan, *buckets).ok());
}

TEST(BucketsTest, TheFirstLayersGetASmallBucketOfTheirOwn) {
  const Planned p = PlanModel("resnet50");
  const int64_t cap = 25 << 20;
  const int64_t first_layers_cap = 1 << 20;
  absl::StatusOr<std::vector<Bucket>> plain = PlanBuckets(p.graph, p.plan, cap);
  absl::StatusOr<std::vector<Bucket>> split = PlanBuckets(p.graph, p.plan, cap, first_layers_cap);
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_TRUE(CheckBuckets(p.graph, p.plan, *split).ok());
  // Without it the first layers share a bucket of several MB (the remainder of backward order).
  EXPECT_GT(plain->back().bytes(4), 4 * first_layers_cap);
  const Bucket& last = split->back();
  EXPECT_LE(last.bytes(4), first_layers_cap);
  EXPECT_EQ(last.param_grads.back(), static_cast<int32_t>(p.graph.param_grads.size()) - 1);
  // It is the longest such tail: one more parameter would not fit.
  const Bucket& before = (*split)[split->size() - 2];
  const Placement& previous = p.plan.tensors[p.graph.param_grads[before.param_grads.back()].param];
  EXPECT_GT((last.end - previous.offset / 4) * 4, first_layers_cap);
  for (size_t b = 0; b + 1 < split->size(); ++b) {
    if ((*split)[b].param_grads.size() > 1) {
      EXPECT_LE((*split)[b].bytes(4), cap);
    }
  }
  // A huge regular cap: everything but the first layers in one bucket, and theirs.
  absl::StatusOr<std::vector<Bucket>> two =
      PlanBuckets(p.graph, p.plan, int64_t{1} << 40, first_layers_cap);
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(two->size(), 2u);
  EXPECT_EQ(two->back().param_grads, last.param_grads);
}

TEST(BucketsTest, EarlyBucketsAreReadyBeforeBackwardEnds) {
  const Planned p = PlanModel("resnet18");
  absl::StatusOr<std::vector<Bucket>> buckets = PlanBuckets(p.graph, p.plan, 1 << 20);
  ASSERT_TRUE(buckets.ok()) << buckets.status();
  ASSERT_GT(buckets->size(), 3u);
  // Backward order: readiness increases, and the first bucket (the classifier) is ready long
  // before the last step, which is what lets its allreduce overlap the rest of backward.
  for (size_t i = 1; i < buckets->size(); ++i) {
    EXPECT_GT((*buckets)[i].ready_step, (*buckets)[i - 1].ready_step);
  }
  EXPECT_LT(buckets->front().ready_step, static_cast<int32_t>(p.plan.steps.size()) / 2 + 50);
  // The last bucket holds the first convolution, read by the very first forward steps.
  EXPECT_LT(buckets->back().first_reader_step, 5);
}

TEST(BucketsTest, TinyCapGivesOneBucketPerParameter) {
  const Planned p = PlanModel("mlp");
  absl::StatusOr<std::vector<Bucket>> buckets = PlanBuckets(p.graph, p.plan, 1);
  ASSERT_TRUE(buckets.ok()) << buckets.status();
  EXPECT_EQ(buckets->size(), p.graph.param_grads.size());
}

TEST(BucketsTest, NonPositiveCapIsRefused) {
  const Planned p = PlanModel("mlp");
  absl::StatusOr<std::vector<Bucket>> buckets = PlanBuckets(p.graph, p.plan, 0);
  EXPECT_EQ(buckets.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(buckets.status().message(), HasSubstr("positive"));
}

TEST(BucketsTest, CheckFindsGapsAndWrongReadySteps) {
  const Planned p = PlanModel("mlp");
  absl::StatusOr<std::vector<Bucket>> buckets = PlanBuckets(p.graph, p.plan, 1);
  ASSERT_TRUE(buckets.ok()) << buckets.status();
  std::vector<Bucket> missing = *buckets;
  missing.pop_back();
  EXPECT_THAT(CheckBuckets(p.graph, p.plan, missing).message(), HasSubstr("cover"));
  std::vector<Bucket> early = *buckets;
  early[0].ready_step -= 1;
  EXPECT_THAT(CheckBuckets(p.graph, p.plan, early).message(), HasSubstr("last gradient"));
}

}  // namespace
}  // namespace gradflow::sched
