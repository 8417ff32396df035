#include "runtime/data/image_folder.h"

#include <turbojpeg.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/data/image_transform.h"
#include "runtime/data/jpeg_decoder.h"
#include "tests/runtime_data/test_files.h"

namespace gradflow::runtime::data {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using testing::EncodeJpeg;
using testing::EncodeSolidJpeg;
using ::testing::HasSubstr;
using testing::Rgb;
using testing::WriteBytes;

constexpr int64_t kCrop = 64;
constexpr Rgb kRed = {200, 30, 30};
constexpr Rgb kGreen = {20, 200, 40};

Rgb Gradient(int x, int y) {
  return {static_cast<uint8_t>(x % 256), static_cast<uint8_t>(y % 256),
          static_cast<uint8_t>((x + y) % 256)};
}

// Linear in x and y without wrapping, so any two low-pass filters agree on it away from edges.
Rgb SmoothRamp(int x, int y) {
  return {static_cast<uint8_t>(x / 4), static_cast<uint8_t>(y / 3),
          static_cast<uint8_t>((x + y) / 8)};
}

// Green between x = 64 and x = 336 of a 400-wide image, blue outside: the evaluation crop (the
// central 64/73 of the shorter side) must see only green. The edges sit on 16-pixel boundaries
// so that JPEG's chroma blocks do not smear blue into the green band.
Rgb GreenBand(int x, int /*y*/) { return x >= 64 && x < 336 ? kGreen : Rgb{10, 10, 220}; }

float Normalized(uint8_t value, int channel) {
  return (value / 255.0f - kImageNetNormalization.mean[channel]) /
         kImageNetNormalization.std[channel];
}

class ImageFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::FreshTempDir("image_folder_test");
    for (const char* folder : {"train/cat", "train/dog", "val/cat", "val/dog", "train/.hidden"}) {
      std::filesystem::create_directories(root_ + "/" + folder);
    }
    WriteBytes(root_ + "/train/cat/a.jpg", EncodeSolidJpeg(320, 240, kRed));
    WriteBytes(root_ + "/train/cat/b.JPEG", EncodeJpeg(100, 150, Gradient));
    WriteBytes(root_ + "/train/cat/c.jpeg", EncodeJpeg(500, 300, Gradient));
    std::vector<uint8_t> noise(3000);
    Rng rng(99);
    for (uint8_t& byte : noise) byte = static_cast<uint8_t>(rng.NextU64());
    WriteBytes(root_ + "/train/cat/corrupt.jpg", noise);
    std::vector<uint8_t> truncated = EncodeJpeg(400, 300, Gradient);
    truncated.resize(truncated.size() / 2);
    WriteBytes(root_ + "/train/cat/truncated.jpg", truncated);
    WriteBytes(root_ + "/train/cat/notes.txt", {'h', 'i'});
    WriteBytes(root_ + "/train/dog/d.jpg", EncodeSolidJpeg(64, 64, kGreen));
    WriteBytes(root_ + "/train/dog/e.jpg", EncodeJpeg(260, 260, Gradient));
    WriteBytes(root_ + "/val/cat/f.jpg", EncodeJpeg(400, 200, GreenBand));
    WriteBytes(root_ + "/val/dog/g.jpg", EncodeJpeg(1024, 768, SmoothRamp));
  }

  absl::StatusOr<std::unique_ptr<ImageFolderDataset>> Open() {
    ImageFolderDataset::Options options;
    options.crop_size = kCrop;
    options.report = [this](const std::string& message) { reports_.push_back(message); };
    return ImageFolderDataset::Open(root_, options);
  }

  int64_t IndexOf(const ImageFolderDataset& dataset, Split split, const std::string& name) {
    for (int64_t i = 0; i < dataset.NumExamples(split); ++i) {
      if (dataset.ExamplePath(split, i).ends_with(name)) return i;
    }
    ADD_FAILURE() << name << " not in the dataset";
    return 0;
  }

  std::string root_;
  std::vector<std::string> reports_;
};

