// Shape functions run on untrusted files. Starting from a valid node of every op, random
// mutations (hostile dimensions, ranks, dtypes, input counts and attribute values) must give
// either valid outputs or an InvalidArgument: never a crash, an overflow or another error.
// Valid outputs must also survive binding the batch size, which rewrites tensors but not
// attributes, and give finite, non-negative costs.
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ops/registry.h"
#include "ops/schemas/schema_util.h"
#include "tests/ops/op_test_util.h"

namespace gradflow::ops {
namespace {

using graph::AttrMap;
using graph::AttrType;
using graph::AttrValue;
using graph::DType;
using graph::TensorType;
using testing::F32;
using testing::I64;
using testing::Infer;
using testing::N;
using testing::Render;

using Ints = std::vector<int64_t>;
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

struct Example {
  std::string op;
  std::vector<TensorType> inputs;
  AttrMap attrs;
  int num_outputs = 1;
};

std::vector<Example> ValidExamples() {
  const AttrMap conv = {{"strides", Ints{2, 2}},
                        {"pads", Ints{1, 1}},
                        {"dilations", Ints{1, 1}},
                        {"groups", int64_t{2}}};
  AttrMap conv_data = conv;
  conv_data["input_shape"] = Ints{N, 8, 16, 16};
  AttrMap conv_filter = conv;
  conv_filter["filter_shape"] = Ints{16, 4, 3, 3};
  const AttrMap pool = {{"kernel", Ints{3, 3}}, {"strides", Ints{2, 2}}, {"pads", Ints{1, 1}}};
  AttrMap avg_pool = pool;
  avg_pool["count_include_pad"] = int64_t{0};
  AttrMap avg_pool_grad = avg_pool;
  avg_pool_grad["input_shape"] = Ints{N, 3, 9, 9};
  const std::vector<TensorType> channels(4, F32({4}));
  std::vector<TensorType> batch_norm = {F32({N, 4, 3, 3})};
  batch_norm.insert(batch_norm.end(), channels.begin(), channels.end());
  std::vector<TensorType> batch_norm_grad = {F32({N, 4, 3, 3}), F32({N, 4, 3, 3})};
  batch_norm_grad.insert(batch_norm_grad.end(), channels.begin(), channels.end() - 1);
  return {
      {"Add", {F32({N, 4}), F32({N, 4})}},
      {"AvgPool", {F32({N, 3, 9, 9})}, avg_pool},
      {"AvgPoolGrad", {F32({N, 3, 5, 5})}, avg_pool_grad},
      {"BatchNorm", batch_norm, {{"epsilon", 1e-3f}, {"momentum", 0.1f}}, 3},
      {"BatchNormGrad", batch_norm_grad, {{"epsilon", 1e-3f}}, 3},
      {"BiasGrad", {F32({N, 4, 3, 3})}},
      {"Conv2D", {F32({N, 8, 16, 16}), F32({16, 4, 3, 3}), F32({16})}, conv},
      {"Conv2DBackwardData", {F32({N, 16, 8, 8}), F32({16, 4, 3, 3})}, conv_data},
      {"Conv2DBackwardFilter", {F32({N, 16, 8, 8}), F32({N, 8, 16, 16})}, conv_filter},
      {"Flatten", {F32({N, 2, 3, 4})}, {{"axis", int64_t{1}}}},
      {"FullyConnected", {F32({N, 6}), F32({5, 6}), F32({5})}},
      {"FullyConnectedBackwardData", {F32({N, 5}), F32({5, 6})}},
      {"FullyConnectedBackwardWeights", {F32({N, 5}), F32({N, 6})}},
      {"GlobalAvgPool", {F32({N, 4, 3, 3})}},
      {"GlobalAvgPoolGrad", {F32({N, 4, 1, 1})}, {{"input_shape", Ints{N, 4, 3, 3}}}},
      {"MaxPool", {F32({N, 3, 9, 9})}, pool},
      {"MaxPoolGrad", {F32({N, 3, 5, 5}), F32({N, 3, 9, 9}), F32({N, 3, 5, 5})}, pool},
      {"Relu", {F32({N, 4})}},
      {"ReluGrad", {F32({N, 4}), F32({N, 4})}},
      {"Reshape", {F32({N, 6})}, {{"shape", Ints{N, 2, 3}}}},
      {"SoftmaxCrossEntropy", {F32({N, 10}), I64({N})}, {{"label_smoothing", 0.1f}}, 2},
      {"SoftmaxCrossEntropyGrad", {F32({N, 10}), I64({N})}},
  };
}

class Mutator {
 public:
  explicit Mutator(uint64_t seed) : rng_(seed) {}

