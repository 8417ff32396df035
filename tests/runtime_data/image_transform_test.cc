#include "runtime/data/image_transform.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/data/jpeg_decoder.h"

namespace gradflow::runtime::data {
namespace {

TEST(RandomResizedCropTest, StaysInsideTheImageWithinScaleAndRatio) {
  Rng rng(42);
  for (auto [width, height] :
       {std::pair<int64_t, int64_t>{500, 375}, {375, 500}, {64, 64}, {1024, 700}}) {
    const double area = static_cast<double>(width * height);
    for (int draw = 0; draw < 2000; ++draw) {
      const CropRegion r = RandomResizedCropRegion(width, height, rng);
      ASSERT_GE(r.x, 0);
      ASSERT_GE(r.y, 0);
      ASSERT_LE(r.x + r.width, width);
      ASSERT_LE(r.y + r.height, height);
      ASSERT_EQ(r.x, std::floor(r.x));  // whole pixels, as torchvision
      // Rounding w and h to pixels moves area and ratio slightly off the drawn values.
      const double slack_w = 1.0 / r.width;
      const double slack_h = 1.0 / r.height;
      EXPECT_GE(r.width * r.height / area, 0.08 * (1 - slack_w) * (1 - slack_h));
      EXPECT_LE(r.width / r.height, 4.0 / 3.0 * (1 + slack_w) * (1 + slack_h));
      EXPECT_GE(r.width / r.height, 3.0 / 4.0 * (1 - slack_w) * (1 - slack_h));
    }
  }
}

TEST(RandomResizedCropTest, CoversTheScaleRange) {
  Rng rng(7);
  double smallest = 1;
  double largest = 0;
  for (int draw = 0; draw < 5000; ++draw) {
    const CropRegion r = RandomResizedCropRegion(800, 800, rng);
    const double fraction = r.width * r.height / (800.0 * 800.0);
    smallest = std::min(smallest, fraction);
    largest = std::max(largest, fraction);
  }
  EXPECT_LT(smallest, 0.1);
  EXPECT_GT(largest, 0.9);
}

TEST(RandomResizedCropTest, SameRngGivesSameCrop) {
  Rng a(5);
  Rng b(5);
  for (int i = 0; i < 20; ++i) {
    const CropRegion ra = RandomResizedCropRegion(640, 480, a);
    const CropRegion rb = RandomResizedCropRegion(640, 480, b);
    EXPECT_EQ(ra.x, rb.x);
    EXPECT_EQ(ra.width, rb.width);
    EXPECT_EQ(ra.height, rb.height);
  }
}

TEST(RandomResizedCropTest, FallsBackToCenteredRatioClampForExtremeImages) {
  Rng rng(3);
  // A 1000x10 strip: no crop of area >= 8% has a ratio <= 4/3, so every draw fails.
  const CropRegion wide = RandomResizedCropRegion(1000, 10, rng);
  EXPECT_EQ(wide.width, 13);
  EXPECT_EQ(wide.height, 10);
  EXPECT_EQ(wide.x, (1000 - 13) / 2);
  EXPECT_EQ(wide.y, 0);
  const CropRegion tall = RandomResizedCropRegion(10, 1000, rng);
  EXPECT_EQ(tall.width, 10);
  EXPECT_EQ(tall.height, 13);
  EXPECT_EQ(tall.y, (1000 - 13) / 2);
}

TEST(CenterCropTest, MatchesResizeThenCenterCrop) {
  // 500x375 with S=224: torchvision resizes to 341x256 and crops 224x224 at left
  // int(round(58.5)) = 58 (half to even), top 16.
  const CropRegion r = CenterCropRegion(500, 375, 224);
  const double scale_x = 500.0 / 341.0;
  const double scale_y = 375.0 / 256.0;
  EXPECT_NEAR(r.x, 58 * scale_x, 1e-9);
  EXPECT_NEAR(r.width, 224 * scale_x, 1e-9);
  EXPECT_NEAR(r.y, 16 * scale_y, 1e-9);
  EXPECT_NEAR(r.height, 224 * scale_y, 1e-9);
  // Portrait: the roles of the sides swap.
  const CropRegion tall = CenterCropRegion(375, 500, 224);
  EXPECT_NEAR(tall.x, 16 * scale_y, 1e-9);
  EXPECT_NEAR(tall.y, 58 * scale_x, 1e-9);
  // Square image: the crop is the central 224/256 of each side.
  const CropRegion square = CenterCropRegion(256, 256, 224);
  EXPECT_DOUBLE_EQ(square.x, 16);
  EXPECT_DOUBLE_EQ(square.width, 224);
}

std::vector<uint8_t> HorizontalRamp(int width, int height) {
  std::vector<uint8_t> rgb(static_cast<size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = &rgb[(static_cast<size_t>(y) * width + x) * 3];
      p[0] = static_cast<uint8_t>(x * 255 / (width - 1));
      p[1] = 128;
      p[2] = static_cast<uint8_t>(255 - y * 255 / (height - 1));
    }
  }
  return rgb;
}

TEST(ResampleTest, SolidColorBecomesNormalizedConstant) {
  std::vector<uint8_t> rgb(40 * 30 * 3);
  for (size_t i = 0; i < rgb.size(); i += 3) {
    rgb[i] = 255;
    rgb[i + 1] = 0;
    rgb[i + 2] = 100;
  }
  std::vector<float> out(3 * 16 * 16);
  ResampleToChw(rgb.data(), 40, 30, 40 * 3, {3.5, 2.25, 30, 20}, 16, false, kImageNetNormalization,
                out.data());
  const float expected[3] = {(1.0f - 0.485f) / 0.229f, (0.0f - 0.456f) / 0.224f,
                             (100.0f / 255.0f - 0.406f) / 0.225f};
  for (int c = 0; c < 3; ++c) {
    for (int i = 0; i < 256; ++i) ASSERT_NEAR(out[c * 256 + i], expected[c], 1e-4) << c << " " << i;
  }
}

TEST(ResampleTest, IdentityRegionReproducesPixels) {
  const std::vector<uint8_t> rgb = HorizontalRamp(16, 16);
  std::vector<float> out(3 * 16 * 16);
  const Normalization raw = {{0, 0, 0}, {1, 1, 1}};
  ResampleToChw(rgb.data(), 16, 16, 16 * 3, {0, 0, 16, 16}, 16, false, raw, out.data());
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 16; ++x) {
      for (int c = 0; c < 3; ++c) {
        ASSERT_NEAR(out[c * 256 + y * 16 + x] * 255.0f, rgb[(y * 16 + x) * 3 + c], 1e-3);
      }
    }
  }
}

