#include "runtime/data/sharding.h"

#include <algorithm>
#include <numeric>
#include <set>

#include "gtest/gtest.h"
#include "runtime/data/rng.h"

namespace gradflow::runtime::data {
namespace {

TEST(RngTest, SameSeedSameStreamDifferentSeedDifferentStream) {
  Rng a(123), b(123), c(124);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.NextU64();
    EXPECT_EQ(x, b.NextU64());
    differs |= x != c.NextU64();
  }
  EXPECT_TRUE(differs);
  EXPECT_NE(DeriveSeed({1, 2}), DeriveSeed({2, 1}));
  EXPECT_NE(DeriveSeed({0, 0, 0, 0}), DeriveSeed({0, 0, 0, 1}));
}

TEST(RngTest, BoundedDrawsStayInRangeAndCoverIt) {
  Rng rng(9);
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 7000; ++i) {
    const uint64_t v = rng.Below(7);
    ASSERT_LT(v, 7u);
    ++counts[v];
  }
  for (int count : counts) EXPECT_NEAR(count, 1000, 150);
  for (int i = 0; i < 1000; ++i) {
    const int64_t v = rng.UniformInt(-3, 3);
    ASSERT_GE(v, -3);
    ASSERT_LE(v, 3);
    const double u = rng.Uniform(2.0, 5.0);
    ASSERT_GE(u, 2.0);
    ASSERT_LT(u, 5.0);
  }
}

TEST(EpochPermutationTest, IsAPermutationFixedBySeedAndEpoch) {
  const std::vector<int64_t> order = EpochPermutation(1000, 7, 3);
  std::vector<int64_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> identity(1000);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(sorted, identity);
  EXPECT_NE(order, identity);
  EXPECT_EQ(order, EpochPermutation(1000, 7, 3));
  EXPECT_NE(order, EpochPermutation(1000, 7, 4));
  EXPECT_NE(order, EpochPermutation(1000, 8, 3));
}

TEST(ShardingTest, TrainDropsTheIncompleteLastGlobalBatch) {
  const ShardSpec spec{103, 4, 1, 5};  // global batch 20
  EXPECT_EQ(IterationsPerEpoch(Split::kTrain, spec), 5);
  const Share share = ShareOfIteration(Split::kTrain, spec, 2);
  EXPECT_EQ(share.begin, 2 * 20 + 5);
  EXPECT_EQ(share.end, 2 * 20 + 10);
}

TEST(ShardingTest, EvalKeepsThePartialLastBatchSplitEvenly) {
  const ShardSpec spec{10, 2, 0, 3};  // global batch 6: one full, one of 4
  EXPECT_EQ(IterationsPerEpoch(Split::kEval, spec), 2);
  std::vector<int64_t> seen;
  for (int32_t rank = 0; rank < 2; ++rank) {
    ShardSpec replica = spec;
    replica.rank = rank;
    for (int64_t i = 0; i < 2; ++i) {
      const Share share = ShareOfIteration(Split::kEval, replica, i);
      EXPECT_EQ(share.Size(), i == 0 ? 3 : 2) << "rank " << rank << " iteration " << i;
      for (int64_t p = share.begin; p < share.end; ++p) seen.push_back(p);
    }
  }
  std::sort(seen.begin(), seen.end());
  std::vector<int64_t> all(10);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(seen, all);
}

TEST(ShardingTest, EvalLastBatchSmallerThanTheWorldLeavesSomeReplicasEmpty) {
  ShardSpec spec{10, 4, 0, 2};  // global batch 8, then 2 left for 4 replicas
  int64_t total = 0;
  int64_t empty = 0;
  for (int32_t rank = 0; rank < 4; ++rank) {
    spec.rank = rank;
    const Share share = ShareOfIteration(Split::kEval, spec, 1);
    total += share.Size();
    empty += share.Size() == 0;
  }
  EXPECT_EQ(total, 2);
  EXPECT_EQ(empty, 2);
}

}  // namespace
}  // namespace gradflow::runtime::data
