// Runs a program of this build as a real child process, for tests of command-line tools.
#pragma once

#include <string>
#include <vector>

namespace gradflow::testing {

struct ProcessResult {
  int exit_code = -1;   // valid when !signaled
  bool signaled = false;
  int signal = 0;
  std::string out;      // standard output
  std::string err;      // standard error
};

// Starts `program` with `args` (argv[1..]), waits, and captures both output streams. Aborts the
// test binary only if the process cannot be started at all.
ProcessResult RunProcess(const std::string& program, const std::vector<std::string>& args);

}  // namespace gradflow::testing
