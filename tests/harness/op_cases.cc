#include "tests/harness/op_cases.h"

#include <algorithm>
#include <numeric>
#include <tuple>
#include <utility>

#include "tests/support/test_values.h"

namespace gradflow::test_support {
namespace {

using graph::AttrMap;
using graph::kBatch;
using graph::Shape;
using graph::TensorRole;
using Ints = std::vector<int64_t>;

InputSpec Act(std::string name, Shape shape, Fill fill = Fill::kUniform) {
  return {std::move(name), std::move(shape), TensorRole::kInput, fill};
}
InputSpec Weight(std::string name, Shape shape, Fill fill = Fill::kUniform) {
  return {std::move(name), std::move(shape), TensorRole::kParameter, fill};
}
InputSpec State(std::string name, Shape shape, Fill fill) {
  return {std::move(name), std::move(shape), TensorRole::kState, fill};
}
InputSpec Labels(Shape shape, int64_t classes) {
  return {"labels", std::move(shape), TensorRole::kLabel, Fill::kLabels, classes};
}
InputSpec Derived(std::string name, Shape shape, TensorRole role = TensorRole::kInput) {
  return {std::move(name), std::move(shape), role, Fill::kDerived};
}

void RoundInPlace(RefTensor& t) { t.values = RoundedToFloat(t.values); }

// ---------------------------------------------------------------------------------------------
// Convolution

struct ConvConfig {
  std::string name;
  Shape x;
  Shape w;
  bool bias;
  ConvParams params;
  // Backward ops record the forward input's batch as kBatch in input_shape when built from an
  // unbound graph; half of the configs do so to check that kernels take the bound shape.
  bool batch_symbolic_in_attrs;
};

std::vector<ConvConfig> ConvConfigs() {
  return {
      {"3x3_pad1_batch1_bias", {1, 3, 5, 7}, {4, 3, 3, 3}, true, {.pads = {1, 1}}, false},
      {"3x3_stride2_pad1",
       {2, 4, 9, 8},
       {6, 4, 3, 3},
       false,
       {.strides = {2, 2}, .pads = {1, 1}},
       true},
      {"1x1_stride2_bias", {2, 6, 7, 5}, {8, 6, 1, 1}, true, {.strides = {2, 2}}, false},
      {"groups2_dilation2_bias",
       {2, 4, 9, 7},
       {6, 2, 3, 3},
       true,
       {.pads = {2, 2}, .dilations = {2, 2}, .groups = 2},
       true},
      {"depthwise_stride2",
       {2, 4, 8, 8},
       {4, 1, 3, 3},
       false,
       {.strides = {2, 2}, .pads = {1, 1}, .groups = 4},
       false},
      {"7x7_stride2_pad3",
       {1, 3, 13, 11},
       {5, 3, 7, 7},
       false,
       {.strides = {2, 2}, .pads = {3, 3}},
       true},
      {"unequal_hw_attrs",
       {2, 3, 7, 9},
       {4, 3, 3, 2},
       true,
       {.strides = {1, 2}, .pads = {0, 1}, .dilations = {2, 1}},
       false},
  };
}

AttrMap ConvAttrs(const ConvParams& p) {
  return {{"strides", Ints{p.strides[0], p.strides[1]}},
          {"pads", Ints{p.pads[0], p.pads[1]}},
          {"dilations", Ints{p.dilations[0], p.dilations[1]}},
          {"groups", p.groups}};
}

Shape ConvOut(const ConvConfig& c) {
  const ConvParams& p = c.params;
  return {c.x[0], c.w[0], WindowOutput(c.x[2], c.w[2], p.strides[0], p.pads[0], p.dilations[0]),
          WindowOutput(c.x[3], c.w[3], p.strides[1], p.pads[1], p.dilations[1])};
}

void AddConvCases(std::vector<OpCase>& cases) {
  for (const ConvConfig& c : ConvConfigs()) {
    OpCase forward{.op = "Conv2D",
                   .name = c.name,
                   .attrs = ConvAttrs(c.params),
                   .inputs = {Act("x", c.x), Weight("w", c.w)},
                   .differentiable = true};
    if (c.bias) forward.inputs.push_back(Weight("b", {c.w[0]}));
    cases.push_back(std::move(forward));

    Shape input_shape = c.x;
    if (c.batch_symbolic_in_attrs) input_shape[0] = kBatch;
    AttrMap data_attrs = ConvAttrs(c.params);
    data_attrs["input_shape"] = input_shape;
    cases.push_back({.op = "Conv2DBackwardData",
                     .name = c.name,
                     .attrs = std::move(data_attrs),
                     .inputs = {Act("dy", ConvOut(c)), Weight("w", c.w)}});

    AttrMap filter_attrs = ConvAttrs(c.params);
    filter_attrs["filter_shape"] = c.w;
    cases.push_back({.op = "Conv2DBackwardFilter",
                     .name = c.name,
                     .attrs = std::move(filter_attrs),
                     .inputs = {Act("dy", ConvOut(c)), Act("x", c.x)}});
  }
  for (const auto& [name, shape] : std::vector<std::pair<std::string, Shape>>{
           {"nchw", {2, 5, 3, 7}}, {"batch1", {1, 6, 4, 5}}, {"rank2", {3, 10}}}) {
    cases.push_back({.op = "BiasGrad", .name = name, .inputs = {Act("dy", shape)}});
  }
}

// ---------------------------------------------------------------------------------------------
// Batch norm

void AddBatchNormCases(std::vector<OpCase>& cases) {
  struct Config {
    std::string name;
    Shape x;
    bool training;
    float epsilon;
    float momentum;
    Fill x_fill = Fill::kUniform;
  };
  const std::vector<Config> configs = {
      {"train_nchw", {2, 3, 5, 7}, true, 1e-5f, 0.1f},
      {"train_batch1", {1, 4, 3, 5}, true, 1e-5f, 0.1f},
      {"train_rank2", {6, 5}, true, 1e-5f, 0.1f},
      {"train_eps_momentum", {3, 2, 4, 4}, true, 1e-3f, 0.3f},
      // Variance from E[x^2] - E[x]^2 in float would lose most digits here.
      {"train_offset_mean", {4, 8, 6, 6}, true, 1e-5f, 0.1f, Fill::kOffset},
      {"inference_nchw", {2, 3, 5, 7}, false, 1e-5f, 0.1f},
  };
  for (const Config& c : configs) {
    const Shape channels = {c.x[1]};
    cases.push_back(
        {.op = "BatchNorm",
         .name = c.name,
         .attrs = {{"epsilon", c.epsilon},
                   {"momentum", c.momentum},
                   {"training", int64_t{c.training ? 1 : 0}}},
         .inputs = {Act("x", c.x, c.x_fill), Weight("gamma", channels, Fill::kPositive),
                    Weight("beta", channels), State("running_mean", channels, Fill::kUniform),
                    State("running_var", channels, Fill::kPositive)},
         .differentiable = c.training,
         .num_outputs = c.training ? 3 : 1});
    if (!c.training) continue;
    const float epsilon = c.epsilon;
    cases.push_back(
        {.op = "BatchNormGrad",
         .name = c.name,
         .attrs = {{"epsilon", c.epsilon}},
         .inputs = {Act("dy", c.x), Act("x", c.x, c.x_fill),
                    Weight("gamma", channels, Fill::kPositive), Derived("saved_mean", channels),
                    Derived("saved_invstd", channels)},
         // The gradient formula assumes the statistics are those of x: derive them.
         .derive =
             [epsilon](std::vector<RefTensor>& in, std::mt19937_64&) {
               const RefTensor ones(in[2].shape, std::vector<double>(in[2].values.size(), 1.0));
               BatchNormTraining bn = BatchNormTrain(in[1], ones, ones, ones, ones, epsilon, 0);
               in[3] = std::move(bn.saved_mean);
               in[4] = std::move(bn.saved_invstd);
             },
         .num_outputs = 3});
  }
}

// ---------------------------------------------------------------------------------------------
// Elementwise, pooling, dense, reshapes, loss

void AddReluCases(std::vector<OpCase>& cases) {
  for (const auto& [name, shape] :
       std::vector<std::pair<std::string, Shape>>{{"nchw", {2, 3, 5, 7}}, {"rank2", {3, 10}}}) {
    cases.push_back({.op = "Relu",
                     .name = name,
                     .inputs = {Act("x", shape, Fill::kAwayFromZero)},
                     .differentiable = true});
    cases.push_back({.op = "ReluGrad",
                     .name = name,
                     .inputs = {Act("dy", shape), Derived("y", shape)},
                     // y comes from a Relu: exact zeros where its input was negative.
                     .derive = [](std::vector<RefTensor>& in, std::mt19937_64& rng) {
                       RefTensor x(in[1].shape);
                       std::uniform_real_distribution<double> uniform(-1, 1);
                       for (double& v : x.values) v = uniform(rng);
                       in[1] = Relu(x);
                     }});
  }
}

struct PoolConfig {
  std::string name;
  Shape x;
  PoolParams params;
  bool count_include_pad;
  bool batch_symbolic_in_attrs;
};

AttrMap PoolAttrs(const PoolParams& p) {
  return {{"kernel", Ints{p.kernel[0], p.kernel[1]}},
          {"strides", Ints{p.strides[0], p.strides[1]}},
          {"pads", Ints{p.pads[0], p.pads[1]}}};
}

Shape PoolOut(const PoolConfig& c) {
  const PoolParams& p = c.params;
  return {c.x[0], c.x[1], WindowOutput(c.x[2], p.kernel[0], p.strides[0], p.pads[0], 1),
          WindowOutput(c.x[3], p.kernel[1], p.strides[1], p.pads[1], 1)};
}

void AddPoolingCases(std::vector<OpCase>& cases) {
  const std::vector<PoolConfig> max_configs = {
      {"3x3_stride2_pad1", {2, 3, 9, 8}, {{3, 3}, {2, 2}, {1, 1}}, true, false},
      {"2x2_stride2_odd_batch1", {1, 2, 5, 7}, {{2, 2}, {2, 2}, {0, 0}}, true, true},
      {"3x3_stride1", {2, 2, 5, 6}, {{3, 3}, {1, 1}, {0, 0}}, true, false},
      {"unequal_hw_attrs", {2, 3, 7, 6}, {{3, 2}, {2, 1}, {1, 0}}, true, true},
  };
  for (const PoolConfig& c : max_configs) {
    cases.push_back({.op = "MaxPool",
                     .name = c.name,
                     .attrs = PoolAttrs(c.params),
                     .inputs = {Act("x", c.x, Fill::kDistinct)},
                     .differentiable = true});
    const PoolParams params = c.params;
    cases.push_back({.op = "MaxPoolGrad",
                     .name = c.name,
                     .attrs = PoolAttrs(c.params),
                     .inputs = {Act("dy", PoolOut(c)), Act("x", c.x, Fill::kDistinct),
                                Derived("y", PoolOut(c))},
                     .derive = [params](std::vector<RefTensor>& in, std::mt19937_64&) {
                       in[2] = MaxPool(in[1], params);
                     }});
  }
  const std::vector<PoolConfig> avg_configs = {
      {"3x3_stride2_pad1_include_pad", {2, 3, 7, 9}, {{3, 3}, {2, 2}, {1, 1}}, true, false},
      {"3x3_stride2_pad1_exclude_pad", {2, 3, 7, 9}, {{3, 3}, {2, 2}, {1, 1}}, false, true},
      {"2x2_stride2_odd_batch1", {1, 2, 5, 7}, {{2, 2}, {2, 2}, {0, 0}}, true, false},
      {"unequal_hw_exclude_pad", {2, 2, 6, 7}, {{2, 3}, {1, 2}, {1, 1}}, false, true},
  };
  for (const PoolConfig& c : avg_configs) {
    AttrMap attrs = PoolAttrs(c.params);
    attrs["count_include_pad"] = int64_t{c.count_include_pad ? 1 : 0};
    cases.push_back({.op = "AvgPool",
                     .name = c.name,
                     .attrs = attrs,
                     .inputs = {Act("x", c.x)},
                     .differentiable = true});
    Shape input_shape = c.x;
    if (c.batch_symbolic_in_attrs) input_shape[0] = kBatch;
    attrs["input_shape"] = input_shape;
    cases.push_back({.op = "AvgPoolGrad",
                     .name = c.name,
                     .attrs = std::move(attrs),
                     .inputs = {Act("dy", PoolOut(c))}});
  }
  for (const auto& [name, x, symbolic] :
       std::vector<std::tuple<std::string, Shape, bool>>{{"nchw", {2, 3, 5, 7}, false},
                                                         {"batch1_1x1", {1, 4, 1, 1}, true},
                                                         {"batch_symbolic", {3, 2, 4, 3}, true}}) {
    cases.push_back(
        {.op = "GlobalAvgPool", .name = name, .inputs = {Act("x", x)}, .differentiable = true});
    Shape input_shape = x;
    if (symbolic) input_shape[0] = kBatch;
    cases.push_back({.op = "GlobalAvgPoolGrad",
                     .name = name,
                     .attrs = {{"input_shape", input_shape}},
                     .inputs = {Act("dy", {x[0], x[1], 1, 1})}});
  }
}

void AddDenseCases(std::vector<OpCase>& cases) {
  for (const auto& [name, shape] : std::vector<std::pair<std::string, Shape>>{
           {"nchw", {2, 3, 5, 7}}, {"rank2", {3, 10}}, {"batch1", {1, 4, 1, 1}}}) {
    cases.push_back({.op = "Add",
                     .name = name,
                     .inputs = {Act("a", shape), Act("b", shape)},
                     .differentiable = true});
  }
  struct Config {
    std::string name;
    int64_t batch, in, out;
    bool bias;
  };
  for (const Config& c : std::vector<Config>{{"bias", 3, 10, 7, true},
                                             {"batch1_no_bias", 1, 6, 4, false},
                                             {"wide", 5, 33, 9, true}}) {
    OpCase forward{.op = "FullyConnected",
                   .name = c.name,
                   .inputs = {Act("x", {c.batch, c.in}), Weight("w", {c.out, c.in})},
                   .differentiable = true};
    if (c.bias) forward.inputs.push_back(Weight("b", {c.out}));
    cases.push_back(std::move(forward));
    cases.push_back({.op = "FullyConnectedBackwardData",
                     .name = c.name,
                     .inputs = {Act("dy", {c.batch, c.out}), Weight("w", {c.out, c.in})}});
    cases.push_back({.op = "FullyConnectedBackwardWeights",
                     .name = c.name,
                     .inputs = {Act("dy", {c.batch, c.out}), Act("x", {c.batch, c.in})}});
  }
}

void AddReshapeCases(std::vector<OpCase>& cases) {
  cases.push_back({.op = "Flatten",
                   .name = "nchw_axis1",
                   .attrs = {{"axis", int64_t{1}}},
                   .inputs = {Act("x", {2, 3, 5, 7})},
                   .differentiable = true});
  cases.push_back({.op = "Flatten",
                   .name = "pooled_batch1",
                   .attrs = {{"axis", int64_t{1}}},
                   .inputs = {Act("x", {1, 4, 1, 1})},
                   .differentiable = true});
  cases.push_back({.op = "Flatten",
                   .name = "nchw_axis2",
                   .attrs = {{"axis", int64_t{2}}},
                   .inputs = {Act("x", {2, 3, 5, 7})},
                   .differentiable = true});
  cases.push_back({.op = "Reshape",
                   .name = "rank2_to_nchw",
                   .attrs = {{"shape", Ints{2, 3, 5, 7}}},
                   .inputs = {Act("x", {2, 105})},
                   .differentiable = true});
  cases.push_back({.op = "Reshape",
                   .name = "nchw_to_rank3",
                   .attrs = {{"shape", Ints{2, 3, 35}}},
                   .inputs = {Act("x", {2, 3, 5, 7})},
                   .differentiable = true});
  cases.push_back({.op = "Reshape",
                   .name = "nchw_to_nchw",
                   .attrs = {{"shape", Ints{2, 5, 3, 7}}},
                   .inputs = {Act("x", {2, 3, 5, 7})},
                   .differentiable = true});
}

void AddLossCases(std::vector<OpCase>& cases) {
  struct Config {
    std::string name;
    int64_t batch, classes;
    float smoothing;
  };
  for (const Config& c : std::vector<Config>{{"plain", 4, 10, 0.0f},
                                             {"label_smoothing", 4, 10, 0.1f},
                                             {"batch1_smoothing", 1, 5, 0.2f}}) {
    cases.push_back({.op = "SoftmaxCrossEntropy",
                     .name = c.name,
                     .attrs = {{"label_smoothing", c.smoothing}},
                     .inputs = {Act("logits", {c.batch, c.classes}), Labels({c.batch}, c.classes)},
                     .differentiable = true,
                     .num_outputs = 2});
    cases.push_back(
        {.op = "SoftmaxCrossEntropyGrad",
         .name = c.name,
         .attrs = {{"label_smoothing", c.smoothing}},
         .inputs = {Derived("probs", {c.batch, c.classes}), Labels({c.batch}, c.classes)},
         // Real probabilities: a softmax of spread-out logits.
         .derive = [](std::vector<RefTensor>& in, std::mt19937_64& rng) {
           RefTensor logits(in[0].shape);
           std::uniform_real_distribution<double> uniform(-3, 3);
           for (double& v : logits.values) v = uniform(rng);
           in[0] = SoftmaxCrossEntropy(logits, in[1], 0).probs;
         }});
  }
}

RefTensor Generate(const InputSpec& spec, std::mt19937_64& rng) {
  RefTensor t(spec.shape);
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  switch (spec.fill) {
    case Fill::kUniform:
      for (double& v : t.values) v = unit(rng);
      break;
    case Fill::kAwayFromZero: {
      std::uniform_real_distribution<double> magnitude(0.1, 1.0);
      for (double& v : t.values) v = (unit(rng) < 0 ? -1 : 1) * magnitude(rng);
      break;
    }
    case Fill::kDistinct: {
      std::vector<size_t> order(t.values.size());
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), rng);
      const double count = static_cast<double>(order.size());
      for (size_t i = 0; i < order.size(); ++i) {
        t.values[i] = -1.0 + 2.0 * (static_cast<double>(order[i]) + 0.5) / count;
      }
      break;
    }
    case Fill::kOffset:
      for (double& v : t.values) v = 4.0 + 0.1 * unit(rng);
      break;
    case Fill::kPositive: {
      std::uniform_real_distribution<double> positive(0.5, 1.5);
      for (double& v : t.values) v = positive(rng);
      break;
    }
    case Fill::kLabels: {
      std::uniform_int_distribution<int64_t> label(0, spec.classes - 1);
      for (double& v : t.values) v = static_cast<double>(label(rng));
      break;
    }
    case Fill::kDerived:
      break;
  }
  RoundInPlace(t);
  return t;
}

}  // namespace

const std::vector<OpCase>& AllOpCases() {
  static const std::vector<OpCase>* const cases = [] {
    auto* all = new std::vector<OpCase>;
    AddConvCases(*all);
    AddBatchNormCases(*all);
    AddReluCases(*all);
    AddPoolingCases(*all);
    AddDenseCases(*all);
    AddReshapeCases(*all);
    AddLossCases(*all);
    return all;
  }();
  return *cases;
}

std::vector<RefTensor> MakeInputs(const OpCase& op_case, std::mt19937_64& rng) {
  std::vector<RefTensor> inputs;
  for (const InputSpec& spec : op_case.inputs) inputs.push_back(Generate(spec, rng));
  if (op_case.derive) {
    op_case.derive(inputs, rng);
    for (RefTensor& t : inputs) RoundInPlace(t);
  }
  return inputs;
}

}  // namespace gradflow::test_support
