// Fashion-MNIST from its four gzipped IDX files (Debian package dataset-fashion-mnist).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/data/dataset.h"

namespace gradflow::runtime::data {

class FashionMnistDataset final : public Dataset {
 public:
  // Per-pixel statistics of the 60000 training images scaled to [0,1], the values commonly used
  // for Fashion-MNIST (MNIST's 0.1307/0.3081 would leave the inputs off-center).
  static constexpr float kMean = 0.2860f;
  static constexpr float kStd = 0.3530f;
  static constexpr int32_t kClasses = 10;

  // Where Debian's dataset-fashion-mnist installs the files.
  static constexpr const char* kDebianDir = "/usr/share/datasets/fashion-mnist";

  // Loads {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz from `dir` (the train split is the
  // train files, the eval split the t10k files) into memory. Errors name the offending file:
  // missing, bad magic, truncated, label out of range, images and labels disagreeing in count,
  // or train and test images disagreeing in size.
  static absl::StatusOr<std::unique_ptr<FashionMnistDataset>> Open(const std::string& dir);

  std::string Describe() const override;
  int64_t NumExamples(Split split) const override;
  int32_t NumClasses() const override { return kClasses; }
  ExampleShape Shape() const override { return {1, rows_, cols_}; }
  // No augmentation: `rng` is unused.
  absl::Status LoadExample(Split split, int64_t index, Rng& rng, float* out_chw,
                           int32_t* label) const override;

 private:
  struct SplitData {
    std::vector<uint8_t> pixels;  // N x rows x cols
    std::vector<uint8_t> labels;  // N
  };

  FashionMnistDataset() = default;
  const SplitData& Data(Split split) const { return split == Split::kTrain ? train_ : eval_; }

  std::string dir_;
  int64_t rows_ = 0;
  int64_t cols_ = 0;
  SplitData train_;
  SplitData eval_;
};

}  // namespace gradflow::runtime::data
