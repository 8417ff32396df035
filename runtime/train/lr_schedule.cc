#include "runtime/train/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace gradflow::runtime {
namespace {

absl::Status CheckNonNegative(const char* name, double value) {
  if (std::isfinite(value) && value >= 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("lr schedule: ", name, " must be a finite number >= 0, got ", value));
}

absl::Status CheckMilestones(const LrScheduleConfig& config) {
  for (size_t i = 0; i < config.milestones.size(); ++i) {
    const double milestone = config.milestones[i];
    const std::string name = absl::StrCat("milestone ", i, " (epoch ", milestone, ")");
    if (!std::isfinite(milestone) || milestone <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("lr schedule: ", name, " must be a finite epoch > 0"));
    }
    if (i > 0 && milestone <= config.milestones[i - 1]) {
      return absl::InvalidArgumentError(
          absl::StrCat("lr schedule: ", name, " is not after milestone ", i - 1, " (epoch ",
                       config.milestones[i - 1], "); milestones must be strictly increasing"));
    }
    if (config.warmup != LrWarmup::kNone && milestone < config.warmup_epochs) {
      return absl::InvalidArgumentError(absl::StrCat(
          "lr schedule: ", name, " falls inside the warmup of ", config.warmup_epochs, " epochs"));
    }
    if (milestone >= config.total_epochs) {
      return absl::InvalidArgumentError(absl::StrCat("lr schedule: ", name,
                                                     " is not before the end of training (",
                                                     config.total_epochs, " epochs)"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckConfig(const LrScheduleConfig& config) {
  if (!std::isfinite(config.base_lr) || config.base_lr <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("lr schedule: base lr must be a finite number > 0, got ", config.base_lr));
  }
  if (config.reference_batch <= 0 || config.global_batch <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("lr schedule: the reference batch (",
                                                   config.reference_batch, ") and global batch (",
                                                   config.global_batch, ") must be > 0"));
  }
  if (!std::isfinite(config.total_epochs) || config.total_epochs <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "lr schedule: total epochs must be a finite number > 0, got ", config.total_epochs));
  }
  if (config.warmup != LrWarmup::kNone) {
    if (absl::Status s = CheckNonNegative("warmup epochs", config.warmup_epochs); !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckNonNegative("warmup start lr", config.warmup_start_lr); !s.ok()) {
      return s;
    }
    if (config.warmup_epochs > config.total_epochs) {
      return absl::InvalidArgumentError(
          absl::StrCat("lr schedule: warmup of ", config.warmup_epochs,
                       " epochs is longer than training (", config.total_epochs, " epochs)"));
    }
  }
  if (config.decay == LrDecay::kStep) {
    if (!std::isfinite(config.decay_factor) || config.decay_factor <= 0 ||
        config.decay_factor > 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("lr schedule: decay factor must be in (0, 1], got ", config.decay_factor));
    }
    return CheckMilestones(config);
  }
  return absl::OkStatus();
}

double ScaledLr(const LrScheduleConfig& config) {
  const double ratio =
      static_cast<double>(config.global_batch) / static_cast<double>(config.reference_batch);
  switch (config.scaling) {
    case LrScaling::kLinear:
      return config.base_lr * ratio;
    case LrScaling::kSqrt:
      return config.base_lr * std::sqrt(ratio);
    case LrScaling::kNone:
      break;
  }
  return config.base_lr;
}

int64_t EpochToIteration(double epoch, int64_t iters_per_epoch) {
  return std::llround(epoch * static_cast<double>(iters_per_epoch));
}

const char* ScalingName(LrScaling scaling) {
  switch (scaling) {
    case LrScaling::kLinear:
      return "linear";
    case LrScaling::kSqrt:
      return "sqrt";
    case LrScaling::kNone:
      break;
  }
  return "none";
}

}  // namespace

absl::StatusOr<LrSchedule> LrSchedule::Create(const LrScheduleConfig& config) {
  if (absl::Status s = CheckConfig(config); !s.ok()) return s;
  return LrSchedule(config, ScaledLr(config));
}

