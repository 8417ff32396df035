// The oneDNN kernels of Conv2D, FullyConnected and BiasGrad (and their backward ops) against
// naive double-precision loops, in both activation layouts.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "graph/attribute.h"
#include "graph/ir.h"
#include "graph/op_schema.h"
#include "graph/types.h"
#include "gtest/gtest.h"
#include "ops/cpu/cpu_context.h"
#include "ops/cpu/cpu_kernels.h"
#include "ops/kernel.h"
#include "ops/registry.h"

namespace gradflow::ops::cpu {
namespace {

using graph::AttrMap;
using graph::DType;
using graph::Shape;
using graph::TensorType;
using ::testing::HasSubstr;

constexpr double kTolerance = 1e-4;

CpuContext& Context() {
  static CpuContext* const ctx = [] {
    absl::StatusOr<std::unique_ptr<CpuContext>> created = CpuContext::Create(2);
    if (!created.ok()) {
      std::cerr << "CpuContext: " << created.status() << "\n";
      std::abort();
    }
    return created->release();
  }();
  return *ctx;
}

const KernelRegistry& Registry() {
  static const KernelRegistry* const registry = [] {
    auto* kernels = new KernelRegistry();
    for (auto register_kernels :
         {RegisterConv2DCpu, RegisterFullyConnectedCpu, RegisterBiasGradCpu}) {
      absl::Status status = register_kernels(*kernels);
      if (!status.ok()) {
        std::cerr << "registering kernels: " << status << "\n";
        std::abort();
      }
    }
    return kernels;
  }();
  return *registry;
}

// Logical (NCHW) order to storage order and back.
std::vector<float> ToStorage(const std::vector<float>& logical, const Shape& shape, Layout layout) {
  if (shape.size() != 4 || layout != Layout::kChannelsLast) return logical;
  const int64_t n = shape[0], c = shape[1], hw = shape[2] * shape[3];
  std::vector<float> stored(logical.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < c; ++j)
      for (int64_t k = 0; k < hw; ++k) stored[(i * hw + k) * c + j] = logical[(i * c + j) * hw + k];
  return stored;
}

std::vector<float> FromStorage(const std::vector<float>& stored, const Shape& shape,
                               Layout layout) {
  if (shape.size() != 4 || layout != Layout::kChannelsLast) return stored;
  const int64_t n = shape[0], c = shape[1], hw = shape[2] * shape[3];
  std::vector<float> logical(stored.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < c; ++j)
      for (int64_t k = 0; k < hw; ++k) logical[(i * c + j) * hw + k] = stored[(i * hw + k) * c + j];
  return logical;
}

// A kernel prepared through the registry the way the executor will: shape inference gives the
// output types, then the factory prepares for those.
class PreparedKernel {
 public:
  static absl::StatusOr<PreparedKernel> Make(const std::string& op, AttrMap attrs,
                                             std::vector<TensorType> inputs,
                                             std::vector<Layout> input_layouts,
                                             std::vector<Layout> output_layouts) {
    PreparedKernel prepared;
    prepared.node_ = std::make_unique<graph::Node>();
    prepared.node_->name = "test/" + op;
    prepared.node_->op = op;
    prepared.node_->attrs = std::move(attrs);
    const graph::OpSchema* schema = StandardOps().Find(op, 1);
    if (schema == nullptr) return absl::NotFoundError("no schema for " + op);
    absl::StatusOr<std::vector<TensorType>> outputs =
        graph::InferNodeOutputs(*prepared.node_, *schema, inputs);
    if (!outputs.ok()) return outputs.status();
    prepared.inputs_ = std::move(inputs);
    prepared.outputs_ = *std::move(outputs);
    prepared.input_layouts_ = std::move(input_layouts);
    prepared.output_layouts_ = std::move(output_layouts);
    graph::Attrs node_attrs(*prepared.node_, *schema);
    KernelSpec spec{*prepared.node_,
                    node_attrs,
                    prepared.inputs_,
                    prepared.outputs_,
                    prepared.input_layouts_,
                    prepared.output_layouts_,
                    Context()};
    absl::StatusOr<std::unique_ptr<Kernel>> kernel = Registry().Create(spec, DType::kFloat32);
    if (!kernel.ok()) return kernel.status();
    prepared.kernel_ = *std::move(kernel);
    return prepared;
  }

