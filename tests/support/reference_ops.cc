#include "tests/support/reference_ops.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <utility>

namespace gradflow::test_support {
namespace {

// The reference is only ever called by tests on shapes they built; a mismatch is a bug in the
// test, reported loudly.
void Require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "reference op: %s\n", what);
    std::abort();
  }
}

// Elements per channel of x [N,C,...] and the stride between channels.
struct ChannelSplit {
  int64_t batch;
  int64_t channels;
  int64_t inner;  // product of the dimensions after 1
};

ChannelSplit SplitChannels(const graph::Shape& shape) {
  Require(shape.size() >= 2, "expected a tensor of rank >= 2 ([N,C,...])");
  ChannelSplit split{shape[0], shape[1], 1};
  for (size_t i = 2; i < shape.size(); ++i) split.inner *= shape[i];
  return split;
}

size_t ChannelIndex(const ChannelSplit& s, int64_t n, int64_t c, int64_t i) {
  return static_cast<size_t>((n * s.channels + c) * s.inner + i);
}

// Calls visit(n, o, oh, ow, c, kh, kw, ih, iw) for every product term of a convolution whose
// input position lies inside x (terms in the padding are zero).
template <typename Visit>
void ForEachConvTerm(const graph::Shape& x, const graph::Shape& w, const ConvParams& p,
                     Visit&& visit) {
  Require(x.size() == 4 && w.size() == 4, "convolution expects rank-4 x and w");
  const int64_t groups = p.groups;
  const int64_t out_channels = w[0];
  const int64_t group_in = w[1];
  Require(x[1] == group_in * groups && out_channels % groups == 0, "bad convolution groups");
  const int64_t group_out = out_channels / groups;
  const int64_t oh_size = WindowOutput(x[2], w[2], p.strides[0], p.pads[0], p.dilations[0]);
  const int64_t ow_size = WindowOutput(x[3], w[3], p.strides[1], p.pads[1], p.dilations[1]);
  for (int64_t n = 0; n < x[0]; ++n) {
    for (int64_t o = 0; o < out_channels; ++o) {
      const int64_t g = o / group_out;
      for (int64_t oh = 0; oh < oh_size; ++oh) {
        for (int64_t ow = 0; ow < ow_size; ++ow) {
          for (int64_t ci = 0; ci < group_in; ++ci) {
            for (int64_t kh = 0; kh < w[2]; ++kh) {
              const int64_t ih = oh * p.strides[0] - p.pads[0] + kh * p.dilations[0];
              if (ih < 0 || ih >= x[2]) continue;
              for (int64_t kw = 0; kw < w[3]; ++kw) {
                const int64_t iw = ow * p.strides[1] - p.pads[1] + kw * p.dilations[1];
                if (iw < 0 || iw >= x[3]) continue;
                visit(n, o, oh, ow, g * group_in + ci, ci, kh, kw, ih, iw);
              }
            }
          }
        }
      }
    }
  }
}

graph::Shape ConvOutputShape(const graph::Shape& x, const graph::Shape& w, const ConvParams& p) {
  return {x[0], w[0], WindowOutput(x[2], w[2], p.strides[0], p.pads[0], p.dilations[0]),
          WindowOutput(x[3], w[3], p.strides[1], p.pads[1], p.dilations[1])};
}

graph::Shape PoolOutputShape(const graph::Shape& x, const PoolParams& p) {
  Require(x.size() == 4, "pooling expects a rank-4 x");
  return {x[0], x[1], WindowOutput(x[2], p.kernel[0], p.strides[0], p.pads[0], 1),
          WindowOutput(x[3], p.kernel[1], p.strides[1], p.pads[1], 1)};
}

