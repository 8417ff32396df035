#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/dist/collectives.h"

namespace gradflow::runtime::dist {
namespace {

TEST(SoloCollectivesTest, EveryOperationCompletesWithDataUnchanged) {
  auto solo = CreateSoloCollectives(2);
  EXPECT_EQ(solo->size(), 1);
  EXPECT_EQ(solo->lanes(), 2);
  std::vector<float> data = {1.5f, -2.0f, 3.25f};
  const std::vector<float> before = data;
  EXPECT_TRUE(AllreduceSumSync(*solo, data, 1).ok());
  EXPECT_TRUE(BroadcastSync(*solo, data, 0).ok());
  EXPECT_TRUE(BarrierSync(*solo).ok());
  EXPECT_EQ(data, before);
  EXPECT_EQ(AllreduceSumSync(*solo, data, 2).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BroadcastSync(*solo, data, 1).code(), absl::StatusCode::kInvalidArgument);
}

TEST(CollectiveKindNameTest, NamesEveryKind) {
  EXPECT_STREQ(CollectiveKindName(CollectiveKind::kAllreduce), "allreduce");
  EXPECT_STREQ(CollectiveKindName(CollectiveKind::kBroadcast), "broadcast");
  EXPECT_STREQ(CollectiveKindName(CollectiveKind::kBarrier), "barrier");
}

}  // namespace
}  // namespace gradflow::runtime::dist
