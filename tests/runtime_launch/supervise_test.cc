#include "runtime/launch/supervise.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/launch/fd_util.h"
#include "tests/runtime_launch/test_processes.h"

namespace gradflow::runtime::launch {
namespace {

using std::chrono::milliseconds;
using testing::CreateOutputFile;
using testing::FreshTempDir;
using ::testing::HasSubstr;
using testing::IsAlive;
using ::testing::Not;
using testing::ReadFile;
using testing::ShellNode;
using testing::WaitForPidFile;
using Clock = std::chrono::steady_clock;

// Runs Supervise with the nodes' stdout and stderr captured in files.
class SuperviseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTempDir("supervise");
    out_ = UniqueFd(CreateOutputFile(dir_ + "/stdout"));
    err_ = UniqueFd(CreateOutputFile(dir_ + "/stderr"));
  }
  SuperviseOptions Options(std::vector<NodeCommand> nodes) const {
    SuperviseOptions options;
    options.nodes = std::move(nodes);
    options.stdout_fd = out_.get();
    options.stderr_fd = err_.get();
    return options;
  }
  std::string Stdout() const { return ReadFile(dir_ + "/stdout"); }
  std::string Stderr() const { return ReadFile(dir_ + "/stderr"); }
  std::string PidFile(const std::string& name) const { return dir_ + "/" + name + ".pid"; }

  std::string dir_;
  UniqueFd out_;
  UniqueFd err_;
};

TEST_F(SuperviseTest, ConcurrentOutputArrivesAsWholePrefixedLines) {
  constexpr int kNodes = 3;
  constexpr int kLines = 2000;
  const std::string payload(150, 'p');  // long lines, so that pipe reads cut through them
  std::vector<NodeCommand> nodes;
  for (int rank = 0; rank < kNodes; ++rank) {
    nodes.push_back(
        ShellNode(absl::StrCat("i=0; while [ $i -lt ", kLines, " ]; do echo \"r", rank, " line $i ",
                               payload, "\"; if [ $((i % 10)) -eq 0 ]; then echo \"r", rank,
                               " err $i\" >&2; fi; i=$((i+1)); done")));
  }
  absl::StatusOr<SuperviseResult> result = Supervise(Options(nodes));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0);

  const std::regex out_line("\\[node (\\d)\\] r(\\d) line (\\d+) (p+)");
  std::map<int, int> next_line;
  for (const absl::string_view line : absl::StrSplit(Stdout(), '\n', absl::SkipEmpty())) {
    std::smatch match;
    const std::string text(line);
    ASSERT_TRUE(std::regex_match(text, match, out_line)) << "mixed or cut line: " << text;
    ASSERT_EQ(match[1], match[2]) << "line under the wrong prefix: " << text;
    ASSERT_EQ(match[4].length(), static_cast<long>(payload.size())) << text;
    const int rank = std::stoi(match[1]);
    ASSERT_EQ(std::stoi(match[3]), next_line[rank]++) << "lost or reordered: " << text;
  }
  for (int rank = 0; rank < kNodes; ++rank) EXPECT_EQ(next_line[rank], kLines) << rank;

  const std::regex err_line("\\[node (\\d)\\] r(\\d) err (\\d+)");
  int err_lines = 0;
  for (const absl::string_view line : absl::StrSplit(Stderr(), '\n', absl::SkipEmpty())) {
    std::smatch match;
    const std::string text(line);
    ASSERT_TRUE(std::regex_match(text, match, err_line)) << text;
    ASSERT_EQ(match[1], match[2]) << text;
    ++err_lines;
  }
  EXPECT_EQ(err_lines, kNodes * kLines / 10);
}

TEST_F(SuperviseTest, PartialWritesJoinAndTheLastPartialLineIsFlushed) {
  absl::StatusOr<SuperviseResult> result = Supervise(Options({
      ShellNode("printf 'half'; sleep 0.3; printf ' line\\n10%%\\r20%%\\r\\ndone'"),
      ShellNode("sleep 0.1; echo other"),
  }));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_EQ(Stdout(),
            "[node 1] other\n[node 0] half line\n[node 0] 10%\n[node 0] 20%\n[node 0] done\n");
}

