// Random examples of any shape, for benchmarks that must not depend on disk or decoding.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/data/dataset.h"

namespace gradflow::runtime::data {

class SyntheticDataset final : public Dataset {
 public:
  // ImageNet's split sizes, so that iterations per epoch match a real run by default.
  static constexpr int64_t kDefaultTrainExamples = 1281167;
  static constexpr int64_t kDefaultEvalExamples = 50000;

  // Example `i` of a split is a pure function of (seed, split, i): uniform values in
  // [-sqrt(3), sqrt(3)] (mean 0, variance 1, like normalized images) and a uniform label.
  SyntheticDataset(ExampleShape shape, int32_t num_classes, uint64_t seed,
                   int64_t train_examples = kDefaultTrainExamples,
                   int64_t eval_examples = kDefaultEvalExamples);

  std::string Describe() const override;
  int64_t NumExamples(Split split) const override {
    return split == Split::kTrain ? train_examples_ : eval_examples_;
  }
  int32_t NumClasses() const override { return num_classes_; }
  ExampleShape Shape() const override { return shape_; }
  // Ignores `rng`: the values depend on (seed, split, index) only.
  absl::Status LoadExample(Split split, int64_t index, Rng& rng, float* out_chw,
                           int32_t* label) const override;

 private:
  ExampleShape shape_;
  int32_t num_classes_;
  uint64_t seed_;
  int64_t train_examples_;
  int64_t eval_examples_;
};

}  // namespace gradflow::runtime::data
