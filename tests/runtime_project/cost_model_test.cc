#include "runtime/project/cost_model.h"

#include <gtest/gtest.h>

namespace gradflow::runtime::project {
namespace {

constexpr double kS = 1 << 20;  // a 1 MiB bucket
const LinkParams kLink{.latency_seconds = 10e-6, .bytes_per_second = 1e9};

void ExpectCost(const CollectiveCost& cost, double steps, double bytes) {
  EXPECT_DOUBLE_EQ(cost.steps, steps);
  EXPECT_DOUBLE_EQ(cost.critical_bytes, bytes);
}

TEST(CostModelTest, RingIsTwoTimesPMinusOneStepsOfOnePth) {
  ExpectCost(RingAllreduce(2, kS), 2, kS);
  ExpectCost(RingAllreduce(8, kS), 14, 1.75 * kS);
  ExpectCost(RingAllreduce(32, kS), 62, 62.0 / 32 * kS);
  ExpectCost(RingAllreduce(6, kS), 10, 10.0 / 6 * kS);
  EXPECT_DOUBLE_EQ(RingAllreduce(8, kS).sent_bytes, 1.75 * kS);
  // 62 rounds of 10 us plus 1.9375 MiB at 1 GB/s.
  EXPECT_DOUBLE_EQ(RingAllreduce(32, kS).Seconds(kLink), 62 * 10e-6 + 62.0 / 32 * kS / 1e9);
  ExpectCost(RingAllreduce(1, kS), 0, 0);
}

TEST(CostModelTest, HalvingDoublingPowersOfTwoAreTwoLogPSteps) {
  ExpectCost(HalvingDoublingAllreduce(2, kS, kLink), 2, kS);
  ExpectCost(HalvingDoublingAllreduce(8, kS, kLink), 6, 1.75 * kS);
  ExpectCost(HalvingDoublingAllreduce(32, kS, kLink), 10, 62.0 / 32 * kS);
  EXPECT_DOUBLE_EQ(HalvingDoublingAllreduce(32, kS, kLink).sent_bytes, 62.0 / 32 * kS);
  ExpectCost(HalvingDoublingAllreduce(1, kS, kLink), 0, 0);
}

// Gloo's binary blocks, worked by hand from allreduce_halving_doubling.h:
// p = 6 = 4 + 2: the pair reduce-scatters (1 round, S/2), sends its halves up (1 round, S/2), the
// four combine (their own 2 rounds, 3S/4, finish earlier), send them back down (1 round, S/2) and
// the pair allgathers (1 round, S/2): 4 rounds, 2S.
TEST(CostModelTest, HalvingDoublingSixRanksIsTwoBlocks) {
  ExpectCost(HalvingDoublingAllreduce(6, kS, kLink), 4, 2 * kS);
  // The busiest senders are the four: 3S/4 in their reduce-scatter, 3S/4 in their allgather and
  // S/4 down to the pair (each of the pair sends 1.5 S).
  EXPECT_DOUBLE_EQ(HalvingDoublingAllreduce(6, kS, kLink).sent_bytes, 1.75 * kS);
}

// p = 24 = 16 + 8: the eight need 3 rounds (7S/8) plus one up (S/8) = 4 rounds, S, which is
// later than the sixteen's own 4 rounds (15S/16); then one round down (S/8) and 3 rounds of
// allgather for the eight: 8 rounds, 2S in all.
TEST(CostModelTest, HalvingDoublingTwentyFourRanks) {
  ExpectCost(HalvingDoublingAllreduce(24, kS, kLink), 8, 2 * kS);
}

// p = 7 = 4 + 2 + 1: the lone rank sends its whole vector up and gets it back: 4 rounds, 3S.
TEST(CostModelTest, HalvingDoublingSevenRanksHasALoneRank) {
  ExpectCost(HalvingDoublingAllreduce(7, kS, kLink), 4, 3 * kS);
  ExpectCost(HalvingDoublingAllreduce(3, kS, kLink), 2, 2 * kS);
}

TEST(CostModelTest, HalvingDoublingBeatsRingOnSmallBucketsAtThirtyTwo) {
  const LinkParams ethernet = LinkParams::FromGbpsAndMicros(50, 5);
  for (double bytes : {64.0 * 1024, 256.0 * 1024, 1.0 * (1 << 20)}) {
    EXPECT_LT(HalvingDoublingAllreduce(32, bytes, ethernet).Seconds(ethernet),
              RingAllreduce(32, bytes).Seconds(ethernet))
        << bytes;
  }
  // Both move the same bytes: for large buckets they converge.
  const double big = 100.0 * (1 << 20);
  EXPECT_NEAR(HalvingDoublingAllreduce(32, big, ethernet).Seconds(ethernet) /
                  RingAllreduce(32, big).Seconds(ethernet),
              1.0, 0.01);
}

TEST(CostModelTest, ChainReduceMovesTheWholeBucketThroughEachLink) {
  ExpectCost(ChainReduceOrBroadcast(8, kS), 7, kS);
  ExpectCost(ChainReduceOrBroadcast(1, kS), 0, 0);
}

TEST(CostModelTest, AutoFollowsTheRuntimesRule) {
  EXPECT_EQ(ChooseAlgorithm(AlgorithmChoice::kAuto, 256 * 1024), AllreduceAlgorithm::kRing);
  EXPECT_EQ(ChooseAlgorithm(AlgorithmChoice::kAuto, 256 * 1024 - 4),
            AllreduceAlgorithm::kHalvingDoubling);
  EXPECT_EQ(ChooseAlgorithm(AlgorithmChoice::kRing, 4), AllreduceAlgorithm::kRing);
}

TEST(CostModelTest, HierarchicalBucketIsReduceAllreduceBroadcast) {
  Topology t{.servers = 32,
             .devices_per_server = 8,
             .network = LinkParams::FromGbpsAndMicros(50, 5),
             .intra_node = IntraNodeLink::kNvlink,
             .algorithm = AlgorithmChoice::kHalvingDoubling};
  const std::vector<Phase> phases = BucketPhases(t, 25 * kS);
  ASSERT_EQ(phases.size(), 3u);
  EXPECT_EQ(phases[0].resource, Resource::kIntraNode);
  EXPECT_EQ(phases[1].resource, Resource::kNetwork);
  EXPECT_EQ(phases[2].resource, Resource::kIntraNode);
  // 7 NVLink steps of 5 us and 25 MiB at 20 GB/s.
  EXPECT_DOUBLE_EQ(phases[0].latency_seconds, 7 * 5e-6);
  EXPECT_DOUBLE_EQ(phases[0].bandwidth_seconds, 25 * kS / 20e9);
  // 10 rounds of 5 us, and 2 * 31/32 * 25 MiB at 6.25 GB/s.
  EXPECT_DOUBLE_EQ(phases[1].latency_seconds, 10 * 5e-6);
  EXPECT_DOUBLE_EQ(phases[1].bandwidth_seconds, 62.0 / 32 * 25 * kS / 6.25e9);
  EXPECT_DOUBLE_EQ(phases[1].sent_bytes, 62.0 / 32 * 25 * kS);

  t.servers = 1;
  EXPECT_EQ(BucketPhases(t, kS).size(), 2u);  // reduce and broadcast only
  t.devices_per_server = 1;
  t.intra_node = IntraNodeLink::kNone;
  EXPECT_TRUE(BucketPhases(t, kS).empty());
  t.servers = 4;
  ASSERT_EQ(BucketPhases(t, kS).size(), 1u);
}

TEST(CostModelTest, TopologyErrorsNameTheFlag) {
  Topology t{.servers = 2,
             .devices_per_server = 8,
             .network = LinkParams::FromGbpsAndMicros(50, 5),
             .intra_node = IntraNodeLink::kNone};
  EXPECT_NE(CheckTopology(t).message().find("--intra-node none"), absl::string_view::npos);
  t.intra_node = IntraNodeLink::kPcie;
  EXPECT_TRUE(CheckTopology(t).ok());
  t.network.bytes_per_second = 0;
  EXPECT_NE(CheckTopology(t).message().find("--link-gbps"), absl::string_view::npos);
  EXPECT_FALSE(ParseIntraNodeLink("infiniband").ok());
  EXPECT_FALSE(ParseAlgorithmChoice("tree").ok());
}

}  // namespace
}  // namespace gradflow::runtime::project