TEST_F(SuperviseTest, LabelPrefixesLines) {
  SuperviseOptions options = Options({ShellNode("echo hi"), ShellNode("echo oops >&2")});
  options.label = "worker";
  absl::StatusOr<SuperviseResult> result = Supervise(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(Stdout(), "[worker 0] hi\n");
  EXPECT_EQ(Stderr(), "[worker 1] oops\n");
}

TEST_F(SuperviseTest, AllNodesSucceeding) {
  absl::StatusOr<SuperviseResult> result =
      Supervise(Options({ShellNode("exit 0"), ShellNode("true")}));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0);
  ASSERT_EQ(result->nodes.size(), 2u);
  EXPECT_EQ(result->nodes[1].rank, 1);
  EXPECT_FALSE(result->nodes[1].signaled);
  EXPECT_EQ(result->summary, "all 2 nodes exited with status 0");
  EXPECT_EQ(Stderr(), "") << "nothing to report";
}

TEST_F(SuperviseTest, ExitCodeIsTheNodesWorst) {
  absl::StatusOr<SuperviseResult> result =
      Supervise(Options({ShellNode("exit 0"), ShellNode("exit 3")}));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 3);
  EXPECT_EQ(result->nodes[1].code_or_signal, 3);
  EXPECT_THAT(result->summary, HasSubstr("node 1 exited with status 3"));
  EXPECT_THAT(result->summary, Not(HasSubstr("node 0")));
  EXPECT_THAT(Stderr(), HasSubstr("[launcher] node 1 exited with status 3 after "));
}

TEST_F(SuperviseTest, NodeKilledBySignalCountsAs128PlusSignal) {
  absl::StatusOr<SuperviseResult> result =
      Supervise(Options({ShellNode("exit 0"), ShellNode("exit 100"), ShellNode("kill -9 $$")}));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 137);
  EXPECT_TRUE(result->nodes[2].signaled);
  EXPECT_EQ(result->nodes[2].code_or_signal, SIGKILL);
  EXPECT_THAT(result->summary, HasSubstr("node 2 was killed by SIGKILL"));
  EXPECT_THAT(result->summary, HasSubstr("node 1 exited with status 100"));
}

