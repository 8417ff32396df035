#include "graph/topo.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gradflow::graph {
namespace {

// A random DAG: node i reads outputs of random earlier nodes. Ops are irrelevant here.
Graph RandomDag(std::mt19937& rng, int num_nodes) {
  Graph g;
  for (int i = 0; i < num_nodes; ++i) {
    Node node{.name = "n" + std::to_string(i), .op = "Any"};
    const int fan_in = i == 0 ? 0 : static_cast<int>(rng() % 4);
    for (int k = 0; k < fan_in; ++k) node.inputs.push_back(static_cast<int32_t>(rng() % i));
    node.outputs = {g.AddTensor(Tensor{.name = "t" + std::to_string(i)})};
    g.AddNode(std::move(node));
  }
  return g;
}

void ExpectValidOrder(const Graph& g, const std::vector<int32_t>& order) {
  ASSERT_EQ(order.size(), g.nodes.size());
  std::vector<int> position(g.nodes.size(), -1);
  for (size_t i = 0; i < order.size(); ++i) position[order[i]] = static_cast<int>(i);
  const auto preds = NodePredecessors(g);
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    ASSERT_GE(position[n], 0);
    for (int32_t p : preds[n]) EXPECT_LT(position[p], position[n]);
  }
}

TEST(TopoTest, ShuffledRandomDagsGetAValidOrder) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  for (int trial = 0; trial < 50; ++trial) {
    Graph g = RandomDag(rng, 1 + static_cast<int>(rng() % 200));
    std::shuffle(g.nodes.begin(), g.nodes.end(), rng);
    absl::StatusOr<std::vector<int32_t>> order = TopologicalOrder(g);
    ASSERT_TRUE(order.ok()) << order.status();
    ExpectValidOrder(g, *order);
  }
}

TEST(TopoTest, ValidOrderIsKept) {
  std::mt19937 rng(7);
  const Graph g = RandomDag(rng, 100);
  absl::StatusOr<std::vector<int32_t>> order = TopologicalOrder(g);
  ASSERT_TRUE(order.ok());
  std::vector<int32_t> identity(g.nodes.size());
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(*order, identity);
}

TEST(TopoTest, CycleIsNamed) {
  std::mt19937 rng(11);
  Graph g = RandomDag(rng, 20);
  // n3 -> n5 -> n9 -> n3
  g.nodes[5].inputs.push_back(g.nodes[3].outputs[0]);
  g.nodes[9].inputs.push_back(g.nodes[5].outputs[0]);
  g.nodes[3].inputs.push_back(g.nodes[9].outputs[0]);
  absl::StatusOr<std::vector<int32_t>> order = TopologicalOrder(g);
  ASSERT_FALSE(order.ok());
  EXPECT_THAT(order.status().message(), ::testing::HasSubstr("cycle"));
  EXPECT_THAT(order.status().message(), ::testing::HasSubstr("'n5'"));
  EXPECT_THAT(order.status().message(), ::testing::HasSubstr("'n9'"));
}

}  // namespace
}  // namespace gradflow::graph
