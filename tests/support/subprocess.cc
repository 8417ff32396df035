#include "tests/support/subprocess.h"

#include <chrono>

#include "tests/support/background_process.h"

namespace gradflow::testing {

ProcessResult RunProcess(const std::string& program, const std::vector<std::string>& args) {
  BackgroundProcess process(program, args);
  // Tests bound their own time (ctest's timeout); a day is "until it exits".
  return process.Wait(std::chrono::hours(24));
}

}  // namespace gradflow::testing