  const std::vector<TensorType>& outputs() const { return outputs_; }

  // Runs on inputs in logical order; returns the outputs in logical order. Outputs and workspace
  // start as NaN so that anything the kernel leaves unwritten (or reads before writing) shows.
  absl::StatusOr<std::vector<std::vector<float>>> Run(
      const std::vector<std::vector<float>>& inputs) {
    std::vector<std::vector<float>> stored_inputs;
    std::vector<TensorRef> input_refs;
    for (size_t i = 0; i < inputs_.size(); ++i) {
      stored_inputs.push_back(ToStorage(inputs[i], inputs_[i].shape, input_layouts_[i]));
    }
    for (size_t i = 0; i < inputs_.size(); ++i) {
      input_refs.push_back(
          {stored_inputs[i].data(), inputs_[i].dtype, inputs_[i].shape, input_layouts_[i]});
    }
    std::vector<std::vector<float>> stored_outputs;
    std::vector<TensorRef> output_refs;
    for (const TensorType& type : outputs_) {
      stored_outputs.emplace_back(graph::NumElements(type.shape),
                                  std::numeric_limits<float>::quiet_NaN());
    }
    for (size_t i = 0; i < outputs_.size(); ++i) {
      output_refs.push_back(
          {stored_outputs[i].data(), outputs_[i].dtype, outputs_[i].shape, output_layouts_[i]});
    }
    const size_t workspace_bytes = (kernel_->workspace_bytes() + 63) / 64 * 64;
    std::unique_ptr<void, decltype(&std::free)> workspace(
        workspace_bytes > 0 ? std::aligned_alloc(64, workspace_bytes) : nullptr, &std::free);
    if (workspace_bytes > 0) std::memset(workspace.get(), 0xff, workspace_bytes);  // NaNs
    absl::Status status = kernel_->Run(input_refs, output_refs, workspace.get());
    if (!status.ok()) return status;
    std::vector<std::vector<float>> results;
    for (size_t i = 0; i < outputs_.size(); ++i) {
      results.push_back(FromStorage(stored_outputs[i], outputs_[i].shape, output_layouts_[i]));
    }
    return results;
  }

 private:
  std::unique_ptr<graph::Node> node_;  // stable address: the spec refers to it while preparing
  std::vector<TensorType> inputs_;
  std::vector<TensorType> outputs_;
  std::vector<Layout> input_layouts_;
  std::vector<Layout> output_layouts_;
  std::unique_ptr<Kernel> kernel_;
};

// max |actual - expected| / max |expected|; infinite when anything is not finite.
double RelativeError(const std::vector<float>& actual, const std::vector<double>& expected) {
  if (actual.size() != expected.size()) return std::numeric_limits<double>::infinity();
  double max_diff = 0;
  double max_ref = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    if (!std::isfinite(actual[i])) return std::numeric_limits<double>::infinity();
    max_diff = std::max(max_diff, std::abs(actual[i] - expected[i]));
    max_ref = std::max(max_ref, std::abs(expected[i]));
  }
  return max_diff / std::max(max_ref, 1e-30);
}

// Tests draw inputs from a fresh seed each run (GRADFLOW_TEST_SEED replays one) and print it
// when they fail.
class SeededTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* fixed = std::getenv("GRADFLOW_TEST_SEED");
    seed_ = fixed != nullptr ? static_cast<uint32_t>(std::strtoul(fixed, nullptr, 10))
                             : std::random_device{}();
    rng_.seed(seed_);
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << "random seed: GRADFLOW_TEST_SEED=" << seed_ << "\n";
  }

  std::vector<float> Random(const Shape& shape, float mean = 0) {
    std::normal_distribution<float> normal(mean, 1.0f);
    std::vector<float> values(graph::NumElements(shape));
    for (float& v : values) v = normal(rng_);
    return values;
  }

  uint32_t seed_ = 0;
  std::mt19937 rng_;
};

