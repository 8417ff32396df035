#include "runtime/data/data_spec.h"

#include <cmath>
#include <filesystem>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/data/fashion_mnist.h"
#include "tests/runtime_data/test_files.h"

namespace gradflow::runtime::data {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

DataSpecOptions GraphOf(ExampleShape input, int32_t classes) {
  DataSpecOptions options;
  options.graph_input = input;
  options.graph_classes = classes;
  return options;
}

// Minimal Fashion-MNIST-format files (2 train, 1 test image of 28x28).
std::string WriteTinyFashionMnist() {
  const std::string dir = testing::FreshTempDir("data_spec_fmnist");
  for (auto [prefix, count] : {std::pair<const char*, uint32_t>{"train", 2}, {"t10k", 1}}) {
    testing::WriteGzip(dir + "/" + prefix + "-images-idx3-ubyte.gz",
                       testing::IdxBytes({count, 28, 28}, std::vector<uint8_t>(count * 784, 9)));
    testing::WriteGzip(dir + "/" + prefix + "-labels-idx1-ubyte.gz",
                       testing::IdxBytes({count}, std::vector<uint8_t>(count, 4)));
  }
  return dir;
}

TEST(DataSpecTest, UnknownKindListsTheKnownOnes) {
  auto dataset = ParseDataSpec("cifar:/data", {});
  EXPECT_TRUE(absl::IsInvalidArgument(dataset.status()));
  EXPECT_THAT(dataset.status().message(),
              AllOf(HasSubstr("unknown kind 'cifar'"), HasSubstr("fashion-mnist[:DIR]"),
                    HasSubstr("imagefolder:DIR")));
}

TEST(DataSpecTest, SyntheticTakesTheGraphsShape) {
  auto dataset = ParseDataSpec("synthetic", GraphOf({3, 8, 8}, 5));
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ((*dataset)->Shape(), (ExampleShape{3, 8, 8}));
  EXPECT_EQ((*dataset)->NumClasses(), 5);
  EXPECT_EQ((*dataset)->NumExamples(Split::kTrain), 1281167);
  EXPECT_EQ((*dataset)->NumExamples(Split::kEval), 50000);
}

TEST(DataSpecTest, SyntheticCounts) {
  auto train_only = ParseDataSpec("synthetic:1000", GraphOf({1, 4, 4}, 3));
  ASSERT_TRUE(train_only.ok()) << train_only.status();
  EXPECT_EQ((*train_only)->NumExamples(Split::kTrain), 1000);
  EXPECT_EQ((*train_only)->NumExamples(Split::kEval), 40);
  auto both = ParseDataSpec("synthetic:64,16", GraphOf({1, 4, 4}, 3));
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ((*both)->NumExamples(Split::kEval), 16);
  for (const char* bad : {"synthetic:x", "synthetic:0", "synthetic:5,", "synthetic:1,2,3"}) {
    auto dataset = ParseDataSpec(bad, GraphOf({1, 4, 4}, 3));
    EXPECT_THAT(dataset.status().message(), HasSubstr("positive example counts")) << bad;
  }
}

TEST(DataSpecTest, SyntheticNeedsTheGraph) {
  auto dataset = ParseDataSpec("synthetic", {});
  EXPECT_THAT(dataset.status().message(), HasSubstr("takes its shape and class count"));
}

TEST(DataSpecTest, SyntheticExamplesAreDeterministicAndStandardized) {
  DataSpecOptions options = GraphOf({3, 32, 32}, 10);
  options.seed = 77;
  auto dataset = ParseDataSpec("synthetic:100", options);
  auto again = ParseDataSpec("synthetic:100", options);
  options.seed = 78;
  auto other = ParseDataSpec("synthetic:100", options);
  ASSERT_TRUE(dataset.ok() && again.ok() && other.ok());
  std::vector<float> a(3 * 32 * 32), b(a.size()), c(a.size());
  int32_t label_a, label_b, label_c;
  Rng rng_a(1), rng_b(2);  // ignored by synthetic data
  ASSERT_TRUE((*dataset)->LoadExample(Split::kTrain, 42, rng_a, a.data(), &label_a).ok());
  ASSERT_TRUE((*again)->LoadExample(Split::kTrain, 42, rng_b, b.data(), &label_b).ok());
  ASSERT_TRUE((*other)->LoadExample(Split::kTrain, 42, rng_b, c.data(), &label_c).ok());
  EXPECT_EQ(a, b);
  EXPECT_EQ(label_a, label_b);
  EXPECT_NE(a, c);
  double sum = 0, sum_of_squares = 0;
  for (float v : a) {
    ASSERT_LE(std::abs(v), std::sqrt(3.0f) + 1e-5f);
    sum += v;
    sum_of_squares += v * v;
  }
  EXPECT_NEAR(sum / a.size(), 0.0, 0.06);
  EXPECT_NEAR(sum_of_squares / a.size(), 1.0, 0.06);
  std::set<int32_t> labels;
  for (int64_t i = 0; i < 100; ++i) {
    ASSERT_TRUE((*dataset)->LoadExample(Split::kTrain, i, rng_a, a.data(), &label_a).ok());
    ASSERT_GE(label_a, 0);
    ASSERT_LT(label_a, 10);
    labels.insert(label_a);
  }
  EXPECT_EQ(labels.size(), 10u);
}

TEST(DataSpecTest, FashionMnistFromADirectory) {
  const std::string dir = WriteTinyFashionMnist();
  auto dataset = ParseDataSpec("fashion-mnist:" + dir, GraphOf({1, 28, 28}, 10));
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ((*dataset)->NumExamples(Split::kTrain), 2);
  EXPECT_EQ((*dataset)->Describe(), "fashion-mnist:" + dir);
}

TEST(DataSpecTest, FashionMnistDefaultsToTheDebianPackage) {
  if (!std::filesystem::exists(std::string(FashionMnistDataset::kDebianDir) +
                               "/train-images-idx3-ubyte.gz")) {
    auto dataset = ParseDataSpec("fashion-mnist", {});
    EXPECT_THAT(dataset.status().message(), HasSubstr("dataset-fashion-mnist"));
    return;
  }
  auto dataset = ParseDataSpec("fashion-mnist", {});
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ((*dataset)->NumExamples(Split::kEval), 10000);
}

TEST(DataSpecTest, BadPathsAreNamed) {
  auto fmnist = ParseDataSpec("fashion-mnist:/no/such/dir", {});
  EXPECT_TRUE(absl::IsNotFound(fmnist.status()));
  EXPECT_THAT(fmnist.status().message(),
              AllOf(HasSubstr("fashion-mnist:/no/such/dir"), HasSubstr("not a directory")));
  auto folder = ParseDataSpec("imagefolder:/no/such/dir", {});
  EXPECT_THAT(folder.status().message(), HasSubstr("imagefolder:/no/such/dir"));
  auto no_dir = ParseDataSpec("imagefolder", {});
  EXPECT_THAT(no_dir.status().message(), HasSubstr("needs a directory"));
  const std::string empty = testing::FreshTempDir("data_spec_empty");
  auto empty_folder = ParseDataSpec("imagefolder:" + empty, {});
  EXPECT_THAT(empty_folder.status().message(), HasSubstr(empty + "/train"));
  auto wrong_files = ParseDataSpec("fashion-mnist:" + empty, {});
  EXPECT_THAT(wrong_files.status().message(), AllOf(HasSubstr("--data fashion-mnist:" + empty),
                                                    HasSubstr("train-images-idx3-ubyte.gz")));
}

TEST(DataSpecTest, ShapeAndClassesMustFitTheGraph) {
  const std::string dir = WriteTinyFashionMnist();
  auto wrong_shape = ParseDataSpec("fashion-mnist:" + dir, GraphOf({3, 224, 224}, 1000));
  EXPECT_THAT(wrong_shape.status().message(),
              AllOf(HasSubstr("[1,28,28]"), HasSubstr("graph's input is [3,224,224]")));
  auto too_many_classes = ParseDataSpec("fashion-mnist:" + dir, GraphOf({1, 28, 28}, 5));
  EXPECT_THAT(too_many_classes.status().message(),
              HasSubstr("10 classes but the graph's logits have 5"));
  auto gray_folder = ParseDataSpec("imagefolder:" + dir, GraphOf({1, 28, 28}, 10));
  EXPECT_THAT(gray_folder.status().message(), HasSubstr("square RGB crops"));
}

TEST(DataSpecTest, ImageFolderCropsToTheGraphsInput) {
  const std::string root = testing::FreshTempDir("data_spec_folder");
  for (const char* split : {"train", "val"}) {
    std::filesystem::create_directories(root + "/" + split + "/only");
    testing::WriteBytes(root + "/" + split + "/only/x.jpg",
                        testing::EncodeSolidJpeg(50, 40, {1, 2, 3}));
  }
  auto dataset = ParseDataSpec("imagefolder:" + root, GraphOf({3, 48, 48}, 1000));
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ((*dataset)->Shape(), (ExampleShape{3, 48, 48}));
  EXPECT_EQ((*dataset)->NumClasses(), 1);
}

}  // namespace
}  // namespace gradflow::runtime::data
