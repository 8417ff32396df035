#include "runtime/dist/store.h"

#include <chrono>
#include <filesystem>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/runtime_dist/dist_test_util.h"

namespace gradflow::runtime::dist {
namespace {

using ::testing::AllOf;
using testing::FreshFileRendezvous;
using ::testing::HasSubstr;
using testing::RunRanks;
using testing::UniqueJobId;

std::unique_ptr<Store> OpenOrDie(const RendezvousSpec& spec, const std::string& job,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  auto store = Store::Open(spec, job, timeout);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

TEST(FileStoreTest, CreatesJobDirectoryAndSharesValuesBetweenHandles) {
  const RendezvousSpec spec = FreshFileRendezvous();
  const std::string job = UniqueJobId();
  auto writer = OpenOrDie(spec, job);
  auto reader = OpenOrDie(spec, job);
  ASSERT_TRUE(writer && reader);
  EXPECT_TRUE(std::filesystem::is_directory(std::filesystem::path(spec.path) / job));

  EXPECT_EQ(*reader->Check({"answer"}), false);
  std::thread late_writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_TRUE(writer->Set("answer", "forty two").ok());
  });
  auto value = reader->Get("answer");  // waits for the late writer
  late_writer.join();
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, "forty two");
  EXPECT_EQ(*reader->Check({"answer"}), true);
  EXPECT_EQ(*reader->Check({"answer", "missing"}), false);
}

TEST(FileStoreTest, KeysAreWrittenOnce) {
  auto store = OpenOrDie(FreshFileRendezvous(), UniqueJobId());
  ASSERT_TRUE(store->Set("k", "1").ok());
  absl::Status again = store->Set("k", "2");
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(again.message(), HasSubstr("'k'"));
  EXPECT_EQ(*store->Get("k"), "1");
}

TEST(FileStoreTest, JobsInOneDirectoryDoNotSeeEachOther) {
  const RendezvousSpec spec = FreshFileRendezvous();
  auto a = OpenOrDie(spec, "job-a");
  auto b = OpenOrDie(spec, "job-b");
  ASSERT_TRUE(a->Set("k", "a").ok());
  ASSERT_TRUE(b->Set("k", "b").ok());
  EXPECT_EQ(*a->Get("k"), "a");
  EXPECT_EQ(*b->Get("k"), "b");
}

TEST(FileStoreTest, GetTimesOutNamingKeyAndRendezvous) {
  const RendezvousSpec spec = FreshFileRendezvous();
  auto store = OpenOrDie(spec, "late-job", std::chrono::milliseconds(300));
  const auto start = std::chrono::steady_clock::now();
  auto value = store->Get("never");
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(value.ok());
  EXPECT_EQ(value.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(value.status().message(),
              AllOf(HasSubstr("'never'"), HasSubstr(spec.ToString()), HasSubstr("300 ms")));
  EXPECT_GE(waited, std::chrono::milliseconds(300));
  EXPECT_LT(waited, std::chrono::seconds(2));
}

TEST(FileStoreTest, RejectsUnusableJobIdsAndDirectories) {
  auto bad_job = Store::Open(FreshFileRendezvous(), "../escape", std::chrono::seconds(1));
  EXPECT_EQ(bad_job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_job.status().message(), HasSubstr("'../escape'"));

  RendezvousSpec unwritable;
  unwritable.path = "/proc/no-such-dir";
  auto bad_dir = Store::Open(unwritable, "job", std::chrono::seconds(1));
  EXPECT_FALSE(bad_dir.ok());
  EXPECT_THAT(bad_dir.status().message(), HasSubstr("/proc/no-such-dir"));
}

TEST(CheckSameEverywhereTest, EqualFingerprintsPass) {
  const RendezvousSpec spec = FreshFileRendezvous();
  const std::string job = UniqueJobId();
  RunRanks(3, [&](int rank) {
    auto store = OpenOrDie(spec, job);
    EXPECT_TRUE(CheckSameEverywhere(*store, rank, 3, "flags", "graph=ab12 batch=32 lr=0.1").ok());
  });
}

TEST(CheckSameEverywhereTest, DifferenceNamesBothNodesAndEveryItem) {
  const RendezvousSpec spec = FreshFileRendezvous();
  const std::string job = UniqueJobId();
  std::vector<absl::Status> results(3);
  RunRanks(3, [&](int rank) {
    auto store = OpenOrDie(spec, job);
    const std::string fingerprint =
        rank == 1 ? "graph=ab12 batch=16 lr=0.2" : "graph=ab12 batch=32 lr=0.1";
    results[rank] = CheckSameEverywhere(*store, rank, 3, "flags", fingerprint);
  });
  for (int rank = 0; rank < 3; ++rank) {
    EXPECT_EQ(results[rank].code(), absl::StatusCode::kFailedPrecondition) << rank;
    EXPECT_THAT(
        results[rank].message(),
        AllOf(HasSubstr("node 1's batch=16 differs from node 0's batch=32"),
              HasSubstr("node 1's lr=0.2 differs from node 0's lr=0.1"), HasSubstr("flags")));
    EXPECT_EQ(results[rank].message(), results[0].message());
  }
}

TEST(CheckSameEverywhereTest, MissingItemIsNamed) {
  const RendezvousSpec spec = FreshFileRendezvous();
  const std::string job = UniqueJobId();
  std::vector<absl::Status> results(2);
  RunRanks(2, [&](int rank) {
    auto store = OpenOrDie(spec, job);
    results[rank] =
        CheckSameEverywhere(*store, rank, 2, "graph", rank == 0 ? "hash=1 bn=yes" : "hash=1");
  });
  EXPECT_THAT(results[1].message(), HasSubstr("node 0 has bn=yes, node 1 has no bn"));
}

TEST(CheckSameEverywhereTest, AbsentNodeTimesOutNamingIt) {
  auto store = OpenOrDie(FreshFileRendezvous(), UniqueJobId(), std::chrono::milliseconds(200));
  absl::Status status = CheckSameEverywhere(*store, 0, 2, "graph", "hash=1");
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(status.message(), HasSubstr("node 1 did not publish its graph"));
}

}  // namespace
}  // namespace gradflow::runtime::dist