// ---------------------------------------------------------------------------------------------
// Convolution

struct ConvCase {
  std::string name;
  int64_t batch, channels, height, width, out_channels, kernel_h, kernel_w;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
  bool bias = true;

  int64_t out_height() const {
    return (height + 2 * pad_h - dilation_h * (kernel_h - 1) - 1) / stride_h + 1;
  }
  int64_t out_width() const {
    return (width + 2 * pad_w - dilation_w * (kernel_w - 1) - 1) / stride_w + 1;
  }
  Shape x_shape() const { return {batch, channels, height, width}; }
  Shape w_shape() const { return {out_channels, channels / groups, kernel_h, kernel_w}; }
  Shape y_shape() const { return {batch, out_channels, out_height(), out_width()}; }
  AttrMap attrs() const {
    return {{"strides", std::vector<int64_t>{stride_h, stride_w}},
            {"pads", std::vector<int64_t>{pad_h, pad_w}},
            {"dilations", std::vector<int64_t>{dilation_h, dilation_w}},
            {"groups", groups}};
  }
};

// Calls fn(x index, w index, y index) for every product the convolution sums (NCHW, OIHW).
template <typename Fn>
void ForEachTap(const ConvCase& k, Fn fn) {
  const int64_t oh_size = k.out_height(), ow_size = k.out_width();
  const int64_t in_per_group = k.channels / k.groups, out_per_group = k.out_channels / k.groups;
  for (int64_t n = 0; n < k.batch; ++n)
    for (int64_t o = 0; o < k.out_channels; ++o)
      for (int64_t oh = 0; oh < oh_size; ++oh)
        for (int64_t ow = 0; ow < ow_size; ++ow) {
          const int64_t y = ((n * k.out_channels + o) * oh_size + oh) * ow_size + ow;
          const int64_t group = o / out_per_group;
          for (int64_t ci = 0; ci < in_per_group; ++ci) {
            const int64_t c = group * in_per_group + ci;
            for (int64_t kh = 0; kh < k.kernel_h; ++kh) {
              const int64_t ih = oh * k.stride_h - k.pad_h + kh * k.dilation_h;
              if (ih < 0 || ih >= k.height) continue;
              for (int64_t kw = 0; kw < k.kernel_w; ++kw) {
                const int64_t iw = ow * k.stride_w - k.pad_w + kw * k.dilation_w;
                if (iw < 0 || iw >= k.width) continue;
                const int64_t x = ((n * k.channels + c) * k.height + ih) * k.width + iw;
                const int64_t w = ((o * in_per_group + ci) * k.kernel_h + kh) * k.kernel_w + kw;
                fn(x, w, y);
              }
            }
          }
        }
}

std::vector<double> ReferenceConv(const ConvCase& k, const std::vector<float>& x,
                                  const std::vector<float>& w, const std::vector<float>& b) {
  std::vector<double> y(graph::NumElements(k.y_shape()), 0.0);
  ForEachTap(k, [&](int64_t xi, int64_t wi, int64_t yi) { y[yi] += double{x[xi]} * w[wi]; });
  if (k.bias) {
    const int64_t plane = k.out_height() * k.out_width();
    for (size_t i = 0; i < y.size(); ++i) y[i] += b[(i / plane) % k.out_channels];
  }
  return y;
}

std::vector<double> ReferenceConvBackwardData(const ConvCase& k, const std::vector<float>& dy,
                                              const std::vector<float>& w) {
  std::vector<double> dx(graph::NumElements(k.x_shape()), 0.0);
  ForEachTap(k, [&](int64_t xi, int64_t wi, int64_t yi) { dx[xi] += double{dy[yi]} * w[wi]; });
  return dx;
}

