#include "models/builder.h"

#include <cmath>
#include <string>

#include "gmock/gmock.h"
#include "graph/verify.h"
#include "gtest/gtest.h"
#include "models/layers.h"
#include "ops/registry.h"

namespace gradflow::models {
namespace {

using ::testing::HasSubstr;
using ::testing::Pair;

const graph::Tensor* FindTensor(const graph::Graph& g, std::string_view name) {
  int32_t id = g.FindTensor(name);
  return id == graph::kNoTensor ? nullptr : &g.tensors[id];
}

Value SmallImage(ModelBuilder& b) { return b.Input("input", {graph::kBatch, 3, 8, 8}); }

TEST(ModelBuilderTest, ScopesPrefixNamesLikeTorchvisionModules) {
  ModelBuilder b("scoped", ops::StandardOps());
  Value x = SmallImage(b);
  {
    auto layer = b.Scope("layer1");
    auto block = b.Scope("0");
    x = conv_bn_relu(b, x, 4, 3, 1, {.conv_name = "conv1", .bn_name = "bn1"});
  }
  x = flatten(b, global_avg_pool(b, x));
  absl::StatusOr<graph::Graph> g = b.Finish(fully_connected(b, x, 2, {.name = "fc"}));
  ASSERT_TRUE(g.ok()) << g.status();

  for (std::string_view name : {"layer1.0.conv1.weight", "layer1.0.bn1.weight", "layer1.0.bn1.bias",
                                "fc.weight", "fc.bias"}) {
    const graph::Tensor* t = FindTensor(*g, name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->role, graph::TensorRole::kParameter) << name;
  }
  for (std::string_view name : {"layer1.0.bn1.running_mean", "layer1.0.bn1.running_var"}) {
    const graph::Tensor* t = FindTensor(*g, name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->role, graph::TensorRole::kState) << name;
  }
  EXPECT_EQ(FindTensor(*g, "layer1.0.bn1.running_mean")->init.kind, graph::InitKind::kZeros);
  EXPECT_EQ(FindTensor(*g, "layer1.0.bn1.running_var")->init.kind, graph::InitKind::kOnes);
  // The scope ended before the pooling: its names carry no prefix.
  EXPECT_NE(FindTensor(*g, "avgpool"), nullptr);
}

TEST(ModelBuilderTest, UnnamedLayersGetFreshNumberedNames) {
  ModelBuilder b("fresh", ops::StandardOps());
  Value x = SmallImage(b);
  x = relu(b, x);
  x = relu(b, x);
  x = relu(b, x);
  EXPECT_EQ(b.FreshLocalName("relu"), "relu_3");
  EXPECT_EQ(b.FreshLocalName("conv"), "conv");
  absl::StatusOr<graph::Graph> g = b.Finish(fully_connected(b, flatten(b, conv2d(b, x, 2, 1)), 3));
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_NE(FindTensor(*g, "relu"), nullptr);
  EXPECT_NE(FindTensor(*g, "relu_1"), nullptr);
  EXPECT_NE(FindTensor(*g, "relu_2"), nullptr);
  EXPECT_NE(FindTensor(*g, "conv.weight"), nullptr);
}

TEST(ModelBuilderTest, ConvolutionsAndClassifierFollowThePapersInitialization) {
  ModelBuilder b("init", ops::StandardOps());
  Value x = conv2d(b, SmallImage(b), 64, 7, 2, {.name = "conv1"});
  x = batch_norm(b, x, {.zero_gamma = true, .name = "bn1"});
  absl::StatusOr<graph::Graph> g =
      b.Finish(fully_connected(b, flatten(b, global_avg_pool(b, x)), 10, {.name = "fc"}));
  ASSERT_TRUE(g.ok()) << g.status();

  const graph::Tensor* conv = FindTensor(*g, "conv1.weight");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(conv->shape, (graph::Shape{64, 3, 7, 7}));
  EXPECT_EQ(conv->init.kind, graph::InitKind::kHeNormal);
  // torchvision's kaiming_normal_(mode='fan_out'): fan_out = 64 * 7 * 7.
  EXPECT_FLOAT_EQ(conv->init.value, std::sqrt(2.0f / (64 * 7 * 7)));
  EXPECT_EQ(FindTensor(*g, "bn1.weight")->init.kind, graph::InitKind::kZeros);
  EXPECT_EQ(FindTensor(*g, "bn1.bias")->init.kind, graph::InitKind::kZeros);
  EXPECT_EQ(FindTensor(*g, "fc.weight")->init,
            (graph::Initializer{graph::InitKind::kNormal, 0.01f}));
  EXPECT_EQ(FindTensor(*g, "fc.bias")->init.kind, graph::InitKind::kZeros);
}

TEST(ModelBuilderTest, FinishFromLogitsAddsLabelsLossProducerAndMetadata) {
  ModelBuilder b("tiny", ops::StandardOps());
  Value x = b.Input("input", {graph::kBatch, 2, 6, 4});
  absl::StatusOr<graph::Graph> g = b.Finish(fully_connected(b, flatten(b, x), 5));
  ASSERT_TRUE(g.ok()) << g.status();

  EXPECT_EQ(g->name, "tiny");
  EXPECT_THAT(g->producer, ::testing::StartsWith("modelc "));
  ASSERT_EQ(g->labels.size(), 1u);
  const graph::Tensor& labels = g->tensors[g->labels[0]];
  EXPECT_EQ(labels.name, "labels");
  EXPECT_EQ(labels.dtype, graph::DType::kInt32);
  EXPECT_EQ(labels.shape, (graph::Shape{graph::kBatch}));
  ASSERT_NE(g->loss, graph::kNoTensor);
  EXPECT_TRUE(g->tensors[g->loss].shape.empty());
  const int32_t loss_node = g->ProducerOfEachTensor()[g->loss];
  ASSERT_GE(loss_node, 0);
  EXPECT_EQ(g->nodes[loss_node].op, "SoftmaxCrossEntropy");
  EXPECT_EQ(g->nodes[loss_node].phase, graph::Phase::kLoss);
  EXPECT_THAT(g->metadata,
              ::testing::ElementsAre(Pair("model", "tiny"), Pair("classes", "5"),
                                     Pair("image_size", "6x4"), Pair("channels", "2")));
  EXPECT_TRUE(graph::VerifyGraph(*g, ops::StandardOps()).ok());
}

TEST(ModelBuilderTest, FinishAcceptsAnExplicitLossAndExtraMetadata) {
  ModelBuilder b("explicit", ops::StandardOps());
  Value x = b.Input("input", {graph::kBatch, 1, 4, 4});
  Value targets = b.Label("targets");
  Value logits = fully_connected(b, flatten(b, x), 3);
  Value loss = softmax_cross_entropy(b, logits, targets, {.label_smoothing = 0.1f});
  b.SetMetadata("dataset", "toy");
  b.SetMetadata("dataset", "toy2");
  absl::StatusOr<graph::Graph> g = b.Finish(loss);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->loss, loss.id);
  ASSERT_EQ(g->labels.size(), 1u);
  EXPECT_EQ(g->tensors[g->labels[0]].name, "targets");
  EXPECT_THAT(g->metadata, ::testing::Contains(Pair("dataset", "toy2")));
  EXPECT_THAT(g->metadata, ::testing::Contains(Pair("classes", "3")));
}

TEST(ModelBuilderTest, FirstErrorIsStickyAndNamesTheLayer) {
  ModelBuilder b("broken", ops::StandardOps());
  Value x = b.Input("input", {graph::kBatch, 16});
  {
    auto scope = b.Scope("stem");
    // A convolution needs NCHW; the builder records the error and hands back an inert value.
    x = conv2d(b, x, 8, 3, 1, {.name = "conv1"});
  }
  EXPECT_FALSE(x.valid());
  EXPECT_FALSE(b.ok());
  // Later mistakes do not replace the first error.
  Value y = b.Apply("NoSuchOp", {x}, {}, "later")[0];
  EXPECT_FALSE(y.valid());
  Value p = b.Parameter("w", {4}, ZerosInit());
  EXPECT_FALSE(p.valid());
  absl::StatusOr<graph::Graph> g = b.Finish(y);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), HasSubstr("stem.conv1"));
  EXPECT_THAT(g.status().message(), HasSubstr("[N,16]"));
  EXPECT_THAT(g.status().message(), ::testing::Not(HasSubstr("NoSuchOp")));
}