// Calls visit(n, c, oh, ow, ih, iw) for every window element inside x, and done(n, c, oh, ow,
// inside_count) after each window.
template <typename Visit, typename Done>
void ForEachPoolWindow(const graph::Shape& x, const PoolParams& p, Visit&& visit, Done&& done) {
  const graph::Shape y = PoolOutputShape(x, p);
  for (int64_t n = 0; n < y[0]; ++n) {
    for (int64_t c = 0; c < y[1]; ++c) {
      for (int64_t oh = 0; oh < y[2]; ++oh) {
        for (int64_t ow = 0; ow < y[3]; ++ow) {
          int64_t inside = 0;
          for (int64_t kh = 0; kh < p.kernel[0]; ++kh) {
            const int64_t ih = oh * p.strides[0] - p.pads[0] + kh;
            if (ih < 0 || ih >= x[2]) continue;
            for (int64_t kw = 0; kw < p.kernel[1]; ++kw) {
              const int64_t iw = ow * p.strides[1] - p.pads[1] + kw;
              if (iw < 0 || iw >= x[3]) continue;
              ++inside;
              visit(n, c, oh, ow, ih, iw);
            }
          }
          done(n, c, oh, ow, inside);
        }
      }
    }
  }
}

// Index of the first maximum of each pooling window, in x's flat indices.
std::vector<size_t> MaxPoolArgmax(const RefTensor& x, const PoolParams& params) {
  const graph::Shape y_shape = PoolOutputShape(x.shape, params);
  std::vector<size_t> argmax(static_cast<size_t>(graph::NumElements(y_shape)), 0);
  std::vector<double> best(argmax.size(), -std::numeric_limits<double>::infinity());
  auto y_index = [&](int64_t n, int64_t c, int64_t oh, int64_t ow) {
    return static_cast<size_t>(((n * y_shape[1] + c) * y_shape[2] + oh) * y_shape[3] + ow);
  };
  ForEachPoolWindow(
      x.shape, params,
      [&](int64_t n, int64_t c, int64_t oh, int64_t ow, int64_t ih, int64_t iw) {
        const size_t yi = y_index(n, c, oh, ow);
        const size_t xi =
            static_cast<size_t>(((n * x.shape[1] + c) * x.shape[2] + ih) * x.shape[3] + iw);
        if (x.values[xi] > best[yi]) {  // strict: the first maximum wins ties
          best[yi] = x.values[xi];
          argmax[yi] = xi;
        }
      },
      [](int64_t, int64_t, int64_t, int64_t, int64_t inside) {
        Require(inside > 0, "a pooling window lies wholly in the padding");
      });
  return argmax;
}

RefTensor SmoothedTargets(const RefTensor& probs, const RefTensor& labels, double smoothing) {
  Require(probs.shape.size() == 2 && labels.shape.size() == 1 && labels.shape[0] == probs.shape[0],
          "expected scores [N,C] and labels [N]");
  const int64_t classes = probs.shape[1];
  RefTensor targets(probs.shape);
  for (int64_t n = 0; n < probs.shape[0]; ++n) {
    const auto label = static_cast<int64_t>(labels.values[n]);
    Require(label >= 0 && label < classes, "label out of range");
    for (int64_t c = 0; c < classes; ++c) {
      targets.values[n * classes + c] =
          (c == label ? 1.0 - smoothing : 0.0) + smoothing / static_cast<double>(classes);
    }
  }
  return targets;
}

}  // namespace

RefTensor::RefTensor(graph::Shape tensor_shape)
    : shape(std::move(tensor_shape)), values(static_cast<size_t>(graph::NumElements(shape)), 0.0) {}

RefTensor::RefTensor(graph::Shape tensor_shape, std::vector<double> tensor_values)
    : shape(std::move(tensor_shape)), values(std::move(tensor_values)) {
  Require(static_cast<int64_t>(values.size()) == graph::NumElements(shape),
          "value count does not match the shape");
}

double& RefTensor::at(int64_t n, int64_t c, int64_t h, int64_t w) {
  return values[static_cast<size_t>(((n * shape[1] + c) * shape[2] + h) * shape[3] + w)];
}

double RefTensor::at(int64_t n, int64_t c, int64_t h, int64_t w) const {
  return values[static_cast<size_t>(((n * shape[1] + c) * shape[2] + h) * shape[3] + w)];
}

