// The --data flag: "synthetic[:TRAIN[,EVAL]]", "fashion-mnist[:DIR]" or "imagefolder:DIR".
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/data/dataset.h"

namespace gradflow::runtime::data {

struct DataSpecOptions {
  // [C, H, W] of the graph's image input (all zero when unknown). Synthetic data takes it as its
  // shape, imagefolder crops to H (which must equal W, with C = 3), and every dataset's shape
  // must match it.
  ExampleShape graph_input;
  // Width of the graph's logits (0 when unknown): synthetic data draws labels below it, and a
  // dataset with more classes than this is refused (its labels would be out of range).
  int32_t graph_classes = 0;
  uint64_t seed = 0;  // synthetic values
  ReportFn report;    // imagefolder notices; stderr when empty
};

// Opens the dataset that `spec` names. Errors name the flag value and what is wrong: unknown
// kind, missing or malformed files, shape or class count disagreeing with the graph.
// fashion-mnist without DIR uses Debian's /usr/share/datasets/fashion-mnist.
// synthetic defaults to ImageNet's 1281167 train / 50000 eval examples; synthetic:N sets the train
// count (eval: N/25, at least 1), synthetic:N,M both.
absl::StatusOr<std::shared_ptr<const Dataset>> ParseDataSpec(const std::string& spec,
                                                             const DataSpecOptions& options);

}  // namespace gradflow::runtime::data
