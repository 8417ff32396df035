// modelc: builds zoo models into training graph files and prints graph files.
//
// Exit codes: 0 success, 1 runtime failure (a file that cannot be read or written, a model that
// fails to build), 2 usage error (unknown flag or model, missing or malformed value).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "graph/serialize.h"
#include "graph/summary.h"
#include "models/string_util.h"
#include "models/zoo.h"
#include "ops/registry.h"

namespace gradflow::models {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

constexpr std::string_view kUsage =
    "usage: modelc MODEL -o FILE [--classes N] [--image-size S] [--channels C] [--no-zero-gamma]\n"
    "       modelc --list          list the models\n"
    "       modelc --ops           list the operators\n"
    "       modelc --print FILE    summarize a graph file\n"
    "       modelc --help\n"
    "\n"
    "Builds a model's training graph (forward, loss, backward) and writes it to FILE.\n"
    "  -o, --output FILE   where to write the graph (.fb)\n"
    "  --classes N         number of classes (model default otherwise)\n"
    "  --image-size S      input height and width\n"
    "  --channels C        input channels\n"
    "  --no-zero-gamma     start the last batch norm of each residual block at gamma = 1\n"
    "                      instead of 0\n";

enum class Mode { kNone, kBuild, kList, kOps, kPrint, kHelp };

struct Args {
  Mode mode = Mode::kNone;
  std::string model;
  std::string output;
  std::string print_path;
  ModelOptions options;
};

// A usage error: its message, already naming the culprit.
struct UsageError {
  std::string message;
};

void PrintError(std::string_view message) {
  std::fprintf(stderr, "modelc: %.*s\n", static_cast<int>(message.size()), message.data());
}

class ArgParser {
 public:
  explicit ArgParser(std::vector<std::string_view> argv) : argv_(std::move(argv)) {}

  std::optional<UsageError> Parse(Args& args) {
    for (index_ = 0; index_ < argv_.size(); ++index_) {
      std::string_view arg = argv_[index_];
      std::optional<std::string_view> inline_value;
      if (arg.starts_with("--")) {
        if (size_t eq = arg.find('='); eq != std::string_view::npos) {
          inline_value = arg.substr(eq + 1);
          arg = arg.substr(0, eq);
        }
      }
      if (std::optional<UsageError> error = ParseOne(arg, inline_value, args)) return error;
    }
    return Finalize(args);
  }

 private:
  std::optional<UsageError> ParseOne(std::string_view arg,
                                     std::optional<std::string_view> inline_value, Args& args) {
    auto takes_no_value = [&]() -> std::optional<UsageError> {
      if (inline_value) return UsageError{absl::StrCat(Sv(arg), " takes no value")};
      return std::nullopt;
    };
    if (arg == "--help" || arg == "-h") {
      if (auto error = takes_no_value()) return error;
      return SetMode(args, Mode::kHelp, arg);
    }
    if (arg == "--list") {
      if (auto error = takes_no_value()) return error;
      return SetMode(args, Mode::kList, arg);
    }
    if (arg == "--ops") {
      if (auto error = takes_no_value()) return error;
      return SetMode(args, Mode::kOps, arg);
    }
    if (arg == "--no-zero-gamma") {
      if (auto error = takes_no_value()) return error;
      args.options.zero_gamma = false;
      return std::nullopt;
    }
    if (arg == "--print") {
      if (auto error = SetMode(args, Mode::kPrint, arg)) return error;
      if (!args.print_path.empty()) return UsageError{absl::StrCat(Sv(arg), " given twice")};
      return TakeValue(arg, inline_value, args.print_path);
    }
    if (arg == "-o" || arg == "--output") {
      if (!args.output.empty()) return UsageError{absl::StrCat(Sv(arg), " given twice")};
      return TakeValue(arg, inline_value, args.output);
    }
    if (arg == "--classes") return TakeNumber(arg, inline_value, args.options.classes);
    if (arg == "--image-size") return TakeNumber(arg, inline_value, args.options.image_size);
    if (arg == "--channels") return TakeNumber(arg, inline_value, args.options.channels);
    if (arg.starts_with("-") && arg != "-") {
      return UsageError{absl::StrCat("unknown flag '", Sv(arg), "'")};
    }
    if (!args.model.empty()) {
      return UsageError{
          absl::StrCat("unexpected argument '", Sv(arg), "' (the model is '", args.model, "')")};
    }
    args.model = std::string(arg);
    return std::nullopt;
  }

  std::optional<UsageError> SetMode(Args& args, Mode mode, std::string_view flag) {
    if (args.mode != Mode::kNone && args.mode != mode) {
      return UsageError{absl::StrCat(Sv(flag), " cannot be combined with ", mode_flag_)};
    }
    args.mode = mode;
    mode_flag_ = std::string(flag);
    return std::nullopt;
  }

  // The flag's value: after '=' or the next argument.
  std::optional<UsageError> TakeValue(std::string_view flag,
                                      std::optional<std::string_view> inline_value,
                                      std::string& value) {
    if (inline_value) {
      value = std::string(*inline_value);
    } else if (index_ + 1 < argv_.size()) {
      value = std::string(argv_[++index_]);
    } else {
      return UsageError{absl::StrCat(Sv(flag), " needs a value")};
    }
    if (value.empty()) return UsageError{absl::StrCat(Sv(flag), " needs a non-empty value")};
    return std::nullopt;
  }

