// Gloo collectives over loopback with every rank a thread of this process.
#include "runtime/dist/gloo_collectives.h"

#include <cmath>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/runtime_dist/dist_test_util.h"

namespace gradflow::runtime::dist {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::MakeThreadWorld;
using testing::RunRanks;
using testing::TestOptions;
using testing::ThreadWorld;

// Values whose float sum depends on the order of additions, so that "bitwise identical on every
// rank" means something.
std::vector<float> Inputs(int rank, size_t count, int round = 0) {
  std::vector<float> data(count);
  for (size_t i = 0; i < count; ++i) {
    data[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i) + rank + 0.1 * round) *
                                 (rank + 1.5));
  }
  return data;
}

std::vector<double> ExpectedSum(int size, size_t count, int round = 0) {
  std::vector<double> sum(count, 0.0);
  for (int r = 0; r < size; ++r) {
    const std::vector<float> in = Inputs(r, count, round);
    for (size_t i = 0; i < count; ++i) sum[i] += in[i];
  }
  return sum;
}

void ExpectSums(const std::vector<std::vector<float>>& results, int size, int round = 0) {
  const size_t count = results[0].size();
  const std::vector<double> expected = ExpectedSum(size, count, round);
  for (size_t i = 0; i < count; ++i) {
    ASSERT_NEAR(results[0][i], expected[i], 1e-5 * (std::fabs(expected[i]) + size)) << i;
  }
  for (int r = 1; r < size; ++r) {
    ASSERT_EQ(std::memcmp(results[r].data(), results[0].data(), count * sizeof(float)), 0)
        << "rank " << r << " differs bitwise from rank 0 (count " << count << ")";
  }
}

struct WorldShape {
  int size;
  const char* algorithm;
};

class AllreduceTest : public ::testing::TestWithParam<WorldShape> {};