double LrSchedule::LrAt(int64_t iteration, int64_t iters_per_epoch) const {
  iteration = std::max<int64_t>(iteration, 0);
  iters_per_epoch = std::max<int64_t>(iters_per_epoch, 1);
  if (config_.warmup != LrWarmup::kNone) {
    const int64_t warmup_iters = EpochToIteration(config_.warmup_epochs, iters_per_epoch);
    if (iteration < warmup_iters) {
      if (config_.warmup == LrWarmup::kConstant) return config_.warmup_start_lr;
      // Per iteration (sec. 2.2): the start lr at iteration 0, reaching the target exactly at
      // the first iteration after warmup.
      const double progress = static_cast<double>(iteration) / static_cast<double>(warmup_iters);
      return config_.warmup_start_lr + (target_lr_ - config_.warmup_start_lr) * progress;
    }
  }
  return DecayedLr(iteration, iters_per_epoch);
}

double LrSchedule::DecayedLr(int64_t iteration, int64_t iters_per_epoch) const {
  if (config_.decay == LrDecay::kStep) {
    double lr = target_lr_;
    for (double milestone : config_.milestones) {
      if (iteration < EpochToIteration(milestone, iters_per_epoch)) break;
      lr *= config_.decay_factor;
    }
    return lr;
  }
  // Cosine from the target at the end of warmup to 0 at the end of training.
  const int64_t start = config_.warmup == LrWarmup::kNone
                            ? 0
                            : EpochToIteration(config_.warmup_epochs, iters_per_epoch);
  const int64_t end = EpochToIteration(config_.total_epochs, iters_per_epoch);
  if (iteration >= end) return 0;
  const double progress = static_cast<double>(iteration - start) / static_cast<double>(end - start);
  return target_lr_ * 0.5 * (1 + std::cos(std::numbers::pi * progress));
}

std::string LrSchedule::Describe() const {
  std::string text = absl::StrCat("lr ", config_.base_lr);
  if (config_.scaling != LrScaling::kNone) {
    absl::StrAppend(&text, " x ", config_.global_batch, "/", config_.reference_batch, " (",
                    ScalingName(config_.scaling), ") = ", target_lr_);
  }
  switch (config_.warmup) {
    case LrWarmup::kGradual:
      absl::StrAppend(&text, "; gradual warmup from ", config_.warmup_start_lr, " over ",
                      config_.warmup_epochs, " epochs");
      break;
    case LrWarmup::kConstant:
      absl::StrAppend(&text, "; constant warmup at ", config_.warmup_start_lr, " for ",
                      config_.warmup_epochs, " epochs");
      break;
    case LrWarmup::kNone:
      absl::StrAppend(&text, "; no warmup");
      break;
  }
  if (config_.decay == LrDecay::kCosine) {
    absl::StrAppend(&text, "; cosine to 0");
  } else if (config_.milestones.empty()) {
    absl::StrAppend(&text, "; constant after warmup");
  } else {
    absl::StrAppend(&text, "; x", config_.decay_factor, " at epochs ",
                    absl::StrJoin(config_.milestones, ", "));
  }
  absl::StrAppend(&text, "; ", config_.total_epochs, " epochs");
  return text;
}

absl::StatusOr<LrScaling> ParseLrScaling(std::string_view text) {
  if (text == "linear") return LrScaling::kLinear;
  if (text == "sqrt") return LrScaling::kSqrt;
  if (text == "none") return LrScaling::kNone;
  return absl::InvalidArgumentError(
      absl::StrCat("lr scaling '", std::string(text), "' is not one of: linear, sqrt, none"));
}

absl::StatusOr<LrWarmup> ParseLrWarmup(std::string_view text) {
  if (text == "gradual") return LrWarmup::kGradual;
  if (text == "constant") return LrWarmup::kConstant;
  if (text == "none") return LrWarmup::kNone;
  return absl::InvalidArgumentError(
      absl::StrCat("lr warmup '", std::string(text), "' is not one of: gradual, constant, none"));
}

absl::StatusOr<LrDecay> ParseLrDecay(std::string_view text) {
  if (text == "step") return LrDecay::kStep;
  if (text == "cosine") return LrDecay::kCosine;
  return absl::InvalidArgumentError(
      absl::StrCat("lr decay '", std::string(text), "' is not one of: step, cosine"));
}

}  // namespace gradflow::runtime
