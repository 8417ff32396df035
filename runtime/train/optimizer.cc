#include "runtime/train/optimizer.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ops/cpu/sgd.h"

namespace gradflow::runtime {
namespace {

absl::Status CheckConfig(const OptimizerConfig& config) {
  if (!std::isfinite(config.momentum) || config.momentum < 0 || config.momentum >= 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("optimizer: momentum must be in [0, 1), got ", config.momentum));
  }
  if (!std::isfinite(config.weight_decay) || config.weight_decay < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "optimizer: weight decay must be a finite number >= 0, got ", config.weight_decay));
  }
  if (!std::isfinite(config.grad_scale) || config.grad_scale <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "optimizer: gradient scale must be a finite number > 0, got ", config.grad_scale));
  }
  return absl::OkStatus();
}

absl::Status CheckSegments(int64_t buffer_size, const std::vector<ops::SgdSegment>& segments) {
  if (absl::Status s = ops::CheckSgdSegments(buffer_size, segments); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("optimizer: ", s.message()));
  }
  return absl::OkStatus();
}

// The part of `segment` inside [begin, end).
ops::SgdSegment Clip(const ops::SgdSegment& segment, int64_t begin, int64_t end) {
  const int64_t from = std::max(segment.offset, begin);
  const int64_t to = std::min(segment.offset + segment.count, end);
  return {.offset = from,
          .count = std::max<int64_t>(to - from, 0),
          .weight_decay = segment.weight_decay};
}

}  // namespace

absl::StatusOr<Optimizer> Optimizer::Create(const OptimizerConfig& config, int64_t buffer_size,
                                            std::vector<ops::SgdSegment> segments) {
  if (absl::Status s = CheckConfig(config); !s.ok()) return s;
  if (absl::Status s = CheckSegments(buffer_size, segments); !s.ok()) return s;
  return Optimizer(config, buffer_size, std::move(segments));
}

Optimizer::Optimizer(const OptimizerConfig& config, int64_t buffer_size,
                     std::vector<ops::SgdSegment> segments)
    : config_(config),
      segments_(std::move(segments)),
      momentum_(static_cast<size_t>(buffer_size), 0.0f) {
  hyper_.momentum = config_.momentum;
  hyper_.nesterov = config_.nesterov;
  hyper_.weight_decay = config_.weight_decay;
  hyper_.grad_scale = config_.grad_scale;
}

absl::Status Optimizer::BeginStep(double lr) {
  if (!std::isfinite(lr) || lr < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("optimizer: learning rate must be a finite number >= 0, got ", lr));
  }
  double correction = 1;
  if (config_.momentum_correction && previous_lr_ > 0 && lr > 0) correction = lr / previous_lr_;
  hyper_.lr = static_cast<float>(lr);
  hyper_.momentum_correction = static_cast<float>(correction);
  previous_lr_ = lr;
  step_started_ = true;
  return absl::OkStatus();
}

absl::Status Optimizer::Apply(std::span<float> params, std::span<const float> grads, int64_t begin,
                              int64_t end) {
  if (!step_started_) {
    return absl::FailedPreconditionError(
        "optimizer: Apply called before BeginStep set the iteration's learning rate");
  }
  return Apply(hyper_, params, grads, begin, end);
}

absl::Status Optimizer::Apply(const ops::SgdHyper& hyper, std::span<float> params,
                              std::span<const float> grads, int64_t begin, int64_t end) {
  const auto size = static_cast<int64_t>(momentum_.size());
  if (static_cast<int64_t>(params.size()) != size || static_cast<int64_t>(grads.size()) != size) {
    return absl::InvalidArgumentError(
        absl::StrCat("optimizer: params (", params.size(), " floats) and grads (", grads.size(),
                     " floats) must match the flat buffer of ", size, " floats"));
  }
  if (begin < 0 || begin > end || end > size) {
    return absl::InvalidArgumentError(absl::StrCat("optimizer: range [", begin, ", ", end,
                                                   ") is not inside the flat buffer of ", size,
                                                   " floats"));
  }
  // The segments touching [begin, end): [first, last). Only the two ends can be cut by the
  // range, so the middle ones go to the kernel as they are, without copying the list.
  const auto first = std::partition_point(
      segments_.begin(), segments_.end(),
      [begin](const ops::SgdSegment& s) { return s.offset + s.count <= begin; });
  const auto last = std::partition_point(
      first, segments_.end(), [end](const ops::SgdSegment& s) { return s.offset < end; });
  if (first == last) return absl::OkStatus();

  const ops::SgdSegment head = Clip(*first, begin, end);
  if (absl::Status s = ops::cpu::SgdUpdate(params, grads, momentum_, {&head, 1}, hyper); !s.ok()) {
    return s;
  }
  if (last - first == 1) return absl::OkStatus();
  const std::span<const ops::SgdSegment> middle(first + 1, last - 1);
  if (!middle.empty()) {
    if (absl::Status s = ops::cpu::SgdUpdate(params, grads, momentum_, middle, hyper); !s.ok()) {
      return s;
    }
  }
  const ops::SgdSegment tail = Clip(*(last - 1), begin, end);
  return ops::cpu::SgdUpdate(params, grads, momentum_, {&tail, 1}, hyper);
}

absl::Status Optimizer::ApplyAll(std::span<float> params, std::span<const float> grads) {
  return Apply(params, grads, 0, static_cast<int64_t>(momentum_.size()));
}

absl::Status Optimizer::Restore(std::span<const float> momentum, double previous_lr) {
  if (momentum.size() != momentum_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("optimizer: restored momentum has ",
                                                   momentum.size(), " floats, the flat buffer ",
                                                   momentum_.size()));
  }
  if (!std::isfinite(previous_lr) || previous_lr < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "optimizer: restored previous lr must be a finite number >= 0, got ", previous_lr));
  }
  std::copy(momentum.begin(), momentum.end(), momentum_.begin());
  previous_lr_ = previous_lr;
  step_started_ = false;
  return absl::OkStatus();
}

}  // namespace gradflow::runtime
