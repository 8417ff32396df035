#include "models/zoo/resnet_blocks.h"

#include <string>

#include "models/layers.h"

namespace gradflow::models::zoo {
namespace {

int64_t ChannelsOf(const ModelBuilder& b, Value x) {
  const graph::Shape& shape = b.ShapeOf(x);
  return shape.size() == 4 ? shape[1] : 0;
}

// torchvision's `downsample`: a strided 1x1 projection and its batch norm, used when the block
// changes the resolution or the channel count, so the identity no longer fits.
Value Shortcut(ModelBuilder& b, Value x, int64_t out_channels, int64_t stride) {
  if (stride == 1 && ChannelsOf(b, x) == out_channels) return x;
  auto scope = b.Scope("downsample");
  Value y = conv2d(b, x, out_channels, 1, stride, {.name = "0"});
  return batch_norm(b, y, {.name = "1"});
}

}  // namespace

int64_t Expansion(BlockKind kind) { return kind == BlockKind::kBottleneck ? 4 : 1; }

Value BasicBlock(ModelBuilder& b, Value x, int64_t planes, int64_t stride, bool zero_gamma) {
  Value y = conv_bn_relu(b, x, planes, 3, stride, {.conv_name = "conv1", .bn_name = "bn1"});
  y = conv_bn_relu(
      b, y, planes, 3, 1,
      {.zero_gamma = zero_gamma, .with_relu = false, .conv_name = "conv2", .bn_name = "bn2"});
  return relu(b, add(b, y, Shortcut(b, x, planes, stride)));
}

Value Bottleneck(ModelBuilder& b, Value x, int64_t planes, int64_t stride, bool zero_gamma) {
  const int64_t out_channels = planes * Expansion(BlockKind::kBottleneck);
  Value y = conv_bn_relu(b, x, planes, 1, 1, {.conv_name = "conv1", .bn_name = "bn1"});
  y = conv_bn_relu(b, y, planes, 3, stride, {.conv_name = "conv2", .bn_name = "bn2"});
  y = conv_bn_relu(
      b, y, out_channels, 1, 1,
      {.zero_gamma = zero_gamma, .with_relu = false, .conv_name = "conv3", .bn_name = "bn3"});
  return relu(b, add(b, y, Shortcut(b, x, out_channels, stride)));
}

Value ResidualStage(ModelBuilder& b, Value x, BlockKind kind, int64_t planes, int blocks,
                    int64_t stride, bool zero_gamma) {
  for (int i = 0; i < blocks; ++i) {
    auto scope = b.Scope(std::to_string(i));
    int64_t block_stride = i == 0 ? stride : 1;
    x = kind == BlockKind::kBottleneck ? Bottleneck(b, x, planes, block_stride, zero_gamma)
                                       : BasicBlock(b, x, planes, block_stride, zero_gamma);
  }
  return x;
}

}  // namespace gradflow::models::zoo
