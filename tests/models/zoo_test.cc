#include "models/zoo.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "gmock/gmock.h"
#include "graph/serialize.h"
#include "graph/summary.h"
#include "graph/verify.h"
#include "gtest/gtest.h"
#include "ops/registry.h"

namespace gradflow::models {
namespace {

using ::testing::HasSubstr;

graph::Graph MustBuild(std::string_view name, const ModelOptions& options = {}) {
  absl::StatusOr<graph::Graph> g = BuildModel(name, options, ops::StandardOps());
  EXPECT_TRUE(g.ok()) << name << ": " << g.status();
  return g.ok() ? *std::move(g) : graph::Graph{};
}

const graph::Tensor* FindTensor(const graph::Graph& g, std::string_view name) {
  int32_t id = g.FindTensor(name);
  return id == graph::kNoTensor ? nullptr : &g.tensors[id];
}

int64_t CountElements(const graph::Graph& g, graph::TensorRole role) {
  int64_t count = 0;
  for (const graph::Tensor& t : g.tensors) {
    if (t.role == role) count += graph::NumElements(t.shape);
  }
  return count;
}

std::filesystem::path TestDir() {
  const char* root = std::getenv("GRADFLOW_TEST_TMPDIR");
  std::filesystem::path dir =
      root != nullptr ? std::filesystem::path(root) : std::filesystem::temp_directory_path();
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  dir /= std::string("zoo_test.") + info->name() + "." + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  return dir;
}

// torchvision's published parameter counts (sum of numel() over model.parameters(); the BN
// running statistics are buffers, not parameters).
TEST(ZooTest, ParameterCountsMatchTorchvision) {
  const std::map<std::string, int64_t> expected = {
      {"resnet18", 11'689'512},  {"resnet34", 21'797'672},  {"resnet50", 25'557'032},
      {"resnet101", 44'549'160}, {"resnet152", 60'192'808}, {"fmnist-cnn", 421'642},
  };
  for (const auto& [name, count] : expected) {
    graph::Graph g = MustBuild(name);
    absl::StatusOr<graph::GraphSummary> summary = graph::Summarize(g, ops::StandardOps());
    ASSERT_TRUE(summary.ok()) << name << ": " << summary.status();
    EXPECT_EQ(summary->parameter_count, count) << name;
    EXPECT_EQ(CountElements(g, graph::TensorRole::kParameter), count) << name;
  }
}

TEST(ZooTest, ResNet50ForwardCostsAbout4GMacsPerImage) {
  // Conv and FC multiply-accumulates of one 224x224 image, stage by stage (output positions x
  // output channels x input channels x kernel area):
  //   conv1 7x7 3->64 at 112x112                                         118,013,952
  //   layer1 (56x56): 3 bottlenecks 64/256 + downsample 64->256          667,942,912
  //   layer2 (28x28): 4 bottlenecks 128/512, stride in block 0           1,027,604,480
  //   layer3 (14x14): 6 bottlenecks 256/1024                             1,464,336,384
  //   layer4 (7x7):   3 bottlenecks 512/2048                             809,238,528
  //   fc 2048->1000                                                      2,048,000
  //   total                                                              4,089,184,256
  // torchvision rounds this to 4.09 GMACs ("4.1 GFLOPS" in the ResNet paper's table).
  graph::Graph g = MustBuild("resnet50");
  absl::StatusOr<graph::GraphSummary> summary = graph::Summarize(g, ops::StandardOps());
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_NEAR(summary->forward_macs_per_example, 4.089e9, 0.01 * 4.089e9);
  // The MACs are at least half of all forward FLOPs (2 per MAC).
  EXPECT_GE(summary->forward_flops_per_example, 2 * summary->forward_macs_per_example);
  // BN running statistics are state: 2 x (channels of every BN).
  EXPECT_EQ(summary->state_count, CountElements(g, graph::TensorRole::kState));
  EXPECT_GT(summary->state_count, 0);
}

TEST(ZooTest, ResNet50RoundTripsThroughAFile) {
  graph::Graph g = MustBuild("resnet50");
  const std::filesystem::path path = TestDir() / "resnet50.fb";
  ASSERT_TRUE(graph::SaveGraph(g, path.string()).ok());
  absl::StatusOr<graph::Graph> loaded = graph::LoadGraph(path.string(), ops::StandardOps());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(*loaded == g);
}

// The last BN of every residual block: bn2 in basic blocks, bn3 in bottlenecks.
std::set<std::string> LastBlockNormGammas(const graph::Graph& g, std::string_view last_bn) {
  std::set<std::string> names;
  for (const graph::Tensor& t : g.tensors) {
    if (t.name.starts_with("layer") &&
        t.name.ends_with(std::string(".") + std::string(last_bn) + ".weight")) {
      names.insert(t.name);
    }
  }
  return names;
}

TEST(ZooTest, ZeroGammaStartsEachResidualBlockAsTheIdentity) {
  struct Case {
    std::string_view model;
    std::string_view last_bn;
    size_t blocks;
  };
  for (const Case& c :
       {Case{"resnet50", "bn3", 16}, Case{"resnet18", "bn2", 8}, Case{"resnet-fmnist", "bn2", 6}}) {
    graph::Graph with = MustBuild(c.model);
    graph::Graph without = MustBuild(c.model, {.zero_gamma = false});
    std::set<std::string> last = LastBlockNormGammas(with, c.last_bn);
    EXPECT_EQ(last.size(), c.blocks) << c.model;
    for (const graph::Tensor& t : with.tensors) {
      if (!t.name.ends_with(".weight") || t.shape.size() != 1 ||
          t.role != graph::TensorRole::kParameter || t.name.starts_with("fc")) {
        continue;  // only BN gammas are 1-D weights
      }
      const graph::InitKind expected =
          last.contains(t.name) ? graph::InitKind::kZeros : graph::InitKind::kOnes;
      EXPECT_EQ(t.init.kind, expected) << c.model << " " << t.name;
      const graph::Tensor* off = FindTensor(without, t.name);
      ASSERT_NE(off, nullptr) << t.name;
      EXPECT_EQ(off->init.kind, graph::InitKind::kOnes) << c.model << " " << t.name;
    }
  }
}

TEST(ZooTest, ResNetNamesMatchTorchvisionStateDict) {
  graph::Graph g = MustBuild("resnet50");
  const std::map<std::string, graph::Shape> expected = {
      {"conv1.weight", {64, 3, 7, 7}},
      {"bn1.weight", {64}},
      {"bn1.running_var", {64}},
      {"layer1.0.conv1.weight", {64, 64, 1, 1}},
      {"layer1.0.downsample.0.weight", {256, 64, 1, 1}},
      {"layer1.0.downsample.1.running_mean", {256}},
      // v1.5: the stride sits on the 3x3 conv, whose shape is the same either way; the 1x1
      // downsample carries it too.
      {"layer2.0.conv2.weight", {128, 128, 3, 3}},
      {"layer2.0.downsample.0.weight", {512, 256, 1, 1}},
      {"layer4.2.bn3.weight", {2048}},
      {"fc.weight", {1000, 2048}},
      {"fc.bias", {1000}},
  };
  for (const auto& [name, shape] : expected) {
    const graph::Tensor* t = FindTensor(g, name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->shape, shape) << name;
  }
  EXPECT_EQ(FindTensor(g, "layer1.1.downsample.0.weight"), nullptr);
  EXPECT_EQ(FindTensor(g, "layer4.3.conv1.weight"), nullptr);
  EXPECT_EQ(FindTensor(MustBuild("resnet18"), "layer1.0.downsample.0.weight"), nullptr);
}

TEST(ZooTest, ResNet50StridesSitOnThe3x3Convolution) {
  graph::Graph g = MustBuild("resnet50");
  const std::vector<int32_t> producers = g.ProducerOfEachTensor();
  auto strides_of = [&](std::string_view conv) -> std::vector<int64_t> {
    int32_t id = g.FindTensor(conv);
    if (id == graph::kNoTensor || producers[id] < 0) return {};
    const graph::AttrMap& attrs = g.nodes[producers[id]].attrs;
    auto it = attrs.find("strides");
    return it == attrs.end() ? std::vector<int64_t>{} : std::get<std::vector<int64_t>>(it->second);
  };
  EXPECT_EQ(strides_of("layer2.0.conv1"), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(strides_of("layer2.0.conv2"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(strides_of("layer2.0.downsample.0"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(g.tensors[g.FindTensor("layer4.2.conv3")].shape,
            (graph::Shape{graph::kBatch, 2048, 7, 7}));
}

TEST(ZooTest, EveryModelBuildsVerifiesAndHasOneGradientPerParameter) {
  for (const ZooModel& model : Zoo()) {
    SCOPED_TRACE(std::string(model.name));
    graph::Graph g = MustBuild(model.name);
    EXPECT_EQ(g.name, model.name);
    EXPECT_TRUE(graph::VerifyGraph(g, ops::StandardOps()).ok());
    ASSERT_NE(g.loss, graph::kNoTensor);
    EXPECT_EQ(g.inputs.size(), 1u);
    EXPECT_EQ(g.labels.size(), 1u);

    std::multiset<int32_t> params_with_grads;
    for (const graph::ParamGrad& pg : g.param_grads) {
      ASSERT_GE(pg.param, 0);
      ASSERT_GE(pg.grad, 0);
      params_with_grads.insert(pg.param);
      EXPECT_EQ(g.tensors[pg.grad].role, graph::TensorRole::kGradient);
      EXPECT_EQ(g.tensors[pg.grad].shape, g.tensors[pg.param].shape);
    }
    std::multiset<int32_t> params;
    for (int32_t i = 0; i < static_cast<int32_t>(g.tensors.size()); ++i) {
      if (g.tensors[i].role == graph::TensorRole::kParameter) params.insert(i);
    }
    EXPECT_EQ(params_with_grads, params);
    for (const auto& [key, value] : g.metadata) {
      if (key == "classes") {
        EXPECT_EQ(value, std::to_string(model.defaults.classes));
      } else if (key == "image_size") {
        EXPECT_EQ(value, std::to_string(model.defaults.image_size));
      }
    }
  }
}

TEST(ZooTest, ZooIsSortedAndDescribed) {
  std::string previous;
  for (const ZooModel& model : Zoo()) {
    EXPECT_LT(previous, model.name);
    EXPECT_FALSE(model.description.empty()) << model.name;
    EXPECT_EQ(FindModel(model.name), &model);
    previous = std::string(model.name);
  }
  EXPECT_EQ(FindModel("resnet51"), nullptr);
  EXPECT_GE(Zoo().size(), 8u);
}

TEST(ZooTest, OptionsReshapeTheModel) {
  graph::Graph fmnist = MustBuild("resnet-fmnist", {.classes = 5});
  EXPECT_EQ(FindTensor(fmnist, "fc.weight")->shape, (graph::Shape{5, 64}));

  graph::Graph gray = MustBuild("resnet18", {.image_size = 64, .channels = 1});
  EXPECT_EQ(FindTensor(gray, "conv1.weight")->shape, (graph::Shape{64, 1, 7, 7}));
  EXPECT_EQ(gray.tensors[gray.inputs[0]].shape, (graph::Shape{graph::kBatch, 1, 64, 64}));
  EXPECT_THAT(gray.metadata, ::testing::Contains(::testing::Pair("image_size", "64")));

  graph::Graph cnn = MustBuild("fmnist-cnn");
  EXPECT_EQ(FindTensor(cnn, "fc1.weight")->shape, (graph::Shape{128, 3136}));
  EXPECT_EQ(FindTensor(cnn, "conv1.bias")->shape, (graph::Shape{32}));
  graph::Graph cnn32 = MustBuild("fmnist-cnn", {.image_size = 32, .channels = 3});
  EXPECT_EQ(FindTensor(cnn32, "fc1.weight")->shape, (graph::Shape{128, 64 * 8 * 8}));

  graph::Graph mlp = MustBuild("mlp", {.classes = 7});
  EXPECT_EQ(FindTensor(mlp, "fc1.weight")->shape, (graph::Shape{256, 784}));
  EXPECT_EQ(FindTensor(mlp, "fc3.weight")->shape, (graph::Shape{7, 128}));
}

TEST(ZooTest, NonsensicalOptionsAreRejectedByName) {
  struct Case {
    std::string_view model;
    ModelOptions options;
    std::string_view message;
  };
  const Case cases[] = {
      {"resnet50", {.image_size = 16}, "image size 16 is too small"},
      {"resnet50", {.classes = 1}, "classes 1 is too small"},
      {"resnet18", {.channels = 0}, "channels 0"},
      {"fmnist-cnn", {.image_size = 3}, "image size 3"},
      {"mlp", {.classes = kMaxClasses + 1}, "too large"},
      {"resnet-fmnist", {.image_size = -28}, "image size -28"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<graph::Graph> g = BuildModel(c.model, c.options, ops::StandardOps());
    ASSERT_FALSE(g.ok()) << c.model;
    EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(g.status().message(), HasSubstr(c.model));
    EXPECT_THAT(g.status().message(), HasSubstr(c.message));
  }
  absl::StatusOr<graph::Graph> unknown = BuildModel("resnet51", {}, ops::StandardOps());
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(unknown.status().message(), HasSubstr("resnet51"));
}

TEST(ZooTest, SmallestAcceptedImageBuilds) {
  for (const ZooModel& model : Zoo()) {
    if (model.name == "resnet101" || model.name == "resnet152") continue;  // same as resnet50
    SCOPED_TRACE(std::string(model.name));
    MustBuild(model.name, {.image_size = model.min_image_size});
  }
}

}  // namespace
}  // namespace gradflow::models

namespace gradflow::models {
namespace {

// fmnist-cnn is the model compared with PyTorch: it starts from PyTorch's default
// initialization, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases alike.
TEST(ZooTest, FashionMnistCnnUsesPyTorchDefaultInitialization) {
  absl::StatusOr<graph::Graph> g = BuildModel("fmnist-cnn", {}, ops::StandardOps());
  ASSERT_TRUE(g.ok()) << g.status();
  const std::pair<const char*, int64_t> fan_ins[] = {{"conv1.weight", 9},    {"conv1.bias", 9},
                                                     {"conv2.weight", 288},  {"conv2.bias", 288},
                                                     {"fc1.weight", 3136},   {"fc1.bias", 3136},
                                                     {"fc2.weight", 128},    {"fc2.bias", 128}};
  for (const auto& [name, fan_in] : fan_ins) {
    const int32_t t = g->FindTensor(name);
    ASSERT_NE(t, graph::kNoTensor) << name;
    EXPECT_EQ(g->tensors[t].init.kind, graph::InitKind::kUniform) << name;
    EXPECT_FLOAT_EQ(g->tensors[t].init.value, 1.0f / std::sqrt(static_cast<float>(fan_in))) << name;
  }
}

}  // namespace
}  // namespace gradflow::models