int64_t WindowOutput(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation) {
  const int64_t span = dilation * (kernel - 1) + 1;
  Require(in + 2 * pad >= span, "window does not fit the padded input");
  return (in + 2 * pad - span) / stride + 1;
}

RefTensor Conv2D(const RefTensor& x, const RefTensor& w, const RefTensor* bias,
                 const ConvParams& params) {
  RefTensor y(ConvOutputShape(x.shape, w.shape, params));
  ForEachConvTerm(x.shape, w.shape, params,
                  [&](int64_t n, int64_t o, int64_t oh, int64_t ow, int64_t c, int64_t ci,
                      int64_t kh, int64_t kw, int64_t ih, int64_t iw) {
                    y.at(n, o, oh, ow) += x.at(n, c, ih, iw) * w.at(o, ci, kh, kw);
                  });
  if (bias != nullptr) {
    Require(bias->shape == graph::Shape{w.shape[0]}, "bias must be [O]");
    for (int64_t n = 0; n < y.shape[0]; ++n) {
      for (int64_t o = 0; o < y.shape[1]; ++o) {
        for (int64_t h = 0; h < y.shape[2]; ++h) {
          for (int64_t v = 0; v < y.shape[3]; ++v) y.at(n, o, h, v) += bias->values[o];
        }
      }
    }
  }
  return y;
}

RefTensor Conv2DBackwardData(const RefTensor& dy, const RefTensor& w, const graph::Shape& x_shape,
                             const ConvParams& params) {
  Require(dy.shape == ConvOutputShape(x_shape, w.shape, params), "dy does not match the conv");
  RefTensor dx(x_shape);
  ForEachConvTerm(x_shape, w.shape, params,
                  [&](int64_t n, int64_t o, int64_t oh, int64_t ow, int64_t c, int64_t ci,
                      int64_t kh, int64_t kw, int64_t ih, int64_t iw) {
                    dx.at(n, c, ih, iw) += dy.at(n, o, oh, ow) * w.at(o, ci, kh, kw);
                  });
  return dx;
}

RefTensor Conv2DBackwardFilter(const RefTensor& dy, const RefTensor& x, const graph::Shape& w_shape,
                               const ConvParams& params) {
  Require(dy.shape == ConvOutputShape(x.shape, w_shape, params), "dy does not match the conv");
  RefTensor dw(w_shape);
  ForEachConvTerm(x.shape, w_shape, params,
                  [&](int64_t n, int64_t o, int64_t oh, int64_t ow, int64_t c, int64_t ci,
                      int64_t kh, int64_t kw, int64_t ih, int64_t iw) {
                    dw.at(o, ci, kh, kw) += dy.at(n, o, oh, ow) * x.at(n, c, ih, iw);
                  });
  return dw;
}

RefTensor BiasGrad(const RefTensor& dy) {
  const ChannelSplit s = SplitChannels(dy.shape);
  RefTensor db({s.channels});
  for (int64_t n = 0; n < s.batch; ++n) {
    for (int64_t c = 0; c < s.channels; ++c) {
      for (int64_t i = 0; i < s.inner; ++i) db.values[c] += dy.values[ChannelIndex(s, n, c, i)];
    }
  }
  return db;
}

BatchNormTraining BatchNormTrain(const RefTensor& x, const RefTensor& gamma, const RefTensor& beta,
                                 const RefTensor& running_mean, const RefTensor& running_var,
                                 double epsilon, double momentum) {
  const ChannelSplit s = SplitChannels(x.shape);
  const double count = static_cast<double>(s.batch * s.inner);
  Require(count > 1, "training batch norm needs more than one value per channel");
  BatchNormTraining out{RefTensor(x.shape), RefTensor({s.channels}), RefTensor({s.channels}),
                        RefTensor({s.channels}), RefTensor({s.channels})};
  for (int64_t c = 0; c < s.channels; ++c) {
    double sum = 0;
    for (int64_t n = 0; n < s.batch; ++n) {
      for (int64_t i = 0; i < s.inner; ++i) sum += x.values[ChannelIndex(s, n, c, i)];
    }
    const double mean = sum / count;
    double squares = 0;
    for (int64_t n = 0; n < s.batch; ++n) {
      for (int64_t i = 0; i < s.inner; ++i) {
        const double d = x.values[ChannelIndex(s, n, c, i)] - mean;
        squares += d * d;
      }
    }
    const double variance = squares / count;
    const double invstd = 1.0 / std::sqrt(variance + epsilon);
    for (int64_t n = 0; n < s.batch; ++n) {
      for (int64_t i = 0; i < s.inner; ++i) {
        const size_t k = ChannelIndex(s, n, c, i);
        out.y.values[k] = gamma.values[c] * (x.values[k] - mean) * invstd + beta.values[c];
      }
    }
    out.saved_mean.values[c] = mean;
    out.saved_invstd.values[c] = invstd;
    out.running_mean.values[c] = (1 - momentum) * running_mean.values[c] + momentum * mean;
    out.running_var.values[c] =
        (1 - momentum) * running_var.values[c] + momentum * squares / (count - 1);
  }
  return out;
}

