// A checkpoint writer killed (SIGKILL) midway through a large file: the previous checkpoint must
// stay loadable and the partial file must never be taken for a checkpoint.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/train/checkpoint.h"
#include "tests/runtime_train/checkpoint_test_util.h"

namespace gradflow::runtime {
namespace {

using ::testing::ElementsAre;
using testing::FileNames;
using testing::FreshDirectory;
using testing::MakeState;
using testing::TrainingState;

// A state big enough that writing it takes many chunks; cheap to fill.
TrainingState BigState(int64_t parameter_count, int64_t iteration) {
  TrainingState state = MakeState(10, iteration, 40);
  state.parameters.assign(parameter_count, 0.0f);
  state.momentum.assign(parameter_count, 0.0f);
  for (int64_t i = 0; i < parameter_count; ++i) {
    state.parameters[i] = static_cast<float>(i);
    state.momentum[i] = -static_cast<float>(i);
  }
  return state;
}

// Forks a child that writes `state` into `dir` with `options`; returns its pid. The child exits
// 0 when the write succeeded and 1 otherwise.
pid_t ForkWriter(const std::string& dir, const TrainingState& state,
                 const CheckpointWriteOptions& options) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const bool ok = WriteCheckpoint(dir, state.View(), options).ok();
    ::_exit(ok ? 0 : 1);
  }
  return pid;
}

int WaitForSignal(pid_t pid) {
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
  return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

bool NewFileHasData(const std::string& dir, const std::string& existing) {
  std::error_code error;
  for (const std::filesystem::directory_entry& entry :
       std::filesystem::directory_iterator(dir, error)) {
    if (entry.path().filename() != existing && entry.file_size(error) > 0 && !error) return true;
  }
  return false;
}

// The previous checkpoint is the newest valid one, resumes without warnings, and loads intact.
void ExpectPreviousSurvives(const std::string& dir, const TrainingState& previous) {
  absl::StatusOr<std::optional<std::string>> latest = LatestCheckpoint(dir);
  ASSERT_TRUE(latest.ok()) << latest.status();
  ASSERT_TRUE(latest->has_value());
  EXPECT_EQ(**latest, dir + "/ckpt-" + std::to_string(previous.iteration) + ".gfck");
  absl::StatusOr<ResumePoint> resume = ResumeFromDirectory(dir, previous.Expectation());
  ASSERT_TRUE(resume.ok()) << resume.status();
  EXPECT_TRUE(resume->warnings.empty());
  ASSERT_TRUE(resume->checkpoint.has_value());
  EXPECT_EQ(resume->checkpoint->iteration, previous.iteration);
  EXPECT_EQ(resume->checkpoint->parameters, previous.parameters);
}

TEST(CheckpointCrashTest, WriterKilledMidwayLeavesThePreviousCheckpoint) {
  const std::string dir = FreshDirectory("crash_hook");
  const TrainingState previous = MakeState(1000, 100, 41);
  ASSERT_TRUE(WriteCheckpoint(dir, previous.View()).ok());
  const TrainingState next = BigState(4'000'000, 200);  // ~32 MB
  // The child kills itself after 12 MB reached the file: a real SIGKILL, mid-write.
  const pid_t child = ForkWriter(dir, next, {.after_chunk = [](int64_t bytes) {
                                   if (bytes >= (int64_t{12} << 20)) ::raise(SIGKILL);
                                   return absl::OkStatus();
                                 }});
  ASSERT_GT(child, 0);
  ASSERT_EQ(WaitForSignal(child), SIGKILL);

  // The partial file is there, hidden under its temporary name, and ignored.
  const std::string partial = absl::StrCat(".ckpt-200.gfck.tmp-", child);
  EXPECT_THAT(FileNames(dir), ElementsAre(partial, "ckpt-100.gfck"));
  struct stat info {};
  ASSERT_EQ(::stat((dir + "/" + partial).c_str(), &info), 0);
  EXPECT_GE(info.st_size, int64_t{12} << 20);
  ExpectPreviousSurvives(dir, previous);

  // The next successful write clears the crashed writer's leftover.
  ASSERT_TRUE(WriteCheckpoint(dir, MakeState(1000, 300, 42).View()).ok());
  EXPECT_THAT(FileNames(dir), ElementsAre("ckpt-100.gfck", "ckpt-300.gfck"));
}

TEST(CheckpointCrashTest, WriterKilledFromOutsideNeverLeavesAPartialCheckpoint) {
  const std::string dir = FreshDirectory("crash_external");
  const TrainingState previous = MakeState(1000, 100, 43);
  ASSERT_TRUE(WriteCheckpoint(dir, previous.View()).ok());
  const TrainingState next = BigState(16'000'000, 200);  // ~128 MB
  const pid_t child = ForkWriter(dir, next, {});
  ASSERT_GT(child, 0);
  // Kill it as soon as any new file has data, whatever its name: wherever the writer is then,
  // mid-write or later.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool child_exited = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (NewFileHasData(dir, "ckpt-100.gfck")) break;
    int status = 0;
    if (::waitpid(child, &status, WNOHANG) == child) {
      child_exited = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  if (!child_exited) {
    ASSERT_EQ(::kill(child, SIGKILL), 0);
    WaitForSignal(child);
  }

  absl::StatusOr<std::vector<std::string>> listed = ListCheckpoints(dir);
  ASSERT_TRUE(listed.ok());
  if (listed->size() == 1) {
    ExpectPreviousSurvives(dir, previous);
  } else {
    // The writer finished before the kill landed: then the new checkpoint is complete.
    ASSERT_EQ(listed->size(), 2u);
    absl::StatusOr<Checkpoint> newest = LoadCheckpoint(listed->front(), next.Expectation());
    ASSERT_TRUE(newest.ok()) << newest.status();
    EXPECT_EQ(newest->iteration, 200);
  }
}

}  // namespace
}  // namespace gradflow::runtime