std::vector<double> ReferenceConvBackwardFilter(const ConvCase& k, const std::vector<float>& dy,
                                                const std::vector<float>& x) {
  std::vector<double> dw(graph::NumElements(k.w_shape()), 0.0);
  ForEachTap(k, [&](int64_t xi, int64_t wi, int64_t yi) { dw[wi] += double{dy[yi]} * x[xi]; });
  return dw;
}

// Sum over every dimension but 1 of a logical-order tensor.
std::vector<double> ReferenceBiasGrad(const Shape& shape, const std::vector<float>& dy) {
  int64_t inner = 1;
  for (size_t i = 2; i < shape.size(); ++i) inner *= shape[i];
  std::vector<double> db(shape[1], 0.0);
  for (size_t i = 0; i < dy.size(); ++i) db[(i / inner) % shape[1]] += dy[i];
  return db;
}

const ConvCase kConvCases[] = {
    {.name = "resnet_3x3_pad1",
     .batch = 2,
     .channels = 16,
     .height = 10,
     .width = 10,
     .out_channels = 32,
     .kernel_h = 3,
     .kernel_w = 3,
     .pad_h = 1,
     .pad_w = 1},
    {.name = "resnet_1x1_stride2",
     .batch = 2,
     .channels = 32,
     .height = 9,
     .width = 9,
     .out_channels = 16,
     .kernel_h = 1,
     .kernel_w = 1,
     .stride_h = 2,
     .stride_w = 2,
     .bias = false},
    {.name = "stem_7x7_stride2_pad3",
     .batch = 2,
     .channels = 3,
     .height = 20,
     .width = 20,
     .out_channels = 8,
     .kernel_h = 7,
     .kernel_w = 7,
     .stride_h = 2,
     .stride_w = 2,
     .pad_h = 3,
     .pad_w = 3},
    {.name = "groups2",
     .batch = 2,
     .channels = 8,
     .height = 7,
     .width = 7,
     .out_channels = 12,
     .kernel_h = 3,
     .kernel_w = 3,
     .pad_h = 1,
     .pad_w = 1,
     .groups = 2},
    {.name = "depthwise",
     .batch = 2,
     .channels = 8,
     .height = 9,
     .width = 9,
     .out_channels = 8,
     .kernel_h = 3,
     .kernel_w = 3,
     .stride_h = 2,
     .stride_w = 2,
     .pad_h = 1,
     .pad_w = 1,
     .groups = 8},
    {.name = "dilation2",
     .batch = 2,
     .channels = 4,
     .height = 11,
     .width = 11,
     .out_channels = 6,
     .kernel_h = 3,
     .kernel_w = 3,
     .pad_h = 2,
     .pad_w = 2,
     .dilation_h = 2,
     .dilation_w = 2},
    {.name = "batch1",
     .batch = 1,
     .channels = 5,
     .height = 6,
     .width = 6,
     .out_channels = 7,
     .kernel_h = 3,
     .kernel_w = 3,
     .pad_h = 1,
     .pad_w = 1},
    {.name = "odd_5x7_asymmetric",
     .batch = 3,
     .channels = 3,
     .height = 5,
     .width = 7,
     .out_channels = 5,
     .kernel_h = 3,
     .kernel_w = 2,
     .stride_h = 2,
     .stride_w = 1,
     .pad_h = 1,
     .pad_w = 0,
     .dilation_h = 1,
     .dilation_w = 2,
     .bias = false},
    {.name = "wide_64_channels",
     .batch = 2,
     .channels = 64,
     .height = 8,
     .width = 8,
     .out_channels = 64,
     .kernel_h = 3,
     .kernel_w = 3,
     .pad_h = 1,
     .pad_w = 1},
};

struct ConvParam {
  ConvCase conv;
  Layout layout;
};

