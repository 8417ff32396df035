// Layers as free functions over a ModelBuilder: each adds its parameters and nodes under the
// current scope and returns its output. Parameter names follow torchvision ("<layer>.weight",
// "<layer>.bias", "<bn>.running_mean"), so PyTorch state dicts match by name.
//
// Every options struct has a `name`: empty picks a fresh one from the layer kind ("relu",
// "relu_1", ...); an explicit one is used as given, and a clash is an error.
#pragma once

#include <cstdint>
#include <string>

#include "graph/types.h"
#include "models/builder.h"

namespace gradflow::models {

// Initializers of the paper's recipe.
// He et al. with torchvision's mode='fan_out': std = sqrt(2 / fan_out), fan_out = O * KH * KW.
graph::Initializer HeNormalFanOut(int64_t fan_out);
// He et al. over the inputs, std = sqrt(2 / fan_in), for fully connected layers before a ReLU.
graph::Initializer HeNormalFanIn(int64_t fan_in);
graph::Initializer NormalInit(float stddev);
graph::Initializer ZerosInit();
graph::Initializer OnesInit();
// PyTorch's default for Conv2d and Linear weights and biases (kaiming_uniform with a = sqrt(5)
// reduces to this): U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in/groups * KH * KW.
graph::Initializer TorchDefaultInit(int64_t fan_in);

// Padding that keeps the size at stride 1 for odd kernels: dilation * (kernel - 1) / 2.
inline constexpr int64_t kSamePad = -1;

struct ConvOptions {
  int64_t pad = kSamePad;
  int64_t dilation = 1;
  int64_t groups = 1;
  bool bias = false;  // ResNets follow every convolution by batch norm, which makes a bias moot
  // He normal (fan_out) as the paper; or PyTorch's default, for models compared with PyTorch.
  bool torch_default_init = false;
  std::string name;
};
// Square kernel and stride over NCHW; weight [out, in/groups, kernel, kernel], He normal.
Value conv2d(ModelBuilder& b, Value x, int64_t out_channels, int64_t kernel, int64_t stride = 1,
             const ConvOptions& options = {});

struct BatchNormOptions {
  // gamma starts at zero, so the residual block starts as the identity (Goyal et al. 5.1).
  bool zero_gamma = false;
  float epsilon = 1e-5f;
  float momentum = 0.1f;
  std::string name;
};
// Training-mode batch norm over channels: weight (gamma), bias (beta), running_mean and
// running_var (state, not trained).
Value batch_norm(ModelBuilder& b, Value x, const BatchNormOptions& options = {});

struct NameOption {
  std::string name;
};
Value relu(ModelBuilder& b, Value x, const NameOption& options = {});
Value add(ModelBuilder& b, Value lhs, Value rhs, const NameOption& options = {});
Value global_avg_pool(ModelBuilder& b, Value x, const NameOption& options = {});
// [N, C, H, W] -> [N, C*H*W].
Value flatten(ModelBuilder& b, Value x, const NameOption& options = {});

struct PoolOptions {
  int64_t stride = 0;  // 0: the kernel size
  int64_t pad = 0;
  bool count_include_pad = true;  // average pooling only; PyTorch's default
  std::string name;
};
Value max_pool(ModelBuilder& b, Value x, int64_t kernel, const PoolOptions& options = {});
Value avg_pool(ModelBuilder& b, Value x, int64_t kernel, const PoolOptions& options = {});

struct ConvBnReluOptions {
  int64_t pad = kSamePad;
  bool zero_gamma = false;
  bool with_relu = true;
  std::string conv_name;
  std::string bn_name;
  std::string relu_name;
};
// The ResNet unit: convolution without bias, batch norm, then (unless with_relu is off) ReLU.
Value conv_bn_relu(ModelBuilder& b, Value x, int64_t out_channels, int64_t kernel,
                   int64_t stride = 1, const ConvBnReluOptions& options = {});

enum class FcInit {
  kClassifier,  // N(0, 0.01), the paper's choice for the last layer
  kHeFanIn,     // HeNormalFanIn(K), for hidden layers followed by a ReLU
  kTorchDefault,  // TorchDefaultInit(K) for weight and bias, as torch.nn.Linear
};
struct FullyConnectedOptions {
  bool bias = true;
  FcInit init = FcInit::kClassifier;
  std::string name;
};
// x [N, K] -> [N, out]; weight [out, K], bias [out] (zeros unless kTorchDefault).
Value fully_connected(ModelBuilder& b, Value x, int64_t out_features,
                      const FullyConnectedOptions& options = {});

struct SoftmaxCrossEntropyOptions {
  float label_smoothing = 0;
  std::string name;
};
// The mean cross-entropy of softmax(logits) against Int32 labels [N]: a scalar, in the loss phase.
Value softmax_cross_entropy(ModelBuilder& b, Value logits, Value labels,
                            const SoftmaxCrossEntropyOptions& options = {});

}  // namespace gradflow::models