TEST(ModelBuilderTest, UnknownOpNamesTheNodeAndTheOp) {
  ModelBuilder b("unknown", ops::StandardOps());
  Value x = SmallImage(b);
  EXPECT_EQ(b.Apply("NoSuchOp", {x}, {}, "mystery").size(), 0u);
  EXPECT_THAT(b.status().message(), HasSubstr("'mystery' (NoSuchOp): unknown op"));
}

TEST(ModelBuilderTest, ShapeFunctionErrorsNameTheNode) {
  ModelBuilder b("mismatch", ops::StandardOps());
  Value x = b.Input("input", {graph::kBatch, 3, 8, 8});
  Value w = b.Parameter("w", {4, 5, 3, 3}, ZerosInit());  // 5 input channels, x has 3
  EXPECT_FALSE(b.Apply("Conv2D", {x, w}, {}, "bad_conv")[0].valid());
  EXPECT_THAT(b.status().message(), HasSubstr("bad_conv"));
}

TEST(ModelBuilderTest, WrongAttributeTypeIsAnError) {
  ModelBuilder b("attrs", ops::StandardOps());
  Value x = SmallImage(b);
  EXPECT_FALSE(b.Apply("Flatten", {x}, {{"axis", 1.5f}}, "flat")[0].valid());
  EXPECT_THAT(b.status().message(), HasSubstr("flat"));
  EXPECT_THAT(b.status().message(), HasSubstr("axis"));
}

