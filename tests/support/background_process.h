// A child process that runs while the test goes on: to watch its output, signal it (SIGKILL one
// node mid-iteration) and bound how long it may take to finish.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/support/subprocess.h"

namespace gradflow::testing {

class BackgroundProcess {
 public:
  // Starts `program` with `args`; stdout and stderr go to temporary files read back by Output()
  // and Wait(). Aborts the test binary only if the process cannot be started at all.
  BackgroundProcess(const std::string& program, const std::vector<std::string>& args);
  ~BackgroundProcess();  // SIGKILLs the process if it still runs: no orphans after a failed test
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Whether `text` appeared on stdout or stderr within `timeout` (false as soon as the process
  // has exited without printing it).
  bool WaitForOutput(const std::string& text, std::chrono::milliseconds timeout);
  void Signal(int signal);
  // Waits up to `timeout`; `timed_out` says whether it had to SIGKILL the process then.
  ProcessResult Wait(std::chrono::milliseconds timeout, bool* timed_out = nullptr);

 private:
  bool Reap(bool block);
  std::string out_path_;
  std::string err_path_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = 0;
};

// The pids of the running processes whose parent is `parent` (from /proc).
std::vector<pid_t> ChildrenOf(pid_t parent);
// A process's command line, arguments joined by spaces ("" when it is gone).
std::string CommandLineOf(pid_t pid);

}  // namespace gradflow::testing