void PrintTo(const ConvParam& param, std::ostream* os) {
  const ConvCase& k = param.conv;
  *os << k.name << (param.layout == Layout::kChannelsLast ? " nhwc" : " nchw") << " x"
      << graph::ShapeToString(k.x_shape()) << " w" << graph::ShapeToString(k.w_shape())
      << " strides " << k.stride_h << "," << k.stride_w << " pads " << k.pad_h << "," << k.pad_w
      << " dilations " << k.dilation_h << "," << k.dilation_w << " groups " << k.groups
      << (k.bias ? " bias" : "");
}

std::string ConvParamName(const ::testing::TestParamInfo<ConvParam>& info) {
  return info.param.conv.name + (info.param.layout == Layout::kChannelsLast ? "_nhwc" : "_nchw");
}

std::vector<ConvParam> AllConvParams() {
  std::vector<ConvParam> params;
  for (const ConvCase& conv : kConvCases) {
    params.push_back({conv, Layout::kRowMajor});
    params.push_back({conv, Layout::kChannelsLast});
  }
  return params;
}

class ConvKernelTest : public SeededTest, public ::testing::WithParamInterface<ConvParam> {};

TEST_P(ConvKernelTest, ForwardMatchesReference) {
  const ConvCase& k = GetParam().conv;
  const Layout layout = GetParam().layout;
  std::vector<TensorType> inputs = {{DType::kFloat32, k.x_shape()}, {DType::kFloat32, k.w_shape()}};
  std::vector<Layout> layouts = {layout, Layout::kRowMajor};
  if (k.bias) {
    inputs.push_back({DType::kFloat32, {k.out_channels}});
    layouts.push_back(Layout::kRowMajor);
  }
  absl::StatusOr<PreparedKernel> kernel =
      PreparedKernel::Make("Conv2D", k.attrs(), inputs, layouts, {layout});
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  ASSERT_EQ(kernel->outputs()[0].shape, k.y_shape());

  std::vector<float> x = Random(k.x_shape()), w = Random(k.w_shape());
  std::vector<float> b = k.bias ? Random({k.out_channels}) : std::vector<float>{};
  std::vector<std::vector<float>> args = {x, w};
  if (k.bias) args.push_back(b);
  absl::StatusOr<std::vector<std::vector<float>>> y = kernel->Run(args);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_LT(RelativeError((*y)[0], ReferenceConv(k, x, w, b)), kTolerance);
}

TEST_P(ConvKernelTest, BackwardDataMatchesReference) {
  const ConvCase& k = GetParam().conv;
  const Layout layout = GetParam().layout;
  AttrMap attrs = k.attrs();
  attrs["input_shape"] = k.x_shape();
  absl::StatusOr<PreparedKernel> kernel = PreparedKernel::Make(
      "Conv2DBackwardData", attrs, {{DType::kFloat32, k.y_shape()}, {DType::kFloat32, k.w_shape()}},
      {layout, Layout::kRowMajor}, {layout});
  ASSERT_TRUE(kernel.ok()) << kernel.status();

  std::vector<float> dy = Random(k.y_shape()), w = Random(k.w_shape());
  absl::StatusOr<std::vector<std::vector<float>>> dx = kernel->Run({dy, w});
  ASSERT_TRUE(dx.ok()) << dx.status();
  EXPECT_LT(RelativeError((*dx)[0], ReferenceConvBackwardData(k, dy, w)), kTolerance);
}

TEST_P(ConvKernelTest, BackwardFilterMatchesReference) {
  const ConvCase& k = GetParam().conv;
  const Layout layout = GetParam().layout;
  AttrMap attrs = k.attrs();
  attrs["filter_shape"] = k.w_shape();
  absl::StatusOr<PreparedKernel> kernel =
      PreparedKernel::Make("Conv2DBackwardFilter", attrs,
                           {{DType::kFloat32, k.y_shape()}, {DType::kFloat32, k.x_shape()}},
                           {layout, layout}, {Layout::kRowMajor});
  ASSERT_TRUE(kernel.ok()) << kernel.status();

  std::vector<float> dy = Random(k.y_shape()), x = Random(k.x_shape());
  absl::StatusOr<std::vector<std::vector<float>>> dw = kernel->Run({dy, x});
  ASSERT_TRUE(dw.ok()) << dw.status();
  EXPECT_LT(RelativeError((*dw)[0], ReferenceConvBackwardFilter(k, dy, x)), kTolerance);
}

