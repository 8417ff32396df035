// Scratch directories for a local job's FileStore rendezvous: fresh for every run, because a
// FileStore directory cannot be reused between runs.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace gradflow::runtime::launch {

// Creates a new directory, mode 0700, named `prefix` plus a random suffix under $TMPDIR (or /tmp
// when unset or empty), and returns its path. `prefix` must not contain '/'.
absl::StatusOr<std::string> MakePrivateDirectory(const std::string& prefix);

// Removes `path` and everything below it; symbolic links are removed, not followed. A path that
// does not exist is not an error. Refuses "" and "/".
absl::Status RemoveTree(const std::string& path);

}  // namespace gradflow::runtime::launch
