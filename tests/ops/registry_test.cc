// StandardOps() holds exactly the ops of the contract, each complete, with the contract's
// attribute defaults.
#include "ops/registry.h"

#include <algorithm>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gradflow::ops {
namespace {

using graph::AttrValue;
using graph::OpSchema;

const std::set<std::string> kForwardOps = {
    "Add",     "AvgPool",        "BatchNorm",          "Conv2D",
    "Flatten", "FullyConnected", "GlobalAvgPool",      "MaxPool",
    "Relu",    "Reshape",        "SoftmaxCrossEntropy"};
const std::set<std::string> kBackwardOps = {"AvgPoolGrad",
                                            "BatchNormGrad",
                                            "BiasGrad",
                                            "Conv2DBackwardData",
                                            "Conv2DBackwardFilter",
                                            "FullyConnectedBackwardData",
                                            "FullyConnectedBackwardWeights",
                                            "GlobalAvgPoolGrad",
                                            "MaxPoolGrad",
                                            "ReluGrad",
                                            "SoftmaxCrossEntropyGrad"};

TEST(StandardOpsTest, EveryContractOpExactlyOnce) {
  std::vector<std::string> names;
  for (const OpSchema* schema : StandardOps().All()) {
    names.push_back(schema->name);
    EXPECT_EQ(schema->version, 1) << schema->name;
  }
  std::vector<std::string> expected(kForwardOps.begin(), kForwardOps.end());
  expected.insert(expected.end(), kBackwardOps.begin(), kBackwardOps.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(names, expected);  // All() is sorted, so a duplicate would show twice
}

TEST(StandardOpsTest, BuiltOnce) { EXPECT_EQ(&StandardOps(), &StandardOps()); }

TEST(StandardOpsTest, EverySchemaIsComplete) {
  for (const OpSchema* schema : StandardOps().All()) {
    SCOPED_TRACE(schema->name);
    EXPECT_TRUE(schema->infer);
    EXPECT_TRUE(schema->cost);
    EXPECT_FALSE(schema->doc.empty());
    EXPECT_EQ(schema->doc.find('\n'), std::string::npos);
    EXPECT_GE(schema->min_inputs, 1);
    EXPECT_LE(schema->min_inputs, schema->max_inputs);
    if (kForwardOps.contains(schema->name)) {
      EXPECT_TRUE(schema->gradient) << "forward ops need a gradient rule";
    } else {
      EXPECT_FALSE(schema->gradient) << "backward ops are not differentiated again";
    }
  }
}

struct ExpectedAttr {
  std::string op;
  std::string attr;
  AttrValue default_value;
  bool required;
};

using Ints = std::vector<int64_t>;

TEST(StandardOpsTest, AttributesFollowTheContract) {
  const std::vector<ExpectedAttr> expected = {
      {"Conv2D", "strides", Ints{1, 1}, false},
      {"Conv2D", "pads", Ints{0, 0}, false},
      {"Conv2D", "dilations", Ints{1, 1}, false},
      {"Conv2D", "groups", int64_t{1}, false},
      {"Conv2DBackwardData", "input_shape", Ints{}, true},
      {"Conv2DBackwardFilter", "filter_shape", Ints{}, true},
      {"BatchNorm", "epsilon", 1e-5f, false},
      {"BatchNorm", "momentum", 0.1f, false},
      {"BatchNorm", "training", int64_t{1}, false},
      {"BatchNormGrad", "epsilon", 1e-5f, false},
      {"MaxPool", "kernel", Ints{}, true},
      {"MaxPool", "strides", Ints{1, 1}, false},
      {"MaxPool", "pads", Ints{0, 0}, false},
      {"AvgPool", "kernel", Ints{}, true},
      {"AvgPool", "count_include_pad", int64_t{1}, false},
      {"AvgPoolGrad", "input_shape", Ints{}, true},
      {"GlobalAvgPoolGrad", "input_shape", Ints{}, true},
      {"Flatten", "axis", int64_t{1}, false},
      {"Reshape", "shape", Ints{}, true},
      {"SoftmaxCrossEntropy", "label_smoothing", 0.0f, false},
      {"SoftmaxCrossEntropyGrad", "label_smoothing", 0.0f, false},
  };
  for (const ExpectedAttr& want : expected) {
    SCOPED_TRACE(want.op + "." + want.attr);
    const OpSchema* schema = StandardOps().Find(want.op, 1);
    ASSERT_NE(schema, nullptr);
    const graph::AttrDef* def = schema->FindAttr(want.attr);
    ASSERT_NE(def, nullptr);
    EXPECT_EQ(def->required, want.required);
    if (want.required) {
      EXPECT_EQ(graph::TypeOf(def->default_value), graph::TypeOf(want.default_value));
    } else {
      EXPECT_EQ(def->default_value, want.default_value);
    }
  }
}

TEST(StandardOpsTest, InputCounts) {
  const std::vector<std::tuple<std::string, int, int>> expected = {
      {"Conv2D", 2, 3},      {"FullyConnected", 2, 3},
      {"BatchNorm", 5, 5},   {"BatchNormGrad", 5, 5},
      {"Add", 2, 2},         {"SoftmaxCrossEntropy", 2, 2},
      {"MaxPoolGrad", 3, 3}, {"AvgPoolGrad", 1, 1},
      {"Relu", 1, 1}};
  for (const auto& [op, min_inputs, max_inputs] : expected) {
    const OpSchema* schema = StandardOps().Find(op, 1);
    ASSERT_NE(schema, nullptr) << op;
    EXPECT_EQ(schema->min_inputs, min_inputs) << op;
    EXPECT_EQ(schema->max_inputs, max_inputs) << op;
  }
}

}  // namespace
}  // namespace gradflow::ops
