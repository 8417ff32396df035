#include "runtime/data/data_spec.h"

#include <algorithm>
#include <filesystem>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/data/fashion_mnist.h"
#include "runtime/data/image_folder.h"
#include "runtime/data/synthetic.h"

namespace gradflow::runtime::data {
namespace {

constexpr char kUsage[] =
    "expected synthetic[:TRAIN[,EVAL]], fashion-mnist[:DIR] or imagefolder:DIR";

bool Known(const ExampleShape& shape) { return shape.channels > 0; }

bool IsDirectory(const std::string& path) {
  std::error_code error;
  return std::filesystem::is_directory(path, error);
}

absl::StatusOr<std::shared_ptr<const Dataset>> OpenSynthetic(const std::string& spec,
                                                             const std::string& argument,
                                                             const DataSpecOptions& options) {
  if (!Known(options.graph_input) || options.graph_classes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--data ", spec,
                     ": synthetic data takes its shape and class count from the graph's "
                     "input and logits, which were not given"));
  }
  int64_t train = SyntheticDataset::kDefaultTrainExamples;
  int64_t eval = SyntheticDataset::kDefaultEvalExamples;
  if (!argument.empty()) {
    std::vector<std::string> counts = absl::StrSplit(argument, ',');
    const bool parsed = counts.size() <= 2 && absl::SimpleAtoi(counts[0], &train) &&
                        (counts.size() == 1 || absl::SimpleAtoi(counts[1], &eval));
    if (!parsed || train < 1 || eval < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--data ", spec, ": synthetic takes positive example counts TRAIN[,EVAL]"));
    }
    if (counts.size() == 1) eval = std::max<int64_t>(1, train / 25);
  }
  return std::make_shared<SyntheticDataset>(options.graph_input, options.graph_classes,
                                            options.seed, train, eval);
}

absl::StatusOr<std::shared_ptr<const Dataset>> OpenFashionMnist(const std::string& spec,
                                                                const std::string& argument) {
  const std::string dir = argument.empty() ? FashionMnistDataset::kDebianDir : argument;
  if (!IsDirectory(dir)) {
    return absl::NotFoundError(absl::StrCat(
        "--data ", spec, ": ", dir, " is not a directory",
        argument.empty() ? " (install Debian's dataset-fashion-mnist or pass fashion-mnist:DIR)"
                         : ""));
  }
  absl::StatusOr<std::unique_ptr<FashionMnistDataset>> dataset = FashionMnistDataset::Open(dir);
  if (!dataset.ok()) {
    return absl::Status(dataset.status().code(),
                        absl::StrCat("--data ", spec, ": ", dataset.status().message()));
  }
  return std::shared_ptr<const Dataset>(std::move(*dataset));
}

absl::StatusOr<std::shared_ptr<const Dataset>> OpenImageFolder(const std::string& spec,
                                                               const std::string& argument,
                                                               const DataSpecOptions& options) {
  if (argument.empty() || !IsDirectory(argument)) {
    return absl::NotFoundError(absl::StrCat("--data ", spec,
                                            ": imagefolder needs a directory "
                                            "holding train/<class>/ and val/<class>/"));
  }
  ImageFolderDataset::Options folder_options;
  if (Known(options.graph_input)) {
    const ExampleShape& input = options.graph_input;
    if (input.channels != 3 || input.height != input.width) {
      return absl::InvalidArgumentError(
          absl::StrCat("--data ", spec,
                       ": imagefolder produces square RGB crops [3,S,S], but the graph's "
                       "input is ",
                       ShapeString(input)));
    }
    folder_options.crop_size = input.height;
  }
  if (options.report) folder_options.report = options.report;
  absl::StatusOr<std::unique_ptr<ImageFolderDataset>> dataset =
      ImageFolderDataset::Open(argument, std::move(folder_options));
  if (!dataset.ok()) {
    return absl::Status(dataset.status().code(),
                        absl::StrCat("--data ", spec, ": ", dataset.status().message()));
  }
  return std::shared_ptr<const Dataset>(std::move(*dataset));
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Dataset>> ParseDataSpec(const std::string& spec,
                                                             const DataSpecOptions& options) {
  const size_t colon = spec.find(':');
  const std::string kind = spec.substr(0, colon);
  const std::string argument = colon == std::string::npos ? "" : spec.substr(colon + 1);
  absl::StatusOr<std::shared_ptr<const Dataset>> dataset;
  if (kind == "synthetic") {
    dataset = OpenSynthetic(spec, argument, options);
  } else if (kind == "fashion-mnist") {
    dataset = OpenFashionMnist(spec, argument);
  } else if (kind == "imagefolder") {
    dataset = OpenImageFolder(spec, argument, options);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--data ", spec, ": unknown kind '", kind, "' (", kUsage, ")"));
  }
  if (!dataset.ok()) return dataset.status();

  const ExampleShape shape = (*dataset)->Shape();
  if (Known(options.graph_input) && shape != options.graph_input) {
    return absl::InvalidArgumentError(absl::StrCat("--data ", spec, ": examples are ",
                                                   ShapeString(shape), " but the graph's input is ",
                                                   ShapeString(options.graph_input)));
  }
  if (options.graph_classes > 0 && (*dataset)->NumClasses() > options.graph_classes) {
    return absl::InvalidArgumentError(absl::StrCat("--data ", spec, ": ", (*dataset)->NumClasses(),
                                                   " classes but the graph's logits have ",
                                                   options.graph_classes));
  }
  return dataset;
}

}  // namespace gradflow::runtime::data
