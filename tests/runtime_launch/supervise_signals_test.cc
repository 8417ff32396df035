// Signals to the supervisor itself. Supervise runs in a forked child of the test, so that the
// signals we send it cannot reach the test runner.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/launch/supervise.h"
#include "tests/runtime_launch/test_processes.h"

namespace gradflow::runtime::launch {
namespace {

using std::chrono::milliseconds;
using testing::FreshTempDir;
using testing::IsAlive;
using testing::ShellNode;
using testing::WaitForPidFile;
using testing::WaitUntilGone;
using Clock = std::chrono::steady_clock;

constexpr int kSuperviseFailed = 99;

class SuperviseSignalsTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = FreshTempDir("signals"); }
  void TearDown() override {
    if (supervisor_ > 0) {
      ::kill(supervisor_, SIGKILL);
      ::waitpid(supervisor_, nullptr, 0);
    }
  }

  std::string PidFile(int rank) const { return dir_ + "/node" + std::to_string(rank) + ".pid"; }
  // A node that records its pid and sleeps; with `ignore_term` SIGTERM cannot stop it.
  NodeCommand SleepingNode(int rank, bool ignore_term) const {
    return ShellNode(std::string(ignore_term ? "trap '' TERM; " : "") + "echo $$ > " +
                     PidFile(rank) + "; exec sleep 60");
  }

  // Starts the supervisor and waits until every node has written its pid.
  std::vector<pid_t> StartSupervisor(std::vector<NodeCommand> nodes) {
    const size_t count = nodes.size();
    supervisor_ = ::fork();
    if (supervisor_ == 0) {
      SuperviseOptions options;
      options.nodes = std::move(nodes);
      const int null_fd = testing::CreateOutputFile("/dev/null");
      options.stdout_fd = null_fd;
      options.stderr_fd = null_fd;
      absl::StatusOr<SuperviseResult> result = Supervise(options);
      ::_exit(result.ok() ? result->exit_code : kSuperviseFailed);
    }
    std::vector<pid_t> pids;
    for (size_t rank = 0; rank < count; ++rank) {
      pids.push_back(WaitForPidFile(PidFile(static_cast<int>(rank))));
      EXPECT_GT(pids.back(), 0) << "node " << rank << " did not start";
    }
    return pids;
  }

  // The supervisor's exit status, -1 when it did not exit within `timeout` (it is killed then),
  // 1000 + signal when a signal killed it.
  int WaitForSupervisor(milliseconds timeout) {
    const Clock::time_point deadline = Clock::now() + timeout;
    while (true) {
      int status = 0;
      const pid_t done = ::waitpid(supervisor_, &status, WNOHANG);
      if (done == supervisor_) {
        supervisor_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);
      }
      if (Clock::now() >= deadline) return -1;
      std::this_thread::sleep_for(milliseconds(10));
    }
  }

  std::string dir_;
  pid_t supervisor_ = -1;
};

TEST_F(SuperviseSignalsTest, SigtermStopsEveryNodeAndExits143) {
  const std::vector<pid_t> nodes =
      StartSupervisor({SleepingNode(0, false), SleepingNode(1, false), SleepingNode(2, false)});
  ASSERT_EQ(::kill(supervisor_, SIGTERM), 0);
  EXPECT_EQ(WaitForSupervisor(std::chrono::seconds(2)), 143);
  for (const pid_t node : nodes) EXPECT_FALSE(IsAlive(node)) << node;
}

TEST_F(SuperviseSignalsTest, SigintKillsNodesThatIgnoreSigtermAfterTwoSecondsAndExits130) {
  const std::vector<pid_t> nodes = StartSupervisor({SleepingNode(0, false), SleepingNode(1, true)});
  const Clock::time_point start = Clock::now();
  ASSERT_EQ(::kill(supervisor_, SIGINT), 0);
  EXPECT_EQ(WaitForSupervisor(std::chrono::seconds(4)), 130);
  EXPECT_GT(Clock::now() - start, milliseconds(1900));
  for (const pid_t node : nodes) EXPECT_FALSE(IsAlive(node)) << node;
}

TEST_F(SuperviseSignalsTest, ASecondSignalKillsAtOnce) {
  const std::vector<pid_t> nodes = StartSupervisor({SleepingNode(0, true)});
  const Clock::time_point start = Clock::now();
  ASSERT_EQ(::kill(supervisor_, SIGINT), 0);
  std::this_thread::sleep_for(milliseconds(100));
  ASSERT_EQ(::kill(supervisor_, SIGINT), 0);
  EXPECT_EQ(WaitForSupervisor(std::chrono::seconds(2)), 130);
  EXPECT_LT(Clock::now() - start, milliseconds(1500));
  EXPECT_FALSE(IsAlive(nodes[0]));
}

TEST_F(SuperviseSignalsTest, NodesDieWithAKilledSupervisor) {
  const std::vector<pid_t> nodes = StartSupervisor({SleepingNode(0, true), SleepingNode(1, false)});
  ASSERT_EQ(::kill(supervisor_, SIGKILL), 0);
  EXPECT_EQ(WaitForSupervisor(std::chrono::seconds(2)), 1000 + SIGKILL);
  for (const pid_t node : nodes) {
    EXPECT_TRUE(WaitUntilGone(node, std::chrono::seconds(2))) << "orphan " << node;
  }
}

void NoteSignal(int) {}

TEST(SuperviseHandlersTest, HandlersAreRestoredAndNodesGetDefaultDispositions) {
  struct sigaction mine {};
  mine.sa_handler = NoteSignal;
  sigemptyset(&mine.sa_mask);
  struct sigaction previous_int {};
  ASSERT_EQ(::sigaction(SIGINT, &mine, &previous_int), 0);

  SuperviseOptions options;
  // A node that inherited an ignored SIGPIPE would survive this and exit 0.
  options.nodes = {ShellNode("kill -PIPE $$; exit 0")};
  const int null_fd = testing::CreateOutputFile("/dev/null");
  options.stdout_fd = null_fd;
  options.stderr_fd = null_fd;
  absl::StatusOr<SuperviseResult> result = Supervise(options);
  ::close(null_fd);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 128 + SIGPIPE);

  struct sigaction now {};
  ASSERT_EQ(::sigaction(SIGINT, nullptr, &now), 0);
  EXPECT_EQ(now.sa_handler, &NoteSignal);
  for (const int signal_number : {SIGTERM, SIGCHLD, SIGPIPE}) {
    ASSERT_EQ(::sigaction(signal_number, nullptr, &now), 0);
    EXPECT_EQ(now.sa_handler, SIG_DFL) << signal_number;
  }
  ::sigaction(SIGINT, &previous_int, nullptr);
}

}  // namespace
}  // namespace gradflow::runtime::launch
