#include "runtime/project/host_sharing.h"

#include <gtest/gtest.h>

#include <limits>

#include "runtime/project/replay.h"
#include "tests/runtime_project/test_plans.h"

namespace gradflow::runtime::project {
namespace {

using testing::FourStepPlan;

TEST(ShareCoresTest, DemandsThatFitRunAtFullSpeed) {
  CoreShares s = ShareCores(2, 1, {0.5});
  EXPECT_EQ(s.compute_speed, 1);
  EXPECT_EQ(s.transfer_speed, std::vector<double>({1}));
  s = ShareCores(2, 2, {});
  EXPECT_EQ(s.compute_speed, 1);
}

// One core for a compute thread (demand 1) and a transfer: equal halves unless the transfer asks
// for less, which it then gets in full while compute takes the rest.
TEST(ShareCoresTest, OneCoreIsSharedMaxMinFairly) {
  CoreShares s = ShareCores(1, 1, {0.2});
  EXPECT_DOUBLE_EQ(s.compute_speed, 0.8);
  EXPECT_DOUBLE_EQ(s.transfer_speed[0], 1);
  s = ShareCores(1, 1, {0.5});
  EXPECT_DOUBLE_EQ(s.compute_speed, 0.5);
  EXPECT_DOUBLE_EQ(s.transfer_speed[0], 1);
  // Asking for 1.5 cores, the transfer gets half of one: a third of its speed.
  s = ShareCores(1, 1, {1.5});
  EXPECT_DOUBLE_EQ(s.compute_speed, 0.5);
  EXPECT_DOUBLE_EQ(s.transfer_speed[0], 1.0 / 3);
  // Two transfers of 0.1 and 0.6 and two threads on 1.5 cores: 0.1 fits (0.1 < 1.5 / 4), the
  // other three share 1.4: 0.4667 each.
  s = ShareCores(1.5, 2, {0.1, 0.6});
  EXPECT_DOUBLE_EQ(s.compute_speed, 1.4 / 3);
  EXPECT_DOUBLE_EQ(s.transfer_speed[0], 1);
  EXPECT_DOUBLE_EQ(s.transfer_speed[1], 1.4 / 3 / 0.6);
}

TEST(ShareCoresTest, WithoutComputeATransferGetsTheNodesCores) {
  CoreShares s = ShareCores(1, 0, {1.5});
  EXPECT_DOUBLE_EQ(s.transfer_speed[0], 1 / 1.5);
  // Four single-threaded nodes on two cores: half a core each, no communication needed.
  s = ShareCores(0.5, 1, {});
  EXPECT_DOUBLE_EQ(s.compute_speed, 0.5);
}

TEST(HostSharingTest, ErrorsNameTheFlag) {
  EXPECT_TRUE(CheckHostSharing({}).ok());
  EXPECT_NE(CheckHostSharing({.host_cores = -1}).message().find("--host-cores"),
            absl::string_view::npos);
  EXPECT_NE(
      CheckHostSharing({.host_cores = 2, .nodes_per_host = 0}).message().find("--nodes-per-host"),
      absl::string_view::npos);
  EXPECT_NE(
      CheckHostSharing({.host_cores = 2, .compute_threads = 0}).message().find("--compute-threads"),
      absl::string_view::npos);
  EXPECT_NE(CheckHostSharing({.host_cores = 2, .cpu_seconds_per_sent_byte = -1})
                .message()
                .find("cpu_us_per_mb"),
            absl::string_view::npos);
}

constexpr double kMs = 1e-3;

StepProfile Profile(std::vector<double> ms) {
  StepProfile p;
  for (double m : ms) p.step_seconds.push_back(m * 1e-3);
  p.batch = 8;
  return p;
}

// `servers` nodes, one device each, on hosts of 2 cores shared by 2 single-threaded nodes (one
// core per node); 1 GB/s and no latency: a ring between two sends each bucket once, B / 1e9 s.
Topology Nodes(int64_t servers) {
  return {.servers = servers,
          .devices_per_server = 1,
          .network = {.latency_seconds = 0, .bytes_per_second = 1e9},
          .intra_node = IntraNodeLink::kNone,
          .algorithm = AlgorithmChoice::kRing};
}

ReplayOptions SharedCores(double cpu_seconds_per_sent_byte, int64_t nodes_per_host = 2) {
  return {.host = {.host_cores = 2,
                   .nodes_per_host = nodes_per_host,
                   .compute_threads = 1,
                   .cpu_seconds_per_sent_byte = cpu_seconds_per_sent_byte}};
}

// Steps 1, 1, 2, 2 ms; bucket 0 (1 MB: 1 ms on the link) is issued when b2 ends, bucket 1 (one
// byte) when b3 ends. At 0.5 ns of CPU per byte sent, bucket 0 asks for half a core: the node's
// core is split evenly, so bucket 0 keeps its speed (done 1 ms after b2) and b3 runs at half
// speed meanwhile: 0.5 ms of its work in that 1 ms, the other 1.5 ms after. b3 takes 2.5 ms and
// the iteration 6.5 ms instead of 6; nothing is exposed (bucket 1 takes a nanosecond).
TEST(HostSharingTest, ATransferTakesItsCoresFromTheStepsItOverlaps) {
  const PlannedGraph plan = FourStepPlan(1e6, 1);
  absl::StatusOr<Projection> p = Replay(plan, Profile({1, 1, 2, 2}), Nodes(2), SharedCores(0.5e-9));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_NEAR(p->iteration_seconds, 6.5 * kMs, 1e-8);
  EXPECT_NEAR(p->compute_seconds, 6.5 * kMs, 1e-8);
  EXPECT_NEAR(p->exposed_seconds, 0, 1e-8);
  EXPECT_NEAR(p->backward_seconds, 4.5 * kMs, 1e-8);
  EXPECT_NEAR(p->communication_cpu_seconds, 0.5e-9 * (1e6 + 1), 1e-15);
  // Off (the default), the same run takes 6 ms.
  p = Replay(plan, Profile({1, 1, 2, 2}), Nodes(2), {});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_NEAR(p->iteration_seconds, 6 * kMs, 1e-8);
  EXPECT_EQ(p->communication_cpu_seconds, 0);
}

// At 1.5 ns per byte bucket 0 asks for 1.5 cores: it gets half of the node's one core beside
// b3, a third of its speed, so its 1 ms on the link takes 3 ms; b3 does 1.5 ms of work in those
// 3 ms and its last 0.5 ms alone. The iteration: 1 + 1 + 2 + 3.5 = 7.5 ms.
TEST(HostSharingTest, ATransferAskingForMoreThanItsShareSlowsDownToo) {
  absl::StatusOr<Projection> p =
      Replay(FourStepPlan(1e6, 1), Profile({1, 1, 2, 2}), Nodes(2), SharedCores(1.5e-9));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_NEAR(p->iteration_seconds, 7.5 * kMs, 1e-8);
  EXPECT_NEAR(p->exposed_seconds, 0, 1e-8);
}

// A transfer still running when backward ends: with 2 MB in bucket 0 (2 ms on the link) at half
// a core, b3 gets half a core for 2 ms (1 ms of work) and its last 1 ms alone: b3 ends 3 ms after
// b2 and bucket 0 1 ms before that. Bucket 1 (1 MB, 1 ms on the link) starts when b3 ends; the
// next iteration's first step waits for it with nothing to compute, so the transfer runs at full
// speed: 1 ms exposed. Iteration: 1 + 1 + 2 + 3 + 1 = 8 ms.
TEST(HostSharingTest, ExposedCommunicationHasTheCoresToItself) {
  absl::StatusOr<Projection> p =
      Replay(FourStepPlan(2e6, 1e6), Profile({1, 1, 2, 2}), Nodes(2), SharedCores(0.5e-9));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_NEAR(p->iteration_seconds, 8 * kMs, 1e-8);
  EXPECT_NEAR(p->exposed_seconds, 1 * kMs, 1e-8);
  EXPECT_NEAR(p->compute_seconds, 7 * kMs, 1e-8);
}

// Four single-threaded nodes on a 2-core host: each computes at half speed even without any
// communication CPU (6 ms of steps take 12 ms). A one-node projection has the host to itself.
TEST(HostSharingTest, NodesOfAnOversubscribedHostShareItsCores) {
  absl::StatusOr<Projection> p =
      Replay(FourStepPlan(1, 1), Profile({1, 1, 2, 2}), Nodes(4), SharedCores(0, 4));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_NEAR(p->iteration_seconds, 12 * kMs, 1e-8);
  p = Replay(FourStepPlan(1, 1), Profile({1, 1, 2, 2}), Nodes(1), SharedCores(0, 4));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_NEAR(p->iteration_seconds, 6 * kMs, 1e-12);
}

// The loaded latency applies while compute fills the node's cores. Latency only (1-byte
// buckets, a nanosecond each on the link), one lane, idle rounds of 0.1 ms, loaded ones of
// 1.5 ms; a ring between 2 is 2 rounds. Bucket 0 starts when b2 ends: its 3 ms of loaded latency
// run while b3 computes (2 ms: two thirds of it), then the compute stream waits for bucket 1 and
// the last third runs at the idle rate (0.2 ms / 3). Bucket 1 queues behind it on the lane and
// takes the idle 0.2 ms: exposed 0.2 / 3 + 0.2 ms, iteration 6 + 0.8 / 3 ms. Idle latency
// throughout would give 6.2 ms; loaded throughout 6 + 1 + 3 = 10 ms.
TEST(HostSharingTest, LoadedLatencyAppliesWhileComputeFillsTheCores) {
  Topology nodes = Nodes(2);
  nodes.network.latency_seconds = 0.1e-3;
  ReplayOptions options = SharedCores(0);
  options.lanes = 1;
  options.host.loaded_latency_seconds = 1.5e-3;
  absl::StatusOr<Projection> p = Replay(FourStepPlan(1, 1), Profile({1, 1, 2, 2}), nodes, options);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_NEAR(p->exposed_seconds, 0.8 / 3 * kMs, 1e-8);
  EXPECT_NEAR(p->iteration_seconds, (6 + 0.8 / 3) * kMs, 1e-8);
  // Without a loaded latency: the idle one throughout.
  options.host.loaded_latency_seconds = -1;
  p = Replay(FourStepPlan(1, 1), Profile({1, 1, 2, 2}), nodes, options);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_NEAR(p->iteration_seconds, 6.2 * kMs, 1e-8);
  // A host with a spare core per node (4 cores, 2 single-threaded nodes): a woken thread finds
  // a free core, so the idle latency applies however long compute runs.
  options.host.loaded_latency_seconds = 1.5e-3;
  options.host.host_cores = 4;
  p = Replay(FourStepPlan(1, 1), Profile({1, 1, 2, 2}), nodes, options);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_NEAR(p->iteration_seconds, 6.2 * kMs, 1e-8);
  // Host sharing off (GPU servers, the paper's case): the loaded latency is never used.
  options.host = {.loaded_latency_seconds = 1.5e-3};
  p = Replay(FourStepPlan(1, 1), Profile({1, 1, 2, 2}), nodes, options);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_NEAR(p->iteration_seconds, 6.2 * kMs, 1e-8);
}

// The loaded CPU per byte applies while compute runs, the idle one while it waits. Bucket 0
// (2 MB, 2 ms on the link) starts when b2 ends; beside b3 it costs 1.5 ns per byte: it asks for
// 1.5 cores, gets half of the node's one, a third of its speed, and b3 runs at half speed: b3's
// 2 ms take 4 ms, in which bucket 0 moves 4/3 ms of its 2. Bucket 1 (1 MB, 1 ms) starts when b3
// ends and the compute stream waits for it: at the idle 0.5 ns per byte the two transfers ask
// for 0.25 cores each and share the link at full speed: bucket 0's last 2/3 ms take 4/3 ms, in
// which bucket 1 moves 2/3 ms; its last 1/3 ms alone. Exposed 5/3 ms, iteration 8 + 5/3 ms.
TEST(HostSharingTest, LoadedCpuPerByteAppliesWhileComputeRuns) {
  ReplayOptions options = SharedCores(0.5e-9);
  options.host.loaded_cpu_seconds_per_sent_byte = 1.5e-9;
  absl::StatusOr<Projection> p =
      Replay(FourStepPlan(2e6, 1e6), Profile({1, 1, 2, 2}), Nodes(2), options);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_NEAR(p->compute_seconds, 8 * kMs, 1e-8);
  EXPECT_NEAR(p->exposed_seconds, 5.0 / 3 * kMs, 1e-8);
  EXPECT_NEAR(p->iteration_seconds, (8 + 5.0 / 3) * kMs, 1e-8);
  // Unknown (the default): the idle figure throughout, as in ExposedCommunicationHasTheCores...
  options.host.loaded_cpu_seconds_per_sent_byte = -1;
  p = Replay(FourStepPlan(2e6, 1e6), Profile({1, 1, 2, 2}), Nodes(2), options);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_NEAR(p->iteration_seconds, 8 * kMs, 1e-8);
}

TEST(HostSharingTest, ComputeFillsCoresWhenThreadsCoverTheNodesShare) {
  const HostSharing four_on_two{.host_cores = 2, .nodes_per_host = 4, .compute_threads = 1};
  EXPECT_TRUE(four_on_two.ComputeFillsCores(4));   // half a core per thread
  EXPECT_TRUE(four_on_two.ComputeFillsCores(2));   // one core per thread
  EXPECT_FALSE(four_on_two.ComputeFillsCores(1));  // a job of one node leaves a core free
  EXPECT_FALSE(HostSharing{}.ComputeFillsCores(4));
  EXPECT_FALSE(CheckHostSharing({.host_cores = 2,
                                 .loaded_latency_seconds = std::numeric_limits<double>::infinity()})
                   .ok());
  EXPECT_NE(CheckHostSharing(
                {.host_cores = 2,
                 .loaded_cpu_seconds_per_sent_byte = std::numeric_limits<double>::quiet_NaN()})
                .message()
                .find("--cpu-us-per-mb-loaded"),
            absl::string_view::npos);
}

}  // namespace
}  // namespace gradflow::runtime::project
