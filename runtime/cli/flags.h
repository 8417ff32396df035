// Declarative command-line flags: each flag is declared once with its default and help, so that
// parsing, validation messages and --help can never disagree.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace gradflow::runtime {

class FlagSet {
 public:
  explicit FlagSet(std::string program) : program_(std::move(program)) {}

  // `name` without dashes. The target holds the default on entry and the parsed value after.
  void Int(std::string name, int64_t* target, std::string help);
  void Double(std::string name, double* target, std::string help);
  void String(std::string name, std::string* target, std::string help, std::string value_name = "S");
  // A switch: --name sets it, --no-name clears it.
  void Bool(std::string name, bool* target, std::string help);
  // A comma-separated list of integers, e.g. --lr-milestones 30,60,80.
  void IntList(std::string name, std::vector<int64_t>* target, std::string help);

  // Parses argv (without the program name). Positional arguments are refused: every input of the
  // runtime is named. Errors name the flag and what was wrong. Returns kHelp when --help was asked.
  enum class Outcome { kRun, kHelp };
  absl::StatusOr<Outcome> Parse(const std::vector<std::string>& args);

  // Flags explicitly given on the command line (for the run summary and the cross-node check).
  bool WasSet(std::string_view name) const;
  std::string Help() const;
  // "name=value" for every flag, in declaration order: what the run was configured with.
  std::vector<std::string> Values() const;

 private:
  struct Flag {
    std::string name;
    std::string help;
    std::string value_name;  // empty for switches
    std::function<absl::Status(std::string_view)> set;
    std::function<std::string()> show;
    bool is_switch = false;
    bool was_set = false;
  };
  Flag* Find(std::string_view name);
  void Add(Flag flag);

  std::string program_;
  std::vector<Flag> flags_;
};

}  // namespace gradflow::runtime
