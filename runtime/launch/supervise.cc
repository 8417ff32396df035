#include "runtime/launch/supervise.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <memory>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/launch/fd_util.h"
#include "runtime/launch/line_forwarder.h"
#include "runtime/launch/node_exit.h"
#include "runtime/launch/node_process.h"
#include "runtime/launch/signal_relay.h"

namespace gradflow::runtime::launch {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kTermToKill{2000};
// Once every node has ended, how long their pipes may stay open (held by a process that left its
// node's process group) before we stop reading them.
constexpr milliseconds kOutputDrainLimit{1000};
// Per stream and poll round, so that one chatty node cannot starve the others' output.
constexpr size_t kReadBudget = 256 * 1024;
// When a node has ended: everything still in its pipes, which hold at most a few MiB.
constexpr size_t kDrainBudget = 16 * 1024 * 1024;

double Seconds(milliseconds duration) { return static_cast<double>(duration.count()) / 1000.0; }

struct Stream {
  Stream(std::string prefix, int out_fd, UniqueFd pipe)
      : fd(std::move(pipe)), forwarder(std::move(prefix), out_fd) {}
  UniqueFd fd;
  LineForwarder forwarder;

  void Pump(size_t budget) {
    if (fd.valid() && forwarder.Pump(fd.get(), budget) == LineForwarder::StreamState::kEnded) {
      Close();
    }
  }
  void Close() {
    forwarder.Finish();
    fd.Reset();
  }
};

struct Node {
  pid_t pid = -1;
  bool ended = false;
  NodeExit exit;
  std::unique_ptr<Stream> out;
  std::unique_ptr<Stream> err;
};

class Supervisor {
 public:
  Supervisor(const SuperviseOptions& options, ScopedSignalRelay& relay)
      : options_(options), relay_(relay) {}
  ~Supervisor() { KillAll(); }

  absl::Status StartAll();
  SuperviseResult Run();

 private:
  milliseconds SinceStart() const {
    return std::chrono::duration_cast<milliseconds>(Clock::now() - start_);
  }
  void Announce(const std::string& message) const {
    WriteFully(options_.stderr_fd, absl::StrCat("[launcher] ", message, "\n"));
  }
  int Running() const {
    return static_cast<int>(
        std::count_if(nodes_.begin(), nodes_.end(), [](const Node& node) { return !node.ended; }));
  }
  // "node 3" or "nodes 0, 2".
  std::string RunningNodes() const {
    std::vector<int> ranks;
    for (const Node& node : nodes_) {
      if (!node.ended) ranks.push_back(node.exit.rank);
    }
    return absl::StrCat(options_.label, ranks.size() == 1 ? " " : "s ", absl::StrJoin(ranks, ", "));
  }
  void SignalRunning(int signal_number);
  void HandleSignals();
  void ReapEnded();
  void RecordEnd(Node& node, int wait_status);
  void EnforceDeadlines();
  std::optional<Clock::time_point> NextDeadline() const;
  void PollOutput();
  void KillAll();

