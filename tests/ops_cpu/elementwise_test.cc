// Relu, Add, Reshape/Flatten and SoftmaxCrossEntropy CPU kernels against double-precision loops.
#include <cmath>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/ops_cpu/elementwise_test_util.h"

namespace gradflow::ops::cpu::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::TestWithParam;
using ::testing::Values;

constexpr double kTolerance = 1e-4;

class LayoutTest : public TestWithParam<Layout> {};

TEST_P(LayoutTest, ReluAndReluGradMatchReference) {
  const Layout layout = GetParam();
  for (const graph::Shape& shape : {graph::Shape{1, 3, 5, 7}, graph::Shape{2, 16, 9, 9},
                                    graph::Shape{3, 33}, graph::Shape{4, 64, 16, 16}}) {
    SCOPED_TRACE(graph::ShapeToString(shape));
    const int64_t n = graph::NumElements(shape);
    const std::vector<double> x_values = Uniform(n, -1, 1, 1);
    const std::vector<double> dy_values = Uniform(n, -2, 2, 2);
    TestTensor x = Float32(shape, x_values, layout);
    TestTensor y = Poisoned(shape, layout);
    ASSERT_EQ(RunOp("Relu", {}, {&x}, {&y}), absl::OkStatus());
    std::vector<double> y_expected(n), dx_expected(n);
    for (int64_t i = 0; i < n; ++i) {
      y_expected[i] = std::max(0.0, x_values[i]);
      dx_expected[i] = y_expected[i] > 0 ? dy_values[i] : 0.0;
    }
    EXPECT_LT(RelativeError(Logical(y), y_expected), kTolerance);

    TestTensor dy = Float32(shape, dy_values, layout);
    TestTensor dx = Poisoned(shape, layout);
    ASSERT_EQ(RunOp("ReluGrad", {}, {&dy, &y}, {&dx}), absl::OkStatus());
    EXPECT_EQ(RelativeError(Logical(dx), dx_expected), 0);
  }
}

TEST_P(LayoutTest, AddMatchesReference) {
  const Layout layout = GetParam();
  for (const graph::Shape& shape : {graph::Shape{1, 3, 5, 7}, graph::Shape{2, 64, 17, 17}}) {
    const int64_t n = graph::NumElements(shape);
    const std::vector<double> a_values = Uniform(n, -1, 1, 3);
    const std::vector<double> b_values = Uniform(n, -1, 1, 4);
    TestTensor a = Float32(shape, a_values, layout);
    TestTensor b = Float32(shape, b_values, layout);
    TestTensor y = Poisoned(shape, layout);
    ASSERT_EQ(RunOp("Add", {}, {&a, &b}, {&y}), absl::OkStatus());
    std::vector<double> expected(n);
    for (int64_t i = 0; i < n; ++i) {
      expected[i] = a_values[i] + b_values[i];
    }
    EXPECT_LT(RelativeError(Logical(y), expected), kTolerance);
  }
}

TEST_P(LayoutTest, FlattenKeepsLogicalOrderAndCountsReorders) {
  const Layout layout = GetParam();
  const graph::Shape shape = {3, 5, 2, 3};
  const std::vector<double> values = Uniform(graph::NumElements(shape), -1, 1, 5);
  TestTensor x = Float32(shape, values, layout);
  TestTensor y = Poisoned({3, 30});
  const int64_t before = TestContext().reorders();
  ASSERT_EQ(RunOp("Flatten", {{"axis", int64_t{1}}}, {&x}, {&y}), absl::OkStatus());
  EXPECT_EQ(Logical(y), values);
  EXPECT_EQ(TestContext().reorders() - before, layout == Layout::kChannelsLast ? 1 : 0);
}

