// The paper's case (Goyal et al. 2017, sec. 4-5): ResNet-50 at 32 images per P100, forward
// ~60 ms and backward ~120 ms, ~100 MB of gradients, 8 GPUs per server over NVLink, 50 Gbit
// Ethernet, recursive halving-doubling between servers. The paper reports ~90% scaling
// efficiency from 8 to 256 GPUs and a bandwidth need of 200 MB per 0.125 s of backward =
// 12.8 Gbit/s (~15 with overhead). bench/README.md, "Scaling projection", compares in full.
#include <gtest/gtest.h>

#include "models/zoo.h"
#include "ops/registry.h"
#include "runtime/project/planned_graph.h"
#include "runtime/project/replay.h"
#include "runtime/project/step_profile.h"

namespace gradflow::runtime::project {
namespace {

class PaperCaseTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<graph::Graph> graph = models::BuildModel("resnet50", {}, ops::StandardOps());
    ASSERT_TRUE(graph.ok()) << graph.status();
    graph_ = new graph::Graph(*std::move(graph));
  }
  static void TearDownTestSuite() { delete graph_; }

  static Projection Project(int64_t servers, AlgorithmChoice algorithm, double bucket_mb) {
    absl::StatusOr<PlannedGraph> plan =
        PlanForProjection(*graph_, 32, static_cast<int64_t>(bucket_mb * (1 << 20)));
    EXPECT_TRUE(plan.ok()) << plan.status();
    absl::StatusOr<StepProfile> profile = ProfileFromFlops(*plan, 0.060, 0.120);
    EXPECT_TRUE(profile.ok()) << profile.status();
    const Topology topology{.servers = servers,
                            .devices_per_server = 8,
                            .network = LinkParams::FromGbpsAndMicros(50, 5),
                            .intra_node = IntraNodeLink::kNvlink,
                            .algorithm = algorithm};
    absl::StatusOr<Projection> p = Replay(*plan, *profile, topology, {});
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *p : Projection{};
  }

  static graph::Graph* graph_;
};

graph::Graph* PaperCaseTest::graph_ = nullptr;

TEST_F(PaperCaseTest, ResNet50HasAbout100MBOfGradients) {
  absl::StatusOr<PlannedGraph> plan = PlanForProjection(*graph_, 32, 25 << 20);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_NEAR(plan->gradient_bytes / 1e6, 102, 3);  // 25.6 M parameters as f32
  EXPECT_GE(plan->buckets.size(), 4u);
}

// The paper's ~90% at 32 servers is a lower bound here: the model charges only communication
// (README: stragglers and GPU time taken by reductions are not modeled), and 50 Gbit Ethernet
// hides nearly all of it behind backward, as the paper argues.
TEST_F(PaperCaseTest, ThirtyTwoServersScaleAtLeastNinetyPercent) {
  const Projection one = Project(1, AlgorithmChoice::kHalvingDoubling, 25);
  const Projection many = Project(32, AlgorithmChoice::kHalvingDoubling, 25);
  const double efficiency = one.iteration_seconds / many.iteration_seconds;
  EXPECT_GE(efficiency, 0.90);
  EXPECT_LT(efficiency, 0.995);  // the last buckets' allreduce cannot hide: some cost remains
  EXPECT_NEAR(many.compute_seconds, 0.180, 1e-9);
  EXPECT_GT(many.exposed_seconds, one.exposed_seconds);
}

// The paper: 2 x 100 MB per 0.125 s of backward = 12.8 Gbit/s, ~15 with overhead.
TEST_F(PaperCaseTest, BackpropNeedsAbout13To15GbitPerServer) {
  const Projection p = Project(32, AlgorithmChoice::kHalvingDoubling, 25);
  const double backward_gbps = p.backward_network_bytes_per_second * 8 / 1e9;
  EXPECT_GE(backward_gbps, 12.0);
  EXPECT_LE(backward_gbps, 15.0);
  // Backward releases the large layer4 and fc gradients first, faster than on average.
  EXPECT_GT(p.peak_network_bytes_per_second, p.backward_network_bytes_per_second);
  EXPECT_LT(p.mean_network_bytes_per_second, p.backward_network_bytes_per_second);
}

// Small buckets are latency-bound: 10 rounds instead of 62 at 32 servers.
TEST_F(PaperCaseTest, HalvingDoublingAheadOfRingForSmallBucketsAtThirtyTwo) {
  const LinkParams ethernet = LinkParams::FromGbpsAndMicros(50, 5);
  for (double bytes : {64.0 * 1024, 256.0 * 1024, 1.0 * (1 << 20)}) {
    EXPECT_LT(HalvingDoublingAllreduce(32, bytes, ethernet).Seconds(ethernet),
              0.65 * RingAllreduce(32, bytes).Seconds(ethernet))
        << bytes;
  }
  const Projection ring = Project(32, AlgorithmChoice::kRing, 0.25);
  const Projection hd = Project(32, AlgorithmChoice::kHalvingDoubling, 0.25);
  EXPECT_LT(hd.iteration_seconds, ring.iteration_seconds);
  EXPECT_LT(hd.exposed_seconds, ring.exposed_seconds);
}

}  // namespace
}  // namespace gradflow::runtime::project
