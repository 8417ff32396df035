#include "runtime/launch/signal_relay.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace gradflow::runtime::launch {
namespace {

// The handler reads this; -1 when no relay is installed.
std::atomic<int> relay_write_fd{-1};
static_assert(std::atomic<int>::is_always_lock_free, "read from a signal handler");

void RelaySignal(int signal_number) {
  const int saved_errno = errno;
  const int fd = relay_write_fd.load(std::memory_order_relaxed);
  if (fd >= 0) {
    const unsigned char byte = static_cast<unsigned char>(signal_number);
    // A full pipe already holds a wake-up; dropping this byte loses only a duplicate SIGCHLD or a
    // stop signal beyond the ones we count.
    [[maybe_unused]] const ssize_t ignored = ::write(fd, &byte, 1);
  }
  errno = saved_errno;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ScopedSignalRelay>> ScopedSignalRelay::Install() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    return absl::InternalError(
        absl::StrCat("launcher: cannot create the signal pipe: ", std::strerror(errno)));
  }
  std::unique_ptr<ScopedSignalRelay> relay(new ScopedSignalRelay());
  relay->read_end_ = UniqueFd(fds[0]);
  relay->write_end_ = UniqueFd(fds[1]);

  int expected = -1;
  if (!relay_write_fd.compare_exchange_strong(expected, fds[1])) {
    return absl::FailedPreconditionError(
        "launcher: another supervision is already running in this process");
  }
  relay->installed_ = true;
  for (size_t i = 0; i < kRelayedSignals.size(); ++i) {
    struct sigaction action {};
    action.sa_handler = kRelayedSignals[i] == SIGPIPE ? SIG_IGN : RelaySignal;
    sigemptyset(&action.sa_mask);
    // SA_RESTART spares other threads' blocking calls; our own poll() is woken regardless.
    action.sa_flags = SA_RESTART | (kRelayedSignals[i] == SIGCHLD ? SA_NOCLDSTOP : 0);
    ::sigaction(kRelayedSignals[i], &action, &relay->saved_[i]);
  }
  return relay;
}

ScopedSignalRelay::~ScopedSignalRelay() {
  if (!installed_) return;
  for (size_t i = 0; i < kRelayedSignals.size(); ++i) {
    ::sigaction(kRelayedSignals[i], &saved_[i], nullptr);
  }
  relay_write_fd.store(-1);
}

ScopedSignalRelay::Arrivals ScopedSignalRelay::Drain() {
  Arrivals arrivals;
  unsigned char bytes[64];
  while (true) {
    const ssize_t got = ::read(read_end_.get(), bytes, sizeof(bytes));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    for (ssize_t i = 0; i < got; ++i) {
      const int signal_number = bytes[i];
      if (signal_number == SIGCHLD) {
        arrivals.child_exited = true;
      } else {
        ++arrivals.stop_signals;
        if (arrivals.first_stop_signal == 0) arrivals.first_stop_signal = signal_number;
      }
    }
  }
  return arrivals;
}

}  // namespace gradflow::runtime::launch
