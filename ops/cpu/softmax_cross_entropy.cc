// SoftmaxCrossEntropy and its gradient (fp32 scores; int32 or int64 labels) as C++ loops: one pass
// per row over at most a few thousand classes, where a oneDNN softmax would save nothing.
//
// With q = (1 - s) * onehot(label) + s / C (label smoothing s) and p = softmax(z):
//   loss_n = -sum_c q_c log p_c = logsumexp(z) - (1 - s) * z_label - (s / C) * sum_c z_c,
// computed with z shifted by its row maximum so that exp never overflows.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ops/cpu/cpu_kernels.h"

namespace gradflow::ops::cpu {
namespace {

// Every label indexes a class; the error names the first sample that does not.
template <typename Label>
absl::Status CheckLabels(const std::string& node, const Label* labels, int64_t batch,
                         int64_t classes) {
  for (int64_t n = 0; n < batch; ++n) {
    if (labels[n] < 0 || labels[n] >= classes) {
      return absl::InvalidArgumentError(absl::StrCat("node '", node, "': label of sample ", n,
                                                     " is ", static_cast<int64_t>(labels[n]),
                                                     ", outside [0, ", classes, ")"));
    }
  }
  return absl::OkStatus();
}

// Inputs logits[N,C], labels[N]; outputs loss (scalar), probs[N,C].
template <typename Label>
class SoftmaxCrossEntropyKernel final : public Kernel {
 public:
  SoftmaxCrossEntropyKernel(std::string node, int64_t batch, int64_t classes, float smoothing)
      : node_(std::move(node)), batch_(batch), classes_(classes), smoothing_(smoothing) {}

  absl::Status Run(std::span<const TensorRef> inputs, std::span<const TensorRef> outputs,
                   void* /*workspace*/) override {
    const float* logits = inputs[0].as<const float>();
    const Label* labels = inputs[1].as<const Label>();
    if (absl::Status s = CheckLabels(node_, labels, batch_, classes_); !s.ok()) return s;
    float* probs = outputs[1].as<float>();
    const int64_t classes = classes_;
    const double on_label = 1.0 - smoothing_;
    const double per_class = static_cast<double>(smoothing_) / static_cast<double>(classes);
    double total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total)
    for (int64_t n = 0; n < batch_; ++n) {
      const float* z = logits + n * classes;
      float* p = probs + n * classes;
      const float max = *std::max_element(z, z + classes);
      double exp_sum = 0;
      double shifted_sum = 0;
      for (int64_t c = 0; c < classes; ++c) {
        const float shifted = z[c] - max;
        p[c] = std::exp(shifted);
        exp_sum += p[c];
        shifted_sum += shifted;
      }
      const auto inverse = static_cast<float>(1.0 / exp_sum);
      for (int64_t c = 0; c < classes; ++c) p[c] *= inverse;
      const double label_shifted = static_cast<double>(z[labels[n]]) - max;
      total += std::log(exp_sum) - on_label * label_shifted - per_class * shifted_sum;
    }
    *outputs[0].as<float>() = static_cast<float>(total / static_cast<double>(batch_));
    return absl::OkStatus();
  }

 private:
  std::string node_;
  int64_t batch_;
  int64_t classes_;
  float smoothing_;
};

// Inputs probs[N,C], labels[N]; output dlogits = (probs - q) / N.
template <typename Label>
class SoftmaxCrossEntropyGradKernel final : public Kernel {
 public:
  SoftmaxCrossEntropyGradKernel(std::string node, int64_t batch, int64_t classes, float smoothing)
      : node_(std::move(node)), batch_(batch), classes_(classes), smoothing_(smoothing) {}

  absl::Status Run(std::span<const TensorRef> inputs, std::span<const TensorRef> outputs,
                   void* /*workspace*/) override {
    const float* probs = inputs[0].as<const float>();
    const Label* labels = inputs[1].as<const Label>();
    if (absl::Status s = CheckLabels(node_, labels, batch_, classes_); !s.ok()) return s;
    float* dlogits = outputs[0].as<float>();
    const int64_t classes = classes_;
    const auto per_class = static_cast<float>(static_cast<double>(smoothing_) / classes);
    const float on_label = 1.0f - smoothing_;
    const auto inverse_batch = static_cast<float>(1.0 / static_cast<double>(batch_));
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < batch_; ++n) {
      const float* p = probs + n * classes;
      float* d = dlogits + n * classes;
#pragma omp simd
      for (int64_t c = 0; c < classes; ++c) d[c] = (p[c] - per_class) * inverse_batch;
      const int64_t label = labels[n];
      d[label] = (p[label] - per_class - on_label) * inverse_batch;
    }
    return absl::OkStatus();
  }

 private:
  std::string node_;
  int64_t batch_;
  int64_t classes_;
  float smoothing_;
};

template <template <typename> class KernelType>
absl::StatusOr<std::unique_ptr<Kernel>> MakeScoresKernel(const KernelSpec& spec) {
  const graph::TensorType& scores = spec.inputs[0];
  if (scores.dtype != graph::DType::kFloat32) {
    return absl::UnimplementedError(absl::StrCat(spec.node.op, " on the CPU supports float32, got ",
                                                 graph::DTypeName(scores.dtype)));
  }
  const int64_t batch = scores.shape[0], classes = scores.shape[1];
  const float smoothing = spec.attrs.Float("label_smoothing");
  switch (spec.inputs[1].dtype) {
    case graph::DType::kInt32:
      return std::unique_ptr<Kernel>(
          new KernelType<int32_t>(spec.node.name, batch, classes, smoothing));
    case graph::DType::kInt64:
      return std::unique_ptr<Kernel>(
          new KernelType<int64_t>(spec.node.name, batch, classes, smoothing));
    default:
      return absl::UnimplementedError(absl::StrCat(spec.node.op,
                                                   " takes int32 or int64 labels, got ",
                                                   graph::DTypeName(spec.inputs[1].dtype)));
  }
}

}  // namespace

absl::Status RegisterSoftmaxCrossEntropyCpu(KernelRegistry& registry) {
  if (absl::Status s =
          registry.Register("SoftmaxCrossEntropy", DeviceType::kCpu, graph::DType::kFloat32,
                            MakeScoresKernel<SoftmaxCrossEntropyKernel>);
      !s.ok()) {
    return s;
  }
  return registry.Register("SoftmaxCrossEntropyGrad", DeviceType::kCpu, graph::DType::kFloat32,
                           MakeScoresKernel<SoftmaxCrossEntropyGradKernel>);
}

}  // namespace gradflow::ops::cpu