  void Mutate(const graph::OpSchema& schema, Example& example) {
    const int steps = 1 + Pick(3);
    for (int s = 0; s < steps; ++s) {
      std::vector<TensorType>& inputs = example.inputs;
      switch (Pick(7)) {
        case 0:  // a hostile dimension
          if (TensorType* t = AnyInput(inputs); t != nullptr && !t->shape.empty()) {
            t->shape[Pick(t->shape.size())] = Dim();
          }
          break;
        case 1:  // another rank
          if (TensorType* t = AnyInput(inputs); t != nullptr) {
            if (!t->shape.empty() && Pick(2) == 0) {
              t->shape.erase(t->shape.begin() + Pick(t->shape.size()));
            } else {
              t->shape.insert(t->shape.begin() + Pick(t->shape.size() + 1), Dim());
            }
          }
          break;
        case 2:  // any dtype, including values no DType names
          if (TensorType* t = AnyInput(inputs); t != nullptr) {
            t->dtype = static_cast<DType>(Pick(8));
          }
          break;
        case 3:  // one input more or less
          if (!inputs.empty() && Pick(2) == 0) {
            inputs.pop_back();
          } else if (TensorType* t = AnyInput(inputs); t != nullptr) {
            inputs.push_back(*t);
          }
          break;
        case 4:
        case 5:  // a hostile attribute value
          if (!schema.attrs.empty()) {
            const graph::AttrDef& def = schema.attrs[Pick(schema.attrs.size())];
            example.attrs[def.name] = Value(graph::TypeOf(def.default_value));
          }
          break;
        case 6:  // one input takes another's shape, which often passes the first checks
          if (TensorType* from = AnyInput(inputs); from != nullptr) {
            AnyInput(inputs)->shape = from->shape;
          }
          break;
      }
    }
  }

 private:
  size_t Pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

  TensorType* AnyInput(std::vector<TensorType>& inputs) {
    return inputs.empty() ? nullptr : &inputs[Pick(inputs.size())];
  }

  int64_t Dim() {
    static constexpr int64_t kDims[] = {
        N, -2, 0, 1, 2, 3, 4, 5, 16, int64_t{1} << 31, int64_t{1} << 62, kMax, kMin};
    return kDims[Pick(std::size(kDims))];
  }

  int64_t Int() {
    static constexpr int64_t kInts[] = {kMin,     -3,  -1, 0, 1, 1, 2, 3, 7, int64_t{1} << 40,
                                        kMax / 2, kMax};
    return kInts[Pick(std::size(kInts))];
  }

  AttrValue Value(AttrType type) {
    switch (type) {
      case AttrType::kInt:
        return Int();
      case AttrType::kFloat: {
        static constexpr float kFloats[] = {std::numeric_limits<float>::quiet_NaN(),
                                            std::numeric_limits<float>::infinity(),
                                            -std::numeric_limits<float>::infinity(),
                                            -1.0f,
                                            0.0f,
                                            1e-5f,
                                            0.1f,
                                            0.5f,
                                            1.0f,
                                            1e30f};
        return kFloats[Pick(std::size(kFloats))];
      }
      case AttrType::kInts: {
        Ints values(Pick(6));
        for (int64_t& value : values) value = Pick(2) == 0 ? Dim() : Int();
        return values;
      }
      case AttrType::kFloats:
        return std::vector<float>(Pick(3), 1.0f);
      case AttrType::kString:
        return std::string("x");
    }
    return int64_t{0};
  }

