// Turns the signals a supervisor reacts to into bytes on a pipe, so that one poll() waits for node
// output, node exits (SIGCHLD) and Ctrl-C / SIGTERM alike, with no polling interval and no race
// between checking a flag and going to sleep.
#pragma once

#include <signal.h>

#include <array>
#include <memory>

#include "absl/status/statusor.h"
#include "runtime/launch/fd_util.h"

namespace gradflow::runtime::launch {

// Installs handlers for SIGINT, SIGTERM and SIGCHLD and ignores SIGPIPE (a closed console must not
// kill the supervisor before it has stopped its nodes). The destructor restores what was there:
// the handlers exist only while a supervision runs. At most one relay exists at a time.
class ScopedSignalRelay {
 public:
  static absl::StatusOr<std::unique_ptr<ScopedSignalRelay>> Install();
  ~ScopedSignalRelay();
  ScopedSignalRelay(const ScopedSignalRelay&) = delete;
  ScopedSignalRelay& operator=(const ScopedSignalRelay&) = delete;

  // Becomes readable when a signal arrived.
  int fd() const { return read_end_.get(); }

  struct Arrivals {
    bool child_exited = false;
    int stop_signals = 0;       // how many SIGINT/SIGTERM arrived
    int first_stop_signal = 0;  // SIGINT or SIGTERM, 0 when none
  };
  // Consumes everything pending on fd() without blocking.
  Arrivals Drain();

  // The signals whose handlers a forked child must reset to default before exec: the handlers
  // would otherwise write into our pipe between fork and exec.
  static constexpr std::array<int, 4> kRelayedSignals = {SIGINT, SIGTERM, SIGCHLD, SIGPIPE};

 private:
  ScopedSignalRelay() = default;

  UniqueFd read_end_;
  UniqueFd write_end_;
  bool installed_ = false;
  std::array<struct sigaction, kRelayedSignals.size()> saved_{};  // what the destructor restores
};

}  // namespace gradflow::runtime::launch
