// The local launcher: runs the N node processes of a job on this machine and supervises them.
// Their output is forwarded line by line with a "[node R] " prefix, the first failure is reported
// at once and stops the others, Ctrl-C stops all, and no node outlives the supervisor.
#pragma once

#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace gradflow::runtime::launch {

struct NodeCommand {
  std::string program;            // a path, or a name looked up on $PATH
  std::vector<std::string> args;  // argv[1..]
};

struct SuperviseOptions {
  std::vector<NodeCommand> nodes;  // node rank = index
  // After the first node fails, how long the others get to exit on their own (they notice through
  // collective timeouts and name the failed rank) before SIGTERM, and SIGKILL 2 s after that.
  std::chrono::milliseconds grace{10000};
  std::string label = "node";  // lines are prefixed "[node 3] "
  // Where the nodes' stdout and stderr lines go; "[launcher] " messages go to stderr_fd.
  int stdout_fd = STDOUT_FILENO;
  int stderr_fd = STDERR_FILENO;
};

struct NodeExit {
  int rank = 0;
  bool signaled = false;
  int code_or_signal = 0;              // exit status, or the signal that killed it
  std::chrono::milliseconds after{0};  // since the launch
  bool stopped_by_launcher = false;    // the launcher had sent it SIGTERM/SIGKILL before it ended
};

struct SuperviseResult {
  int exit_code = 0;            // the job's: see Supervise
  std::vector<NodeExit> nodes;  // by rank
  std::string summary;          // one line: which nodes failed how, or that all succeeded
};

// Runs every node and waits for all of them. Returns the job's status: 0 when every node exited 0,
// else the worst, a node killed by a signal counting as 128 + signal and the largest code
// winning; 130 / 143 when the supervisor itself got SIGINT / SIGTERM (then every node gets SIGTERM,
// and SIGKILL 2 s later; a second signal sends SIGKILL at once). The handlers for those signals
// (and SIGCHLD, SIGPIPE) are installed for the duration of the call only. Errors: no nodes, a
// program that cannot be executed (named in the message; nodes already started are killed), or
// another Supervise running in this process.
absl::StatusOr<SuperviseResult> Supervise(const SuperviseOptions& options);

}  // namespace gradflow::runtime::launch