  std::mt19937_64 rng_;
};

std::vector<TensorType> Bound(const std::vector<TensorType>& types, int64_t batch) {
  std::vector<TensorType> bound = types;
  for (TensorType& type : bound) type.shape = graph::BindBatch(type.shape, batch);
  return bound;
}

void CheckValidOutputs(const Example& example, const std::vector<TensorType>& outputs) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    ASSERT_TRUE(CheckShapeDims(outputs[i].shape, true, "output").ok())
        << graph::ShapeToString(outputs[i].shape);
  }
  // The same node after binding the batch: same outputs, bound.
  const int64_t batch = 3;
  absl::StatusOr<std::vector<TensorType>> bound =
      Infer(example.op, Bound(example.inputs, batch), example.attrs, example.num_outputs);
  ASSERT_TRUE(bound.ok()) << "valid with N but not once bound: " << Render(bound);
  EXPECT_EQ(*bound, Bound(outputs, batch));
  // Costs of the bound node are finite and non-negative.
  const graph::OpSchema& schema = testing::Schema(example.op);
  graph::Node node{.op = example.op, .attrs = example.attrs};
  node.inputs.resize(example.inputs.size());
  node.outputs.resize(outputs.size());
  const graph::Attrs attrs(node, schema);
  const std::vector<TensorType> bound_inputs = Bound(example.inputs, batch);
  const graph::OpCost cost = schema.cost(graph::CostContext{node, attrs, bound_inputs, *bound});
  for (double value : {cost.flops, cost.macs, cost.bytes}) {
    EXPECT_TRUE(std::isfinite(value) && value >= 0) << value;
  }
}

TEST(HostileInputTest, EveryOpHasAValidExample) {
  std::vector<std::string> covered;
  for (const Example& example : ValidExamples()) {
    SCOPED_TRACE(example.op);
    absl::StatusOr<std::vector<TensorType>> outputs =
        Infer(example.op, example.inputs, example.attrs, example.num_outputs);
    ASSERT_TRUE(outputs.ok()) << Render(outputs);
    CheckValidOutputs(example, *outputs);
    covered.push_back(example.op);
  }
  std::vector<std::string> all;
  for (const graph::OpSchema* schema : StandardOps().All()) all.push_back(schema->name);
  EXPECT_EQ(covered, all);
}

TEST(HostileInputTest, MutationsGiveOutputsOrInvalidArgument) {
  constexpr int kMutationsPerOp = 4000;
  Mutator mutator(/*seed=*/20240611);
  for (const Example& valid : ValidExamples()) {
    SCOPED_TRACE(valid.op);
    const graph::OpSchema& schema = testing::Schema(valid.op);
    int accepted = 0;
    for (int k = 0; k < kMutationsPerOp; ++k) {
      Example example = valid;
      mutator.Mutate(schema, example);
      absl::StatusOr<std::vector<TensorType>> outputs =
          Infer(example.op, example.inputs, example.attrs, example.num_outputs);
      if (outputs.ok()) {
        ++accepted;
        CheckValidOutputs(example, *outputs);
        if (::testing::Test::HasFailure()) return;
      } else {
        ASSERT_EQ(outputs.status().code(), absl::StatusCode::kInvalidArgument) << Render(outputs);
        ASSERT_FALSE(outputs.status().message().empty());
      }
    }
    // Mutations that keep a node valid exist for every op (a harmless dimension or attribute);
    // if none is ever accepted the test is only exercising the first check.
    EXPECT_GT(accepted, 0);
  }
}

}  // namespace
}  // namespace gradflow::ops
