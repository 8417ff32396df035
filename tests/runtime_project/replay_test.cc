#include "runtime/project/replay.h"

#include <gtest/gtest.h>

#include <cmath>

#include "runtime/project/stragglers.h"
#include "tests/runtime_project/test_plans.h"

namespace gradflow::runtime::project {
namespace {

using testing::FourStepPlan;

StepProfile Profile(std::vector<double> ms) {
  StepProfile p;
  for (double m : ms) p.step_seconds.push_back(m * 1e-3);
  p.batch = 8;
  return p;
}

// Two nodes, one device each, 1 GB/s and no latency: a ring between two moves each bucket once,
// so a bucket of B bytes takes B / 1e9 s alone.
Topology TwoNodes(double latency_seconds = 0) {
  return {.servers = 2,
          .devices_per_server = 1,
          .network = {.latency_seconds = latency_seconds, .bytes_per_second = 1e9},
          .intra_node = IntraNodeLink::kNone,
          .algorithm = AlgorithmChoice::kRing};
}

constexpr double kMs = 1e-3;

// Steps 1, 1, 2, 2 ms. Bucket 0 (3 ms alone) is issued when b2 ends, 2 ms before backward ends;
// bucket 1 (1 ms alone) when b3 ends. Bucket 0 runs 2 ms alone, then both share the link: each
// has 1 ms of transfer left, done together 2 ms after backward ends. The next iteration's first
// update waits those 2 ms: iteration 8 ms = 6 ms compute + 2 ms exposed.
TEST(ReplayTest, BucketsShareTheLinkAndTheLastOneIsExposed) {
  absl::StatusOr<Projection> p =
      Replay(FourStepPlan(3e6, 1e6), Profile({1, 1, 2, 2}), TwoNodes(), {});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_NEAR(p->iteration_seconds, 8 * kMs, 1e-12);
  EXPECT_NEAR(p->compute_seconds, 6 * kMs, 1e-12);
  EXPECT_NEAR(p->exposed_seconds, 2 * kMs, 1e-12);
  EXPECT_NEAR(p->backward_seconds, 4 * kMs, 1e-12);
  EXPECT_DOUBLE_EQ(p->network_bytes, 4e6);
  // 4 MB over the 4 ms of backward; 4 MB over 8 ms; at the busiest, bucket 0's 3 MB within a
  // tenth of backward (0.4 ms).
  EXPECT_NEAR(p->backward_network_bytes_per_second, 1e9, 1);
  EXPECT_NEAR(p->mean_network_bytes_per_second, 5e8, 1);
  EXPECT_NEAR(p->peak_network_bytes_per_second, 7.5e9, 1);
  EXPECT_EQ(p->devices, 2);
}

// Bucket 0 takes 5 ms alone, bucket 1 0.5 ms. With two lanes bucket 1 shares the link as soon as
// it is issued (done 1 ms later) and bucket 0 ends 3.5 ms into the next iteration: waits of
// 1 ms before f0 and 1.5 ms before f1. With one lane bucket 1 queues behind bucket 0 and is done
// 3.5 ms into the next iteration, all of it exposed before f0.
TEST(ReplayTest, OneLaneQueuesBucketsTwoLanesShare) {
  const PlannedGraph plan = FourStepPlan(5e6, 0.5e6);
  absl::StatusOr<Projection> two = Replay(plan, Profile({1, 1, 2, 2}), TwoNodes(), {.lanes = 2});
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_NEAR(two->exposed_seconds, 2.5 * kMs, 1e-12);
  EXPECT_NEAR(two->iteration_seconds, 8.5 * kMs, 1e-12);
  absl::StatusOr<Projection> one = Replay(plan, Profile({1, 1, 2, 2}), TwoNodes(), {.lanes = 1});
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_NEAR(one->exposed_seconds, 3.5 * kMs, 1e-12);
  EXPECT_NEAR(one->iteration_seconds, 9.5 * kMs, 1e-12);
}

// Latency only: a ring between two is 2 rounds, 0.5 ms each, and rounds of different buckets
// overlap. Bucket 1 is done 1 ms after backward ends: 1 ms exposed (plus the nanosecond its
// single byte takes).
TEST(ReplayTest, LatenciesOverlapBetweenBuckets) {
  absl::StatusOr<Projection> p =
      Replay(FourStepPlan(1, 1), Profile({1, 1, 2, 2}), TwoNodes(0.5e-3), {});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_NEAR(p->exposed_seconds, 1 * kMs, 1e-8);
  EXPECT_NEAR(p->iteration_seconds, 7 * kMs, 1e-8);
}

TEST(ReplayTest, OneNodeHasNoCommunication) {
  Topology one = TwoNodes();
  one.servers = 1;
  StepProfile profile = Profile({1, 1, 2, 2});
  profile.overhead_seconds = 0.5 * kMs;
  profile.update_seconds_per_byte = 1e-10;  // 0.3 ms and 0.1 ms
  absl::StatusOr<Projection> p = Replay(FourStepPlan(3e6, 1e6), profile, one, {});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_NEAR(p->iteration_seconds, 6.9 * kMs, 1e-12);
  EXPECT_NEAR(p->compute_seconds, 6.9 * kMs, 1e-12);
  EXPECT_EQ(p->exposed_seconds, 0);
  EXPECT_EQ(p->network_bytes, 0);
  // A device twice as fast halves steps and updates, not the host's overhead.
  p = Replay(FourStepPlan(3e6, 1e6), profile, one, {.scale_compute = 2});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_NEAR(p->iteration_seconds, 3.7 * kMs, 1e-12);
}

TEST(ReplayTest, StragglersStretchComputeByTheSlowestDevice) {
  // Known values: E[max of 2 standard normals] = 1/sqrt(pi); of 8, 1.4236 (order-statistics
  // tables).
  EXPECT_EQ(ExpectedMaxOfStandardNormals(1), 0);
  EXPECT_NEAR(ExpectedMaxOfStandardNormals(2), 1 / std::sqrt(M_PI), 1e-9);
  EXPECT_NEAR(ExpectedMaxOfStandardNormals(8), 1.4236, 1e-4);
  EXPECT_NEAR(ExpectedMaxOfStandardNormals(256), 2.8269, 1e-4);
  Topology one = TwoNodes();
  one.servers = 1;
  absl::StatusOr<Projection> p =
      Replay(FourStepPlan(1, 1), Profile({1, 1, 2, 2}), one, {.compute_jitter = 0.1});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_NEAR(p->iteration_seconds, 6 * kMs, 1e-12);  // one device: nobody to wait for
  p = Replay(FourStepPlan(1, 1), Profile({1, 1, 2, 2}), TwoNodes(), {.compute_jitter = 0.1});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_NEAR(p->compute_seconds, 6 * kMs * (1 + 0.1 / std::sqrt(M_PI)), 1e-9);
}

TEST(ReplayTest, RefusesMismatchedInputs) {
  EXPECT_FALSE(Replay(FourStepPlan(1, 1), Profile({1, 1, 2}), TwoNodes(), {}).ok());
  EXPECT_FALSE(Replay(FourStepPlan(1, 1), Profile({1, 1, 2, 2}), TwoNodes(), {.lanes = 0}).ok());
  EXPECT_FALSE(
      Replay(FourStepPlan(1, 1), Profile({1, 1, 2, 2}), TwoNodes(), {.scale_compute = 0}).ok());
  EXPECT_FALSE(
      Replay(FourStepPlan(1, 1), Profile({1, 1, 2, 2}), TwoNodes(), {.compute_jitter = -1}).ok());
}

}  // namespace
}  // namespace gradflow::runtime::project