TEST_F(ImageFolderTest, ScansClassesAndFilesInSortedOrder) {
  auto dataset = Open();
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_THAT((*dataset)->ClassNames(), ElementsAre("cat", "dog"));
  EXPECT_EQ((*dataset)->NumClasses(), 2);
  EXPECT_EQ((*dataset)->NumExamples(Split::kTrain), 7);
  EXPECT_EQ((*dataset)->NumExamples(Split::kEval), 2);
  EXPECT_EQ((*dataset)->Shape(), (ExampleShape{3, kCrop, kCrop}));
  EXPECT_EQ((*dataset)->ExamplePath(Split::kTrain, 0), root_ + "/train/cat/a.jpg");
  EXPECT_EQ((*dataset)->ExamplePath(Split::kTrain, 6), root_ + "/train/dog/e.jpg");
  EXPECT_EQ((*dataset)->ExamplePath(Split::kEval, 1), root_ + "/val/dog/g.jpg");
  ASSERT_EQ(reports_.size(), 1u);
  EXPECT_THAT(reports_[0], AllOf(HasSubstr("ignoring 1 files"), HasSubstr("notes.txt")));
}

TEST_F(ImageFolderTest, CorruptAndTruncatedFilesAreReportedOnceAndSkipped) {
  auto dataset = Open();
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  reports_.clear();
  std::vector<float> image(3 * kCrop * kCrop);
  Rng rng(1);
  int32_t label = -1;
  for (int pass = 0; pass < 3; ++pass) {
    for (int64_t i = 0; i < (*dataset)->NumExamples(Split::kTrain); ++i) {
      const std::string path = (*dataset)->ExamplePath(Split::kTrain, i);
      absl::Status status = (*dataset)->LoadExample(Split::kTrain, i, rng, image.data(), &label);
      const bool bad = path.ends_with("corrupt.jpg") || path.ends_with("truncated.jpg");
      if (bad) {
        EXPECT_TRUE(absl::IsDataLoss(status)) << path << ": " << status;
        EXPECT_THAT(status.message(), HasSubstr(path));
      } else {
        EXPECT_TRUE(status.ok()) << path << ": " << status;
        EXPECT_EQ(label, path.find("/dog/") != std::string::npos ? 1 : 0) << path;
      }
    }
  }
  EXPECT_EQ((*dataset)->CorruptFilesSeen(), 2);
  ASSERT_EQ(reports_.size(), 2u);
  EXPECT_THAT(reports_[0], HasSubstr("corrupt.jpg"));
  EXPECT_THAT(reports_[1], AllOf(HasSubstr("truncated.jpg"), HasSubstr("Premature end")));
}

TEST_F(ImageFolderTest, SolidImageIsNormalizedWithImageNetStatistics) {
  auto dataset = Open();
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  std::vector<float> image(3 * kCrop * kCrop);
  int32_t label = -1;
  const int64_t index = IndexOf(**dataset, Split::kTrain, "cat/a.jpg");
  for (uint64_t seed : {1, 2, 3}) {  // three different crops and flips
    Rng rng(seed);
    ASSERT_TRUE((*dataset)->LoadExample(Split::kTrain, index, rng, image.data(), &label).ok());
    EXPECT_EQ(label, 0);
    const uint8_t color[3] = {kRed.r, kRed.g, kRed.b};
    for (int c = 0; c < 3; ++c) {
      for (int64_t i = 0; i < kCrop * kCrop; ++i) {
        // JPEG's quantization moves a flat color by a level or two.
        ASSERT_NEAR(image[c * kCrop * kCrop + i], Normalized(color[c], c), 0.05)
            << "channel " << c << " pixel " << i;
      }
    }
  }
}

TEST_F(ImageFolderTest, EvalIsADeterministicCenterCrop) {
  auto dataset = Open();
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  const int64_t band = IndexOf(**dataset, Split::kEval, "cat/f.jpg");
  std::vector<float> first(3 * kCrop * kCrop);
  std::vector<float> second(3 * kCrop * kCrop);
  int32_t label = -1;
  Rng rng_a(1);
  Rng rng_b(2);
  ASSERT_TRUE((*dataset)->LoadExample(Split::kEval, band, rng_a, first.data(), &label).ok());
  ASSERT_TRUE((*dataset)->LoadExample(Split::kEval, band, rng_b, second.data(), &label).ok());
  EXPECT_EQ(first, second);
  const uint8_t green[3] = {kGreen.r, kGreen.g, kGreen.b};
  for (int c = 0; c < 3; ++c) {
    for (int64_t i = 0; i < kCrop * kCrop; ++i) {
      ASSERT_NEAR(first[c * kCrop * kCrop + i], Normalized(green[c], c), 0.08)
          << "channel " << c << " pixel " << i << ": the center crop reached the blue border";
    }
  }
}

