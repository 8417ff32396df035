// The convolutions of torchvision's ResNet-50 (v1.5: stride on the 3x3) at 224x224, one entry
// per distinct shape with how often the network uses it. The benchmark and the PyTorch script
// measure exactly these, and the comparison weights each by its count.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace gradflow::bench {

struct ConvShape {
  int64_t in_channels;
  int64_t out_channels;
  int64_t kernel;  // square, padding kernel / 2 (same-size for stride 1)
  int64_t stride;
  int64_t height;  // of the square input
  int count;       // convolutions of ResNet-50 with this shape
  // The stem convolves the image itself, so training needs no gradient of its input: autodiff
  // emits no Conv2DBackwardData for it, and neither does PyTorch.
  bool input_is_image = false;
  std::string_view where;  // e.g. "stage 2, first block 3x3"

  int64_t padding() const { return kernel / 2; }
  int64_t output_height() const { return (height + 2 * padding() - kernel) / stride + 1; }
  // Multiply-accumulates at this batch size; all three directions do the same number.
  double Macs(int64_t batch) const;
  // "c64_o256_k1_s1_h56": the key both benchmarks and the comparison use.
  std::string Name() const;
};

enum class ConvDirection { kForward, kBackwardData, kBackwardWeights };
inline constexpr ConvDirection kAllDirections[] = {
    ConvDirection::kForward, ConvDirection::kBackwardData, ConvDirection::kBackwardWeights};

// "fwd", "bwd_data", "bwd_weights".
std::string_view DirectionName(ConvDirection direction);
// gradflow's op for that direction: Conv2D, Conv2DBackwardData, Conv2DBackwardFilter.
std::string_view DirectionOp(ConvDirection direction);
// Whether a training step of ResNet-50 runs this direction of this shape.
bool RunsInTraining(const ConvShape& shape, ConvDirection direction);

std::span<const ConvShape> ResNet50ConvShapes();

}  // namespace gradflow::bench
