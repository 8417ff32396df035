// Naive float64 implementations of every op of the contract (ops/schemas/*.cc), the ground truth
// the kernel harness and the gradient checks compare against. Written for obviousness, not speed:
// plain loops over logical NCHW (or row-major) indices.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "graph/types.h"

namespace gradflow::test_support {

// A dense tensor in logical order (NCHW for images, row-major otherwise), in double precision.
// Class labels are held as whole numbers too.
struct RefTensor {
  graph::Shape shape;
  std::vector<double> values;

  RefTensor() = default;
  explicit RefTensor(graph::Shape tensor_shape);  // zeros
  RefTensor(graph::Shape tensor_shape, std::vector<double> tensor_values);

  int64_t size() const { return static_cast<int64_t>(values.size()); }
  // Element [n, c, h, w] of a rank-4 tensor.
  double& at(int64_t n, int64_t c, int64_t h, int64_t w);
  double at(int64_t n, int64_t c, int64_t h, int64_t w) const;
};

struct ConvParams {
  std::array<int64_t, 2> strides = {1, 1};
  std::array<int64_t, 2> pads = {0, 0};
  std::array<int64_t, 2> dilations = {1, 1};
  int64_t groups = 1;
};

struct PoolParams {
  std::array<int64_t, 2> kernel = {1, 1};
  std::array<int64_t, 2> strides = {1, 1};
  std::array<int64_t, 2> pads = {0, 0};
};

// Floor-mode output size of a sliding window, as the schemas compute it.
int64_t WindowOutput(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation);

// Convolution: x [N,C,H,W], w [O,C/groups,KH,KW], optional bias [O] (null: none).
RefTensor Conv2D(const RefTensor& x, const RefTensor& w, const RefTensor* bias,
                 const ConvParams& params);
RefTensor Conv2DBackwardData(const RefTensor& dy, const RefTensor& w, const graph::Shape& x_shape,
                             const ConvParams& params);
RefTensor Conv2DBackwardFilter(const RefTensor& dy, const RefTensor& x, const graph::Shape& w_shape,
                               const ConvParams& params);
// Sum of dy [N,C,...] over every dimension but 1.
RefTensor BiasGrad(const RefTensor& dy);

struct BatchNormTraining {
  RefTensor y;
  RefTensor saved_mean;    // batch mean per channel
  RefTensor saved_invstd;  // 1 / sqrt(biased batch variance + epsilon)
  // (1 - momentum) * old + momentum * batch statistic; the variance enters unbiased, as in
  // PyTorch.
  RefTensor running_mean;
  RefTensor running_var;
};
// x [N,C,...]: statistics over every dimension but 1.
BatchNormTraining BatchNormTrain(const RefTensor& x, const RefTensor& gamma, const RefTensor& beta,
                                 const RefTensor& running_mean, const RefTensor& running_var,
                                 double epsilon, double momentum);
RefTensor BatchNormInference(const RefTensor& x, const RefTensor& gamma, const RefTensor& beta,
                             const RefTensor& running_mean, const RefTensor& running_var,
                             double epsilon);
struct BatchNormGrads {
  RefTensor dx;
  RefTensor dgamma;
  RefTensor dbeta;
};
// Gradient of training-mode batch norm, given the statistics its forward saved.
BatchNormGrads BatchNormGrad(const RefTensor& dy, const RefTensor& x, const RefTensor& gamma,
                             const RefTensor& saved_mean, const RefTensor& saved_invstd);

RefTensor Relu(const RefTensor& x);
// dy where y > 0, else 0.
RefTensor ReluGrad(const RefTensor& dy, const RefTensor& y);

// Padding never wins a max (it counts as -infinity); ties go to the first element of the window
// in row-major order, as in PyTorch.
RefTensor MaxPool(const RefTensor& x, const PoolParams& params);
RefTensor MaxPoolGrad(const RefTensor& dy, const RefTensor& x, const PoolParams& params);
// count_include_pad: divide by the whole window (PyTorch's default) or by its part inside x.
RefTensor AvgPool(const RefTensor& x, const PoolParams& params, bool count_include_pad);
RefTensor AvgPoolGrad(const RefTensor& dy, const graph::Shape& x_shape, const PoolParams& params,
                      bool count_include_pad);
RefTensor GlobalAvgPool(const RefTensor& x);
RefTensor GlobalAvgPoolGrad(const RefTensor& dy, const graph::Shape& x_shape);

RefTensor Add(const RefTensor& a, const RefTensor& b);

// y [N,M] = x [N,K] w[M,K]^T + bias [M] (null: none).
RefTensor FullyConnected(const RefTensor& x, const RefTensor& w, const RefTensor* bias);
RefTensor FullyConnectedBackwardData(const RefTensor& dy, const RefTensor& w);
RefTensor FullyConnectedBackwardWeights(const RefTensor& dy, const RefTensor& x);

// The same elements under another shape (Flatten and Reshape).
RefTensor Reshape(const RefTensor& x, const graph::Shape& shape);

struct SoftmaxCrossEntropyResult {
  RefTensor loss;   // scalar: mean over the batch
  RefTensor probs;  // softmax of the logits
};
// Targets are (1 - smoothing) * one_hot(label) + smoothing / classes.
SoftmaxCrossEntropyResult SoftmaxCrossEntropy(const RefTensor& logits, const RefTensor& labels,
                                              double label_smoothing);
// (probs - targets) / N.
RefTensor SoftmaxCrossEntropyGrad(const RefTensor& probs, const RefTensor& labels,
                                  double label_smoothing);

}  // namespace gradflow::test_support