TEST_P(ConvKernelTest, BiasGradOfOutputGradientMatchesReference) {
  const ConvCase& k = GetParam().conv;
  const Layout layout = GetParam().layout;
  absl::StatusOr<PreparedKernel> kernel = PreparedKernel::Make(
      "BiasGrad", {}, {{DType::kFloat32, k.y_shape()}}, {layout}, {Layout::kRowMajor});
  ASSERT_TRUE(kernel.ok()) << kernel.status();

  std::vector<float> dy = Random(k.y_shape());
  absl::StatusOr<std::vector<std::vector<float>>> db = kernel->Run({dy});
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_LT(RelativeError((*db)[0], ReferenceBiasGrad(k.y_shape(), dy)), kTolerance);
}

INSTANTIATE_TEST_SUITE_P(Cases, ConvKernelTest, ::testing::ValuesIn(AllConvParams()),
                         ConvParamName);

class ConvKernelRunTest : public SeededTest {};

// A kernel is prepared once and run on other buffers every step: nothing may stick to the first.
TEST_F(ConvKernelRunTest, RerunOnNewBuffersUsesThem) {
  const ConvCase& k = kConvCases[0];
  absl::StatusOr<PreparedKernel> kernel = PreparedKernel::Make(
      "Conv2D", k.attrs(),
      {{DType::kFloat32, k.x_shape()},
       {DType::kFloat32, k.w_shape()},
       {DType::kFloat32, {k.out_channels}}},
      {Layout::kChannelsLast, Layout::kRowMajor, Layout::kRowMajor}, {Layout::kChannelsLast});
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  for (int step = 0; step < 3; ++step) {
    std::vector<float> x = Random(k.x_shape()), w = Random(k.w_shape()),
                       b = Random({k.out_channels});
    absl::StatusOr<std::vector<std::vector<float>>> y = kernel->Run({x, w, b});
    ASSERT_TRUE(y.ok()) << y.status();
    EXPECT_LT(RelativeError((*y)[0], ReferenceConv(k, x, w, b)), kTolerance) << "step " << step;
  }
}

// Channels-last convolutions take oneDNN's blocked filters: exactly one counted reorder per run
// for each of the three ops (into the blocked layout, or the gradient out of it).
TEST_F(ConvKernelRunTest, ChannelsLastCountsOneFilterReorderPerRun) {
  const ConvCase& k = kConvCases[std::size(kConvCases) - 1];  // 64 -> 64 channels, 3x3
  AttrMap data_attrs = k.attrs(), filter_attrs = k.attrs();
  data_attrs["input_shape"] = k.x_shape();
  filter_attrs["filter_shape"] = k.w_shape();
  const Layout nhwc = Layout::kChannelsLast, plain = Layout::kRowMajor;
  struct OpUnderTest {
    const char* op;
    AttrMap attrs;
    std::vector<TensorType> inputs;
    std::vector<Layout> input_layouts;
    Layout output_layout;
  };
  const OpUnderTest ops[] = {
      {"Conv2D",
       k.attrs(),
       {{DType::kFloat32, k.x_shape()}, {DType::kFloat32, k.w_shape()}},
       {nhwc, plain},
       nhwc},
      {"Conv2DBackwardData",
       data_attrs,
       {{DType::kFloat32, k.y_shape()}, {DType::kFloat32, k.w_shape()}},
       {nhwc, plain},
       nhwc},
      {"Conv2DBackwardFilter",
       filter_attrs,
       {{DType::kFloat32, k.y_shape()}, {DType::kFloat32, k.x_shape()}},
       {nhwc, nhwc},
       plain},
  };
  constexpr int kRuns = 3;
  for (const OpUnderTest& op : ops) {
    SCOPED_TRACE(op.op);
    absl::StatusOr<PreparedKernel> kernel =
        PreparedKernel::Make(op.op, op.attrs, op.inputs, op.input_layouts, {op.output_layout});
    ASSERT_TRUE(kernel.ok()) << kernel.status();
    std::vector<std::vector<float>> args;
    for (const TensorType& type : op.inputs) args.push_back(Random(type.shape));
    const int64_t before = Context().reorders();
    for (int run = 0; run < kRuns; ++run) ASSERT_TRUE(kernel->Run(args).ok());
    EXPECT_EQ(Context().reorders() - before, kRuns);
  }
}

