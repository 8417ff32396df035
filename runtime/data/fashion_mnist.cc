#include "runtime/data/fashion_mnist.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/data/idx_file.h"

namespace gradflow::runtime::data {
namespace {

struct LoadedSplit {
  std::vector<uint8_t> pixels;
  std::vector<uint8_t> labels;
  int64_t rows = 0;
  int64_t cols = 0;
};

absl::StatusOr<LoadedSplit> LoadSplit(const std::string& dir, const std::string& prefix) {
  const std::string images_path = absl::StrCat(dir, "/", prefix, "-images-idx3-ubyte.gz");
  const std::string labels_path = absl::StrCat(dir, "/", prefix, "-labels-idx1-ubyte.gz");
  absl::StatusOr<IdxArray> images = ReadIdxFile(images_path, 3);
  if (!images.ok()) return images.status();
  absl::StatusOr<IdxArray> labels = ReadIdxFile(labels_path, 1);
  if (!labels.ok()) return labels.status();
  if (images->dims[0] != labels->dims[0]) {
    return absl::DataLossError(absl::StrCat(images_path, " holds ", images->dims[0], " images but ",
                                            labels_path, " holds ", labels->dims[0], " labels"));
  }
  if (images->dims[1] == 0 || images->dims[2] == 0) {
    return absl::DataLossError(
        absl::StrCat(images_path, ": images of size ", images->dims[1], "x", images->dims[2]));
  }
  for (size_t i = 0; i < labels->values.size(); ++i) {
    if (labels->values[i] >= FashionMnistDataset::kClasses) {
      return absl::DataLossError(
          absl::StrCat(labels_path, ": label ", static_cast<int>(labels->values[i]), " of item ", i,
                       " is outside [0, ", FashionMnistDataset::kClasses, ")"));
    }
  }
  return LoadedSplit{std::move(images->values), std::move(labels->values), images->dims[1],
                     images->dims[2]};
}

}  // namespace

absl::StatusOr<std::unique_ptr<FashionMnistDataset>> FashionMnistDataset::Open(
    const std::string& dir) {
  absl::StatusOr<LoadedSplit> train = LoadSplit(dir, "train");
  if (!train.ok()) return train.status();
  absl::StatusOr<LoadedSplit> eval = LoadSplit(dir, "t10k");
  if (!eval.ok()) return eval.status();
  if (train->rows != eval->rows || train->cols != eval->cols) {
    return absl::DataLossError(
        absl::StrCat(dir, "/t10k-images-idx3-ubyte.gz: images are ", eval->rows, "x", eval->cols,
                     " but the train images are ", train->rows, "x", train->cols));
  }
  std::unique_ptr<FashionMnistDataset> dataset(new FashionMnistDataset());
  dataset->dir_ = dir;
  dataset->rows_ = train->rows;
  dataset->cols_ = train->cols;
  dataset->train_ = {std::move(train->pixels), std::move(train->labels)};
  dataset->eval_ = {std::move(eval->pixels), std::move(eval->labels)};
  return dataset;
}

std::string FashionMnistDataset::Describe() const { return absl::StrCat("fashion-mnist:", dir_); }

int64_t FashionMnistDataset::NumExamples(Split split) const {
  return static_cast<int64_t>(Data(split).labels.size());
}

absl::Status FashionMnistDataset::LoadExample(Split split, int64_t index, Rng& /*rng*/,
                                              float* out_chw, int32_t* label) const {
  const SplitData& data = Data(split);
  if (index < 0 || index >= static_cast<int64_t>(data.labels.size())) {
    return absl::OutOfRangeError(absl::StrCat(Describe(), ": ", SplitName(split), " index ", index,
                                              " outside [0, ", data.labels.size(), ")"));
  }
  // Folds /255, -mean and /std into one multiply-add per pixel.
  constexpr float kScale = 1.0f / (255.0f * kStd);
  constexpr float kOffset = -kMean / kStd;
  const int64_t pixels = rows_ * cols_;
  const uint8_t* src = data.pixels.data() + index * pixels;
  for (int64_t i = 0; i < pixels; ++i) out_chw[i] = static_cast<float>(src[i]) * kScale + kOffset;
  *label = data.labels[static_cast<size_t>(index)];
  return absl::OkStatus();
}

}  // namespace gradflow::runtime::data
