// Starting one node process: fork + exec with stdout and stderr on pipes, stdin on /dev/null, in a
// process group of its own, and killed by the kernel should the supervisor die first.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/launch/fd_util.h"

namespace gradflow::runtime::launch {

struct StartedNode {
  pid_t pid = -1;        // also the id of the node's process group
  UniqueFd stdout_pipe;  // read ends, non-blocking
  UniqueFd stderr_pipe;
};

// The file execvp would run for `program`: itself when it contains a '/', else the first
// executable file named so on $PATH. The search happens here, before fork, because the child may
// only make async-signal-safe calls.
absl::StatusOr<std::string> ResolveProgram(const std::string& program);

// Runs `program` with argv[1..] = `args`. Returns only once the exec has happened (or failed:
// then the error names `who` and the program). Own process group: Ctrl-C on the terminal reaches
// only the supervisor, which decides what the nodes get. The parent-death signal is tied to the
// calling thread, so the caller must keep that thread alive while the node runs.
absl::StatusOr<StartedNode> StartNode(const std::string& who, const std::string& program,
                                      const std::vector<std::string>& args);

}  // namespace gradflow::runtime::launch
