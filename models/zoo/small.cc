// Small models for Fashion-MNIST sized inputs (28x28x1 by default): fast enough to train on the
// CPU in tests and examples.
#include <string>

#include "absl/strings/str_cat.h"
#include "models/builder.h"
#include "models/layers.h"
#include "models/zoo/architectures.h"
#include "models/zoo/resnet_blocks.h"

namespace gradflow::models::zoo {
namespace {

Value ImageInput(ModelBuilder& b, const ModelConfig& config) {
  return b.Input("input", {graph::kBatch, config.channels, config.image_size, config.image_size});
}

}  // namespace

absl::StatusOr<graph::Graph> BuildResNetFashionMnist(const ModelConfig& config,
                                                     const graph::OpRegistry& registry) {
  ModelBuilder b("resnet-fmnist", registry);
  b.SetMetadata("zero_gamma", config.zero_gamma ? "1" : "0");
  Value x = ImageInput(b, config);
  // A 3x3 stem keeps the full 28x28 resolution; the stages then go 28 -> 14 -> 7.
  x = conv_bn_relu(b, x, 16, 3, 1, {.conv_name = "conv1", .bn_name = "bn1", .relu_name = "relu"});
  constexpr int64_t kPlanes[] = {16, 32, 64};
  for (int stage = 0; stage < 3; ++stage) {
    auto scope = b.Scope(absl::StrCat("layer", stage + 1));
    x = ResidualStage(b, x, BlockKind::kBasic, kPlanes[stage], 2, stage == 0 ? 1 : 2,
                      config.zero_gamma);
  }
  x = global_avg_pool(b, x, {.name = "avgpool"});
  x = flatten(b, x, {.name = "flatten"});
  return b.Finish(fully_connected(b, x, config.classes, {.name = "fc"}));
}

absl::StatusOr<graph::Graph> BuildMlp(const ModelConfig& config,
                                      const graph::OpRegistry& registry) {
  ModelBuilder b("mlp", registry);
  Value x = flatten(b, ImageInput(b, config), {.name = "flatten"});
  x = relu(b, fully_connected(b, x, 256, {.init = FcInit::kHeFanIn, .name = "fc1"}));
  x = relu(b, fully_connected(b, x, 128, {.init = FcInit::kHeFanIn, .name = "fc2"}));
  return b.Finish(fully_connected(b, x, config.classes, {.name = "fc3"}));
}

absl::StatusOr<graph::Graph> BuildFashionMnistCnn(const ModelConfig& config,
                                                  const graph::OpRegistry& registry) {
  ModelBuilder b("fmnist-cnn", registry);
  Value x = ImageInput(b, config);
  // PyTorch's default initialization throughout: this is the model gradflow is compared with
  // PyTorch on, so the two start from the same distribution.
  auto conv = [](std::string name) {
    return ConvOptions{.pad = 1, .bias = true, .torch_default_init = true, .name = std::move(name)};
  };
  x = relu(b, conv2d(b, x, 32, 3, 1, conv("conv1")));
  x = max_pool(b, x, 2, {.stride = 2, .name = "pool1"});
  x = relu(b, conv2d(b, x, 64, 3, 1, conv("conv2")));
  x = max_pool(b, x, 2, {.stride = 2, .name = "pool2"});
  x = flatten(b, x, {.name = "flatten"});
  // 64 x 7 x 7 = 3136 features at 28x28.
  x = relu(b, fully_connected(b, x, 128, {.init = FcInit::kTorchDefault, .name = "fc1"}));
  return b.Finish(
      fully_connected(b, x, config.classes, {.init = FcInit::kTorchDefault, .name = "fc2"}));
}

}  // namespace gradflow::models::zoo
