#include "runtime/data/fashion_mnist.h"

#include <array>
#include <cmath>
#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/runtime_data/test_files.h"

namespace gradflow::runtime::data {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::IdxBytes;
using testing::WriteGzip;

constexpr float kTolerance = 1e-5f;

// Writes the four Fashion-MNIST files with the Debian names; pixel i of image n is (n * 31 + i).
void WriteSplit(const std::string& dir, const std::string& prefix, uint32_t images, uint32_t labels,
                uint32_t side, uint8_t first_label = 0) {
  std::vector<uint8_t> pixels(static_cast<size_t>(images) * side * side);
  for (size_t i = 0; i < pixels.size(); ++i) {
    pixels[i] = static_cast<uint8_t>((i / (side * side)) * 31 + i % (side * side));
  }
  std::vector<uint8_t> label_values(labels);
  for (uint32_t i = 0; i < labels; ++i)
    label_values[i] = static_cast<uint8_t>((first_label + i) % 10);
  WriteGzip(dir + "/" + prefix + "-images-idx3-ubyte.gz", IdxBytes({images, side, side}, pixels));
  WriteGzip(dir + "/" + prefix + "-labels-idx1-ubyte.gz", IdxBytes({labels}, label_values));
}

class FashionMnistFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTempDir("fashion_mnist_test");
    WriteSplit(dir_, "train", 5, 5, 28, 3);
    WriteSplit(dir_, "t10k", 3, 3, 28);
  }
  std::string dir_;
};

TEST_F(FashionMnistFilesTest, LoadsSplitsFromTheFiles) {
  absl::StatusOr<std::unique_ptr<FashionMnistDataset>> dataset = FashionMnistDataset::Open(dir_);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ((*dataset)->NumExamples(Split::kTrain), 5);
  EXPECT_EQ((*dataset)->NumExamples(Split::kEval), 3);
  EXPECT_EQ((*dataset)->NumClasses(), 10);
  EXPECT_EQ((*dataset)->Shape(), (ExampleShape{1, 28, 28}));
  EXPECT_EQ((*dataset)->Describe(), "fashion-mnist:" + dir_);
}

TEST_F(FashionMnistFilesTest, NormalizesWithFashionMnistStatistics) {
  auto dataset = FashionMnistDataset::Open(dir_);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  std::vector<float> image(28 * 28);
  int32_t label = -1;
  Rng rng(1);
  ASSERT_TRUE((*dataset)->LoadExample(Split::kTrain, 2, rng, image.data(), &label).ok());
  EXPECT_EQ(label, 5);
  for (int i : {0, 1, 100, 224, 783}) {
    const float pixel = static_cast<float>(static_cast<uint8_t>(2 * 31 + i));
    EXPECT_NEAR(image[i], (pixel / 255.0f - 0.2860f) / 0.3530f, kTolerance) << "pixel " << i;
  }
  ASSERT_TRUE((*dataset)->LoadExample(Split::kEval, 0, rng, image.data(), &label).ok());
  EXPECT_EQ(label, 0);
  EXPECT_NEAR(image[0], -0.2860f / 0.3530f, kTolerance);
}