TEST(ConvKernelPrepareTest, Float64IsUnimplemented) {
  const ConvCase& k = kConvCases[0];
  graph::Node node{.name = "conv", .op = "Conv2D", .attrs = k.attrs()};
  const graph::OpSchema* schema = StandardOps().Find("Conv2D", 1);
  ASSERT_NE(schema, nullptr);
  graph::Attrs attrs(node, *schema);
  const TensorType inputs[] = {{DType::kFloat64, k.x_shape()}, {DType::kFloat64, k.w_shape()}};
  const TensorType outputs[] = {{DType::kFloat64, k.y_shape()}};
  const Layout input_layouts[] = {Layout::kRowMajor, Layout::kRowMajor};
  const Layout output_layouts[] = {Layout::kRowMajor};
  KernelSpec spec{node, attrs, inputs, outputs, input_layouts, output_layouts, Context()};
  absl::StatusOr<std::unique_ptr<Kernel>> kernel = Registry().Create(spec, DType::kFloat32);
  ASSERT_FALSE(kernel.ok());
  EXPECT_EQ(kernel.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(kernel.status().message()), HasSubstr("f64"));
  EXPECT_THAT(std::string(kernel.status().message()), HasSubstr("Conv2D"));
}

// ---------------------------------------------------------------------------------------------
// BiasGrad at ResNet's size: summing 100k values per channel must stay accurate.

struct BiasGradParam {
  Shape shape;
  Layout layout;
};

void PrintTo(const BiasGradParam& param, std::ostream* os) {
  *os << graph::ShapeToString(param.shape)
      << (param.layout == Layout::kChannelsLast ? " channels-last" : " row-major");
}

class BiasGradKernelTest : public SeededTest,
                           public ::testing::WithParamInterface<BiasGradParam> {};

