#include "scheduler/memory_plan.h"

#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gradflow::sched {
namespace {

std::vector<LiveRange> RandomRanges(std::mt19937& rng, int count, int steps) {
  std::vector<LiveRange> ranges;
  for (int i = 0; i < count; ++i) {
    const int32_t first = static_cast<int32_t>(rng() % steps);
    const int32_t last = first + static_cast<int32_t>(rng() % (steps - first));
    ranges.push_back({static_cast<int64_t>(rng() % 100000), first, last});
  }
  return ranges;
}

TEST(MemoryPlanTest, RandomPlansNeverOverlapLiveBlocks) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  for (int trial = 0; trial < 100; ++trial) {
    const auto ranges = RandomRanges(rng, 1 + static_cast<int>(rng() % 300), 1 + static_cast<int>(rng() % 200));
    absl::StatusOr<MemoryPlan> plan = PlanMemory(ranges, 64);
    ASSERT_TRUE(plan.ok()) << plan.status();
    ASSERT_TRUE(CheckMemoryPlan(ranges, *plan).ok()) << CheckMemoryPlan(ranges, *plan);
    for (int64_t offset : plan->offsets) EXPECT_EQ(offset % 64, 0);
    EXPECT_GE(plan->arena_bytes, PeakLiveBytes(ranges));
    EXPECT_LE(plan->arena_bytes, plan->sum_of_bytes + 64 * static_cast<int64_t>(ranges.size()));
  }
}

TEST(MemoryPlanTest, ChainReusesMemory) {
  // A forward chain where each tensor dies after the next is made: two blocks suffice.
  std::vector<LiveRange> ranges;
  for (int32_t i = 0; i < 10; ++i) ranges.push_back({1024, i, i + 1});
  absl::StatusOr<MemoryPlan> plan = PlanMemory(ranges, 64);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->arena_bytes, 2048);
  EXPECT_EQ(plan->sum_of_bytes, 10240);
}

TEST(MemoryPlanTest, CheckerCatchesOverlap) {
  const std::vector<LiveRange> ranges = {{100, 0, 5}, {100, 3, 8}, {100, 6, 9}};
  MemoryPlan bad{.offsets = {0, 50, 0}, .arena_bytes = 150};
  absl::Status s = CheckMemoryPlan(ranges, bad);
  EXPECT_THAT(s.message(), ::testing::HasSubstr("blocks 0 and 1 are both live at step 3"));
  MemoryPlan outside{.offsets = {0, 100, 0}, .arena_bytes = 150};
  EXPECT_THAT(CheckMemoryPlan(ranges, outside).message(), ::testing::HasSubstr("outside the arena"));
  MemoryPlan good{.offsets = {0, 100, 0}, .arena_bytes = 200};
  EXPECT_TRUE(CheckMemoryPlan(ranges, good).ok());
}

TEST(MemoryPlanTest, BadInputIsRefused) {
  const std::vector<LiveRange> backwards = {{10, 5, 2}};
  EXPECT_FALSE(PlanMemory(backwards, 64).ok());
  EXPECT_FALSE(PlanMemory({}, 48).ok());
}

}  // namespace
}  // namespace gradflow::sched