RefTensor BatchNormInference(const RefTensor& x, const RefTensor& gamma, const RefTensor& beta,
                             const RefTensor& running_mean, const RefTensor& running_var,
                             double epsilon) {
  const ChannelSplit s = SplitChannels(x.shape);
  RefTensor y(x.shape);
  for (int64_t n = 0; n < s.batch; ++n) {
    for (int64_t c = 0; c < s.channels; ++c) {
      const double invstd = 1.0 / std::sqrt(running_var.values[c] + epsilon);
      for (int64_t i = 0; i < s.inner; ++i) {
        const size_t k = ChannelIndex(s, n, c, i);
        y.values[k] =
            gamma.values[c] * (x.values[k] - running_mean.values[c]) * invstd + beta.values[c];
      }
    }
  }
  return y;
}

BatchNormGrads BatchNormGrad(const RefTensor& dy, const RefTensor& x, const RefTensor& gamma,
                             const RefTensor& saved_mean, const RefTensor& saved_invstd) {
  Require(dy.shape == x.shape, "dy and x differ in shape");
  const ChannelSplit s = SplitChannels(x.shape);
  const double count = static_cast<double>(s.batch * s.inner);
  BatchNormGrads g{RefTensor(x.shape), RefTensor({s.channels}), RefTensor({s.channels})};
  for (int64_t c = 0; c < s.channels; ++c) {
    const double mean = saved_mean.values[c];
    const double invstd = saved_invstd.values[c];
    double sum_dy = 0;
    double sum_dy_xhat = 0;
    for (int64_t n = 0; n < s.batch; ++n) {
      for (int64_t i = 0; i < s.inner; ++i) {
        const size_t k = ChannelIndex(s, n, c, i);
        sum_dy += dy.values[k];
        sum_dy_xhat += dy.values[k] * (x.values[k] - mean) * invstd;
      }
    }
    g.dbeta.values[c] = sum_dy;
    g.dgamma.values[c] = sum_dy_xhat;
    for (int64_t n = 0; n < s.batch; ++n) {
      for (int64_t i = 0; i < s.inner; ++i) {
        const size_t k = ChannelIndex(s, n, c, i);
        const double xhat = (x.values[k] - mean) * invstd;
        g.dx.values[k] =
            gamma.values[c] * invstd / count * (count * dy.values[k] - sum_dy - xhat * sum_dy_xhat);
      }
    }
  }
  return g;
}

RefTensor Relu(const RefTensor& x) {
  RefTensor y(x.shape);
  for (size_t i = 0; i < x.values.size(); ++i) y.values[i] = x.values[i] > 0 ? x.values[i] : 0.0;
  return y;
}

RefTensor ReluGrad(const RefTensor& dy, const RefTensor& y) {
  Require(dy.shape == y.shape, "dy and y differ in shape");
  RefTensor dx(dy.shape);
  for (size_t i = 0; i < dy.values.size(); ++i) dx.values[i] = y.values[i] > 0 ? dy.values[i] : 0;
  return dx;
}

