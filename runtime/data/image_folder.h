// ImageNet-layout JPEG folders: ROOT/train/<class>/*.jpg and ROOT/val/<class>/*.jpg, decoded with
// TurboJPEG and augmented as in Goyal et al. (random-resized crop, flip) for training.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/data/dataset.h"

namespace gradflow::runtime::data {

class ImageFolderDataset final : public Dataset {
 public:
  static constexpr int64_t kDefaultCropSize = 224;

  struct Options {
    int64_t crop_size = kDefaultCropSize;  // S: examples are 3 x S x S
    ReportFn report = StderrReporter();    // corrupt images and ignored files, once each
  };

  // Scans ROOT/train and ROOT/val (names sorted, so labels and order are reproducible). Classes
  // are the sorted subfolders of train; val must hold exactly the same subfolders. Files ending
  // in .jpg/.jpeg (any case) are examples; other files are ignored with one notice per split.
  // Folders and files whose names start with '.' are skipped.
  static absl::StatusOr<std::unique_ptr<ImageFolderDataset>> Open(const std::string& root,
                                                                  Options options);

  std::string Describe() const override;
  int64_t NumExamples(Split split) const override;
  int32_t NumClasses() const override { return static_cast<int32_t>(class_names_.size()); }
  ExampleShape Shape() const override { return {3, crop_size_, crop_size_}; }

  // Train: random-resized crop (scale 0.08-1, ratio 3/4-4/3) to S, flip with p = 0.5, both drawn
  // from `rng`. Eval: shorter side to S*256/224, center crop S (deterministic). Both normalized
  // with ImageNet's mean and std. A file that cannot be read or decoded is reported once and
  // returns DataLoss every time.
  absl::Status LoadExample(Split split, int64_t index, Rng& rng, float* out_chw,
                           int32_t* label) const override;

  const std::vector<std::string>& ClassNames() const { return class_names_; }
  std::string ExamplePath(Split split, int64_t index) const;
  // Distinct files found unreadable so far.
  int64_t CorruptFilesSeen() const { return corrupt_files_.load(); }

 private:
  // Paths relative to the split folder ("<class>/<file>") packed into one string: ImageNet's
  // 1.28M names cost ~40 MB this way instead of ~130 MB as separate std::strings.
  struct SplitIndex {
    std::string folder;
    std::string names;
    std::vector<uint64_t> name_ends;
    std::vector<int32_t> labels;
    std::unique_ptr<std::atomic<uint8_t>[]> known_bad;
  };

  ImageFolderDataset() = default;
  const SplitIndex& Index(Split split) const { return split == Split::kTrain ? train_ : eval_; }
  absl::Status Decode(Split split, int64_t index, Rng& rng, float* out_chw) const;
  void Report(const std::string& message) const;

  std::string root_;
  int64_t crop_size_ = kDefaultCropSize;
  std::vector<std::string> class_names_;
  SplitIndex train_;
  SplitIndex eval_;
  ReportFn report_;
  mutable std::mutex report_mutex_;
  mutable std::atomic<int64_t> corrupt_files_{0};
};

}  // namespace gradflow::runtime::data