TEST_P(AllreduceTest, SumsAreRightAndBitwiseIdenticalOnEveryRank) {
  const auto [size, algorithm] = GetParam();
  GlooOptions options = TestOptions();
  options.algorithm = algorithm;
  ThreadWorld world = MakeThreadWorld(size, options);
  ASSERT_EQ(world.ranks.size(), static_cast<size_t>(size));
  for (size_t count : {size_t{1}, size_t{1001}, size_t{1} << 20}) {
    std::vector<std::vector<float>> data(size);
    for (int r = 0; r < size; ++r) data[r] = Inputs(r, count);
    std::vector<absl::Status> statuses(size);
    RunRanks(size,
             [&](int r) { statuses[r] = AllreduceSumSync(*world.ranks[r], data[r], /*lane=*/1); });
    for (int r = 0; r < size; ++r) ASSERT_TRUE(statuses[r].ok()) << statuses[r];
    ExpectSums(data, size);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AllreduceTest,
    ::testing::Values(WorldShape{2, "ring"}, WorldShape{3, "ring"}, WorldShape{4, "ring"},
                      WorldShape{2, "halving-doubling"}, WorldShape{3, "halving-doubling"},
                      WorldShape{4, "halving-doubling"}),
    [](const ::testing::TestParamInfo<WorldShape>& shape_info) {
      return std::to_string(shape_info.param.size) + "ranks_" +
             (std::string(shape_info.param.algorithm) == "ring" ? "ring" : "halving_doubling");
    });

// Records what the observers see, per rank.
class RecordingObserver : public CollectiveObserver {
 public:
  void OnCollectiveStart(const CollectiveEvent& event) override {
    std::lock_guard<std::mutex> lock(mutex_);
    starts.push_back(event);
  }
  void OnCollectiveEnd(const CollectiveEvent& event) override {
    std::lock_guard<std::mutex> lock(mutex_);
    ends.push_back(event);
  }
  std::vector<CollectiveEvent> starts;
  std::vector<CollectiveEvent> ends;

 private:
  std::mutex mutex_;
};

TEST(GlooCollectivesTest, SeveralLanesInFlightAtOnceAndAlgorithmChosenBySize) {
  constexpr int kSize = 3;
  constexpr int kLanes = 4;
  GlooOptions options = TestOptions();
  options.lanes = kLanes;
  options.ring_min_bytes = 32 << 10;
  ThreadWorld world = MakeThreadWorld(kSize, options);
  std::vector<RecordingObserver> observers(kSize);
  for (int r = 0; r < kSize; ++r) world.ranks[r]->AddObserver(&observers[r]);
  // Lane l carries 4^l * 1000 floats: lanes 0 and 1 below ring_min_bytes, 2 and 3 above.
  std::vector<std::vector<std::vector<float>>> data(kSize);
  RunRanks(kSize, [&](int r) {
    std::vector<std::future<absl::Status>> pending;
    for (int lane = 0; lane < kLanes; ++lane) {
      data[r].push_back(Inputs(r, size_t{1000} << (2 * lane), lane));
    }
    for (int lane = 0; lane < kLanes; ++lane) {
      auto promise = std::make_shared<std::promise<absl::Status>>();
      pending.push_back(promise->get_future());
      world.ranks[r]->AllreduceSum(data[r][lane], lane,
                                   [promise](absl::Status s) { promise->set_value(s); });
    }
    for (auto& p : pending) EXPECT_TRUE(p.get().ok());
  });
  for (int lane = 0; lane < kLanes; ++lane) {
    std::vector<std::vector<float>> per_rank;
    for (int r = 0; r < kSize; ++r) per_rank.push_back(data[r][lane]);
    ExpectSums(per_rank, kSize, lane);
  }
  for (int r = 0; r < kSize; ++r) {
    ASSERT_EQ(observers[r].ends.size(), static_cast<size_t>(kLanes));
    for (const CollectiveEvent& event : observers[r].ends) {
      EXPECT_EQ(event.kind, CollectiveKind::kAllreduce);
      EXPECT_EQ(event.sequence, 0);
      EXPECT_TRUE(event.status.ok());
      EXPECT_LE(event.start, event.end);
      EXPECT_EQ(event.bytes, static_cast<int64_t>(sizeof(float) * (1000u << (2 * event.lane))));
      EXPECT_EQ(event.algorithm, event.lane < 2 ? "halving-doubling" : "ring") << event.lane;
    }
  }
}

TEST(GlooCollectivesTest, SameRegionAgainReducesItsNewContents) {
  constexpr int kSize = 3;
  ThreadWorld world = MakeThreadWorld(kSize, TestOptions());
  constexpr size_t kCount = 70000;  // ring under the default ring_min_bytes
  std::vector<std::vector<float>> bucket(kSize, std::vector<float>(kCount));
  std::vector<std::vector<float>> other(kSize, std::vector<float>(17));
  for (int round = 0; round < 3; ++round) {
    RunRanks(kSize, [&](int r) {
      const std::vector<float> in = Inputs(r, kCount, round);
      std::copy(in.begin(), in.end(), bucket[r].begin());  // same memory, new values
      EXPECT_TRUE(AllreduceSumRepeatedSync(*world.ranks[r], bucket[r], 0).ok());
      const std::vector<float> small = Inputs(r, 17, round);  // a different region in between
      std::copy(small.begin(), small.end(), other[r].begin());
      EXPECT_TRUE(AllreduceSumSync(*world.ranks[r], other[r], 0).ok());
    });
    ExpectSums(bucket, kSize, round);
    ExpectSums(other, kSize, round);
  }
}

// Short-lived buffers: the allocator hands rank 0 the same address every round and rank 1 a new
// one (it keeps the old buffers). Were allreduces cached by address, rank 0 would reuse its first
// round's setup while rank 1 set up anew, Gloo's slots would disagree and both would wait for
// data that never comes.
TEST(GlooCollectivesTest, ShortLivedBuffersAtReusedAddressesStayInStep) {
  constexpr int kSize = 2;
  ThreadWorld world = MakeThreadWorld(kSize, TestOptions());
  constexpr size_t kCount = 512;
  std::vector<std::vector<std::vector<float>>> kept(kSize);
  std::vector<std::vector<float>> results(kSize);
  for (int round = 0; round < 3; ++round) {
    RunRanks(kSize, [&](int r) {
      std::vector<float> values = Inputs(r, kCount, round);
      EXPECT_TRUE(AllreduceSumSync(*world.ranks[r], values, 0).ok()) << "rank " << r;
      results[r] = values;
      if (r == 1) kept[r].push_back(std::move(values));
    });
    ExpectSums(results, kSize, round);
  }
}

TEST(GlooCollectivesTest, BroadcastCopiesRootToEveryRank) {
  constexpr int kSize = 3;
  ThreadWorld world = MakeThreadWorld(kSize, TestOptions());
  std::vector<std::vector<float>> data(kSize);
  RunRanks(kSize, [&](int r) {
    data[r] = Inputs(r, 12345);
    EXPECT_TRUE(BroadcastSync(*world.ranks[r], data[r], /*root=*/2).ok());
  });
  const std::vector<float> root = Inputs(2, 12345);
  for (int r = 0; r < kSize; ++r) EXPECT_EQ(data[r], root) << "rank " << r;
}

TEST(GlooCollectivesTest, BarrierReturnsOnlyOnceEveryRankEntered) {
  constexpr int kSize = 3;
  ThreadWorld world = MakeThreadWorld(kSize, TestOptions());
  std::vector<std::chrono::steady_clock::time_point> entered(kSize), left(kSize);
  RunRanks(kSize, [&](int r) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100 * r));
    entered[r] = std::chrono::steady_clock::now();
    EXPECT_TRUE(BarrierSync(*world.ranks[r]).ok());
    left[r] = std::chrono::steady_clock::now();
  });
  const auto last_entry = *std::max_element(entered.begin(), entered.end());
  for (int r = 0; r < kSize; ++r) EXPECT_GE(left[r], last_entry) << "rank " << r;
}