  std::optional<UsageError> TakeNumber(std::string_view flag,
                                       std::optional<std::string_view> inline_value,
                                       std::optional<int64_t>& number) {
    std::string text;
    if (std::optional<UsageError> error = TakeValue(flag, inline_value, text)) return error;
    int64_t parsed = 0;
    if (!absl::SimpleAtoi(text, &parsed)) {
      return UsageError{absl::StrCat(Sv(flag), ": '", text, "' is not an integer")};
    }
    if (parsed <= 0) return UsageError{absl::StrCat(Sv(flag), ": ", parsed, " must be positive")};
    number = parsed;
    return std::nullopt;
  }

  std::optional<UsageError> Finalize(Args& args) {
    bool build_flags = !args.output.empty() || args.options.classes || args.options.image_size ||
                       args.options.channels || !args.options.zero_gamma;
    if (args.mode == Mode::kNone) {
      if (args.model.empty()) return UsageError{"no model given; modelc --list shows them"};
      if (args.output.empty()) {
        return UsageError{absl::StrCat("missing -o FILE for model '", args.model, "'")};
      }
      args.mode = Mode::kBuild;
      return std::nullopt;
    }
    if (!args.model.empty()) {
      return UsageError{absl::StrCat("unexpected argument '", args.model, "' with ", mode_flag_)};
    }
    if (build_flags) {
      return UsageError{
          absl::StrCat("model options (-o, --classes, ...) need a MODEL, not ", mode_flag_)};
    }
    return std::nullopt;
  }

  std::vector<std::string_view> argv_;
  size_t index_ = 0;
  std::string mode_flag_;
};

int ListModels() {
  size_t width = 0;
  for (const ZooModel& model : Zoo()) width = std::max(width, model.name.size());
  for (const ZooModel& model : Zoo()) {
    std::printf("%-*.*s  %.*s\n", static_cast<int>(width), static_cast<int>(model.name.size()),
                model.name.data(), static_cast<int>(model.description.size()),
                model.description.data());
  }
  return kExitOk;
}

int ListOps() {
  for (const graph::OpSchema* schema : ops::StandardOps().All()) {
    std::printf("%-22s v%d  %s\n", schema->name.c_str(), schema->version, schema->doc.c_str());
  }
  return kExitOk;
}

int PrintGraph(const std::string& path) {
  const graph::OpRegistry& registry = ops::StandardOps();
  absl::StatusOr<graph::Graph> graph = graph::LoadGraph(path, registry);
  if (!graph.ok()) {
    PrintError(absl::StrCat("cannot load '", path, "': ", graph.status().message()));
    return kExitFailure;
  }
  absl::StatusOr<graph::GraphSummary> summary = graph::Summarize(*graph, registry);
  if (!summary.ok()) {
    PrintError(absl::StrCat("cannot summarize '", path, "': ", summary.status().message()));
    return kExitFailure;
  }
  std::fputs(graph::FormatSummary(*graph, *summary).c_str(), stdout);
  return kExitOk;
}

int BuildAndSave(const Args& args) {
  const ZooModel* model = FindModel(args.model);
  if (model == nullptr) {
    std::string known;
    for (const ZooModel& entry : Zoo())
      absl::StrAppend(&known, known.empty() ? "" : ", ", Sv(entry.name));
    PrintError(absl::StrCat("unknown model '", args.model, "' (known: ", known, ")"));
    return kExitUsage;
  }
  if (absl::StatusOr<ModelConfig> config = ResolveOptions(*model, args.options); !config.ok()) {
    PrintError(std::string(config.status().message()));
    return kExitUsage;
  }
  absl::StatusOr<graph::Graph> graph = BuildModel(args.model, args.options, ops::StandardOps());
  if (!graph.ok()) {
    PrintError(absl::StrCat("building '", args.model, "' failed: ", graph.status().message()));
    return kExitFailure;
  }
  if (absl::Status saved = graph::SaveGraph(*graph, args.output); !saved.ok()) {
    PrintError(absl::StrCat("cannot write '", args.output, "': ", saved.message()));
    return kExitFailure;
  }
  std::printf("wrote %s: %s, %zu nodes, %zu tensors, %zu parameter tensors\n", args.output.c_str(),
              graph->name.c_str(), graph->nodes.size(), graph->tensors.size(),
              graph->param_grads.size());
  return kExitOk;
}

int Run(int argc, char** argv) {
  std::vector<std::string_view> arguments(argv + 1, argv + argc);
  Args args;
  if (std::optional<UsageError> error = ArgParser(std::move(arguments)).Parse(args)) {
    PrintError(absl::StrCat(error->message, " (see modelc --help)"));
    return kExitUsage;
  }
  switch (args.mode) {
    case Mode::kHelp:
      std::fputs(std::string(kUsage).c_str(), stdout);
      return kExitOk;
    case Mode::kList:
      return ListModels();
    case Mode::kOps:
      return ListOps();
    case Mode::kPrint:
      return PrintGraph(args.print_path);
    case Mode::kBuild:
      return BuildAndSave(args);
    case Mode::kNone:
      break;
  }
  return kExitUsage;
}

}  // namespace
}  // namespace gradflow::models

int main(int argc, char** argv) { return gradflow::models::Run(argc, argv); }
