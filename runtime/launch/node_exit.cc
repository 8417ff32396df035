#include "runtime/launch/node_exit.h"

#include <string.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace gradflow::runtime::launch {

std::string SignalName(int signal_number) {
  // sigabbrev_np (glibc 2.32) is thread-safe, unlike strsignal, and gives "KILL" for 9.
  const char* abbreviation = ::sigabbrev_np(signal_number);
  if (abbreviation == nullptr) return absl::StrCat("signal ", signal_number);
  return absl::StrCat("SIG", abbreviation);
}

bool Failed(const NodeExit& exit) { return exit.signaled || exit.code_or_signal != 0; }

int ShellExitCode(const NodeExit& exit) {
  return exit.signaled ? 128 + exit.code_or_signal : exit.code_or_signal;
}

std::string DescribeExit(const std::string& label, const NodeExit& exit) {
  const std::string how = exit.signaled
                              ? absl::StrCat("was killed by ", SignalName(exit.code_or_signal))
                              : absl::StrCat("exited with status ", exit.code_or_signal);
  return absl::StrFormat("%s %d %s after %.1f s", label, exit.rank, how,
                         static_cast<double>(exit.after.count()) / 1000.0);
}

std::string SummarizeJob(const std::string& label, const std::vector<NodeExit>& exits,
                         int first_failed_rank, int stop_signal) {
  std::vector<std::string> failures;
  for (const NodeExit& exit : exits) {
    if (!Failed(exit)) continue;
    std::string line = DescribeExit(label, exit);
    if (exit.rank == first_failed_rank) {
      // The cause leads; the others mostly failed because of it.
      failures.insert(failures.begin(), absl::StrCat(line, " (the first to fail)"));
      continue;
    }
    if (exit.stopped_by_launcher) absl::StrAppend(&line, " (stopped by the launcher)");
    failures.push_back(std::move(line));
  }
  std::string summary;
  if (stop_signal != 0) {
    absl::StrAppend(&summary, "stopped by ", SignalName(stop_signal), ": ");
  }
  if (failures.empty()) {
    absl::StrAppend(&summary, "all ", exits.size(), " ", label, exits.size() == 1 ? "" : "s",
                    " exited with status 0");
  } else {
    absl::StrAppend(&summary, failures.size(), " of ", exits.size(), " ", label,
                    exits.size() == 1 ? "" : "s", " failed: ", absl::StrJoin(failures, "; "));
  }
  return summary;
}

}  // namespace gradflow::runtime::launch