  const SuperviseOptions& options_;
  ScopedSignalRelay& relay_;
  Clock::time_point start_ = Clock::now();
  std::vector<Node> nodes_;
  int first_failed_rank_ = -1;
  Clock::time_point first_failure_at_;
  int stop_signal_ = 0;
  bool term_sent_ = false;
  std::optional<Clock::time_point> kill_at_;
  bool kill_sent_ = false;
  std::optional<Clock::time_point> all_ended_at_;
};

absl::Status Supervisor::StartAll() {
  start_ = Clock::now();
  nodes_.reserve(options_.nodes.size());
  for (size_t rank = 0; rank < options_.nodes.size(); ++rank) {
    const NodeCommand& command = options_.nodes[rank];
    const std::string who = absl::StrCat(options_.label, " ", rank);
    absl::StatusOr<StartedNode> started = StartNode(who, command.program, command.args);
    if (!started.ok()) return started.status();  // the destructor stops the nodes started so far
    const std::string prefix = absl::StrCat("[", who, "] ");
    Node& node = nodes_.emplace_back();
    node.pid = started->pid;
    node.exit.rank = static_cast<int>(rank);
    node.out =
        std::make_unique<Stream>(prefix, options_.stdout_fd, std::move(started->stdout_pipe));
    node.err =
        std::make_unique<Stream>(prefix, options_.stderr_fd, std::move(started->stderr_pipe));
  }
  return absl::OkStatus();
}

void Supervisor::SignalRunning(int signal_number) {
  for (Node& node : nodes_) {
    if (node.ended) continue;
    // The whole process group: whatever the node started goes with it. The node is not reaped
    // yet, so its pid (= the group's id) cannot belong to anyone else.
    ::kill(-node.pid, signal_number);
    node.exit.stopped_by_launcher = true;
  }
}

void Supervisor::HandleSignals() {
  const ScopedSignalRelay::Arrivals arrivals = relay_.Drain();
  if (arrivals.stop_signals == 0) return;
  const bool first = stop_signal_ == 0;
  if (first) stop_signal_ = arrivals.first_stop_signal;
  if (first && arrivals.stop_signals == 1) {
    Announce(absl::StrCat("got ", SignalName(stop_signal_), ": sending SIGTERM to every ",
                          options_.label, ", SIGKILL in ", Seconds(kTermToKill), " s"));
    SignalRunning(SIGTERM);
    term_sent_ = true;
    const Clock::time_point kill_at = Clock::now() + kTermToKill;
    kill_at_ = kill_at_.has_value() ? std::min(*kill_at_, kill_at) : kill_at;
    return;
  }
  // Asked twice: the user does not want to wait.
  Announce(absl::StrCat("got ", SignalName(stop_signal_), " again: sending SIGKILL to every ",
                        options_.label));
  SignalRunning(SIGKILL);
  kill_sent_ = true;
}

void Supervisor::RecordEnd(Node& node, int wait_status) {
  node.ended = true;
  node.exit.after = SinceStart();
  if (WIFSIGNALED(wait_status)) {
    node.exit.signaled = true;
    node.exit.code_or_signal = WTERMSIG(wait_status);
  } else {
    node.exit.code_or_signal = WEXITSTATUS(wait_status);
  }
  // Its last words come before our report of its end.
  node.out->Pump(kDrainBudget);
  node.err->Pump(kDrainBudget);
  if (Running() == 0) all_ended_at_ = Clock::now();

  if (!Failed(node.exit) || first_failed_rank_ >= 0 || stop_signal_ != 0) return;
  first_failed_rank_ = node.exit.rank;
  first_failure_at_ = Clock::now();
  Announce(DescribeExit(options_.label, node.exit));
  if (Running() > 0) {
    Announce(absl::StrFormat("the other %ss get %.1f s to exit on their own, then SIGTERM",
                             options_.label, Seconds(options_.grace)));
  }
}

void Supervisor::ReapEnded() {
  for (Node& node : nodes_) {
    if (node.ended) continue;
    siginfo_t info{};
    info.si_pid = 0;
    // WNOWAIT leaves the zombie in place: while it exists, its process group id cannot be reused,
    // so killing what is left of the group cannot hit a stranger.
    int waited;
    do {
      waited = ::waitid(P_PID, static_cast<id_t>(node.pid), &info, WEXITED | WNOHANG | WNOWAIT);
    } while (waited < 0 && errno == EINTR);
    if (waited < 0) {
      // ECHILD: someone else in this process reaped our child (waitpid(-1) or SIGCHLD ignored).
      Announce(absl::StrCat("lost track of ", options_.label, " ", node.exit.rank,
                            ": it was reaped outside the launcher"));
      RecordEnd(node, 255 << 8);
      continue;
    }
    if (info.si_pid == 0) continue;  // still running
    ::kill(-node.pid, SIGKILL);      // its leftovers: no orphans
    int wait_status = 0;
    while (::waitpid(node.pid, &wait_status, 0) < 0 && errno == EINTR) {
    }
    RecordEnd(node, wait_status);
  }
}

void Supervisor::EnforceDeadlines() {
  if (Running() == 0) return;
  const Clock::time_point now = Clock::now();
  if (first_failed_rank_ >= 0 && !term_sent_ && now >= first_failure_at_ + options_.grace) {
    Announce(absl::StrFormat("sending SIGTERM to %s (still running %.1f s after %s %d failed)",
                             RunningNodes(), Seconds(options_.grace), options_.label,
                             first_failed_rank_));
    SignalRunning(SIGTERM);
    term_sent_ = true;
    kill_at_ = now + kTermToKill;
  }
  if (kill_at_.has_value() && !kill_sent_ && now >= *kill_at_) {
    Announce(absl::StrFormat("sending SIGKILL to %s (still running %.1f s after SIGTERM)",
                             RunningNodes(), Seconds(kTermToKill)));
    SignalRunning(SIGKILL);
    kill_sent_ = true;
  }
}

std::optional<Clock::time_point> Supervisor::NextDeadline() const {
  if (Running() == 0) return *all_ended_at_ + kOutputDrainLimit;
  std::optional<Clock::time_point> next;
  if (first_failed_rank_ >= 0 && !term_sent_) next = first_failure_at_ + options_.grace;
  if (kill_at_.has_value() && !kill_sent_ && (!next.has_value() || *kill_at_ < *next)) {
    next = kill_at_;
  }
  return next;
}

void Supervisor::PollOutput() {
  std::vector<pollfd> watched;
  std::vector<Stream*> streams;  // streams[i] belongs to watched[i + 1]
  watched.push_back({relay_.fd(), POLLIN, 0});
  for (Node& node : nodes_) {
    for (Stream* stream : {node.out.get(), node.err.get()}) {
      if (!stream->fd.valid()) continue;
      watched.push_back({stream->fd.get(), POLLIN, 0});
      streams.push_back(stream);
    }
  }
  int timeout_ms = -1;
  if (const std::optional<Clock::time_point> deadline = NextDeadline(); deadline.has_value()) {
    // Rounded up: waking before the deadline would only make us poll again with a zero timeout.
    const auto wait = std::chrono::ceil<milliseconds>(*deadline - Clock::now());
    timeout_ms = static_cast<int>(std::clamp<int64_t>(wait.count(), 0, INT_MAX));
  }
  const int ready = ::poll(watched.data(), watched.size(), timeout_ms);
  if (ready <= 0) return;  // timeout, or EINTR: a signal byte is waiting in the relay
  for (size_t i = 1; i < watched.size(); ++i) {
    if (watched[i].revents != 0) streams[i - 1]->Pump(kReadBudget);
  }
}

SuperviseResult Supervisor::Run() {
  while (true) {
    HandleSignals();
    ReapEnded();
    EnforceDeadlines();
    if (Running() == 0) {
      const bool output_open = std::any_of(nodes_.begin(), nodes_.end(), [](const Node& node) {
        return node.out->fd.valid() || node.err->fd.valid();
      });
      if (!output_open || Clock::now() >= *all_ended_at_ + kOutputDrainLimit) break;
    }
    PollOutput();
  }
  SuperviseResult result;
  for (Node& node : nodes_) {
    if (node.out->fd.valid()) node.out->Close();
    if (node.err->fd.valid()) node.err->Close();
    result.nodes.push_back(node.exit);
    result.exit_code = std::max(result.exit_code, ShellExitCode(node.exit));
  }
  if (stop_signal_ != 0) result.exit_code = 128 + stop_signal_;
  result.summary = SummarizeJob(options_.label, result.nodes, first_failed_rank_, stop_signal_);
  return result;
}

// Only reached with nodes still running when starting a later node failed.
void Supervisor::KillAll() {
  for (Node& node : nodes_) {
    if (node.ended) continue;
    ::kill(-node.pid, SIGKILL);
    int wait_status = 0;
    while (::waitpid(node.pid, &wait_status, 0) < 0 && errno == EINTR) {
    }
    node.ended = true;
    node.out->Pump(kDrainBudget);
    node.err->Pump(kDrainBudget);
    node.out->Close();
    node.err->Close();
  }
}

}  // namespace

absl::StatusOr<SuperviseResult> Supervise(const SuperviseOptions& options) {
  if (options.nodes.empty()) return absl::InvalidArgumentError("launcher: no nodes to run");
  if (options.grace.count() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("launcher: the grace period is negative (", options.grace.count(), " ms)"));
  }
  // What the caller printed so far comes before the nodes' output.
  std::fflush(nullptr);
  absl::StatusOr<std::unique_ptr<ScopedSignalRelay>> relay = ScopedSignalRelay::Install();
  if (!relay.ok()) return relay.status();
  Supervisor supervisor(options, **relay);
  if (absl::Status started = supervisor.StartAll(); !started.ok()) return started;
  return supervisor.Run();
}

}  // namespace gradflow::runtime::launch