TEST_P(LayoutTest, ReshapeBackToImageUsesRequestedLayout) {
  const Layout layout = GetParam();
  const graph::Shape shape = {2, 4, 3, 3};
  const std::vector<double> values = Uniform(graph::NumElements(shape), -1, 1, 6);
  TestTensor x = Float32({2, 36}, values);
  TestTensor y = Poisoned(shape, layout);
  const int64_t before = TestContext().reorders();
  ASSERT_EQ(RunOp("Reshape", {{"shape", std::vector<int64_t>(shape)}}, {&x}, {&y}),
            absl::OkStatus());
  EXPECT_EQ(Logical(y), values);
  EXPECT_EQ(TestContext().reorders() - before, layout == Layout::kChannelsLast ? 1 : 0);
}

INSTANTIATE_TEST_SUITE_P(Layouts, LayoutTest, ::testing::ValuesIn(kBothLayouts),
                         [](const auto& param_info) { return LayoutName(param_info.param); });

TEST(ReshapeTest, PixelFreeChannelsLastNeedsNoReorder) {
  const std::vector<double> values = Uniform(2 * 7, -1, 1, 7);
  TestTensor x = Float32({2, 7, 1, 1}, values, Layout::kChannelsLast);
  TestTensor y = Poisoned({2, 7});
  const int64_t before = TestContext().reorders();
  ASSERT_EQ(RunOp("Flatten", {}, {&x}, {&y}), absl::OkStatus());
  EXPECT_EQ(Logical(y), values);
  EXPECT_EQ(TestContext().reorders(), before);
}

TEST(ReshapeTest, ChannelsLastToChannelsLastOfAnotherShape) {
  const std::vector<double> values = Uniform(2 * 4 * 3 * 2, -1, 1, 8);
  TestTensor x = Float32({2, 4, 3, 2}, values, Layout::kChannelsLast);
  TestTensor y = Poisoned({2, 6, 2, 2}, Layout::kChannelsLast);
  const int64_t before = TestContext().reorders();
  ASSERT_EQ(RunOp("Reshape", {{"shape", std::vector<int64_t>{2, 6, 2, 2}}}, {&x}, {&y}),
            absl::OkStatus());
  EXPECT_EQ(Logical(y), values);
  EXPECT_EQ(TestContext().reorders() - before, 2);
}

