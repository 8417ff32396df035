#include "models/layers.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "models/string_util.h"

namespace gradflow::models {
namespace {

using graph::AttrMap;

std::string LayerName(const ModelBuilder& b, const std::string& requested, std::string_view kind) {
  return requested.empty() ? b.FreshLocalName(kind) : requested;
}

// Channels of an NCHW value, or 0 (with the builder's error recorded) when it is not NCHW.
int64_t Channels(ModelBuilder& b, Value x, std::string_view layer) {
  if (!b.ok()) return 0;
  const graph::Shape& shape = b.ShapeOf(x);
  if (shape.size() != 4 || shape[1] <= 0) {
    b.Fail(absl::InvalidArgumentError(
        absl::StrCat("layer '", b.ScopedName(layer), "' needs an NCHW input, got shape ",
                     x.valid() ? graph::ShapeToString(shape) : "<undefined>")));
    return 0;
  }
  return shape[1];
}

bool CheckPositive(ModelBuilder& b, std::string_view layer, std::string_view what, int64_t value) {
  if (value > 0) return true;
  b.Fail(absl::InvalidArgumentError(absl::StrCat("layer '", b.ScopedName(layer), "': ", Sv(what),
                                                 " must be positive, got ", value)));
  return false;
}

std::vector<int64_t> Pair(int64_t value) { return {value, value}; }

Value Pool(ModelBuilder& b, std::string_view op, std::string_view kind, Value x, int64_t kernel,
           const PoolOptions& options) {
  std::string name = LayerName(b, options.name, kind);
  if (!CheckPositive(b, name, "kernel", kernel)) return {};
  int64_t stride = options.stride == 0 ? kernel : options.stride;
  AttrMap attrs = {
      {"kernel", Pair(kernel)}, {"strides", Pair(stride)}, {"pads", Pair(options.pad)}};
  if (op == "AvgPool") attrs["count_include_pad"] = int64_t{options.count_include_pad ? 1 : 0};
  return b.Apply(op, {x}, std::move(attrs), name)[0];
}

}  // namespace

graph::Initializer HeNormalFanOut(int64_t fan_out) {
  return {graph::InitKind::kHeNormal,
          static_cast<float>(std::sqrt(2.0 / static_cast<double>(fan_out)))};
}

graph::Initializer HeNormalFanIn(int64_t fan_in) { return HeNormalFanOut(fan_in); }

graph::Initializer NormalInit(float stddev) { return {graph::InitKind::kNormal, stddev}; }
graph::Initializer ZerosInit() { return {graph::InitKind::kZeros, 0}; }
graph::Initializer OnesInit() { return {graph::InitKind::kOnes, 0}; }
graph::Initializer TorchDefaultInit(int64_t fan_in) {
  return {graph::InitKind::kUniform,
          static_cast<float>(1.0 / std::sqrt(static_cast<double>(fan_in)))};
}

Value conv2d(ModelBuilder& b, Value x, int64_t out_channels, int64_t kernel, int64_t stride,
             const ConvOptions& options) {
  std::string name = LayerName(b, options.name, "conv");
  int64_t in_channels = Channels(b, x, name);
  if (!b.ok()) return {};
  if (!CheckPositive(b, name, "out_channels", out_channels) ||
      !CheckPositive(b, name, "kernel", kernel) || !CheckPositive(b, name, "stride", stride) ||
      !CheckPositive(b, name, "dilation", options.dilation) ||
      !CheckPositive(b, name, "groups", options.groups)) {
    return {};
  }
  if (in_channels % options.groups != 0 || out_channels % options.groups != 0) {
    b.Fail(absl::InvalidArgumentError(
        absl::StrCat("layer '", b.ScopedName(name), "': ", options.groups, " groups do not divide ",
                     in_channels, " input and ", out_channels, " output channels")));
    return {};
  }
  int64_t pad = options.pad == kSamePad ? options.dilation * (kernel - 1) / 2 : options.pad;

  const int64_t fan_in = in_channels / options.groups * kernel * kernel;
  const graph::Initializer weight_init = options.torch_default_init
                                             ? TorchDefaultInit(fan_in)
                                             : HeNormalFanOut(out_channels * kernel * kernel);
  const graph::Initializer bias_init =
      options.torch_default_init ? TorchDefaultInit(fan_in) : ZerosInit();
  std::vector<Value> inputs = {
      x, b.Parameter(name + ".weight", {out_channels, in_channels / options.groups, kernel, kernel},
                     weight_init)};
  if (options.bias) inputs.push_back(b.Parameter(name + ".bias", {out_channels}, bias_init));
  AttrMap attrs = {{"strides", Pair(stride)},
                   {"pads", Pair(pad)},
                   {"dilations", Pair(options.dilation)},
                   {"groups", options.groups}};
  return b.Apply("Conv2D", std::move(inputs), std::move(attrs), name)[0];
}

Value batch_norm(ModelBuilder& b, Value x, const BatchNormOptions& options) {
  std::string name = LayerName(b, options.name, "bn");
  int64_t channels = Channels(b, x, name);
  if (!b.ok()) return {};
  Value gamma =
      b.Parameter(name + ".weight", {channels}, options.zero_gamma ? ZerosInit() : OnesInit());
  Value beta = b.Parameter(name + ".bias", {channels}, ZerosInit());
  Value running_mean = b.State(name + ".running_mean", {channels}, ZerosInit());
  Value running_var = b.State(name + ".running_var", {channels}, OnesInit());
  AttrMap attrs = {
      {"epsilon", options.epsilon}, {"momentum", options.momentum}, {"training", int64_t{1}}};
  return b.Apply("BatchNorm", {x, gamma, beta, running_mean, running_var}, std::move(attrs), name,
                 {.output_names = {"", name + ".saved_mean", name + ".saved_invstd"}})[0];
}

Value relu(ModelBuilder& b, Value x, const NameOption& options) {
  return b.Apply("Relu", {x}, {}, LayerName(b, options.name, "relu"))[0];
}

Value add(ModelBuilder& b, Value lhs, Value rhs, const NameOption& options) {
  return b.Apply("Add", {lhs, rhs}, {}, LayerName(b, options.name, "add"))[0];
}

Value global_avg_pool(ModelBuilder& b, Value x, const NameOption& options) {
  return b.Apply("GlobalAvgPool", {x}, {}, LayerName(b, options.name, "avgpool"))[0];
}

Value flatten(ModelBuilder& b, Value x, const NameOption& options) {
  return b.Apply("Flatten", {x}, {{"axis", int64_t{1}}}, LayerName(b, options.name, "flatten"))[0];
}

Value max_pool(ModelBuilder& b, Value x, int64_t kernel, const PoolOptions& options) {
  return Pool(b, "MaxPool", "maxpool", x, kernel, options);
}

Value avg_pool(ModelBuilder& b, Value x, int64_t kernel, const PoolOptions& options) {
  return Pool(b, "AvgPool", "avgpool", x, kernel, options);
}

Value conv_bn_relu(ModelBuilder& b, Value x, int64_t out_channels, int64_t kernel, int64_t stride,
                   const ConvBnReluOptions& options) {
  Value y =
      conv2d(b, x, out_channels, kernel, stride, {.pad = options.pad, .name = options.conv_name});
  y = batch_norm(b, y, {.zero_gamma = options.zero_gamma, .name = options.bn_name});
  return options.with_relu ? relu(b, y, {.name = options.relu_name}) : y;
}

Value fully_connected(ModelBuilder& b, Value x, int64_t out_features,
                      const FullyConnectedOptions& options) {
  std::string name = LayerName(b, options.name, "fc");
  if (!b.ok()) return {};
  const graph::Shape& shape = b.ShapeOf(x);
  if (shape.size() != 2 || shape[1] <= 0) {
    b.Fail(absl::InvalidArgumentError(
        absl::StrCat("layer '", b.ScopedName(name), "' needs an [N, features] input, got shape ",
                     x.valid() ? graph::ShapeToString(shape) : "<undefined>")));
    return {};
  }
  if (!CheckPositive(b, name, "out_features", out_features)) return {};
  int64_t in_features = shape[1];
  graph::Initializer weight_init = NormalInit(0.01f);
  graph::Initializer bias_init = ZerosInit();
  if (options.init == FcInit::kHeFanIn) weight_init = HeNormalFanIn(in_features);
  if (options.init == FcInit::kTorchDefault) weight_init = bias_init = TorchDefaultInit(in_features);
  std::vector<Value> inputs = {
      x, b.Parameter(name + ".weight", {out_features, in_features}, weight_init)};
  if (options.bias) inputs.push_back(b.Parameter(name + ".bias", {out_features}, bias_init));
  return b.Apply("FullyConnected", std::move(inputs), {}, name)[0];
}

Value softmax_cross_entropy(ModelBuilder& b, Value logits, Value labels,
                            const SoftmaxCrossEntropyOptions& options) {
  std::string name = LayerName(b, options.name, "loss");
  return b.Apply("SoftmaxCrossEntropy", {logits, labels},
                 {{"label_smoothing", options.label_smoothing}}, name,
                 {.phase = graph::Phase::kLoss, .output_names = {"", name + ".probs"}})[0];
}

}  // namespace gradflow::models
