#include "models/zoo.h"

#include <algorithm>
#include <array>
#include <string>

#include "absl/strings/str_cat.h"
#include "models/string_util.h"
#include "models/zoo/architectures.h"

namespace gradflow::models {
namespace {

constexpr ModelConfig kImageNet{.classes = 1000, .image_size = 224, .channels = 3};
constexpr ModelConfig kFashionMnist{.classes = 10, .image_size = 28, .channels = 1};

// An explicit table rather than self-registration: static registrars in a static library are
// dropped by the linker when nothing references their object file.
constexpr std::array kModels = {
    ZooModel{"fmnist-cnn",
             "two 3x3 conv + 2x2 max-pool stages (32, 64 ch), FC 128, FC classes; 28x28x1",
             kFashionMnist, 4, zoo::BuildFashionMnistCnn},
    ZooModel{"mlp", "flatten, FC 256, ReLU, FC 128, ReLU, FC classes; 28x28x1", kFashionMnist, 1,
             zoo::BuildMlp},
    ZooModel{"resnet-fmnist",
             "small ResNet: 3x3 stem, 3 stages x 2 basic blocks (16, 32, 64 ch); 28x28x1",
             kFashionMnist, 4, zoo::BuildResNetFashionMnist},
    ZooModel{"resnet101", "torchvision ResNet-101 (bottleneck, 3-4-23-3 blocks); 224x224x3",
             kImageNet, 32, zoo::BuildResNet101},
    ZooModel{"resnet152", "torchvision ResNet-152 (bottleneck, 3-8-36-3 blocks); 224x224x3",
             kImageNet, 32, zoo::BuildResNet152},
    ZooModel{"resnet18", "torchvision ResNet-18 (basic, 2-2-2-2 blocks); 224x224x3", kImageNet, 32,
             zoo::BuildResNet18},
    ZooModel{"resnet34", "torchvision ResNet-34 (basic, 3-4-6-3 blocks); 224x224x3", kImageNet, 32,
             zoo::BuildResNet34},
    ZooModel{"resnet50",
             "torchvision ResNet-50 (bottleneck, 3-4-6-3 blocks), the paper's model; 224x224x3",
             kImageNet, 32, zoo::BuildResNet50},
};

absl::Status CheckRange(const ZooModel& model, std::string_view option, int64_t value,
                        int64_t min_value, int64_t max_value, std::string_view why_min) {
  if (value >= min_value && value <= max_value) return absl::OkStatus();
  if (value < min_value) {
    return absl::InvalidArgumentError(
        absl::StrCat(Sv(model.name), ": ", Sv(option), " ", value, " is too small: ", Sv(why_min)));
  }
  return absl::InvalidArgumentError(absl::StrCat(Sv(model.name), ": ", Sv(option), " ", value,
                                                 " is too large (at most ", max_value, ")"));
}

}  // namespace

std::span<const ZooModel> Zoo() { return kModels; }

const ZooModel* FindModel(std::string_view name) {
  auto it = std::find_if(kModels.begin(), kModels.end(),
                         [name](const ZooModel& model) { return model.name == name; });
  return it == kModels.end() ? nullptr : &*it;
}

absl::StatusOr<ModelConfig> ResolveOptions(const ZooModel& model, const ModelOptions& options) {
  ModelConfig config = model.defaults;
  config.classes = options.classes.value_or(config.classes);
  config.image_size = options.image_size.value_or(config.image_size);
  config.channels = options.channels.value_or(config.channels);
  config.zero_gamma = options.zero_gamma;

  // One class makes the softmax constant: its loss and gradients are zero, nothing would train.
  absl::Status status = CheckRange(model, "classes", config.classes, 2, kMaxClasses,
                                   "a classifier needs at least 2 classes");
  if (status.ok()) {
    status = CheckRange(model, "image size", config.image_size, model.min_image_size, kMaxImageSize,
                        absl::StrCat("the model downsamples ", model.min_image_size,
                                     "x, so it needs images of at least ", model.min_image_size,
                                     "x", model.min_image_size));
  }
  if (status.ok()) {
    status = CheckRange(model, "channels", config.channels, 1, kMaxChannels,
                        "an image has at least 1 channel");
  }
  if (!status.ok()) return status;
  return config;
}

absl::StatusOr<graph::Graph> BuildModel(std::string_view name, const ModelOptions& options,
                                        const graph::OpRegistry& registry) {
  const ZooModel* model = FindModel(name);
  if (model == nullptr) return absl::NotFoundError(absl::StrCat("unknown model '", Sv(name), "'"));
  absl::StatusOr<ModelConfig> config = ResolveOptions(*model, options);
  if (!config.ok()) return config.status();
  return model->build(*config, registry);
}

}  // namespace gradflow::models