// Node 1 fails; node 3 finishes by itself within the grace; node 0 (and the sleep it started in
// the background) stop at SIGTERM; node 2 ignores SIGTERM and needs the SIGKILL.
TEST_F(SuperviseTest, FirstFailureStopsTheOthersAfterTheGrace) {
  SuperviseOptions options = Options({
      ShellNode("echo $$ > " + PidFile("n0") + "; sleep 60 & echo $! > " + PidFile("n0-child") +
                "; wait"),
      ShellNode("sleep 0.2; echo bye >&2; exit 5"),
      ShellNode("trap '' TERM; echo $$ > " + PidFile("n2") + "; while :; do sleep 0.05; done"),
      ShellNode("sleep 0.4; exit 0"),
  });
  options.grace = milliseconds(1000);
  const Clock::time_point start = Clock::now();
  absl::StatusOr<SuperviseResult> result = Supervise(options);
  const auto took = Clock::now() - start;
  ASSERT_TRUE(result.ok()) << result.status();

  // 0.2 s until the failure, then the grace, then 2 s to SIGKILL; 3 s is the budget past grace.
  EXPECT_LT(took, milliseconds(200) + options.grace + std::chrono::seconds(3));
  EXPECT_GT(took, milliseconds(200) + options.grace + std::chrono::seconds(2) - milliseconds(100));
  for (const char* name : {"n0", "n0-child", "n2"}) {
    const pid_t pid = WaitForPidFile(PidFile(name), milliseconds(0));
    ASSERT_GT(pid, 0) << name;
    EXPECT_FALSE(IsAlive(pid)) << name << " survived";
  }

  ASSERT_EQ(result->nodes.size(), 4u);
  EXPECT_TRUE(result->nodes[0].signaled);
  EXPECT_EQ(result->nodes[0].code_or_signal, SIGTERM);
  EXPECT_TRUE(result->nodes[0].stopped_by_launcher);
  EXPECT_EQ(result->nodes[1].code_or_signal, 5);
  EXPECT_FALSE(result->nodes[1].stopped_by_launcher);
  EXPECT_TRUE(result->nodes[2].signaled);
  EXPECT_EQ(result->nodes[2].code_or_signal, SIGKILL);
  EXPECT_FALSE(result->nodes[3].signaled);
  EXPECT_EQ(result->nodes[3].code_or_signal, 0);
  EXPECT_FALSE(result->nodes[3].stopped_by_launcher);
  EXPECT_EQ(result->exit_code, 128 + SIGTERM);

  EXPECT_THAT(result->summary, HasSubstr("node 1 exited with status 5 after 0."));
  EXPECT_THAT(result->summary, HasSubstr("(the first to fail)"));
  EXPECT_THAT(result->summary, HasSubstr("node 2 was killed by SIGKILL"));
  EXPECT_THAT(result->summary, Not(HasSubstr("node 3")));
  const std::vector<std::string> report = absl::StrSplit(Stderr(), '\n', absl::SkipEmpty());
  ASSERT_GE(report.size(), 4u) << Stderr();
  EXPECT_EQ(report[0], "[node 1] bye") << "a node's last words come before the report of its end";
  EXPECT_THAT(report[1], ::testing::StartsWith("[launcher] node 1 exited with status 5 after 0."));
  EXPECT_THAT(Stderr(),
              HasSubstr("sending SIGTERM to nodes 0, 2 (still running 1.0 s after node 1"));
  EXPECT_THAT(Stderr(), HasSubstr("sending SIGKILL to node 2 (still running 2.0 s after SIGTERM)"));
}

TEST_F(SuperviseTest, ZeroGraceStopsTheOthersAtOnce) {
  SuperviseOptions options = Options({ShellNode("exec sleep 60"), ShellNode("exit 1")});
  options.grace = milliseconds(0);
  const Clock::time_point start = Clock::now();
  absl::StatusOr<SuperviseResult> result = Supervise(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(result->nodes[0].code_or_signal, SIGTERM);
}

TEST_F(SuperviseTest, ProgramThatCannotRunIsAClearErrorAndStopsStartedNodes) {
  const Clock::time_point start = Clock::now();
  absl::StatusOr<SuperviseResult> result = Supervise(Options({
      ShellNode("echo $$ > " + PidFile("n0") + "; exec sleep 60"),
      {"/nonexistent/gradflow-runtime", {"--graph", "g.fb"}},
  }));
  ASSERT_FALSE(result.ok());
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  EXPECT_THAT(result.status().message(), HasSubstr("node 1"));
  EXPECT_THAT(result.status().message(), HasSubstr("/nonexistent/gradflow-runtime"));
  const pid_t first = WaitForPidFile(PidFile("n0"), milliseconds(0));
  if (first > 0) {
    EXPECT_FALSE(IsAlive(first)) << "node 0 was left running";
  }

  absl::StatusOr<SuperviseResult> not_on_path =
      Supervise(Options({{"gradflow-no-such-program", {}}}));
  ASSERT_FALSE(not_on_path.ok());
  EXPECT_THAT(not_on_path.status().message(), HasSubstr("gradflow-no-such-program"));
}

TEST_F(SuperviseTest, RejectsAnEmptyJob) {
  absl::StatusOr<SuperviseResult> result = Supervise(Options({}));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SuperviseTest, NodesReadEndOfFileFromStdin) {
  absl::StatusOr<SuperviseResult> result = Supervise(Options({ShellNode("cat; echo eof")}));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(Stdout(), "[node 0] eof\n");
}

}  // namespace
}  // namespace gradflow::runtime::launch
