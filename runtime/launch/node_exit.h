// How node exits are told to people and folded into the job's exit status.
#pragma once

#include <string>
#include <vector>

#include "runtime/launch/supervise.h"

namespace gradflow::runtime::launch {

// "SIGKILL" for 9; "signal 77" when the name is unknown.
std::string SignalName(int signal_number);

bool Failed(const NodeExit& exit);

// The shell's convention: the exit status, or 128 + the signal.
int ShellExitCode(const NodeExit& exit);

// "node 2 was killed by SIGKILL after 12.3 s", "node 0 exited with status 1 after 0.4 s".
std::string DescribeExit(const std::string& label, const NodeExit& exit);

// One line over all nodes (by rank): the failed ones, the first to fail marked, or that all
// succeeded. `stop_signal` is the SIGINT/SIGTERM the supervisor got, 0 if none.
std::string SummarizeJob(const std::string& label, const std::vector<NodeExit>& exits,
                         int first_failed_rank, int stop_signal);

}  // namespace gradflow::runtime::launch
