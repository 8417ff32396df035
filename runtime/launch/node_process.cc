#include "runtime/launch/node_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/launch/signal_relay.h"

namespace gradflow::runtime::launch {
namespace {

// What the child reports through the exec-status pipe when it cannot become the node.
struct ChildFailure {
  int step = 0;
  int error = 0;
};
enum ChildStep : int { kSetProcessGroup, kParentDeathSignal, kRedirect, kExec };
const char* const kStepNames[] = {"setpgid", "prctl(PR_SET_PDEATHSIG)", "dup2", "exec"};

bool IsExecutableFile(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) &&
         ::access(path.c_str(), X_OK) == 0;
}

[[noreturn]] void ReportAndExit(int status_fd, ChildStep step) {
  const ChildFailure failure{step, errno};
  [[maybe_unused]] const ssize_t ignored = ::write(status_fd, &failure, sizeof(failure));
  ::_exit(127);
}

// Runs in the forked child: async-signal-safe calls only.
[[noreturn]] void BecomeNode(pid_t supervisor, int stdin_fd, int stdout_fd, int stderr_fd,
                             int status_fd, const char* path, char* const argv[]) {
  if (::setpgid(0, 0) != 0) ReportAndExit(status_fd, kSetProcessGroup);
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ReportAndExit(status_fd, kParentDeathSignal);
  // The supervisor may have died before prctl took effect; then nobody would ever stop us.
  if (::getppid() != supervisor) ::_exit(127);

  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  for (const int signal_number : ScopedSignalRelay::kRelayedSignals) {
    ::sigaction(signal_number, &default_action, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  if (::dup2(stdin_fd, STDIN_FILENO) < 0 || ::dup2(stdout_fd, STDOUT_FILENO) < 0 ||
      ::dup2(stderr_fd, STDERR_FILENO) < 0) {
    ReportAndExit(status_fd, kRedirect);
  }
  ::execv(path, argv);
  ReportAndExit(status_fd, kExec);
}

absl::Status MakePipe(UniqueFd& read_end, UniqueFd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("cannot create a pipe: ", std::strerror(errno)));
  }
  read_end = UniqueFd(fds[0]);
  write_end = UniqueFd(fds[1]);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ResolveProgram(const std::string& program) {
  if (program.empty()) return absl::InvalidArgumentError("the program name is empty");
  if (program.find('/') != std::string::npos) return program;
  const char* path_variable = std::getenv("PATH");
  const std::string search_path =
      path_variable != nullptr ? path_variable : "/usr/local/bin:/usr/bin:/bin";
  for (const absl::string_view directory : absl::StrSplit(search_path, ':')) {
    // An empty entry means the current directory, as for execvp.
    const std::string candidate =
        directory.empty() ? program : absl::StrCat(directory, "/", program);
    if (IsExecutableFile(candidate)) return candidate;
  }
  return absl::NotFoundError(absl::StrCat(
      "program '", program, "' is not an executable file on PATH (", search_path, ")"));
}

absl::StatusOr<StartedNode> StartNode(const std::string& who, const std::string& program,
                                      const std::vector<std::string>& args) {
  absl::StatusOr<std::string> path = ResolveProgram(program);
  if (!path.ok()) {
    return absl::Status(path.status().code(),
                        absl::StrCat("cannot start ", who, ": ", path.status().message()));
  }
  // Everything the child needs is allocated now: it must not call malloc after fork.
  std::vector<std::string> argv_storage;
  argv_storage.reserve(args.size() + 1);
  argv_storage.push_back(program);
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);

  UniqueFd out_read, out_write, err_read, err_write, status_read, status_write;
  const std::pair<UniqueFd*, UniqueFd*> pipes[] = {
      {&out_read, &out_write}, {&err_read, &err_write}, {&status_read, &status_write}};
  for (const auto& [read_end, write_end] : pipes) {
    if (absl::Status made = MakePipe(*read_end, *write_end); !made.ok()) {
      return absl::InternalError(absl::StrCat("cannot start ", who, ": ", made.message()));
    }
  }
  UniqueFd dev_null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!dev_null.valid()) {
    return absl::InternalError(
        absl::StrCat("cannot start ", who, ": cannot open /dev/null: ", std::strerror(errno)));
  }

  // With every signal blocked across fork, the child cannot run our handlers (which would write
  // into the supervisor's signal pipe) before it has reset them.
  sigset_t all_signals, previous_mask;
  sigfillset(&all_signals);
  ::pthread_sigmask(SIG_SETMASK, &all_signals, &previous_mask);
  const pid_t supervisor = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    BecomeNode(supervisor, dev_null.get(), out_write.get(), err_write.get(), status_write.get(),
               path->c_str(), argv.data());
  }
  const int fork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &previous_mask, nullptr);
  if (pid < 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot start ", who, ": fork failed: ", std::strerror(fork_errno)));
  }
  // Also set here so that the group exists as soon as fork returns, whichever side runs first;
  // it fails harmlessly once the child has exec'd.
  ::setpgid(pid, pid);
  out_write.Reset();
  err_write.Reset();
  status_write.Reset();

  // EOF means the exec succeeded (the pipe is close-on-exec); a record means it did not.
  ChildFailure failure;
  ssize_t got;
  do {
    got = ::read(status_read.get(), &failure, sizeof(failure));
  } while (got < 0 && errno == EINTR);
  if (got != 0) {
    int ignored_status;
    while (::waitpid(pid, &ignored_status, 0) < 0 && errno == EINTR) {
    }
    if (got != static_cast<ssize_t>(sizeof(failure)) || failure.step < kSetProcessGroup ||
        failure.step > kExec) {
      return absl::InternalError(
          absl::StrCat("cannot start ", who, ": lost track of the child while it started"));
    }
    if (failure.step == kExec) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot start ", who, ": cannot execute '", *path, "': ", std::strerror(failure.error)));
    }
    return absl::InternalError(
        absl::StrCat("cannot start ", who, ": ", kStepNames[failure.step],
                     " failed in the child: ", std::strerror(failure.error)));
  }
  if (!SetNonBlocking(out_read.get()) || !SetNonBlocking(err_read.get())) {
    const int error = errno;
    ::kill(-pid, SIGKILL);
    int ignored_status;
    while (::waitpid(pid, &ignored_status, 0) < 0 && errno == EINTR) {
    }
    return absl::InternalError(
        absl::StrCat("cannot start ", who, ": fcntl(O_NONBLOCK): ", std::strerror(error)));
  }
  StartedNode node;
  node.pid = pid;
  node.stdout_pipe = std::move(out_read);
  node.stderr_pipe = std::move(err_read);
  return node;
}

}  // namespace gradflow::runtime::launch