TEST_F(ImageFolderTest, TrainAugmentationFollowsTheRng) {
  auto dataset = Open();
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  const int64_t index = IndexOf(**dataset, Split::kTrain, "cat/c.jpeg");
  std::vector<float> a(3 * kCrop * kCrop), b(3 * kCrop * kCrop), c(3 * kCrop * kCrop);
  int32_t label;
  Rng rng_a(11), rng_b(11), rng_c(12);
  ASSERT_TRUE((*dataset)->LoadExample(Split::kTrain, index, rng_a, a.data(), &label).ok());
  ASSERT_TRUE((*dataset)->LoadExample(Split::kTrain, index, rng_b, b.data(), &label).ok());
  ASSERT_TRUE((*dataset)->LoadExample(Split::kTrain, index, rng_c, c.data(), &label).ok());
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

// The scaled (DCT-domain) decode must land on the same region as a full-size decode: compare the
// dataset's eval output for a 1024x768 image (decoded at a reduced scale) with a full decode
// resampled by hand.
TEST_F(ImageFolderTest, ScaledDecodeMatchesFullDecode) {
  auto dataset = Open();
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  const int64_t index = IndexOf(**dataset, Split::kEval, "dog/g.jpg");
  std::vector<float> scaled(3 * kCrop * kCrop);
  int32_t label;
  Rng rng(0);
  ASSERT_TRUE((*dataset)->LoadExample(Split::kEval, index, rng, scaled.data(), &label).ok());
  EXPECT_EQ(label, 1);
  const CropRegion region = CenterCropRegion(1024, 768, kCrop);
  const JpegScale scale = PickScale(region.width, region.height, kCrop);
  ASSERT_LT(scale.num * 2, scale.denom) << "this test needs a reduced-scale decode";

  const std::vector<uint8_t> jpeg = EncodeJpeg(1024, 768, SmoothRamp);
  std::vector<uint8_t> rgb(1024 * 768 * 3);
  tjhandle handle = tjInitDecompress();
  ASSERT_EQ(tjDecompress2(handle, jpeg.data(), jpeg.size(), rgb.data(), 1024, 0, 768, TJPF_RGB, 0),
            0);
  tjDestroy(handle);
  std::vector<float> full(3 * kCrop * kCrop);
  ResampleToChw(rgb.data(), 1024, 768, 1024 * 3, region, kCrop, false, kImageNetNormalization,
                full.data());
  double total_difference = 0;
  for (size_t i = 0; i < full.size(); ++i) total_difference += std::abs(full[i] - scaled[i]);
  // A region off by half a scaled pixel (4 source pixels) would shift the red ramp by one level,
  // 0.017 after normalization.
  EXPECT_LT(total_difference / static_cast<double>(full.size()), 0.01);
}

TEST_F(ImageFolderTest, ValMustHoldTheTrainClasses) {
  std::filesystem::create_directories(root_ + "/val/bird");
  auto extra = Open();
  EXPECT_TRUE(absl::IsInvalidArgument(extra.status()));
  EXPECT_THAT(extra.status().message(),
              AllOf(HasSubstr(root_ + "/val/bird"), HasSubstr("not a class of")));
  std::filesystem::remove_all(root_ + "/val/bird");
  std::filesystem::remove_all(root_ + "/val/dog");
  auto missing = Open();
  EXPECT_THAT(missing.status().message(),
              AllOf(HasSubstr(root_ + "/val/dog"), HasSubstr("is missing")));
}

TEST_F(ImageFolderTest, MissingSplitFolderIsNamed) {
  std::filesystem::remove_all(root_ + "/val");
  auto dataset = Open();
  EXPECT_TRUE(absl::IsNotFound(dataset.status()));
  EXPECT_THAT(dataset.status().message(), HasSubstr(root_ + "/val"));
}

TEST_F(ImageFolderTest, SplitWithoutJpegsIsAnError) {
  std::filesystem::remove(root_ + "/val/cat/f.jpg");
  std::filesystem::remove(root_ + "/val/dog/g.jpg");
  auto dataset = Open();
  EXPECT_THAT(dataset.status().message(),
              AllOf(HasSubstr("no .jpg/.jpeg files"), HasSubstr(root_ + "/val")));
}

}  // namespace
}  // namespace gradflow::runtime::data
