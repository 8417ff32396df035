#include "runtime/launch/node_process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/runtime_launch/test_processes.h"

namespace gradflow::runtime::launch {
namespace {

using ::testing::HasSubstr;

TEST(ResolveProgramTest, SearchesPathOnlyForBareNames) {
  absl::StatusOr<std::string> sh = ResolveProgram("sh");
  ASSERT_TRUE(sh.ok()) << sh.status();
  EXPECT_EQ(::access(sh->c_str(), X_OK), 0) << *sh;
  EXPECT_THAT(*sh, HasSubstr("/sh"));

  absl::StatusOr<std::string> as_given = ResolveProgram("./relative/prog");
  ASSERT_TRUE(as_given.ok());
  EXPECT_EQ(*as_given, "./relative/prog");

  absl::StatusOr<std::string> missing = ResolveProgram("gradflow-no-such-program");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("'gradflow-no-such-program'"));
  EXPECT_FALSE(ResolveProgram("").ok());
}

TEST(StartNodeTest, RunsInItsOwnProcessGroupWithStdinOnDevNull) {
  absl::StatusOr<StartedNode> node = StartNode(
      "node 0", "sh", {"-c", "read line; echo \"in=[$line] pgid=$(cut -d' ' -f5 /proc/$$/stat)\""});
  ASSERT_TRUE(node.ok()) << node.status();
  int status = 0;
  ASSERT_EQ(::waitpid(node->pid, &status, 0), node->pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  char buffer[256] = {};
  const ssize_t got = ::read(node->stdout_pipe.get(), buffer, sizeof(buffer) - 1);
  ASSERT_GT(got, 0);
  EXPECT_EQ(std::string(buffer, static_cast<size_t>(got)),
            "in=[] pgid=" + std::to_string(node->pid) + "\n");
}

TEST(StartNodeTest, ExecFailuresNameTheNodeAndTheProgram) {
  absl::StatusOr<StartedNode> missing = StartNode("node 3", "/nonexistent/gradflow-node", {});
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("node 3"));
  EXPECT_THAT(missing.status().message(), HasSubstr("/nonexistent/gradflow-node"));
  EXPECT_THAT(missing.status().message(), HasSubstr("No such file or directory"));

  const std::string not_executable = testing::FreshTempDir("exec") + "/data.txt";
  std::ofstream(not_executable) << "not a program\n";
  absl::StatusOr<StartedNode> denied = StartNode("node 1", not_executable, {});
  ASSERT_FALSE(denied.ok());
  EXPECT_THAT(denied.status().message(), HasSubstr(not_executable));
  EXPECT_THAT(denied.status().message(), HasSubstr("Permission denied"));
}

}  // namespace
}  // namespace gradflow::runtime::launch
