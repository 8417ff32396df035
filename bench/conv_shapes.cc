#include "bench/conv_shapes.h"

#include "absl/strings/str_cat.h"

namespace gradflow::bench {
namespace {

// torchvision.models.resnet50: stem, then stages of 3, 4, 6 and 3 bottleneck blocks of widths
// 64..512 (expansion 4). Each stage's first block has the 1x1 downsample projection and, from
// stage 2 on, the stride 2 on its 3x3 (v1.5) and on the projection.
constexpr ConvShape kResNet50[] = {
    {3, 64, 7, 2, 224, 1, true, "stem 7x7/2"},
    // Stage 1 (56x56, 3 blocks).
    {64, 64, 1, 1, 56, 1, false, "stage 1 block 1 reduce"},
    {256, 64, 1, 1, 56, 2, false, "stage 1 blocks 2-3 reduce"},
    {64, 64, 3, 1, 56, 3, false, "stage 1 3x3"},
    {64, 256, 1, 1, 56, 4, false, "stage 1 expand (3) + downsample (1)"},
    // Stage 2 (56 -> 28, 4 blocks).
    {256, 128, 1, 1, 56, 1, false, "stage 2 block 1 reduce"},
    {128, 128, 3, 2, 56, 1, false, "stage 2 block 1 3x3/2"},
    {256, 512, 1, 2, 56, 1, false, "stage 2 downsample 1x1/2"},
    {512, 128, 1, 1, 28, 3, false, "stage 2 blocks 2-4 reduce"},
    {128, 128, 3, 1, 28, 3, false, "stage 2 blocks 2-4 3x3"},
    {128, 512, 1, 1, 28, 4, false, "stage 2 expand"},
    // Stage 3 (28 -> 14, 6 blocks).
    {512, 256, 1, 1, 28, 1, false, "stage 3 block 1 reduce"},
    {256, 256, 3, 2, 28, 1, false, "stage 3 block 1 3x3/2"},
    {512, 1024, 1, 2, 28, 1, false, "stage 3 downsample 1x1/2"},
    {1024, 256, 1, 1, 14, 5, false, "stage 3 blocks 2-6 reduce"},
    {256, 256, 3, 1, 14, 5, false, "stage 3 blocks 2-6 3x3"},
    {256, 1024, 1, 1, 14, 6, false, "stage 3 expand"},
    // Stage 4 (14 -> 7, 3 blocks).
    {1024, 512, 1, 1, 14, 1, false, "stage 4 block 1 reduce"},
    {512, 512, 3, 2, 14, 1, false, "stage 4 block 1 3x3/2"},
    {1024, 2048, 1, 2, 14, 1, false, "stage 4 downsample 1x1/2"},
    {2048, 512, 1, 1, 7, 2, false, "stage 4 blocks 2-3 reduce"},
    {512, 512, 3, 1, 7, 2, false, "stage 4 blocks 2-3 3x3"},
    {512, 2048, 1, 1, 7, 3, false, "stage 4 expand"},
};

}  // namespace

double ConvShape::Macs(int64_t batch) const {
  const int64_t out = output_height();
  return static_cast<double>(batch) * out_channels * out * out * in_channels * kernel * kernel;
}

std::string ConvShape::Name() const {
  return absl::StrCat("c", in_channels, "_o", out_channels, "_k", kernel, "_s", stride, "_h",
                      height);
}

std::string_view DirectionName(ConvDirection direction) {
  switch (direction) {
    case ConvDirection::kForward:
      return "fwd";
    case ConvDirection::kBackwardData:
      return "bwd_data";
    case ConvDirection::kBackwardWeights:
      return "bwd_weights";
  }
  return "?";
}

std::string_view DirectionOp(ConvDirection direction) {
  switch (direction) {
    case ConvDirection::kForward:
      return "Conv2D";
    case ConvDirection::kBackwardData:
      return "Conv2DBackwardData";
    case ConvDirection::kBackwardWeights:
      return "Conv2DBackwardFilter";
  }
  return "?";
}

bool RunsInTraining(const ConvShape& shape, ConvDirection direction) {
  return !(shape.input_is_image && direction == ConvDirection::kBackwardData);
}

std::span<const ConvShape> ResNet50ConvShapes() { return kResNet50; }

}  // namespace gradflow::bench
