// The benchmark's ResNet-50 table against the graph gradflow actually trains: the zoo's resnet50
// training graph must hold exactly these convolutions, in each direction, as often as the table
// says, without bias, and the schema's cost must count the MACs the benchmark's GFLOP/s assume.
#include "bench/conv_shapes.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/ir.h"
#include "graph/op_schema.h"
#include "graph/types.h"
#include "gtest/gtest.h"
#include "models/zoo.h"
#include "ops/registry.h"

namespace gradflow::bench {
namespace {

constexpr int64_t kBatch = 16;

struct ZooConv {
  std::string key;  // "fwd/c64_o256_k1_s1_h56"
  double macs = 0;  // from the op schema's cost at kBatch
};

// The convolution a Conv2D-family node of the zoo graph describes, as a table key.
ZooConv Describe(const graph::Graph& g, const graph::Node& node, const graph::OpSchema& schema,
                 ConvDirection direction) {
  const graph::Attrs attrs(node, schema);
  graph::Shape x;
  graph::Shape w;
  switch (direction) {
    case ConvDirection::kForward:
      x = g.tensors[node.inputs[0]].shape;
      w = g.tensors[node.inputs[1]].shape;
      break;
    case ConvDirection::kBackwardData:
      x = attrs.Ints("input_shape");
      w = g.tensors[node.inputs[1]].shape;
      break;
    case ConvDirection::kBackwardWeights:
      x = g.tensors[node.inputs[1]].shape;
      w = attrs.Ints("filter_shape");
      break;
  }
  EXPECT_EQ(attrs.Ints("pads"), (std::vector<int64_t>{w[2] / 2, w[3] / 2})) << node.name;
  EXPECT_EQ(attrs.Ints("dilations"), (std::vector<int64_t>{1, 1})) << node.name;
  EXPECT_EQ(attrs.Int("groups"), 1) << node.name;
  EXPECT_EQ(w[2], w[3]) << node.name;
  EXPECT_EQ(x[2], x[3]) << node.name;
  const std::vector<int64_t>& strides = attrs.Ints("strides");
  EXPECT_EQ(strides[0], strides[1]) << node.name;
  const ConvShape shape{x[1], w[0], w[2], strides[0], x[2], 0, false, ""};

  std::vector<graph::TensorType> inputs;
  for (int32_t t : node.inputs) {
    inputs.push_back({g.tensors[t].dtype, graph::BindBatch(g.tensors[t].shape, kBatch)});
  }
  std::vector<graph::TensorType> outputs;
  for (int32_t t : node.outputs) {
    outputs.push_back({g.tensors[t].dtype, graph::BindBatch(g.tensors[t].shape, kBatch)});
  }
  const graph::OpCost cost = schema.cost({node, attrs, inputs, outputs});
  return {std::string(DirectionName(direction)) + "/" + shape.Name(), cost.macs};
}

TEST(ConvShapesTest, TableMatchesTheZooResNet50TrainingGraph) {
  absl::StatusOr<graph::Graph> g = models::BuildModel("resnet50", {}, ops::StandardOps());
  ASSERT_TRUE(g.ok()) << g.status();

  std::map<std::string, int> expected;
  std::map<std::string, double> expected_macs;
  for (const ConvShape& shape : ResNet50ConvShapes()) {
    for (ConvDirection direction : kAllDirections) {
      if (!RunsInTraining(shape, direction)) continue;
      const std::string key = std::string(DirectionName(direction)) + "/" + shape.Name();
      EXPECT_EQ(expected.count(key), 0u) << key << " is listed twice";
      expected[key] = shape.count;
      expected_macs[key] = shape.Macs(kBatch);
    }
  }

  std::map<std::string, int> found;
  for (const graph::Node& node : g->nodes) {
    for (ConvDirection direction : kAllDirections) {
      if (node.op != DirectionOp(direction)) continue;
      const graph::OpSchema* schema = ops::StandardOps().Find(node.op, node.op_version);
      ASSERT_NE(schema, nullptr) << node.op;
      if (direction == ConvDirection::kForward) {
        EXPECT_EQ(node.inputs.size(), 2u) << node.name << " has a bias; the benchmark has none";
      }
      const ZooConv conv = Describe(*g, node, *schema, direction);
      ++found[conv.key];
      auto macs = expected_macs.find(conv.key);
      if (macs != expected_macs.end()) {
        EXPECT_DOUBLE_EQ(conv.macs, macs->second) << conv.key;
      }
    }
  }
  EXPECT_EQ(found, expected);

  int forward_convs = 0;
  for (const ConvShape& shape : ResNet50ConvShapes()) forward_convs += shape.count;
  EXPECT_EQ(forward_convs, 53);  // ResNet-50: stem + 16 blocks x 3 + 4 projections
}

TEST(ConvShapesTest, OutputSizesAndNames) {
  const ConvShape stem = ResNet50ConvShapes()[0];
  EXPECT_EQ(stem.output_height(), 112);
  EXPECT_EQ(stem.Name(), "c3_o64_k7_s2_h224");
  EXPECT_DOUBLE_EQ(stem.Macs(1), 64.0 * 112 * 112 * 3 * 49);
  const ConvShape stride2{128, 128, 3, 2, 56, 1, false, ""};
  EXPECT_EQ(stride2.output_height(), 28);
  const ConvShape projection{1024, 2048, 1, 2, 14, 1, false, ""};
  EXPECT_EQ(projection.output_height(), 7);
}

}  // namespace
}  // namespace gradflow::bench