TEST_F(FashionMnistFilesTest, IndexOutOfRangeIsAnError) {
  auto dataset = FashionMnistDataset::Open(dir_);
  ASSERT_TRUE(dataset.ok());
  std::vector<float> image(28 * 28);
  int32_t label;
  Rng rng(1);
  absl::Status status = (*dataset)->LoadExample(Split::kEval, 3, rng, image.data(), &label);
  EXPECT_TRUE(absl::IsOutOfRange(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("eval index 3 outside [0, 3)"));
}

TEST_F(FashionMnistFilesTest, CountMismatchNamesBothFiles) {
  WriteSplit(dir_, "train", 5, 4, 28);
  auto dataset = FashionMnistDataset::Open(dir_);
  EXPECT_TRUE(absl::IsDataLoss(dataset.status()));
  EXPECT_THAT(dataset.status().message(),
              AllOf(HasSubstr(dir_ + "/train-images-idx3-ubyte.gz holds 5 images"),
                    HasSubstr(dir_ + "/train-labels-idx1-ubyte.gz holds 4 labels")));
}

TEST_F(FashionMnistFilesTest, LabelOutsideTenClassesIsNamed) {
  WriteGzip(dir_ + "/t10k-labels-idx1-ubyte.gz", IdxBytes({3}, {1, 10, 2}));
  auto dataset = FashionMnistDataset::Open(dir_);
  EXPECT_THAT(dataset.status().message(),
              AllOf(HasSubstr("t10k-labels-idx1-ubyte.gz"), HasSubstr("label 10 of item 1")));
}

TEST_F(FashionMnistFilesTest, MissingFileIsNamed) {
  std::filesystem::remove(dir_ + "/t10k-labels-idx1-ubyte.gz");
  auto dataset = FashionMnistDataset::Open(dir_);
  EXPECT_TRUE(absl::IsNotFound(dataset.status()));
  EXPECT_THAT(dataset.status().message(), HasSubstr(dir_ + "/t10k-labels-idx1-ubyte.gz"));
}

TEST_F(FashionMnistFilesTest, ImagesSwappedWithLabelsIsBadMagic) {
  std::filesystem::copy_file(dir_ + "/train-labels-idx1-ubyte.gz",
                             dir_ + "/train-images-idx3-ubyte.gz",
                             std::filesystem::copy_options::overwrite_existing);
  auto dataset = FashionMnistDataset::Open(dir_);
  EXPECT_THAT(dataset.status().message(),
              AllOf(HasSubstr("train-images-idx3-ubyte.gz"), HasSubstr("bad IDX magic")));
}

TEST_F(FashionMnistFilesTest, TrainAndTestImageSizesMustAgree) {
  WriteSplit(dir_, "t10k", 3, 3, 14);
  auto dataset = FashionMnistDataset::Open(dir_);
  EXPECT_THAT(dataset.status().message(), AllOf(HasSubstr("t10k-images-idx3-ubyte.gz"),
                                                HasSubstr("14x14"), HasSubstr("28x28")));
}

// The real dataset from Debian's dataset-fashion-mnist package, when installed.
TEST(FashionMnistPackageTest, MatchesThePublishedDataset) {
  const std::string dir = FashionMnistDataset::kDebianDir;
  if (!std::filesystem::exists(dir + "/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed (" << dir << ")";
  }
  auto dataset = FashionMnistDataset::Open(dir);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  ASSERT_EQ((*dataset)->NumExamples(Split::kTrain), 60000);
  ASSERT_EQ((*dataset)->NumExamples(Split::kEval), 10000);

  // The published statistics: balanced classes (6000 per class) and a mean pixel of ~0.2860 with
  // standard deviation ~0.3530 over the training images, which is what normalization assumes.
  std::array<int64_t, 10> per_class{};
  std::vector<float> image(28 * 28);
  double sum = 0;
  double sum_of_squares = 0;
  Rng rng(0);
  for (int64_t i = 0; i < 60000; ++i) {
    int32_t label = -1;
    ASSERT_TRUE((*dataset)->LoadExample(Split::kTrain, i, rng, image.data(), &label).ok());
    ASSERT_GE(label, 0);
    ASSERT_LT(label, 10);
    ++per_class[label];
    for (float value : image) {
      const double pixel = value * 0.3530 + 0.2860;
      sum += pixel;
      sum_of_squares += pixel * pixel;
    }
  }
  for (int64_t count : per_class) EXPECT_EQ(count, 6000);
  const double pixels = 60000.0 * 784.0;
  const double mean = sum / pixels;
  EXPECT_NEAR(mean, 0.2860, 5e-4);
  EXPECT_NEAR(std::sqrt(sum_of_squares / pixels - mean * mean), 0.3530, 5e-4);

  std::array<int64_t, 10> eval_per_class{};
  for (int64_t i = 0; i < 10000; ++i) {
    int32_t label = -1;
    ASSERT_TRUE((*dataset)->LoadExample(Split::kEval, i, rng, image.data(), &label).ok());
    ++eval_per_class[label];
  }
  for (int64_t count : eval_per_class) EXPECT_EQ(count, 1000);
}

}  // namespace
}  // namespace gradflow::runtime::data
