// SGD with momentum over one replica's flat parameter buffer (Goyal et al. 2017, sec. 2.1, 2.4):
// owns the momentum buffer, laid out like the parameters, and turns each iteration's lr into the
// hyperparameters of ops::cpu::SgdUpdate, including the momentum correction lr_new / lr_old.
//
// Per iteration: BeginStep(lr) once, then Apply(...) for each gradient bucket as its allreduce
// finishes (or ApplyAll). Every bucket of one iteration shares the lr and the correction, so the
// correction is decided once in BeginStep, not per bucket. All calls for one replica come from
// one thread (its compute stream): the update itself runs on that thread's OpenMP team.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ops/sgd.h"

namespace gradflow::runtime {

struct OptimizerConfig {
  float momentum = 0.9f;
  bool nesterov = false;
  // Applied only to segments whose weight_decay is true (not BN gamma/beta, not biases).
  float weight_decay = 1e-4f;
  // Rescale the momentum history by lr_new / lr_old on a step whose lr changed (sec. 2.4).
  bool momentum_correction = true;
  // Multiplies every gradient: 1 / world_size when the allreduce sums per-replica mean gradients.
  float grad_scale = 1.0f;
};

class Optimizer {
 public:
  // `segments` describe the flat buffer of `buffer_size` floats (ops/sgd.h: increasing offsets,
  // no overlap, inside the buffer). InvalidArgument for a bad config or segment list.
  static absl::StatusOr<Optimizer> Create(const OptimizerConfig& config, int64_t buffer_size,
                                          std::vector<ops::SgdSegment> segments);

  // Starts an iteration with learning rate `lr` (finite, >= 0). The momentum correction for the
  // step is lr / previous_lr() when enabled and both are > 0, else 1: a history built with lr 0
  // cannot be rescaled, and before the first step there is no history.
  absl::Status BeginStep(double lr);

  // Updates params[begin, end) and the momentum there from grads[begin, end) with the current
  // step's hyperparameters. params and grads span the whole flat buffer. A range may cut through
  // a segment (only the covered part is updated). Allocation-free. FailedPrecondition before the
  // first BeginStep; InvalidArgument for sizes or a range outside the buffer.
  absl::Status Apply(std::span<float> params, std::span<const float> grads, int64_t begin,
                     int64_t end);
  absl::Status ApplyAll(std::span<float> params, std::span<const float> grads);
  // The same with the hyperparameters of an earlier step (step_hyper() then): data-parallel
  // training applies a bucket's update once its allreduce has finished, which may be after the
  // next step has begun.
  absl::Status Apply(const ops::SgdHyper& hyper, std::span<float> params,
                     std::span<const float> grads, int64_t begin, int64_t end);

  // The lr of the last step begun, 0 before any (what a checkpoint saves).
  double previous_lr() const { return previous_lr_; }
  // The hyperparameters the current step applies (for logging and tests).
  const ops::SgdHyper& step_hyper() const { return hyper_; }
  const OptimizerConfig& config() const { return config_; }
  const std::vector<ops::SgdSegment>& segments() const { return segments_; }

  std::span<const float> momentum() const { return momentum_; }
  // For replicas that must start from one node's state (a broadcast after a resume).
  std::span<float> mutable_momentum() { return momentum_; }
  // Restores the state a checkpoint saved. InvalidArgument when the momentum size differs from
  // the buffer or previous_lr is negative or not finite; the state is unchanged then.
  absl::Status Restore(std::span<const float> momentum, double previous_lr);

 private:
  Optimizer(const OptimizerConfig& config, int64_t buffer_size,
            std::vector<ops::SgdSegment> segments);

  OptimizerConfig config_;
  std::vector<ops::SgdSegment> segments_;
  std::vector<float> momentum_;
  ops::SgdHyper hyper_;
  double previous_lr_ = 0;
  bool step_started_ = false;
};

}  // namespace gradflow::runtime
