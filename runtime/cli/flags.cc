#include "runtime/cli/flags.h"

#include <cmath>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace gradflow::runtime {
namespace {

absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status BadValue(std::string_view name, std::string_view value, std::string_view expected) {
  return absl::InvalidArgumentError(absl::StrCat("--", Absl(name), ": '", Absl(value),
                                                 "' is not ", Absl(expected)));
}

}  // namespace

void FlagSet::Add(Flag flag) { flags_.push_back(std::move(flag)); }

FlagSet::Flag* FlagSet::Find(std::string_view name) {
  for (Flag& f : flags_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

void FlagSet::Int(std::string name, int64_t* target, std::string help) {
  Add(Flag{.name = name,
           .help = std::move(help),
           .value_name = "N",
           .set = [target, name](std::string_view v) {
             int64_t parsed;
             if (!absl::SimpleAtoi(Absl(v), &parsed)) return BadValue(name, v, "an integer");
             *target = parsed;
             return absl::OkStatus();
           },
           .show = [target] { return absl::StrCat(*target); }});
}

void FlagSet::Double(std::string name, double* target, std::string help) {
  Add(Flag{.name = name,
           .help = std::move(help),
           .value_name = "X",
           .set = [target, name](std::string_view v) {
             double parsed;
             if (!absl::SimpleAtod(Absl(v), &parsed) || !std::isfinite(parsed)) {
               return BadValue(name, v, "a finite number");
             }
             *target = parsed;
             return absl::OkStatus();
           },
           .show = [target] { return absl::StrCat(*target); }});
}

void FlagSet::String(std::string name, std::string* target, std::string help,
                     std::string value_name) {
  Add(Flag{.name = name,
           .help = std::move(help),
           .value_name = std::move(value_name),
           .set = [target](std::string_view v) {
             *target = std::string(v);
             return absl::OkStatus();
           },
           .show = [target] { return *target; }});
}

void FlagSet::Bool(std::string name, bool* target, std::string help) {
  Add(Flag{.name = name,
           .help = std::move(help),
           .set = [target](std::string_view v) {
             *target = v == "true";
             return absl::OkStatus();
           },
           .show = [target] { return std::string(*target ? "true" : "false"); },
           .is_switch = true});
}

void FlagSet::IntList(std::string name, std::vector<int64_t>* target, std::string help) {
  Add(Flag{.name = name,
           .help = std::move(help),
           .value_name = "N,N,...",
           .set = [target, name](std::string_view v) {
             std::vector<int64_t> parsed;
             if (!v.empty()) {
               for (absl::string_view part : absl::StrSplit(Absl(v), ',')) {
                 int64_t x;
                 if (!absl::SimpleAtoi(part, &x)) {
                   return BadValue(name, v, "a comma-separated list of integers");
                 }
                 parsed.push_back(x);
               }
             }
             *target = std::move(parsed);
             return absl::OkStatus();
           },
           .show = [target] { return absl::StrJoin(*target, ","); }});
}

absl::StatusOr<FlagSet::Outcome> FlagSet::Parse(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") return Outcome::kHelp;
    if (!arg.starts_with("--") || arg.size() == 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected argument '", Absl(arg), "' (every input is a --flag; see --help)"));
    }
    std::string_view name = arg.substr(2);
    std::optional<std::string_view> inline_value;
    if (size_t eq = name.find('='); eq != std::string_view::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    Flag* flag = Find(name);
    bool negated = false;
    if (flag == nullptr && name.starts_with("no-")) {
      flag = Find(name.substr(3));
      negated = flag != nullptr && flag->is_switch;
      if (!negated) flag = nullptr;
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", Absl(name), " (see --help)"));
    }
    if (flag->was_set) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag->name, " given twice"));
    }
    flag->was_set = true;
    if (flag->is_switch) {
      if (inline_value) {
        return absl::InvalidArgumentError(absl::StrCat("--", Absl(name), " takes no value"));
      }
      if (absl::Status s = flag->set(negated ? "false" : "true"); !s.ok()) return s;
      continue;
    }
    std::string_view value;
    if (inline_value) {
      value = *inline_value;
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag->name, " needs a value (", flag->value_name, ")"));
    }
    if (absl::Status s = flag->set(value); !s.ok()) return s;
  }
  return Outcome::kRun;
}

bool FlagSet::WasSet(std::string_view name) const {
  for (const Flag& f : flags_) {
    if (f.name == name) return f.was_set;
  }
  return false;
}

std::string FlagSet::Help() const {
  std::string out = absl::StrCat("usage: ", program_, " [flags]\n\nflags (default in brackets):\n");
  for (const Flag& f : flags_) {
    const std::string left =
        f.is_switch ? absl::StrCat("--[no-]", f.name) : absl::StrCat("--", f.name, " ", f.value_name);
    absl::StrAppend(&out, absl::StrFormat("  %-28s %s [%s]\n", left, f.help, f.show()));
  }
  return out;
}

std::vector<std::string> FlagSet::Values() const {
  std::vector<std::string> values;
  for (const Flag& f : flags_) values.push_back(absl::StrCat(f.name, "=", f.show()));
  return values;
}

}  // namespace gradflow::runtime
