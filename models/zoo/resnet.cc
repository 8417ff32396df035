// torchvision's ResNets (He et al. 2016, v1.5 as torchvision implements it), the paper's models.
#include <array>
#include <string>

#include "absl/strings/str_cat.h"
#include "models/builder.h"
#include "models/layers.h"
#include "models/zoo/architectures.h"
#include "models/zoo/resnet_blocks.h"

namespace gradflow::models::zoo {
namespace {

using BlocksPerStage = std::array<int, 4>;

absl::StatusOr<graph::Graph> BuildTorchvisionResNet(std::string name, BlockKind kind,
                                                    BlocksPerStage blocks,
                                                    const ModelConfig& config,
                                                    const graph::OpRegistry& registry) {
  ModelBuilder b(std::move(name), registry);
  b.SetMetadata("zero_gamma", config.zero_gamma ? "1" : "0");
  Value x =
      b.Input("input", {graph::kBatch, config.channels, config.image_size, config.image_size});
  // Stem: 7x7/2 convolution and 3x3/2 max pooling, a 4x downsampling.
  x = conv_bn_relu(b, x, 64, 7, 2, {.conv_name = "conv1", .bn_name = "bn1", .relu_name = "relu"});
  x = max_pool(b, x, 3, {.stride = 2, .pad = 1, .name = "maxpool"});
  // Four stages at 64, 128, 256, 512 planes; each after the first halves the resolution.
  for (int stage = 0; stage < 4; ++stage) {
    auto scope = b.Scope(absl::StrCat("layer", stage + 1));
    x = ResidualStage(b, x, kind, int64_t{64} << stage, blocks[stage], stage == 0 ? 1 : 2,
                      config.zero_gamma);
  }
  x = global_avg_pool(b, x, {.name = "avgpool"});
  x = flatten(b, x, {.name = "flatten"});
  Value logits = fully_connected(b, x, config.classes, {.name = "fc"});
  return b.Finish(logits);
}

}  // namespace

absl::StatusOr<graph::Graph> BuildResNet18(const ModelConfig& config,
                                           const graph::OpRegistry& registry) {
  return BuildTorchvisionResNet("resnet18", BlockKind::kBasic, {2, 2, 2, 2}, config, registry);
}

absl::StatusOr<graph::Graph> BuildResNet34(const ModelConfig& config,
                                           const graph::OpRegistry& registry) {
  return BuildTorchvisionResNet("resnet34", BlockKind::kBasic, {3, 4, 6, 3}, config, registry);
}

absl::StatusOr<graph::Graph> BuildResNet50(const ModelConfig& config,
                                           const graph::OpRegistry& registry) {
  return BuildTorchvisionResNet("resnet50", BlockKind::kBottleneck, {3, 4, 6, 3}, config, registry);
}

absl::StatusOr<graph::Graph> BuildResNet101(const ModelConfig& config,
                                            const graph::OpRegistry& registry) {
  return BuildTorchvisionResNet("resnet101", BlockKind::kBottleneck, {3, 4, 23, 3}, config,
                                registry);
}

absl::StatusOr<graph::Graph> BuildResNet152(const ModelConfig& config,
                                            const graph::OpRegistry& registry) {
  return BuildTorchvisionResNet("resnet152", BlockKind::kBottleneck, {3, 8, 36, 3}, config,
                                registry);
}

}  // namespace gradflow::models::zoo