TEST(ResampleTest, FlipMirrorsColumns) {
  const std::vector<uint8_t> rgb = HorizontalRamp(64, 48);
  std::vector<float> plain(3 * 20 * 20);
  std::vector<float> flipped(3 * 20 * 20);
  const CropRegion region{5, 4, 50, 37};
  ResampleToChw(rgb.data(), 64, 48, 64 * 3, region, 20, false, kImageNetNormalization,
                plain.data());
  ResampleToChw(rgb.data(), 64, 48, 64 * 3, region, 20, true, kImageNetNormalization,
                flipped.data());
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < 20; ++y) {
      for (int x = 0; x < 20; ++x) {
        ASSERT_EQ(flipped[c * 400 + y * 20 + x], plain[c * 400 + y * 20 + (19 - x)]);
      }
    }
  }
  // The ramp rises left to right, so the flip must fall.
  EXPECT_LT(plain[0], plain[19]);
  EXPECT_GT(flipped[0], flipped[19]);
}

TEST(ResampleTest, DownscaleAveragesInsteadOfAliasing) {
  // One-pixel black/white columns shrunk 8x: an antialiased filter gives mid-gray everywhere; a
  // 2-tap bilinear would pick near-black or near-white columns.
  std::vector<uint8_t> rgb(256 * 8 * 3);
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 256; ++x) {
      for (int c = 0; c < 3; ++c) rgb[(y * 256 + x) * 3 + c] = x % 2 == 0 ? 0 : 255;
    }
  }
  std::vector<float> out(3 * 32 * 32);
  const Normalization raw = {{0, 0, 0}, {1, 1, 1}};
  ResampleToChw(rgb.data(), 256, 8, 256 * 3, {0, 0, 256, 8}, 32, false, raw, out.data());
  for (int x = 1; x < 31; ++x) EXPECT_NEAR(out[16 * 32 + x], 0.5, 0.05) << "column " << x;
}

TEST(PickScaleTest, SmallestFactorThatStillCoversTheCrop) {
  const JpegScale quarter = PickScale(1000, 1000, 224);
  EXPECT_EQ(quarter.num * 4, quarter.denom);
  const JpegScale eighth = PickScale(2000, 1900, 224);
  EXPECT_EQ(eighth.num * 8, eighth.denom);
  const JpegScale full = PickScale(200, 300, 224);  // upscaling: decode at full size
  EXPECT_EQ(full.num, full.denom);
  const JpegScale seven_eighths = PickScale(300, 256, 224);  // 7/8 * 256 = 224
  EXPECT_EQ(seven_eighths.num * 8, seven_eighths.denom * 7);
  EXPECT_EQ(ScaledDimension(375, {1, 4}), 94);
}

}  // namespace
}  // namespace gradflow::runtime::data