TEST_P(BiasGradKernelTest, MatchesFloat64Sum) {
  const auto& [shape, layout] = GetParam();
  absl::StatusOr<PreparedKernel> kernel = PreparedKernel::Make(
      "BiasGrad", {}, {{DType::kFloat32, shape}}, {layout}, {Layout::kRowMajor});
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  // A non-zero mean makes every channel's sum large, so float accumulation would visibly drift.
  std::vector<float> dy = Random(shape, /*mean=*/0.5f);
  absl::StatusOr<std::vector<std::vector<float>>> db = kernel->Run({dy});
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_LT(RelativeError((*db)[0], ReferenceBiasGrad(shape, dy)), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Shapes, BiasGradKernelTest,
                         ::testing::Values(BiasGradParam{{32, 64, 56, 56}, Layout::kRowMajor},
                                           BiasGradParam{{32, 64, 56, 56}, Layout::kChannelsLast},
                                           BiasGradParam{{3, 5, 7, 2}, Layout::kChannelsLast},
                                           BiasGradParam{{32, 1000}, Layout::kRowMajor},
                                           BiasGradParam{{1, 3}, Layout::kRowMajor},
                                           BiasGradParam{{4, 6, 9}, Layout::kRowMajor}));

// ---------------------------------------------------------------------------------------------
// FullyConnected

struct FcCase {
  std::string name;
  int64_t batch, in_features, out_features;
  bool bias = true;
};

const FcCase kFcCases[] = {
    {"small_odd", 3, 37, 11},
    {"batch1", 1, 64, 10, false},
    {"resnet_head", 8, 2048, 100},
};

void PrintTo(const FcCase& f, std::ostream* os) {
  *os << f.name << " N=" << f.batch << " K=" << f.in_features << " M=" << f.out_features
      << (f.bias ? " bias" : "");
}

std::string FcCaseName(const ::testing::TestParamInfo<FcCase>& info) { return info.param.name; }

class FcKernelTest : public SeededTest, public ::testing::WithParamInterface<FcCase> {};

TEST_P(FcKernelTest, ForwardAndBackwardMatchReference) {
  const FcCase& f = GetParam();
  const int64_t n = f.batch, k = f.in_features, m = f.out_features;
  const Layout plain = Layout::kRowMajor;
  std::vector<float> x = Random({n, k}), w = Random({m, k}), b = Random({m}), dy = Random({n, m});

  std::vector<double> y_ref(n * m), dx_ref(n * k, 0.0), dw_ref(m * k, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j) {
      double sum = f.bias ? b[j] : 0.0;
      for (int64_t l = 0; l < k; ++l) {
        sum += double{x[i * k + l]} * w[j * k + l];
        dx_ref[i * k + l] += double{dy[i * m + j]} * w[j * k + l];
        dw_ref[j * k + l] += double{dy[i * m + j]} * x[i * k + l];
      }
      y_ref[i * m + j] = sum;
    }

  std::vector<TensorType> inputs = {{DType::kFloat32, {n, k}}, {DType::kFloat32, {m, k}}};
  std::vector<std::vector<float>> args = {x, w};
  if (f.bias) {
    inputs.push_back({DType::kFloat32, {m}});
    args.push_back(b);
  }
  const int64_t reorders_before = Context().reorders();

  absl::StatusOr<PreparedKernel> forward = PreparedKernel::Make(
      "FullyConnected", {}, inputs, std::vector<Layout>(inputs.size(), plain), {plain});
  ASSERT_TRUE(forward.ok()) << forward.status();
  absl::StatusOr<std::vector<std::vector<float>>> y = forward->Run(args);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_LT(RelativeError((*y)[0], y_ref), kTolerance);

  absl::StatusOr<PreparedKernel> backward_data = PreparedKernel::Make(
      "FullyConnectedBackwardData", {}, {{DType::kFloat32, {n, m}}, {DType::kFloat32, {m, k}}},
      {plain, plain}, {plain});
  ASSERT_TRUE(backward_data.ok()) << backward_data.status();
  absl::StatusOr<std::vector<std::vector<float>>> dx = backward_data->Run({dy, w});
  ASSERT_TRUE(dx.ok()) << dx.status();
  EXPECT_LT(RelativeError((*dx)[0], dx_ref), kTolerance);

  absl::StatusOr<PreparedKernel> backward_weights = PreparedKernel::Make(
      "FullyConnectedBackwardWeights", {}, {{DType::kFloat32, {n, m}}, {DType::kFloat32, {n, k}}},
      {plain, plain}, {plain});
  ASSERT_TRUE(backward_weights.ok()) << backward_weights.status();
  absl::StatusOr<std::vector<std::vector<float>>> dw = backward_weights->Run({dy, x});
  ASSERT_TRUE(dw.ok()) << dw.status();
  EXPECT_LT(RelativeError((*dw)[0], dw_ref), kTolerance);

  // oneDNN's inner product takes row-major [M,K] weights as they are: nothing is reordered.
  EXPECT_EQ(Context().reorders(), reorders_before);
}

INSTANTIATE_TEST_SUITE_P(Cases, FcKernelTest, ::testing::ValuesIn(kFcCases), FcCaseName);

}  // namespace
}  // namespace gradflow::ops::cpu
