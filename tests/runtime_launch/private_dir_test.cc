#include "runtime/launch/private_dir.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/runtime_launch/test_processes.h"

namespace gradflow::runtime::launch {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class PrivateDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* previous = std::getenv("TMPDIR");
    if (previous != nullptr) saved_tmpdir_ = previous;
    root_ = testing::FreshTempDir("private-dir");
    ::setenv("TMPDIR", root_.c_str(), 1);
  }
  void TearDown() override {
    if (saved_tmpdir_.has_value()) {
      ::setenv("TMPDIR", saved_tmpdir_->c_str(), 1);
    } else {
      ::unsetenv("TMPDIR");
    }
  }

  std::string root_;
  std::optional<std::string> saved_tmpdir_;
};

TEST_F(PrivateDirTest, MakesFreshPrivateDirectoriesUnderTmpdir) {
  absl::StatusOr<std::string> first = MakePrivateDirectory("gradflow-rdzv-");
  absl::StatusOr<std::string> second = MakePrivateDirectory("gradflow-rdzv-");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(*first, *second);
  EXPECT_THAT(*first, StartsWith(root_ + "/gradflow-rdzv-"));
  struct stat info {};
  ASSERT_EQ(::stat(first->c_str(), &info), 0);
  EXPECT_TRUE(S_ISDIR(info.st_mode));
  EXPECT_EQ(info.st_mode & 0777, 0700u);
}

TEST_F(PrivateDirTest, RejectsPrefixesWithSlashesAndMissingParents) {
  absl::StatusOr<std::string> nested = MakePrivateDirectory("a/b");
  ASSERT_FALSE(nested.ok());
  EXPECT_THAT(nested.status().message(), HasSubstr("a/b"));
  ::setenv("TMPDIR", (root_ + "/does-not-exist").c_str(), 1);
  absl::StatusOr<std::string> missing = MakePrivateDirectory("x");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("does-not-exist"));
}

TEST_F(PrivateDirTest, RemoveTreeRemovesContentsButDoesNotFollowLinks) {
  absl::StatusOr<std::string> dir = MakePrivateDirectory("tree-");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string outside = root_ + "/outside.txt";
  std::ofstream(outside) << "keep me";
  std::filesystem::create_directories(*dir + "/a/b");
  std::ofstream(*dir + "/a/b/file") << "x";
  std::filesystem::create_symlink(outside, *dir + "/a/link");
  std::filesystem::create_directory_symlink(root_, *dir + "/root-link");

  ASSERT_TRUE(RemoveTree(*dir).ok());
  EXPECT_FALSE(std::filesystem::exists(*dir));
  EXPECT_EQ(testing::ReadFile(outside), "keep me");
  EXPECT_TRUE(RemoveTree(*dir).ok()) << "an absent tree is already removed";
}

TEST_F(PrivateDirTest, RemoveTreeRefusesTheRoot) {
  EXPECT_FALSE(RemoveTree("").ok());
  EXPECT_FALSE(RemoveTree("/").ok());
  EXPECT_FALSE(RemoveTree("//").ok());
}

}  // namespace
}  // namespace gradflow::runtime::launch
