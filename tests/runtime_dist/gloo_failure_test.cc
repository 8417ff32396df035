// Ranks that die (SIGKILL) or stall (SIGSTOP) as real processes: the survivors must fail within
// the timeout with a message naming the rank at fault, and never hang.
#include "runtime/dist/gloo_failure.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/dist/gloo_collectives.h"
#include "tests/runtime_dist/dist_test_util.h"

namespace gradflow::runtime::dist {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::TestOptions;

TEST(ClassifyGlooErrorTest, NamesThePeerBehindAnAddress) {
  PeerDirectory peers;
  peers.Add("[127.0.0.1]:4242$3", 1);
  peers.Add("[127.0.0.1]:5151$1", 2);
  GlooFailure closed = ClassifyGlooError(
      "[/build/gloo/transport/tcp/pair.cc:598] Connection closed by peer [127.0.0.1]:5151$9", peers,
      std::chrono::seconds(5), {1, 2});
  EXPECT_EQ(closed.code, absl::StatusCode::kUnavailable);
  EXPECT_EQ(closed.rank, 2);
  EXPECT_THAT(closed.what, HasSubstr("rank 2 closed its connection (node died?)"));
  EXPECT_THAT(closed.what, Not(HasSubstr("pair.cc")));

  GlooFailure timeout = ClassifyGlooError("Read timeout [127.0.0.1]:4242$3", peers,
                                          std::chrono::milliseconds(2500), {1, 2});
  EXPECT_EQ(timeout.code, absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(timeout.what, HasSubstr("rank 1 did not respond within 2.5 s"));

  GlooFailure unknown =
      ClassifyGlooError("Timed out somewhere", peers, std::chrono::seconds(5), {1, 2});
  EXPECT_FALSE(unknown.rank.has_value());
  EXPECT_THAT(unknown.what, HasSubstr("waiting for ranks 1, 2"));
}

// Runs `size` ranks as processes: this one is rank 0, the others are forked children that loop
// allreducing until they fail, then write their status message to <dir>/rank<r> and exit.
class ProcessWorld {
 public:
  ProcessWorld(int size, std::chrono::milliseconds timeout)
      : size_(size), spec_(testing::FreshFileRendezvous()), job_(testing::UniqueJobId()) {
    options_ = TestOptions(timeout);
    for (int r = 1; r < size; ++r) {
      const pid_t pid = fork();
      if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
        _exit(RunChild(r));
      }
      EXPECT_GT(pid, 0) << "fork failed";
      children_.push_back(pid);
    }
    auto store = Store::Open(spec_, job_, options_.timeout);
    EXPECT_TRUE(store.ok()) << store.status();
    auto collectives = CreateGlooCollectives(**store, 0, size_, options_);
    EXPECT_TRUE(collectives.ok()) << collectives.status();
    if (collectives.ok()) self_ = *std::move(collectives);
  }

  ~ProcessWorld() {
    self_.reset();
    for (pid_t pid : children_) {
      if (pid <= 0) continue;  // reaped already; kill(-1) would hit every process of the user
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }

  Collectives& self() { return *self_; }
  pid_t child(int rank) const { return children_.at(rank - 1); }

  // The message a child wrote when it failed; waits up to `limit` for it to exit.
  std::string ChildMessage(int rank, std::chrono::milliseconds limit) {
    if (child(rank) <= 0) return "<rank " + std::to_string(rank) + " already reaped>";
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      int wait_status = 0;
      if (waitpid(child(rank), &wait_status, WNOHANG) == child(rank)) {
        children_[rank - 1] = -1;  // reaped
        std::ifstream in(spec_.path + "/rank" + std::to_string(rank));
        std::stringstream text;
        text << in.rdbuf();
        if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0) {
          text << " <rank " << rank << " ended with wait status " << wait_status << ">";
        }
        return text.str();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return "<rank " + std::to_string(rank) + " still running>";
  }

 private:
  int RunChild(int rank) {
    auto store = Store::Open(spec_, job_, options_.timeout);
    if (!store.ok()) return 2;
    auto collectives = CreateGlooCollectives(**store, rank, size_, options_);
    if (!collectives.ok()) return 2;
    std::vector<float> data(1 << 18, 1.0f);
    absl::Status status;
    for (int i = 0; i < 100000 && status.ok(); ++i) {
      std::fill(data.begin(), data.end(), 1.0f);
      status = AllreduceSumSync(**collectives, data, i % 2);
    }
    std::ofstream(spec_.path + "/rank" + std::to_string(rank)) << status.ToString();
    return 0;
  }

  const int size_;
  const RendezvousSpec spec_;
  const std::string job_;
  GlooOptions options_;
  std::vector<pid_t> children_;
  std::unique_ptr<Collectives> self_;
};

// Allreduces until one fails; returns the failure and how long after `since` it came.
absl::Status AllreduceUntilFailure(Collectives& collectives,
                                   std::chrono::steady_clock::time_point since,
                                   std::chrono::steady_clock::duration* after) {
  std::vector<float> data(1 << 18, 1.0f);
  absl::Status status;
  for (int i = 0; status.ok() && i < 100000; ++i) {
    status = AllreduceSumSync(collectives, data, i % 2);
  }
  *after = std::chrono::steady_clock::now() - since;
  return status;
}

TEST(GlooFailureTest, KilledRankIsNamedBySurvivorsWithinTheTimeout) {
  const auto timeout = std::chrono::milliseconds(2000);
  ProcessWorld world(3, timeout);
  std::vector<float> data(1 << 18, 1.0f);
  for (int i = 0; i < 3; ++i) {
    std::fill(data.begin(), data.end(), 1.0f);
    ASSERT_TRUE(AllreduceSumSync(world.self(), data, i % 2).ok());
    ASSERT_EQ(data[12345], 3.0f);
  }
  const auto killed_at = std::chrono::steady_clock::now();
  ASSERT_GT(world.child(2), 0);
  kill(world.child(2), SIGKILL);
  std::chrono::steady_clock::duration after;
  absl::Status status = AllreduceUntilFailure(world.self(), killed_at, &after);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr("allreduce on lane"),
                    HasSubstr("rank 2 closed its connection (node died?)")));
  EXPECT_LT(after, timeout + std::chrono::seconds(1));
  // The other survivor names the dead rank too, not rank 0 that disconnected after it (it may see
  // the death as a closed connection or, when its socket reports nothing, as a timeout).
  const std::string other = world.ChildMessage(1, timeout * 2);
  EXPECT_THAT(other, HasSubstr("failed: rank 2 "));
  EXPECT_THAT(other, Not(HasSubstr("rank 0")));
}

TEST(GlooFailureTest, StalledRankIsNamedBySurvivorsWithinTheTimeout) {
  const auto timeout = std::chrono::milliseconds(2000);
  ProcessWorld world(3, timeout);
  std::vector<float> data(1 << 18, 1.0f);
  ASSERT_TRUE(AllreduceSumSync(world.self(), data, 0).ok());
  const auto stopped_at = std::chrono::steady_clock::now();
  ASSERT_GT(world.child(1), 0);
  kill(world.child(1), SIGSTOP);
  std::chrono::steady_clock::duration after;
  absl::Status status = AllreduceUntilFailure(world.self(), stopped_at, &after);
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("rank 1 did not respond within 2 s"));
  EXPECT_LT(after, timeout + std::chrono::milliseconds(1500));
  EXPECT_THAT(world.ChildMessage(2, timeout * 2), HasSubstr("rank 1 did not respond"));
}

}  // namespace
}  // namespace gradflow::runtime::dist
