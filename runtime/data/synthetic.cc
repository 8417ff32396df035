#include "runtime/data/synthetic.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace gradflow::runtime::data {

SyntheticDataset::SyntheticDataset(ExampleShape shape, int32_t num_classes, uint64_t seed,
                                   int64_t train_examples, int64_t eval_examples)
    : shape_(shape),
      num_classes_(num_classes),
      seed_(seed),
      train_examples_(train_examples),
      eval_examples_(eval_examples) {}

std::string SyntheticDataset::Describe() const {
  return absl::StrCat("synthetic:", train_examples_, " (", ShapeString(shape_), ", ", num_classes_,
                      " classes, seed ", seed_, ")");
}

absl::Status SyntheticDataset::LoadExample(Split split, int64_t index, Rng& /*rng*/, float* out_chw,
                                           int32_t* label) const {
  if (index < 0 || index >= NumExamples(split)) {
    return absl::OutOfRangeError(absl::StrCat(Describe(), ": ", SplitName(split), " index ", index,
                                              " outside [0, ", NumExamples(split), ")"));
  }
  Rng values(DeriveSeed({seed_, static_cast<uint64_t>(split), static_cast<uint64_t>(index)}));
  *label = static_cast<int32_t>(values.Below(static_cast<uint64_t>(num_classes_)));
  // Two floats per 64-bit draw keep generation well below the cost of a training step.
  const float scale = static_cast<float>(2.0 * std::sqrt(3.0) / 4294967296.0);
  const float offset = static_cast<float>(-std::sqrt(3.0));
  const int64_t count = shape_.Elements();
  int64_t i = 0;
  for (; i + 1 < count; i += 2) {
    const uint64_t bits = values.NextU64();
    out_chw[i] = static_cast<float>(static_cast<uint32_t>(bits)) * scale + offset;
    out_chw[i + 1] = static_cast<float>(static_cast<uint32_t>(bits >> 32)) * scale + offset;
  }
  if (i < count)
    out_chw[i] = static_cast<float>(static_cast<uint32_t>(values.NextU64())) * scale + offset;
  return absl::OkStatus();
}

}  // namespace gradflow::runtime::data