TEST(ModelBuilderTest, DuplicateNamesAreErrors) {
  ModelBuilder b("dup", ops::StandardOps());
  Value x = SmallImage(b);
  conv2d(b, x, 4, 3, 1, {.name = "conv1"});
  EXPECT_TRUE(b.ok());
  conv2d(b, x, 4, 3, 1, {.name = "conv1"});
  EXPECT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr("duplicate tensor name 'conv1.weight'"));
}

TEST(ModelBuilderTest, ValuesFromElsewhereAreRejected) {
  ModelBuilder b("foreign", ops::StandardOps());
  SmallImage(b);
  EXPECT_FALSE(relu(b, Value{1234}).valid());
  EXPECT_THAT(b.status().message(), HasSubstr("does not belong to this model"));

  ModelBuilder c("undefined", ops::StandardOps());
  SmallImage(c);
  EXPECT_FALSE(relu(c, Value{}).valid());
  EXPECT_THAT(c.status().message(), HasSubstr("undefined value"));
}

TEST(ModelBuilderTest, FinishRejectsWhatIsNeitherLossNorLogits) {
  ModelBuilder b("shape", ops::StandardOps());
  Value x = relu(b, SmallImage(b));
  absl::StatusOr<graph::Graph> g = b.Finish(x);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(g.status().message(), HasSubstr("[N,3,8,8]"));
}

TEST(ModelBuilderTest, FinishTwiceFails) {
  ModelBuilder b("twice", ops::StandardOps());
  Value logits = fully_connected(b, flatten(b, SmallImage(b)), 2);
  ASSERT_TRUE(b.Finish(logits).ok());
  absl::StatusOr<graph::Graph> again = b.Finish(logits);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ModelBuilderTest, ParameterWithoutPathToTheLossFailsInFinish) {
  ModelBuilder b("unused", ops::StandardOps());
  Value x = SmallImage(b);
  b.Parameter("orphan", {3}, ZerosInit());
  absl::StatusOr<graph::Graph> g = b.Finish(fully_connected(b, flatten(b, x), 2));
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(g.status().message(), HasSubstr("orphan"));
}

TEST(ModelBuilderTest, BadSourceShapesAreErrors) {
  ModelBuilder b("shapes", ops::StandardOps());
  EXPECT_FALSE(b.Parameter("w", {graph::kBatch, 3}, ZerosInit()).valid());
  EXPECT_THAT(b.status().message(), HasSubstr("'w'"));

  ModelBuilder c("zero", ops::StandardOps());
  EXPECT_FALSE(c.Input("input", {graph::kBatch, 0, 4, 4}).valid());
  EXPECT_THAT(c.status().message(), HasSubstr("dimension 1"));
}

}  // namespace
}  // namespace gradflow::models