TEST(GlooCollectivesTest, WorldOfOneNeedsNoPeers) {
  auto store =
      Store::Open(testing::FreshFileRendezvous(), testing::UniqueJobId(), std::chrono::seconds(2));
  ASSERT_TRUE(store.ok());
  auto solo = CreateGlooCollectives(**store, 0, 1, TestOptions());
  ASSERT_TRUE(solo.ok()) << solo.status();
  std::vector<float> data = Inputs(0, 1000);
  const std::vector<float> before = data;
  EXPECT_TRUE(AllreduceSumSync(**solo, data, 1).ok());
  EXPECT_TRUE(BroadcastSync(**solo, data, 0).ok());
  EXPECT_TRUE(BarrierSync(**solo).ok());
  EXPECT_EQ(data, before);
}

TEST(GlooCollectivesTest, BadArgumentsAndOptionsAreRefused) {
  ThreadWorld world = MakeThreadWorld(2, TestOptions());
  std::vector<float> data(4);
  RunRanks(2, [&](int r) {
    absl::Status lane = AllreduceSumSync(*world.ranks[r], data, 7);
    EXPECT_EQ(lane.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(lane.message(), HasSubstr("lane 7"));
    absl::Status root = BroadcastSync(*world.ranks[r], data, 5);
    EXPECT_THAT(root.message(), HasSubstr("root 5"));
    // Refused calls leave the object usable.
    EXPECT_TRUE(AllreduceSumSync(*world.ranks[r], data, 0).ok());
  });

  auto store =
      Store::Open(testing::FreshFileRendezvous(), testing::UniqueJobId(), std::chrono::seconds(1));
  GlooOptions bad = TestOptions();
  bad.algorithm = "butterfly";
  auto refused = CreateGlooCollectives(**store, 0, 2, bad);
  EXPECT_THAT(refused.status().message(), HasSubstr("'butterfly'"));
  bad = TestOptions();
  bad.transport = "carrier-pigeon";
  bad.lanes = 1;
  EXPECT_THAT(CreateGlooCollectives(**store, 0, 2, bad).status().message(),
              HasSubstr("'carrier-pigeon'"));
}

TEST(GlooCollectivesTest, RankThatNeverJoinsIsNamedWithinTheTimeout) {
  constexpr int kSize = 3;
  const auto timeout = std::chrono::milliseconds(2000);
  ThreadWorld world = MakeThreadWorld(kSize, TestOptions(timeout));
  std::vector<absl::Status> statuses(kSize);
  std::vector<std::chrono::steady_clock::duration> waited(kSize);
  RunRanks(kSize - 1, [&](int r) {  // rank 2 never issues the allreduce
    std::vector<float> data = Inputs(r, 1000);
    const auto start = std::chrono::steady_clock::now();
    statuses[r] = AllreduceSumSync(*world.ranks[r], data, 0);
    waited[r] = std::chrono::steady_clock::now() - start;
  });
  for (int r = 0; r < kSize - 1; ++r) {
    EXPECT_EQ(statuses[r].code(), absl::StatusCode::kDeadlineExceeded) << statuses[r];
    EXPECT_THAT(std::string(statuses[r].message()),
                AllOf(HasSubstr("allreduce on lane 0 failed"),
                      HasSubstr("rank 2 did not respond within 2 s")));
    EXPECT_LT(waited[r], timeout + std::chrono::milliseconds(1500));
    // Poisoned: later calls fail at once with the same cause.
    std::vector<float> more(8);
    const auto start = std::chrono::steady_clock::now();
    absl::Status later = AllreduceSumSync(*world.ranks[r], more, 1);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(200));
    EXPECT_EQ(later, statuses[r]);
  }
  // Destroying every rank, the absent one included, does not hang.
  const auto start = std::chrono::steady_clock::now();
  world.DestroyRanks();
  EXPECT_LT(std::chrono::steady_clock::now() - start, timeout + std::chrono::seconds(1));
}

}  // namespace
}  // namespace gradflow::runtime::dist
