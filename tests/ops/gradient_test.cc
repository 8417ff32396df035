// Gradient rules, run against a recording GradContext: which backward nodes each emits, with
// which inputs and attributes, and that every input gradient has its input's type.
#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/ops/op_test_util.h"

namespace gradflow::ops {
namespace {

using graph::AttrMap;
using graph::kNoTensor;
using graph::TensorType;
using ::testing::ElementsAre;
using testing::F32;
using ::testing::HasSubstr;
using testing::I64;
using testing::N;
using testing::RecordingGradContext;

using Ints = std::vector<int64_t>;

AttrMap Stem() { return {{"strides", Ints{2, 2}}, {"pads", Ints{3, 3}}}; }

// Each input that got a gradient got one of the input's own type.
void ExpectGradTypesMatchInputs(const RecordingGradContext& ctx) {
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    if (ctx.input_grads()[i] == kNoTensor) continue;
    EXPECT_EQ(ctx.TypeOf(ctx.input_grads()[i]), ctx.TypeOf(ctx.input(i))) << "input " << i;
  }
}

TEST(Conv2DGradientTest, EmitsDataFilterAndBiasGradients) {
  RecordingGradContext ctx("Conv2D", {F32({N, 3, 224, 224}), F32({64, 3, 7, 7}), F32({64})}, Stem(),
                           {true, true, true}, 1, {0});
  ASSERT_TRUE(ctx.RunGradient().ok());
  const int32_t dy = ctx.output_grad(0);
  ASSERT_EQ(ctx.emitted().size(), 3u);
  const auto& data = ctx.emitted()[0];
  EXPECT_EQ(data.op, "Conv2DBackwardData");
  EXPECT_EQ(data.suffix, "dx");
  EXPECT_THAT(data.inputs, ElementsAre(dy, ctx.input(1)));
  EXPECT_EQ(data.attrs.at("input_shape"), graph::AttrValue(Ints{N, 3, 224, 224}));
  EXPECT_EQ(data.attrs.at("strides"), graph::AttrValue(Ints{2, 2}));
  EXPECT_EQ(data.attrs.at("pads"), graph::AttrValue(Ints{3, 3}));
  const auto& filter = ctx.emitted()[1];
  EXPECT_EQ(filter.op, "Conv2DBackwardFilter");
  EXPECT_EQ(filter.suffix, "dw");
  EXPECT_THAT(filter.inputs, ElementsAre(dy, ctx.input(0)));
  EXPECT_EQ(filter.attrs.at("filter_shape"), graph::AttrValue(Ints{64, 3, 7, 7}));
  EXPECT_EQ(ctx.emitted()[2].op, "BiasGrad");
  EXPECT_EQ(ctx.emitted()[2].suffix, "db");
  for (int32_t grad : ctx.input_grads()) EXPECT_NE(grad, kNoTensor);
  ExpectGradTypesMatchInputs(ctx);
}

TEST(Conv2DGradientTest, OnlyWhatIsNeeded) {
  RecordingGradContext ctx("Conv2D", {F32({N, 64, 56, 56}), F32({128, 16, 3, 3})},
                           {{"pads", Ints{1, 1}}, {"groups", int64_t{4}}}, {false, true}, 1, {0});
  ASSERT_TRUE(ctx.RunGradient().ok());
  ASSERT_EQ(ctx.emitted().size(), 1u);
  EXPECT_EQ(ctx.emitted()[0].op, "Conv2DBackwardFilter");
  EXPECT_EQ(ctx.emitted()[0].attrs.at("groups"), graph::AttrValue(int64_t{4}));
  EXPECT_EQ(ctx.input_grads()[0], kNoTensor);
  ExpectGradTypesMatchInputs(ctx);
}

TEST(Conv2DGradientTest, NothingWithoutAnOutputGradient) {
  RecordingGradContext ctx("Conv2D", {F32({N, 3, 224, 224}), F32({64, 3, 7, 7})}, Stem(),
                           {true, true}, 1, {});
  ASSERT_TRUE(ctx.RunGradient().ok());
  EXPECT_TRUE(ctx.emitted().empty());
}

std::vector<TensorType> BatchNormInputs() {
  return {F32({N, 64, 56, 56}), F32({64}), F32({64}), F32({64}), F32({64})};
}

TEST(BatchNormGradientTest, OneNodeForDxDgammaDbeta) {
  RecordingGradContext ctx("BatchNorm", BatchNormInputs(), {{"epsilon", 1e-3f}},
                           {true, true, true, false, false}, 3, {0});
  ASSERT_TRUE(ctx.RunGradient().ok());
  ASSERT_EQ(ctx.emitted().size(), 1u);
  const auto& grad = ctx.emitted()[0];
  EXPECT_EQ(grad.op, "BatchNormGrad");
  EXPECT_THAT(grad.inputs, ElementsAre(ctx.output_grad(0), ctx.input(0), ctx.input(1),
                                       ctx.output(1), ctx.output(2)));
  EXPECT_EQ(grad.attrs.at("epsilon"), graph::AttrValue(1e-3f));
  EXPECT_THAT(ctx.input_grads(),
              ElementsAre(grad.outputs[0], grad.outputs[1], grad.outputs[2], kNoTensor, kNoTensor));
  ExpectGradTypesMatchInputs(ctx);
}

TEST(BatchNormGradientTest, OnlyNeededGradsAreSet) {
  RecordingGradContext ctx("BatchNorm", BatchNormInputs(), {}, {false, true, false, false, false},
                           3, {0});
  ASSERT_TRUE(ctx.RunGradient().ok());
  ASSERT_EQ(ctx.emitted().size(), 1u);
  EXPECT_THAT(ctx.input_grads(),
              ElementsAre(kNoTensor, ctx.emitted()[0].outputs[1], kNoTensor, kNoTensor, kNoTensor));
}

TEST(BatchNormGradientTest, InferenceModeHasNone) {
  RecordingGradContext ctx("BatchNorm", BatchNormInputs(), {{"training", int64_t{0}}},
                           {true, true, true, false, false}, 1, {0});
  const absl::Status status = ctx.RunGradient();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(status.message(), HasSubstr("BatchNorm with training=0"));
}

TEST(BatchNormGradientTest, NoGradientThroughSavedStatistics) {
  RecordingGradContext ctx("BatchNorm", BatchNormInputs(), {}, {true, true, true, false, false}, 3,
                           {0, 1});
  EXPECT_EQ(ctx.RunGradient().code(), absl::StatusCode::kUnimplemented);
}

TEST(ReluGradientTest, UsesTheOutput) {
  RecordingGradContext ctx("Relu", {F32({N, 64})}, {}, {true}, 1, {0});
  ASSERT_TRUE(ctx.RunGradient().ok());
  ASSERT_EQ(ctx.emitted().size(), 1u);
  EXPECT_EQ(ctx.emitted()[0].op, "ReluGrad");
  EXPECT_THAT(ctx.emitted()[0].inputs, ElementsAre(ctx.output_grad(0), ctx.output(0)));
  ExpectGradTypesMatchInputs(ctx);
}

TEST(PoolGradientTest, MaxPool) {
  const AttrMap attrs = {{"kernel", Ints{3, 3}}, {"strides", Ints{2, 2}}, {"pads", Ints{1, 1}}};
  RecordingGradContext ctx("MaxPool", {F32({N, 64, 112, 112})}, attrs, {true}, 1, {0});
  ASSERT_TRUE(ctx.RunGradient().ok());
  ASSERT_EQ(ctx.emitted().size(), 1u);
  EXPECT_EQ(ctx.emitted()[0].op, "MaxPoolGrad");
  EXPECT_THAT(ctx.emitted()[0].inputs,
              ElementsAre(ctx.output_grad(0), ctx.input(0), ctx.output(0)));
  EXPECT_EQ(ctx.emitted()[0].attrs, attrs);
  ExpectGradTypesMatchInputs(ctx);
}

TEST(PoolGradientTest, AvgPoolRecordsInputShape) {
  RecordingGradContext ctx("AvgPool", {F32({N, 64, 9, 9})},
                           {{"kernel", Ints{3, 3}}, {"count_include_pad", int64_t{0}}}, {true}, 1,
                           {0});
  ASSERT_TRUE(ctx.RunGradient().ok());
  ASSERT_EQ(ctx.emitted().size(), 1u);
  EXPECT_EQ(ctx.emitted()[0].op, "AvgPoolGrad");
  EXPECT_THAT(ctx.emitted()[0].inputs, ElementsAre(ctx.output_grad(0)));
  EXPECT_EQ(ctx.emitted()[0].attrs.at("input_shape"), graph::AttrValue(Ints{N, 64, 9, 9}));
  EXPECT_EQ(ctx.emitted()[0].attrs.at("count_include_pad"), graph::AttrValue(int64_t{0}));
  ExpectGradTypesMatchInputs(ctx);
}

TEST(PoolGradientTest, GlobalAvgPool) {
  RecordingGradContext ctx("GlobalAvgPool", {F32({N, 2048, 7, 7})}, {}, {true}, 1, {0});
  ASSERT_TRUE(ctx.RunGradient().ok());
  ASSERT_EQ(ctx.emitted().size(), 1u);
  EXPECT_EQ(ctx.emitted()[0].op, "GlobalAvgPoolGrad");
  ExpectGradTypesMatchInputs(ctx);
}

TEST(AddGradientTest, PassesDyThrough) {
  RecordingGradContext ctx("Add", {F32({N, 8}), F32({N, 8})}, {}, {true, true}, 1, {0});
  ASSERT_TRUE(ctx.RunGradient().ok());
  EXPECT_TRUE(ctx.emitted().empty());
  EXPECT_THAT(ctx.input_grads(), ElementsAre(ctx.output_grad(0), ctx.output_grad(0)));

  RecordingGradContext one("Add", {F32({N, 8}), F32({N, 8})}, {}, {false, true}, 1, {0});
  ASSERT_TRUE(one.RunGradient().ok());
  EXPECT_THAT(one.input_grads(), ElementsAre(kNoTensor, one.output_grad(0)));
}

TEST(FullyConnectedGradientTest, EmitsDataWeightsAndBias) {
  RecordingGradContext ctx("FullyConnected", {F32({N, 2048}), F32({1000, 2048}), F32({1000})}, {},
                           {true, true, true}, 1, {0});
  ASSERT_TRUE(ctx.RunGradient().ok());
  ASSERT_EQ(ctx.emitted().size(), 3u);
  EXPECT_EQ(ctx.emitted()[0].op, "FullyConnectedBackwardData");
  EXPECT_THAT(ctx.emitted()[0].inputs, ElementsAre(ctx.output_grad(0), ctx.input(1)));
  EXPECT_EQ(ctx.emitted()[1].op, "FullyConnectedBackwardWeights");
  EXPECT_THAT(ctx.emitted()[1].inputs, ElementsAre(ctx.output_grad(0), ctx.input(0)));
  EXPECT_EQ(ctx.emitted()[2].op, "BiasGrad");
  ExpectGradTypesMatchInputs(ctx);
}

TEST(ReshapeGradientTest, ReshapesBackToTheInput) {
  for (const char* op : {"Flatten", "Reshape"}) {
    SCOPED_TRACE(op);
    const AttrMap attrs =
        std::string(op) == "Reshape" ? AttrMap{{"shape", Ints{N, 2048}}} : AttrMap{};
    RecordingGradContext ctx(op, {F32({N, 2048, 1, 1})}, attrs, {true}, 1, {0});
    ASSERT_TRUE(ctx.RunGradient().ok());
    ASSERT_EQ(ctx.emitted().size(), 1u);
    EXPECT_EQ(ctx.emitted()[0].op, "Reshape");
    EXPECT_EQ(ctx.emitted()[0].attrs.at("shape"), graph::AttrValue(Ints{N, 2048, 1, 1}));
    ExpectGradTypesMatchInputs(ctx);
  }
}

TEST(SoftmaxCrossEntropyGradientTest, FusedGradientFromProbabilities) {
  RecordingGradContext ctx("SoftmaxCrossEntropy", {F32({N, 1000}), I64({N})},
                           {{"label_smoothing", 0.1f}}, {true, false}, 2, {}, /*loss_output=*/0);
  ASSERT_TRUE(ctx.RunGradient().ok());
  ASSERT_EQ(ctx.emitted().size(), 1u);
  EXPECT_EQ(ctx.emitted()[0].op, "SoftmaxCrossEntropyGrad");
  EXPECT_EQ(ctx.emitted()[0].suffix, "dlogits");
  EXPECT_THAT(ctx.emitted()[0].inputs, ElementsAre(ctx.output(1), ctx.input(1)));
  EXPECT_EQ(ctx.emitted()[0].attrs.at("label_smoothing"), graph::AttrValue(0.1f));
  EXPECT_EQ(ctx.input_grads()[1], kNoTensor);
  ExpectGradTypesMatchInputs(ctx);
}

TEST(SoftmaxCrossEntropyGradientTest, OnlyAsTheGraphsLoss) {
  const std::vector<TensorType> inputs = {F32({N, 10}), I64({N})};
  RecordingGradContext not_loss("SoftmaxCrossEntropy", inputs, {}, {true, false}, 2, {0});
  EXPECT_EQ(not_loss.RunGradient().code(), absl::StatusCode::kUnimplemented);
  RecordingGradContext loss_used("SoftmaxCrossEntropy", inputs, {}, {true, false}, 2, {0}, 0);
  EXPECT_EQ(loss_used.RunGradient().code(), absl::StatusCode::kUnimplemented);
  RecordingGradContext probs_used("SoftmaxCrossEntropy", inputs, {}, {true, false}, 2, {1}, 0);
  EXPECT_EQ(probs_used.RunGradient().code(), absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace gradflow::ops
