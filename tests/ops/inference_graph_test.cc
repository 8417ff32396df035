#include "ops/inference_graph.h"

#include "gmock/gmock.h"
#include "graph/verify.h"
#include "gtest/gtest.h"
#include "models/zoo.h"
#include "ops/registry.h"

namespace gradflow::ops {
namespace {

TEST(InferenceGraphTest, ResNetLosesBackwardAndBatchStatistics) {
  absl::StatusOr<graph::Graph> training =
      models::BuildModel("resnet18", {.classes = 10, .image_size = 32}, StandardOps());
  ASSERT_TRUE(training.ok()) << training.status();
  absl::StatusOr<graph::Graph> eval = InferenceGraph(*training);
  ASSERT_TRUE(eval.ok()) << eval.status();
  absl::Status verified = graph::VerifyGraph(*eval, StandardOps());
  ASSERT_TRUE(verified.ok()) << verified;
  EXPECT_TRUE(eval->param_grads.empty());
  int batch_norms = 0;
  for (const graph::Node& n : eval->nodes) {
    EXPECT_NE(n.phase, graph::Phase::kBackward) << n.name;
    if (n.op == "BatchNorm") {
      ++batch_norms;
      EXPECT_EQ(std::get<int64_t>(n.attrs.at("training")), 0);
      EXPECT_EQ(n.outputs.size(), 1u);
    }
  }
  EXPECT_EQ(batch_norms, 20);
  // Parameters and running statistics keep their names, so an eval run binds to training's.
  for (const char* name : {"conv1.weight", "layer4.1.bn2.running_var", "fc.bias", "input"}) {
    EXPECT_NE(eval->FindTensor(name), graph::kNoTensor) << name;
  }
  for (const graph::Tensor& t : eval->tensors) {
    EXPECT_NE(t.role, graph::TensorRole::kGradient) << t.name;
    EXPECT_EQ(t.name.find("saved_mean"), std::string::npos) << t.name;
  }
  EXPECT_EQ(eval->tensors[eval->loss].name, training->tensors[training->loss].name);
}

}  // namespace
}  // namespace gradflow::ops