RefTensor MaxPool(const RefTensor& x, const PoolParams& params) {
  RefTensor y(PoolOutputShape(x.shape, params));
  const std::vector<size_t> argmax = MaxPoolArgmax(x, params);
  for (size_t i = 0; i < argmax.size(); ++i) y.values[i] = x.values[argmax[i]];
  return y;
}

RefTensor MaxPoolGrad(const RefTensor& dy, const RefTensor& x, const PoolParams& params) {
  Require(dy.shape == PoolOutputShape(x.shape, params), "dy does not match the pooling");
  RefTensor dx(x.shape);
  const std::vector<size_t> argmax = MaxPoolArgmax(x, params);
  for (size_t i = 0; i < argmax.size(); ++i) dx.values[argmax[i]] += dy.values[i];
  return dx;
}

RefTensor AvgPool(const RefTensor& x, const PoolParams& params, bool count_include_pad) {
  RefTensor y(PoolOutputShape(x.shape, params));
  const double window = static_cast<double>(params.kernel[0] * params.kernel[1]);
  ForEachPoolWindow(
      x.shape, params,
      [&](int64_t n, int64_t c, int64_t oh, int64_t ow, int64_t ih, int64_t iw) {
        y.at(n, c, oh, ow) += x.at(n, c, ih, iw);
      },
      [&](int64_t n, int64_t c, int64_t oh, int64_t ow, int64_t inside) {
        y.at(n, c, oh, ow) /= count_include_pad ? window : static_cast<double>(inside);
      });
  return y;
}

RefTensor AvgPoolGrad(const RefTensor& dy, const graph::Shape& x_shape, const PoolParams& params,
                      bool count_include_pad) {
  Require(dy.shape == PoolOutputShape(x_shape, params), "dy does not match the pooling");
  RefTensor dx(x_shape);
  const double window = static_cast<double>(params.kernel[0] * params.kernel[1]);
  // The divisor of a window is known only after visiting it: collect its elements first.
  std::vector<std::pair<int64_t, int64_t>> members;
  ForEachPoolWindow(
      x_shape, params,
      [&](int64_t, int64_t, int64_t, int64_t, int64_t ih, int64_t iw) {
        members.emplace_back(ih, iw);
      },
      [&](int64_t n, int64_t c, int64_t oh, int64_t ow, int64_t inside) {
        const double share =
            dy.at(n, c, oh, ow) / (count_include_pad ? window : static_cast<double>(inside));
        for (const auto& [ih, iw] : members) dx.at(n, c, ih, iw) += share;
        members.clear();
      });
  return dx;
}

RefTensor GlobalAvgPool(const RefTensor& x) {
  Require(x.shape.size() == 4, "GlobalAvgPool expects a rank-4 x");
  const ChannelSplit s = SplitChannels(x.shape);
  RefTensor y({s.batch, s.channels, 1, 1});
  for (int64_t n = 0; n < s.batch; ++n) {
    for (int64_t c = 0; c < s.channels; ++c) {
      double sum = 0;
      for (int64_t i = 0; i < s.inner; ++i) sum += x.values[ChannelIndex(s, n, c, i)];
      y.values[n * s.channels + c] = sum / static_cast<double>(s.inner);
    }
  }
  return y;
}

RefTensor GlobalAvgPoolGrad(const RefTensor& dy, const graph::Shape& x_shape) {
  const ChannelSplit s = SplitChannels(x_shape);
  Require(dy.shape == graph::Shape({s.batch, s.channels, 1, 1}), "dy must be [N,C,1,1]");
  RefTensor dx(x_shape);
  for (int64_t n = 0; n < s.batch; ++n) {
    for (int64_t c = 0; c < s.channels; ++c) {
      for (int64_t i = 0; i < s.inner; ++i) {
        dx.values[ChannelIndex(s, n, c, i)] =
            dy.values[n * s.channels + c] / static_cast<double>(s.inner);
      }
    }
  }
  return dx;
}

RefTensor Add(const RefTensor& a, const RefTensor& b) {
  Require(a.shape == b.shape, "Add operands differ in shape");
  RefTensor y(a.shape);
  for (size_t i = 0; i < a.values.size(); ++i) y.values[i] = a.values[i] + b.values[i];
  return y;
}

