// The learning-rate schedule of Goyal et al. 2017 ("Accurate, Large Minibatch SGD"), with every
// piece of the recipe a parameter. The defaults are the paper's:
//   target lr = 0.1 x global_batch / 256                 (linear scaling rule, sec. 2.1)
//   warmup:     0.1 -> target, linearly per iteration over the first 5 epochs (sec. 2.2)
//   then:       divide by 10 at epochs 30, 60 and 80 of 90 (sec. 5.1)
// Options: square-root or no batch scaling; constant or no warmup; cosine decay to 0 over the
// epochs after warmup instead of steps.
//
// Epoch counts are doubles so that short runs can warm up or decay at fractional epochs; a
// boundary at epoch e falls on iteration round(e x iters_per_epoch).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace gradflow::runtime {

// How the target lr grows with the global batch relative to the reference batch.
enum class LrScaling { kLinear, kSqrt, kNone };
// kGradual ramps linearly per iteration; kConstant holds the start lr, then jumps to the target.
enum class LrWarmup { kGradual, kConstant, kNone };
enum class LrDecay { kStep, kCosine };

struct LrScheduleConfig {
  double base_lr = 0.1;           // the lr of a reference_batch-sized minibatch
  int64_t reference_batch = 256;  // images per base_lr
  int64_t global_batch = 256;     // images per iteration over all replicas
  LrScaling scaling = LrScaling::kLinear;

  LrWarmup warmup = LrWarmup::kGradual;
  double warmup_epochs = 5;
  // The small-batch lr warmup starts from. When the target is below it (a global batch under
  // the reference batch) a gradual warmup descends to the target: pass kNone for such runs.
  double warmup_start_lr = 0.1;

  LrDecay decay = LrDecay::kStep;
  std::vector<double> milestones = {30, 60, 80};  // epochs, strictly increasing (step decay)
  double decay_factor = 0.1;                      // lr multiplier at each milestone
  double total_epochs = 90;
};

class LrSchedule {
 public:
  // InvalidArgument naming the offending setting: negative or non-finite values, a zero batch,
  // milestones not strictly increasing, inside the warmup or past the end of training, warmup
  // longer than training, a decay factor outside (0, 1].
  static absl::StatusOr<LrSchedule> Create(const LrScheduleConfig& config);

  // The lr of 0-based `iteration` when an epoch has `iters_per_epoch` iterations. Iterations
  // past the end of training keep the final lr (0 for cosine). Pure function of its arguments;
  // a negative iteration counts as 0 and iters_per_epoch below 1 as 1, which the caller never
  // passes (the trainer checks its data loader gives at least one iteration per epoch).
  double LrAt(int64_t iteration, int64_t iters_per_epoch) const;

  // The lr after warmup, before any decay.
  double target_lr() const { return target_lr_; }
  const LrScheduleConfig& config() const { return config_; }

  // One line for the run summary, e.g.
  // "lr 0.1 x 8192/256 (linear) = 3.2; gradual warmup from 0.1 over 5 epochs; x0.1 at epochs
  //  30, 60, 80; 90 epochs".
  std::string Describe() const;

 private:
  LrSchedule(const LrScheduleConfig& config, double target_lr)
      : config_(config), target_lr_(target_lr) {}

  double DecayedLr(int64_t iteration, int64_t iters_per_epoch) const;

  LrScheduleConfig config_;
  double target_lr_ = 0;
};

// Flag values, as the CLI spells them: "linear" | "sqrt" | "none", "gradual" | "constant" |
// "none", "step" | "cosine". Errors name the flag and list the accepted values.
absl::StatusOr<LrScaling> ParseLrScaling(std::string_view text);
absl::StatusOr<LrWarmup> ParseLrWarmup(std::string_view text);
absl::StatusOr<LrDecay> ParseLrDecay(std::string_view text);

}  // namespace gradflow::runtime
