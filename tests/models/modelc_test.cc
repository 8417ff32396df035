// Runs the real modelc binary as a child process, as users and scripts do.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#ifndef MODELC_PATH
#error "MODELC_PATH must name the modelc binary (tests/models/CMakeLists.txt)"
#endif

extern char** environ;

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct RunResult {
  bool exited = false;  // false: killed by a signal (a crash)
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

class ModelcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* root = std::getenv("GRADFLOW_TEST_TMPDIR");
    dir_ = root != nullptr ? std::filesystem::path(root) : std::filesystem::temp_directory_path();
    dir_ /= std::string("modelc_test.") +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + "." +
            std::to_string(getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  RunResult Run(std::vector<std::string> args) {
    args.insert(args.begin(), MODELC_PATH);
    const std::string out_path = (dir_ / "stdout").string();
    const std::string err_path = (dir_ / "stderr").string();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    RunResult result;
    const int spawned = posix_spawn(&pid, MODELC_PATH, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    EXPECT_EQ(spawned, 0) << "cannot start " << MODELC_PATH;
    if (spawned != 0) return result;
    int status = 0;
    EXPECT_EQ(waitpid(pid, &status, 0), pid);
    result.exited = WIFEXITED(status);
    result.exit_code = result.exited ? WEXITSTATUS(status) : -1;
    result.out = ReadFile(out_path);
    result.err = ReadFile(err_path);
    return result;
  }

  std::filesystem::path dir_;
};

TEST_F(ModelcTest, ListShowsEveryZooModel) {
  RunResult r = Run({"--list"});
  ASSERT_TRUE(r.exited);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (std::string_view model : {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                                 "resnet-fmnist", "mlp", "fmnist-cnn"}) {
    EXPECT_THAT(r.out, HasSubstr(model));
  }
}

TEST_F(ModelcTest, HelpPrintsUsage) {
  RunResult r = Run({"--help"});
  ASSERT_TRUE(r.exited);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("usage: modelc MODEL -o FILE"));
}

TEST_F(ModelcTest, WrittenGraphPrintsASummary) {
  const std::string path = (dir_ / "cnn.fb").string();
  RunResult built = Run({"fmnist-cnn", "-o", path, "--classes", "10"});
  ASSERT_TRUE(built.exited);
  ASSERT_EQ(built.exit_code, 0) << built.err;
  EXPECT_TRUE(std::filesystem::exists(path));

  RunResult printed = Run({"--print", path});
  ASSERT_TRUE(printed.exited);
  EXPECT_EQ(printed.exit_code, 0) << printed.err;
  EXPECT_THAT(printed.out, HasSubstr("fmnist-cnn"));
  EXPECT_THAT(printed.out, HasSubstr("421,642"));
  EXPECT_THAT(printed.out, HasSubstr("modelc "));
}

TEST_F(ModelcTest, OptionsReachTheGraph) {
  const std::string path = (dir_ / "small.fb").string();
  RunResult built = Run({"resnet18", "--output=" + path, "--classes=3", "--image-size", "32",
                         "--channels", "1", "--no-zero-gamma"});
  ASSERT_TRUE(built.exited);
  ASSERT_EQ(built.exit_code, 0) << built.err;
  RunResult printed = Run({"--print", path});
  ASSERT_TRUE(printed.exited);
  EXPECT_EQ(printed.exit_code, 0) << printed.err;
  EXPECT_THAT(printed.out, HasSubstr("classes = 3"));
  EXPECT_THAT(printed.out, HasSubstr("image_size = 32"));
  EXPECT_THAT(printed.out, HasSubstr("zero_gamma = 0"));
}

struct BadInvocation {
  std::vector<std::string> args;
  int exit_code;
  std::string culprit;  // what the message must name
};

TEST_F(ModelcTest, BadInvocationsFailCleanlyNamingTheCulprit) {
  const std::string out = (dir_ / "x.fb").string();
  const std::vector<BadInvocation> cases = {
      {{"resnet51", "-o", out}, 2, "resnet51"},
      {{"resnet50", "-o", out, "--frobnicate"}, 2, "--frobnicate"},
      {{"resnet50", "-o"}, 2, "-o"},
      {{"resnet50"}, 2, "-o"},
      {{"resnet50", "-o", out, "--classes", "ten"}, 2, "--classes"},
      {{"resnet50", "-o", out, "--classes", "12abc"}, 2, "12abc"},
      {{"resnet50", "-o", out, "--image-size", "-5"}, 2, "--image-size"},
      {{"resnet50", "-o", out, "--image-size", "16"}, 2, "image size 16"},
      {{"resnet50", "-o", out, "--channels", "99999999999999999999"}, 2, "--channels"},
      {{"resnet50", "mlp", "-o", out}, 2, "mlp"},
      {{"--list", "resnet50"}, 2, "resnet50"},
      {{"--list", "--print", out}, 2, "--print"},
      {{"--print"}, 2, "--print"},
      {{}, 2, "no model"},
      {{"--print", (dir_ / "missing.fb").string()}, 1, "missing.fb"},
      {{"mlp", "-o", (dir_ / "no" / "such" / "dir" / "m.fb").string()}, 1, "m.fb"},
  };
  for (const BadInvocation& c : cases) {
    std::string joined;
    for (const std::string& arg : c.args) joined += " " + arg;
    SCOPED_TRACE("modelc" + joined);
    RunResult r = Run(c.args);
    ASSERT_TRUE(r.exited) << "modelc died from a signal";
    EXPECT_EQ(r.exit_code, c.exit_code) << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.culprit));
    EXPECT_THAT(r.err, HasSubstr("modelc: "));
    // One clear line, not a dump.
    EXPECT_LE(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST_F(ModelcTest, GarbageGraphFilesAreRejectedWithoutACrash) {
  const std::string valid_path = (dir_ / "mlp.fb").string();
  RunResult built = Run({"mlp", "-o", valid_path});
  ASSERT_TRUE(built.exited);
  ASSERT_EQ(built.exit_code, 0) << built.err;
  const std::string valid = ReadFile(valid_path);
  ASSERT_GT(valid.size(), 64u);

  std::vector<std::pair<std::string, std::string>> files = {
      {"empty.fb", ""},
      {"text.fb", "this is not a flatbuffer at all, just some text\n"},
      {"truncated.fb", valid.substr(0, valid.size() / 2)},
  };
  // Bytes flipped through the body: the verifier or the semantic checks must catch each.
  for (size_t offset : {size_t{8}, valid.size() / 3, valid.size() / 2, valid.size() - 9}) {
    std::string corrupt = valid;
    for (size_t i = offset; i < offset + 8 && i < corrupt.size(); ++i) corrupt[i] ^= 0x5a;
    files.emplace_back("corrupt" + std::to_string(offset) + ".fb", corrupt);
  }
  for (const auto& [name, bytes] : files) {
    SCOPED_TRACE(name);
    const std::filesystem::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << bytes;
    RunResult r = Run({"--print", path.string()});
    ASSERT_TRUE(r.exited) << "modelc died from a signal";
    if (r.exit_code == 0) continue;  // a flip in padding or a name may leave a valid graph
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr(name));
  }
  for (std::string_view name : {"empty.fb", "text.fb", "truncated.fb"}) {
    RunResult r = Run({"--print", (dir_ / name).string()});
    EXPECT_EQ(r.exit_code, 1) << name;
    EXPECT_THAT(r.out, Not(HasSubstr("parameters")));
  }
}

}  // namespace