TEST(ElementwiseTest, RejectsMixedLayouts) {
  const graph::Shape shape = {1, 3, 4, 4};
  const std::vector<double> values = Uniform(graph::NumElements(shape), -1, 1, 9);
  TestTensor a = Float32(shape, values, Layout::kRowMajor);
  TestTensor b = Float32(shape, values, Layout::kChannelsLast);
  TestTensor y = Poisoned(shape, Layout::kRowMajor);
  const absl::Status mixed = RunOp("Add", {}, {&a, &b}, {&y});
  EXPECT_EQ(mixed.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(mixed.message(), HasSubstr("layout"));
}

// Softmax cross-entropy in double: loss and probabilities for labels and smoothing s.
struct LossReference {
  double loss = 0;
  std::vector<double> probs;
  std::vector<double> dlogits;
};
LossReference SoftmaxCrossEntropyReference(const std::vector<double>& logits,
                                           const std::vector<int64_t>& labels, int64_t classes,
                                           double smoothing) {
  const auto batch = static_cast<int64_t>(labels.size());
  LossReference ref;
  ref.probs.resize(logits.size());
  ref.dlogits.resize(logits.size());
  for (int64_t n = 0; n < batch; ++n) {
    double sum = 0;
    for (int64_t c = 0; c < classes; ++c) sum += std::exp(logits[n * classes + c]);
    for (int64_t c = 0; c < classes; ++c) {
      const double p = std::exp(logits[n * classes + c]) / sum;
      const double q = (c == labels[n] ? 1 - smoothing : 0) + smoothing / classes;
      ref.probs[n * classes + c] = p;
      ref.dlogits[n * classes + c] = (p - q) / batch;
      ref.loss -= q * std::log(p) / batch;
    }
  }
  return ref;
}

class SoftmaxCrossEntropyTest : public TestWithParam<graph::DType> {};

TEST_P(SoftmaxCrossEntropyTest, MatchesReferenceWithLabelSmoothing) {
  for (const auto& [batch, classes, smoothing] : {std::tuple<int64_t, int64_t, float>{1, 5, 0.0f},
                                                  {7, 10, 0.1f},
                                                  {16, 1000, 0.1f},
                                                  {3, 3, 0.5f}}) {
    SCOPED_TRACE(::testing::Message() << batch << "x" << classes << " s=" << smoothing);
    std::vector<double> logits = Uniform(batch * classes, -8, 8, 10);
    logits[0] = 80;  // exp(80) overflows float: only a max-shifted softmax survives it
    std::vector<int64_t> labels(batch);
    for (int64_t n = 0; n < batch; ++n) labels[n] = (n * 7 + 3) % classes;
    const LossReference ref = SoftmaxCrossEntropyReference(logits, labels, classes, smoothing);

    TestTensor z = Float32({batch, classes}, logits);
    TestTensor label_tensor = Labels(labels, GetParam());
    TestTensor loss = Poisoned({});
    TestTensor probs = Poisoned({batch, classes});
    const graph::AttrMap attrs = {{"label_smoothing", smoothing}};
    ASSERT_EQ(RunOp("SoftmaxCrossEntropy", attrs, {&z, &label_tensor}, {&loss, &probs}),
              absl::OkStatus());
    EXPECT_LT(RelativeError(Logical(loss), {ref.loss}), kTolerance);
    EXPECT_LT(RelativeError(Logical(probs), ref.probs), kTolerance);

    TestTensor dlogits = Poisoned({batch, classes});
    ASSERT_EQ(RunOp("SoftmaxCrossEntropyGrad", attrs, {&probs, &label_tensor}, {&dlogits}),
              absl::OkStatus());
    EXPECT_LT(RelativeError(Logical(dlogits), ref.dlogits), kTolerance);
  }
}

TEST_P(SoftmaxCrossEntropyTest, EqualLogitsGiveLogClassesWhateverTheSmoothing) {
  for (float smoothing : {0.0f, 0.3f}) {
    TestTensor z = Float32({2, 4}, std::vector<double>(8, 1.5));
    TestTensor labels = Labels({0, 3}, GetParam());
    TestTensor loss = Poisoned({});
    TestTensor probs = Poisoned({2, 4});
    ASSERT_EQ(RunOp("SoftmaxCrossEntropy", {{"label_smoothing", smoothing}}, {&z, &labels},
                    {&loss, &probs}),
              absl::OkStatus());
    EXPECT_NEAR(loss.f32()[0], std::log(4.0), 1e-6);
    for (double p : Logical(probs)) EXPECT_NEAR(p, 0.25, 1e-7);
  }
}

TEST_P(SoftmaxCrossEntropyTest, LabelOutOfRangeIsAnError) {
  TestTensor z = Float32({3, 5}, Uniform(15, -1, 1, 11));
  TestTensor probs = Poisoned({3, 5});
  TestTensor loss = Poisoned({});
  TestTensor dlogits = Poisoned({3, 5});
  for (int64_t bad : {int64_t{5}, int64_t{-1}}) {
    TestTensor labels = Labels({0, bad, 2}, GetParam());
    const absl::Status forward = RunOp("SoftmaxCrossEntropy", {}, {&z, &labels}, {&loss, &probs});
    EXPECT_EQ(forward.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(forward.message(), HasSubstr(absl::StrCat("sample 1 is ", bad)));
    const absl::Status backward = RunOp("SoftmaxCrossEntropyGrad", {}, {&z, &labels}, {&dlogits});
    EXPECT_EQ(backward.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(backward.message(), HasSubstr("outside [0, 5)"));
  }
}

INSTANTIATE_TEST_SUITE_P(LabelTypes, SoftmaxCrossEntropyTest,
                         Values(graph::DType::kInt32, graph::DType::kInt64),
                         [](const auto& param_info) {
                           return std::string(graph::DTypeName(param_info.param));
                         });

}  // namespace
}  // namespace gradflow::ops::cpu::testing