RefTensor FullyConnected(const RefTensor& x, const RefTensor& w, const RefTensor* bias) {
  Require(x.shape.size() == 2 && w.shape.size() == 2 && x.shape[1] == w.shape[1],
          "FullyConnected expects x [N,K] and w [M,K]");
  const int64_t batch = x.shape[0];
  const int64_t outputs = w.shape[0];
  const int64_t inner = x.shape[1];
  RefTensor y({batch, outputs});
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t m = 0; m < outputs; ++m) {
      double sum = bias != nullptr ? bias->values[m] : 0.0;
      for (int64_t k = 0; k < inner; ++k) sum += x.values[n * inner + k] * w.values[m * inner + k];
      y.values[n * outputs + m] = sum;
    }
  }
  return y;
}

RefTensor FullyConnectedBackwardData(const RefTensor& dy, const RefTensor& w) {
  Require(dy.shape.size() == 2 && w.shape.size() == 2 && dy.shape[1] == w.shape[0],
          "expected dy [N,M] and w [M,K]");
  const int64_t batch = dy.shape[0];
  const int64_t outputs = w.shape[0];
  const int64_t inner = w.shape[1];
  RefTensor dx({batch, inner});
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t m = 0; m < outputs; ++m) {
      for (int64_t k = 0; k < inner; ++k) {
        dx.values[n * inner + k] += dy.values[n * outputs + m] * w.values[m * inner + k];
      }
    }
  }
  return dx;
}

RefTensor FullyConnectedBackwardWeights(const RefTensor& dy, const RefTensor& x) {
  Require(dy.shape.size() == 2 && x.shape.size() == 2 && dy.shape[0] == x.shape[0],
          "expected dy [N,M] and x [N,K]");
  const int64_t batch = dy.shape[0];
  const int64_t outputs = dy.shape[1];
  const int64_t inner = x.shape[1];
  RefTensor dw({outputs, inner});
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t m = 0; m < outputs; ++m) {
      for (int64_t k = 0; k < inner; ++k) {
        dw.values[m * inner + k] += dy.values[n * outputs + m] * x.values[n * inner + k];
      }
    }
  }
  return dw;
}

RefTensor Reshape(const RefTensor& x, const graph::Shape& shape) {
  return RefTensor(shape, x.values);
}

SoftmaxCrossEntropyResult SoftmaxCrossEntropy(const RefTensor& logits, const RefTensor& labels,
                                              double label_smoothing) {
  const int64_t batch = logits.shape[0];
  const int64_t classes = logits.shape[1];
  SoftmaxCrossEntropyResult out{RefTensor(graph::Shape{}), RefTensor(logits.shape)};
  const RefTensor targets = SmoothedTargets(logits, labels, label_smoothing);
  double total = 0;
  for (int64_t n = 0; n < batch; ++n) {
    const double* row = &logits.values[n * classes];
    double max = row[0];
    for (int64_t c = 1; c < classes; ++c) max = std::max(max, row[c]);
    double sum = 0;
    for (int64_t c = 0; c < classes; ++c) sum += std::exp(row[c] - max);
    const double log_sum = max + std::log(sum);
    for (int64_t c = 0; c < classes; ++c) {
      out.probs.values[n * classes + c] = std::exp(row[c] - log_sum);
      total -= targets.values[n * classes + c] * (row[c] - log_sum);
    }
  }
  out.loss.values[0] = total / static_cast<double>(batch);
  return out;
}

RefTensor SoftmaxCrossEntropyGrad(const RefTensor& probs, const RefTensor& labels,
                                  double label_smoothing) {
  const RefTensor targets = SmoothedTargets(probs, labels, label_smoothing);
  RefTensor dlogits(probs.shape);
  const double batch = static_cast<double>(probs.shape[0]);
  for (size_t i = 0; i < probs.values.size(); ++i) {
    dlogits.values[i] = (probs.values[i] - targets.values[i]) / batch;
  }
  return dlogits;
}

}  // namespace gradflow::test_support
