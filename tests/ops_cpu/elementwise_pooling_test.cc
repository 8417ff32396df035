// Pooling CPU kernels against double-precision loops over logical NCHW, in both layouts.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "tests/ops_cpu/elementwise_test_util.h"

namespace gradflow::ops::cpu::testing {
namespace {

constexpr double kTolerance = 1e-4;

struct PoolCase {
  graph::Shape x;
  std::array<int64_t, 2> kernel, strides, pads;
  Layout layout;
};

int64_t OutSize(int64_t in, int64_t kernel, int64_t stride, int64_t pad) {
  return (in + 2 * pad - kernel) / stride + 1;
}

graph::Shape OutShape(const PoolCase& p) {
  return {p.x[0], p.x[1], OutSize(p.x[2], p.kernel[0], p.strides[0], p.pads[0]),
          OutSize(p.x[3], p.kernel[1], p.strides[1], p.pads[1])};
}

graph::AttrMap PoolAttrs(const PoolCase& p) {
  return {{"kernel", std::vector<int64_t>{p.kernel[0], p.kernel[1]}},
          {"strides", std::vector<int64_t>{p.strides[0], p.strides[1]}},
          {"pads", std::vector<int64_t>{p.pads[0], p.pads[1]}}};
}

int64_t At(const graph::Shape& s, int64_t n, int64_t c, int64_t h, int64_t w) {
  return ((n * s[1] + c) * s[2] + h) * s[3] + w;
}

// Calls visit(n, c, oh, ow, h, w) for every input element inside every output window, in
// row-major window order.
template <typename Visit>
void ForEachWindowElement(const PoolCase& p, Visit visit) {
  const graph::Shape y = OutShape(p);
  for (int64_t n = 0; n < y[0]; ++n) {
    for (int64_t c = 0; c < y[1]; ++c) {
      for (int64_t oh = 0; oh < y[2]; ++oh) {
        for (int64_t ow = 0; ow < y[3]; ++ow) {
          for (int64_t kh = 0; kh < p.kernel[0]; ++kh) {
            for (int64_t kw = 0; kw < p.kernel[1]; ++kw) {
              const int64_t h = oh * p.strides[0] - p.pads[0] + kh;
              const int64_t w = ow * p.strides[1] - p.pads[1] + kw;
              if (h < 0 || h >= p.x[2] || w < 0 || w >= p.x[3]) continue;
              visit(n, c, oh, ow, h, w);
            }
          }
        }
      }
    }
  }
}

// Max pooling: each output's value and the index of its first maximum in x.
void MaxPoolReference(const PoolCase& p, const std::vector<double>& x, std::vector<double>& y,
                      std::vector<int64_t>& argmax) {
  const graph::Shape out = OutShape(p);
  y.assign(graph::NumElements(out), -std::numeric_limits<double>::infinity());
  argmax.assign(y.size(), -1);
  ForEachWindowElement(p, [&](int64_t n, int64_t c, int64_t oh, int64_t ow, int64_t h, int64_t w) {
    const int64_t o = At(out, n, c, oh, ow), i = At(p.x, n, c, h, w);
    if (x[i] > y[o]) {
      y[o] = x[i];
      argmax[o] = i;
    }
  });
}

class PoolingTest : public ::testing::TestWithParam<PoolCase> {};

TEST_P(PoolingTest, MaxPoolAndGradMatchReference) {
  const PoolCase& p = GetParam();
  const graph::Shape out = OutShape(p);
  for (const auto& [name, low, high] :
       {std::tuple<const char*, double, double>{"distinct", -1, 1}, {"ties", 0, 3}}) {
    SCOPED_TRACE(name);
    std::vector<double> x = Uniform(graph::NumElements(p.x), low, high, 41);
    // Few distinct values make ties in most windows: the first maximum must win.
    if (std::string(name) == "ties") {
      for (double& value : x) value = std::floor(value);
    }
    std::vector<double> y_ref;
    std::vector<int64_t> argmax;
    MaxPoolReference(p, x, y_ref, argmax);
    TestTensor x_tensor = Float32(p.x, x, p.layout);
    TestTensor y = Poisoned(out, p.layout);
    ASSERT_EQ(RunOp("MaxPool", PoolAttrs(p), {&x_tensor}, {&y}), absl::OkStatus());
    EXPECT_EQ(Logical(y), y_ref);

    const std::vector<double> dy = Uniform(graph::NumElements(out), -1, 1, 42);
    std::vector<double> dx_ref(x.size(), 0.0);
    for (size_t o = 0; o < dy.size(); ++o) dx_ref[argmax[o]] += dy[o];
    // dy in either layout: the gradient may arrive in another layout than x.
    for (Layout dy_layout : kBothLayouts) {
      TestTensor dy_tensor = Float32(out, dy, dy_layout);
      TestTensor dx = Poisoned(p.x, p.layout);
      ASSERT_EQ(RunOp("MaxPoolGrad", PoolAttrs(p), {&dy_tensor, &x_tensor, &y}, {&dx}),
                absl::OkStatus());
      EXPECT_LT(RelativeError(Logical(dx), dx_ref), kTolerance);
    }
  }
}

TEST_P(PoolingTest, AvgPoolAndGradMatchReference) {
  const PoolCase& p = GetParam();
  const graph::Shape out = OutShape(p);
  const std::vector<double> x = Uniform(graph::NumElements(p.x), -1, 1, 43);
  const std::vector<double> dy = Uniform(graph::NumElements(out), -1, 1, 44);
  for (int64_t include_pad : {0, 1}) {
    SCOPED_TRACE(include_pad ? "count_include_pad" : "exclude pad");
    std::vector<double> count(dy.size(), 0.0), y_ref(dy.size(), 0.0), dx_ref(x.size(), 0.0);
    ForEachWindowElement(p, [&](int64_t n, int64_t c, int64_t oh, int64_t ow, int64_t, int64_t) {
      count[At(out, n, c, oh, ow)] += 1;
    });
    if (include_pad) std::fill(count.begin(), count.end(), p.kernel[0] * p.kernel[1]);
    ForEachWindowElement(p,
                         [&](int64_t n, int64_t c, int64_t oh, int64_t ow, int64_t h, int64_t w) {
                           const int64_t o = At(out, n, c, oh, ow), i = At(p.x, n, c, h, w);
                           y_ref[o] += x[i] / count[o];
                           dx_ref[i] += dy[o] / count[o];
                         });
    graph::AttrMap attrs = PoolAttrs(p);
    attrs["count_include_pad"] = include_pad;
    TestTensor x_tensor = Float32(p.x, x, p.layout);
    TestTensor y = Poisoned(out, p.layout);
    ASSERT_EQ(RunOp("AvgPool", attrs, {&x_tensor}, {&y}), absl::OkStatus());
    EXPECT_LT(RelativeError(Logical(y), y_ref), kTolerance);

    attrs["input_shape"] = std::vector<int64_t>(p.x);
    TestTensor dy_tensor = Float32(out, dy, p.layout);
    TestTensor dx = Poisoned(p.x, p.layout);
    ASSERT_EQ(RunOp("AvgPoolGrad", attrs, {&dy_tensor}, {&dx}), absl::OkStatus());
    EXPECT_LT(RelativeError(Logical(dx), dx_ref), kTolerance);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Windows, PoolingTest,
    ::testing::Values(
        // ResNet's stem pool: 3x3, stride 2, padding 1, on odd sizes and batch 1.
        PoolCase{{1, 3, 7, 9}, {3, 3}, {2, 2}, {1, 1}, Layout::kRowMajor},
        PoolCase{{1, 3, 7, 9}, {3, 3}, {2, 2}, {1, 1}, Layout::kChannelsLast},
        PoolCase{{2, 64, 12, 12}, {3, 3}, {2, 2}, {1, 1}, Layout::kChannelsLast},
        PoolCase{{2, 70, 6, 6}, {3, 3}, {1, 1}, {1, 1}, Layout::kChannelsLast},
        // Floor mode drops the last row and column: oneDNN's end padding is negative here.
        PoolCase{{2, 5, 5, 5}, {2, 2}, {2, 2}, {0, 0}, Layout::kRowMajor},
        PoolCase{{2, 5, 5, 5}, {2, 2}, {2, 2}, {0, 0}, Layout::kChannelsLast},
        // A one-column image: every window overlaps the padding.
        PoolCase{{2, 3, 3, 1}, {3, 3}, {1, 1}, {1, 1}, Layout::kRowMajor},
        PoolCase{{2, 3, 3, 1}, {3, 3}, {1, 1}, {1, 1}, Layout::kChannelsLast},
        // Strides longer than the window skip inputs.
        PoolCase{{1, 2, 10, 11}, {2, 3}, {3, 3}, {1, 1}, Layout::kRowMajor},
        PoolCase{{1, 2, 10, 11}, {2, 3}, {3, 3}, {1, 1}, Layout::kChannelsLast},
        // Rectangular windows, strides and padding.
        PoolCase{{3, 4, 8, 7}, {3, 2}, {1, 2}, {1, 0}, Layout::kRowMajor},
        PoolCase{{3, 4, 8, 7}, {3, 2}, {1, 2}, {1, 0}, Layout::kChannelsLast}),
    [](const auto& param_info) {
      const PoolCase& p = param_info.param;
      return LayoutName(p.layout) + "_" + std::to_string(p.x[1]) + "x" + std::to_string(p.x[2]) +
             "x" + std::to_string(p.x[3]) + "_k" + std::to_string(p.kernel[0]) +
             std::to_string(p.kernel[1]) + "_s" + std::to_string(p.strides[0]) +
             std::to_string(p.strides[1]) + "_p" + std::to_string(p.pads[0]) +
             std::to_string(p.pads[1]);
    });

class GlobalAvgPoolTest : public ::testing::TestWithParam<Layout> {};

TEST_P(GlobalAvgPoolTest, ForwardAndGradMatchReference) {
  for (const graph::Shape& shape :
       {graph::Shape{1, 3, 5, 7}, graph::Shape{4, 100, 7, 7}, graph::Shape{2, 6, 1, 1}}) {
    SCOPED_TRACE(graph::ShapeToString(shape));
    const int64_t batch = shape[0], channels = shape[1], pixels = shape[2] * shape[3];
    const std::vector<double> x = Uniform(graph::NumElements(shape), -1, 1, 51);
    const std::vector<double> dy = Uniform(batch * channels, -1, 1, 52);
    std::vector<double> y_ref(batch * channels, 0.0), dx_ref(x.size());
    for (int64_t plane = 0; plane < batch * channels; ++plane) {
      for (int64_t p = 0; p < pixels; ++p) {
        y_ref[plane] += x[plane * pixels + p] / pixels;
        dx_ref[plane * pixels + p] = dy[plane] / pixels;
      }
    }
    const Layout layout = GetParam();
    TestTensor x_tensor = Float32(shape, x, layout);
    TestTensor y = Poisoned({batch, channels, 1, 1}, layout);
    ASSERT_EQ(RunOp("GlobalAvgPool", {}, {&x_tensor}, {&y}), absl::OkStatus());
    EXPECT_LT(RelativeError(Logical(y), y_ref), kTolerance);

    TestTensor dy_tensor = Float32({batch, channels, 1, 1}, dy, layout);
    TestTensor dx = Poisoned(shape, layout);
    ASSERT_EQ(RunOp("GlobalAvgPoolGrad", {{"input_shape", std::vector<int64_t>(shape)}},
                    {&dy_tensor}, {&dx}),
              absl::OkStatus());
    EXPECT_LT(RelativeError(Logical(dx), dx_ref), kTolerance);
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, GlobalAvgPoolTest, ::testing::ValuesIn(kBothLayouts),
                         [](const auto& param_info) { return LayoutName(param_info.param); });

}  // namespace
}  // namespace gradflow::ops::cpu::testing
