// Helpers for tests that run real processes: scratch files, shell-script nodes, liveness checks.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

#include "runtime/launch/supervise.h"

namespace gradflow::runtime::launch::testing {

// A fresh, empty directory under GRADFLOW_TEST_TMPDIR (or /tmp), unique per call.
std::string FreshTempDir(const std::string& name);

std::string ReadFile(const std::string& path);

// An fd open for writing on a new file at `path`; the caller closes it.
int CreateOutputFile(const std::string& path);

// A node that runs `script` with /bin/sh -c.
NodeCommand ShellNode(const std::string& script);

// True while `pid` exists and is not a zombie (an orphan reparented to an init that does not reap
// stays a zombie, but it runs nothing).
bool IsAlive(pid_t pid);

// Waits until `path` holds a complete line (a script wrote "$$\n" there) and returns its number;
// -1 after `timeout`.
pid_t WaitForPidFile(const std::string& path,
                     std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Waits up to `timeout` for `pid` to be gone; returns whether it is.
bool WaitUntilGone(pid_t pid, std::chrono::milliseconds timeout);

}  // namespace gradflow::runtime::launch::testing
