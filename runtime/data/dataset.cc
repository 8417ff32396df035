#include "runtime/data/dataset.h"

#include <cstdio>

#include "absl/strings/str_cat.h"

namespace gradflow::runtime::data {

const char* SplitName(Split split) { return split == Split::kTrain ? "train" : "eval"; }

std::string ShapeString(const ExampleShape& shape) {
  return absl::StrCat("[", shape.channels, ",", shape.height, ",", shape.width, "]");
}

ReportFn StderrReporter() {
  return [](const std::string& message) { std::fprintf(stderr, "%s\n", message.c_str()); };
}

}  // namespace gradflow::runtime::data
