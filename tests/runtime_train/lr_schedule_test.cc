// The learning-rate schedule at hand-computed points of the paper's recipe and its options.
#include "runtime/train/lr_schedule.h"

#include <cmath>
#include <numbers>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gradflow::runtime {
namespace {

using ::testing::HasSubstr;

constexpr double kTolerance = 1e-12;

LrSchedule MakeSchedule(const LrScheduleConfig& config) {
  absl::StatusOr<LrSchedule> schedule = LrSchedule::Create(config);
  EXPECT_TRUE(schedule.ok()) << schedule.status();
  return *schedule;
}

// kn = 8k (k = 32 replicas of n = 256): the paper's headline setting.
LrScheduleConfig Paper8k() {
  LrScheduleConfig config;
  config.global_batch = 8192;
  return config;
}

TEST(LrScheduleTest, LinearScalingTarget) {
  EXPECT_NEAR(MakeSchedule(Paper8k()).target_lr(), 3.2, kTolerance);
  LrScheduleConfig config;
  config.global_batch = 1024;
  config.base_lr = 0.2;
  config.reference_batch = 128;
  EXPECT_NEAR(MakeSchedule(config).target_lr(), 1.6, kTolerance);
}

TEST(LrScheduleTest, GradualWarmupIsLinearPerIteration) {
  const LrSchedule schedule = MakeSchedule(Paper8k());
  constexpr int64_t kItersPerEpoch = 100;  // warmup = 500 iterations
  EXPECT_NEAR(schedule.LrAt(0, kItersPerEpoch), 0.1, kTolerance);
  EXPECT_NEAR(schedule.LrAt(1, kItersPerEpoch), 0.1 + 3.1 / 500, kTolerance);
  EXPECT_NEAR(schedule.LrAt(250, kItersPerEpoch), 1.65, kTolerance);
  EXPECT_NEAR(schedule.LrAt(499, kItersPerEpoch), 0.1 + 3.1 * 499 / 500, kTolerance);
  EXPECT_NEAR(schedule.LrAt(500, kItersPerEpoch), 3.2, kTolerance);
  EXPECT_NEAR(schedule.LrAt(1234, kItersPerEpoch), 3.2, kTolerance);
}

TEST(LrScheduleTest, StepDecayAtEachMilestone) {
  const LrSchedule schedule = MakeSchedule(Paper8k());
  constexpr int64_t kItersPerEpoch = 100;
  EXPECT_NEAR(schedule.LrAt(2999, kItersPerEpoch), 3.2, kTolerance);
  EXPECT_NEAR(schedule.LrAt(3000, kItersPerEpoch), 0.32, kTolerance);
  EXPECT_NEAR(schedule.LrAt(5999, kItersPerEpoch), 0.32, kTolerance);
  EXPECT_NEAR(schedule.LrAt(6000, kItersPerEpoch), 0.032, kTolerance);
  EXPECT_NEAR(schedule.LrAt(7999, kItersPerEpoch), 0.032, kTolerance);
  EXPECT_NEAR(schedule.LrAt(8000, kItersPerEpoch), 0.0032, kTolerance);
  EXPECT_NEAR(schedule.LrAt(8999, kItersPerEpoch), 0.0032, kTolerance);
  EXPECT_NEAR(schedule.LrAt(20000, kItersPerEpoch), 0.0032, kTolerance);  // past the end
}

TEST(LrScheduleTest, FractionalEpochsRoundToIterations) {
  LrScheduleConfig config = Paper8k();
  config.warmup_epochs = 0.5;
  config.milestones = {1.25};
  config.total_epochs = 2;
  const LrSchedule schedule = MakeSchedule(config);
  // 10 iterations per epoch: warmup = 5 iterations, the milestone at iteration 12.5 -> 13.
  EXPECT_NEAR(schedule.LrAt(4, 10), 0.1 + 3.1 * 4 / 5, kTolerance);
  EXPECT_NEAR(schedule.LrAt(5, 10), 3.2, kTolerance);
  EXPECT_NEAR(schedule.LrAt(12, 10), 3.2, kTolerance);
  EXPECT_NEAR(schedule.LrAt(13, 10), 0.32, kTolerance);
}

TEST(LrScheduleTest, CosineFromTargetToZeroAfterWarmup) {
  LrScheduleConfig config = Paper8k();
  config.decay = LrDecay::kCosine;
  const LrSchedule schedule = MakeSchedule(config);
  constexpr int64_t kItersPerEpoch = 10;  // warmup 50 iterations, cosine over 850
  EXPECT_NEAR(schedule.LrAt(49, kItersPerEpoch), 0.1 + 3.1 * 49 / 50, kTolerance);
  EXPECT_NEAR(schedule.LrAt(50, kItersPerEpoch), 3.2, kTolerance);
  EXPECT_NEAR(schedule.LrAt(50 + 425, kItersPerEpoch), 1.6, kTolerance);
  EXPECT_NEAR(schedule.LrAt(50 + 850 / 4, kItersPerEpoch),
              1.6 * (1 + std::cos(std::numbers::pi * 212 / 850)), kTolerance);
  EXPECT_NEAR(schedule.LrAt(899, kItersPerEpoch),
              1.6 * (1 + std::cos(std::numbers::pi * 849 / 850)), kTolerance);
  EXPECT_EQ(schedule.LrAt(900, kItersPerEpoch), 0.0);
  EXPECT_EQ(schedule.LrAt(5000, kItersPerEpoch), 0.0);
}

TEST(LrScheduleTest, CosineWithoutWarmupStartsAtTarget) {
  LrScheduleConfig config = Paper8k();
  config.decay = LrDecay::kCosine;
  config.warmup = LrWarmup::kNone;
  const LrSchedule schedule = MakeSchedule(config);
  EXPECT_NEAR(schedule.LrAt(0, 10), 3.2, kTolerance);
  EXPECT_NEAR(schedule.LrAt(450, 10), 1.6, kTolerance);
}

TEST(LrScheduleTest, SquareRootScaling) {
  LrScheduleConfig config;
  config.global_batch = 1024;
  config.scaling = LrScaling::kSqrt;
  const LrSchedule schedule = MakeSchedule(config);
  EXPECT_NEAR(schedule.target_lr(), 0.2, kTolerance);  // 0.1 x sqrt(4)
  EXPECT_NEAR(schedule.LrAt(250, 100), 0.15, kTolerance);
}

TEST(LrScheduleTest, NoScalingKeepsBaseLr) {
  LrScheduleConfig config = Paper8k();
  config.scaling = LrScaling::kNone;
  config.warmup = LrWarmup::kNone;
  EXPECT_NEAR(MakeSchedule(config).LrAt(0, 100), 0.1, kTolerance);
}

TEST(LrScheduleTest, ConstantWarmupHoldsThenJumps) {
  LrScheduleConfig config = Paper8k();
  config.warmup = LrWarmup::kConstant;
  const LrSchedule schedule = MakeSchedule(config);
  EXPECT_NEAR(schedule.LrAt(0, 100), 0.1, kTolerance);
  EXPECT_NEAR(schedule.LrAt(499, 100), 0.1, kTolerance);
  EXPECT_NEAR(schedule.LrAt(500, 100), 3.2, kTolerance);
}

TEST(LrScheduleTest, NoWarmupStartsAtTarget) {
  LrScheduleConfig config = Paper8k();
  config.warmup = LrWarmup::kNone;
  const LrSchedule schedule = MakeSchedule(config);
  EXPECT_NEAR(schedule.LrAt(0, 100), 3.2, kTolerance);
  EXPECT_NEAR(schedule.LrAt(3000, 100), 0.32, kTolerance);
}

TEST(LrScheduleTest, ConfigurableMilestonesAndFactor) {
  LrScheduleConfig config = Paper8k();
  config.warmup = LrWarmup::kNone;
  config.milestones = {10};
  config.decay_factor = 0.5;
  config.total_epochs = 20;
  const LrSchedule schedule = MakeSchedule(config);
  EXPECT_NEAR(schedule.LrAt(99, 10), 3.2, kTolerance);
  EXPECT_NEAR(schedule.LrAt(100, 10), 1.6, kTolerance);
}

TEST(LrScheduleTest, DescribeNamesEveryPiece) {
  EXPECT_EQ(MakeSchedule(Paper8k()).Describe(),
            "lr 0.1 x 8192/256 (linear) = 3.2; gradual warmup from 0.1 over 5 epochs; x0.1 at "
            "epochs 30, 60, 80; 90 epochs");
  LrScheduleConfig config = Paper8k();
  config.decay = LrDecay::kCosine;
  config.warmup = LrWarmup::kNone;
  config.scaling = LrScaling::kSqrt;
  EXPECT_EQ(MakeSchedule(config).Describe(),
            "lr 0.1 x 8192/256 (sqrt) = 0.565685; no warmup; cosine to 0; 90 epochs");
}

absl::Status CreateError(const LrScheduleConfig& config) {
  return LrSchedule::Create(config).status();
}

TEST(LrScheduleTest, BadConfigsAreRefusedWithTheReason) {
  LrScheduleConfig config;
  config.base_lr = -0.1;
  EXPECT_THAT(CreateError(config).message(), HasSubstr("base lr must be a finite number > 0"));

  config = {};
  config.global_batch = 0;
  EXPECT_THAT(CreateError(config).message(), HasSubstr("global batch (0) must be > 0"));

  config = {};
  config.warmup_epochs = -1;
  EXPECT_THAT(CreateError(config).message(), HasSubstr("warmup epochs must be"));

  config = {};
  config.warmup_start_lr = -0.5;
  EXPECT_THAT(CreateError(config).message(), HasSubstr("warmup start lr must be"));

  config = {};
  config.milestones = {30, 30, 80};
  EXPECT_THAT(CreateError(config).message(),
              HasSubstr("milestone 1 (epoch 30) is not after milestone 0 (epoch 30)"));

  config = {};
  config.milestones = {60, 30};
  EXPECT_THAT(CreateError(config).message(), HasSubstr("strictly increasing"));

  config = {};
  config.milestones = {3, 30};
  EXPECT_THAT(CreateError(config).message(),
              HasSubstr("milestone 0 (epoch 3) falls inside the warmup of 5 epochs"));

  config = {};
  config.milestones = {30, 95};
  EXPECT_THAT(CreateError(config).message(),
              HasSubstr("milestone 1 (epoch 95) is not before the end of training (90 epochs)"));

  config = {};
  config.warmup_epochs = 100;
  config.milestones = {};
  EXPECT_THAT(CreateError(config).message(),
              HasSubstr("warmup of 100 epochs is longer than training (90 epochs)"));

  config = {};
  config.decay_factor = 10;
  EXPECT_THAT(CreateError(config).message(), HasSubstr("decay factor must be in (0, 1]"));

  config = {};
  config.total_epochs = std::nan("");
  EXPECT_THAT(CreateError(config).message(), HasSubstr("total epochs"));
}

TEST(LrScheduleTest, CosineIgnoresMilestones) {
  LrScheduleConfig config;
  config.decay = LrDecay::kCosine;
  config.milestones = {60, 30};  // only step decay reads them
  EXPECT_TRUE(LrSchedule::Create(config).ok());
}

TEST(LrScheduleTest, ParsesFlagValues) {
  EXPECT_EQ(*ParseLrScaling("sqrt"), LrScaling::kSqrt);
  EXPECT_EQ(*ParseLrWarmup("constant"), LrWarmup::kConstant);
  EXPECT_EQ(*ParseLrDecay("cosine"), LrDecay::kCosine);
  EXPECT_THAT(ParseLrScaling("quadratic").status().message(),
              HasSubstr("lr scaling 'quadratic' is not one of: linear, sqrt, none"));
  EXPECT_FALSE(ParseLrWarmup("").ok());
  EXPECT_FALSE(ParseLrDecay("linear").ok());
}

}  // namespace
}  // namespace gradflow::runtime
