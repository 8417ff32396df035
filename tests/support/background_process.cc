#include "tests/support/background_process.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace gradflow::testing {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

BackgroundProcess::BackgroundProcess(const std::string& program,
                                     const std::vector<std::string>& args) {
  char out_template[] = "/tmp/gradflow-bg-out-XXXXXX";
  char err_template[] = "/tmp/gradflow-bg-err-XXXXXX";
  const int out_fd = ::mkstemp(out_template);
  const int err_fd = ::mkstemp(err_template);
  if (out_fd < 0 || err_fd < 0) {
    std::perror("BackgroundProcess: mkstemp");
    std::abort();
  }
  out_path_ = out_template;
  err_path_ = err_template;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_fd, STDERR_FILENO);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const int spawned = posix_spawn(&pid_, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_fd);
  ::close(err_fd);
  if (spawned != 0) {
    std::fprintf(stderr, "BackgroundProcess: cannot start %s\n", program.c_str());
    std::abort();
  }
}

BackgroundProcess::~BackgroundProcess() {
  if (!exited_) {
    ::kill(pid_, SIGKILL);
    Reap(/*block=*/true);
  }
  ::unlink(out_path_.c_str());
  ::unlink(err_path_.c_str());
}

bool BackgroundProcess::Reap(bool block) {
  if (exited_) return true;
  for (;;) {
    const pid_t r = ::waitpid(pid_, &status_, block ? 0 : WNOHANG);
    if (r == pid_) {
      exited_ = true;
      return true;
    }
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

bool BackgroundProcess::WaitForOutput(const std::string& text, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (Slurp(out_path_).find(text) != std::string::npos ||
        Slurp(err_path_).find(text) != std::string::npos) {
      return true;
    }
    if (Reap(/*block=*/false) || std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void BackgroundProcess::Signal(int signal) {
  if (!exited_) ::kill(pid_, signal);
}

ProcessResult BackgroundProcess::Wait(std::chrono::milliseconds timeout, bool* timed_out) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool killed = false;
  while (!Reap(/*block=*/false)) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      killed = true;
      Reap(/*block=*/true);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (timed_out != nullptr) *timed_out = killed;
  ProcessResult result;
  result.signaled = WIFSIGNALED(status_);
  result.signal = result.signaled ? WTERMSIG(status_) : 0;
  result.exit_code = WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
  result.out = Slurp(out_path_);
  result.err = Slurp(err_path_);
  return result;
}

std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> children;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces, so parse after ')'.
    const std::string stat = Slurp(entry.path().string() + "/stat");
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent && state != "Z") children.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return children;
}

std::string CommandLineOf(pid_t pid) {
  std::string raw = Slurp("/proc/" + std::to_string(pid) + "/cmdline");
  for (char& c : raw) {
    if (c == '\0') c = ' ';
  }
  return raw;
}

}  // namespace gradflow::testing
