#include "runtime/launch/node_exit.h"

#include <signal.h>

#include "gtest/gtest.h"

namespace gradflow::runtime::launch {
namespace {

using std::chrono::milliseconds;

TEST(NodeExitTest, SignalNames) {
  EXPECT_EQ(SignalName(SIGKILL), "SIGKILL");
  EXPECT_EQ(SignalName(SIGTERM), "SIGTERM");
  EXPECT_EQ(SignalName(SIGSEGV), "SIGSEGV");
  EXPECT_EQ(SignalName(1000), "signal 1000");
}

TEST(NodeExitTest, ShellExitCodes) {
  EXPECT_EQ(ShellExitCode({.rank = 0, .signaled = false, .code_or_signal = 0}), 0);
  EXPECT_EQ(ShellExitCode({.rank = 0, .signaled = false, .code_or_signal = 3}), 3);
  EXPECT_EQ(ShellExitCode({.rank = 0, .signaled = true, .code_or_signal = SIGKILL}), 137);
  EXPECT_FALSE(Failed({.rank = 0, .signaled = false, .code_or_signal = 0}));
  EXPECT_TRUE(Failed({.rank = 0, .signaled = true, .code_or_signal = SIGTERM}));
}

TEST(NodeExitTest, DescribesExits) {
  EXPECT_EQ(
      DescribeExit(
          "node",
          {.rank = 2, .signaled = true, .code_or_signal = SIGKILL, .after = milliseconds(12345)}),
      "node 2 was killed by SIGKILL after 12.3 s");
  EXPECT_EQ(DescribeExit("worker", {.rank = 0, .code_or_signal = 1, .after = milliseconds(400)}),
            "worker 0 exited with status 1 after 0.4 s");
}

TEST(NodeExitTest, SummaryNamesFailedNodesAndTheFirst) {
  const std::vector<NodeExit> exits = {
      {.rank = 0,
       .signaled = true,
       .code_or_signal = SIGTERM,
       .after = milliseconds(11000),
       .stopped_by_launcher = true},
      {.rank = 1, .code_or_signal = 0, .after = milliseconds(900)},
      {.rank = 2, .signaled = true, .code_or_signal = SIGKILL, .after = milliseconds(1000)}};
  const std::string summary = SummarizeJob("node", exits, /*first_failed_rank=*/2, 0);
  EXPECT_EQ(summary,
            "2 of 3 nodes failed: node 2 was killed by SIGKILL after 1.0 s (the first to fail); "
            "node 0 was killed by SIGTERM after 11.0 s (stopped by the launcher)");
}

TEST(NodeExitTest, SummaryOfSuccessAndOfAStop) {
  const std::vector<NodeExit> fine = {{.rank = 0}, {.rank = 1}};
  EXPECT_EQ(SummarizeJob("node", fine, -1, 0), "all 2 nodes exited with status 0");
  EXPECT_EQ(SummarizeJob("node", {{.rank = 0}}, -1, SIGINT),
            "stopped by SIGINT: all 1 node exited with status 0");
}

}  // namespace
}  // namespace gradflow::runtime::launch
