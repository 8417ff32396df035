// The optimizer against a scalar double-precision reference of the paper's update, over steps
// whose lr comes from a schedule with warmup and a drop (so the momentum correction matters).
#include "runtime/train/optimizer.h"

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/train/lr_schedule.h"

namespace gradflow::runtime {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kSize = 1000;
// A gap at [305, 320) (alignment padding) that must stay untouched; a bias-like segment without
// weight decay.
const std::vector<ops::SgdSegment> kSegments = {
    {.offset = 0, .count = 300, .weight_decay = true},
    {.offset = 300, .count = 5, .weight_decay = false},
    {.offset = 320, .count = 680, .weight_decay = true}};

std::vector<float> Uniform(int64_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<float> values(size);
  for (float& v : values) v = dist(rng);
  return values;
}

// lr per iteration: 0.1, 0.25 (warmup), 0.4 x4, then 0.04 (drop at epoch 1.5).
std::vector<double> ScheduleLrs() {
  LrScheduleConfig config;
  config.global_batch = 1024;
  config.warmup_epochs = 0.5;
  config.milestones = {1.5};
  config.total_epochs = 2;
  absl::StatusOr<LrSchedule> schedule = LrSchedule::Create(config);
  EXPECT_TRUE(schedule.ok()) << schedule.status();
  std::vector<double> lrs;
  for (int64_t i = 0; i < 8; ++i) lrs.push_back(schedule->LrAt(i, 4));
  return lrs;
}

struct Reference {
  std::vector<double> w, u;
  std::vector<int> decayed;  // -1 outside every segment
  double previous_lr = 0;

  explicit Reference(const std::vector<float>& params)
      : w(params.begin(), params.end()), u(params.size(), 0.0), decayed(params.size(), -1) {
    for (const ops::SgdSegment& s : kSegments) {
      for (int64_t i = s.offset; i < s.offset + s.count; ++i) decayed[i] = s.weight_decay;
    }
  }

  void Step(const std::vector<float>& grads, double lr, const OptimizerConfig& config) {
    const double correction =
        config.momentum_correction && previous_lr > 0 ? lr / previous_lr : 1.0;
    previous_lr = lr;
    for (size_t i = 0; i < w.size(); ++i) {
      if (decayed[i] < 0) continue;
      const double g = config.grad_scale * static_cast<double>(grads[i]) +
                       (decayed[i] ? config.weight_decay : 0.0f) * w[i];
      u[i] = config.momentum * correction * u[i] + lr * g;
      w[i] -= config.nesterov ? config.momentum * u[i] + lr * g : u[i];
    }
  }
};

double MaxDiff(const std::vector<double>& expected, std::span<const float> actual) {
  double diff = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    diff = std::max(diff, std::abs(expected[i] - static_cast<double>(actual[i])));
  }
  return diff;
}

void CheckAgainstReference(const OptimizerConfig& config) {
  absl::StatusOr<Optimizer> optimizer = Optimizer::Create(config, kSize, kSegments);
  ASSERT_TRUE(optimizer.ok()) << optimizer.status();
  std::vector<float> params = Uniform(kSize, 1);
  const std::vector<float> initial = params;
  Reference reference(params);
  const std::vector<double> lrs = ScheduleLrs();
  ASSERT_EQ(lrs.size(), 8u);
  for (size_t step = 0; step < lrs.size(); ++step) {
    SCOPED_TRACE(::testing::Message() << "step " << step << " lr " << lrs[step]);
    const std::vector<float> grads = Uniform(kSize, 100 + static_cast<uint32_t>(step));
    ASSERT_TRUE(optimizer->BeginStep(lrs[step]).ok());
    ASSERT_TRUE(optimizer->ApplyAll(params, grads).ok());
    reference.Step(grads, lrs[step], config);
    // Weights are O(1) and velocities O(lr): within a few float roundings of the reference.
    EXPECT_LT(MaxDiff(reference.w, params), 1e-5);
    EXPECT_LT(MaxDiff(reference.u, optimizer->momentum()), 1e-5);
  }
  for (int64_t i = 305; i < 320; ++i) EXPECT_EQ(params[i], initial[i]) << "padding at " << i;
}

TEST(OptimizerTest, ScheduleLrsChangeDuringTheTest) {
  const std::vector<double> lrs = ScheduleLrs();
  EXPECT_NEAR(lrs[0], 0.1, 1e-12);
  EXPECT_NEAR(lrs[1], 0.25, 1e-12);
  EXPECT_NEAR(lrs[2], 0.4, 1e-12);
  EXPECT_NEAR(lrs[6], 0.04, 1e-12);
}

TEST(OptimizerTest, MatchesReferenceWithMomentumCorrection) {
  CheckAgainstReference(OptimizerConfig{.weight_decay = 0.01f});
}

TEST(OptimizerTest, MatchesReferenceWithoutMomentumCorrection) {
  CheckAgainstReference(OptimizerConfig{.weight_decay = 0.01f, .momentum_correction = false});
}

TEST(OptimizerTest, MatchesReferenceNesterovWithGradScale) {
  CheckAgainstReference(
      OptimizerConfig{.nesterov = true, .weight_decay = 0.01f, .grad_scale = 0.25f});
}

TEST(OptimizerTest, CorrectionIsTheLrRatioOnlyWhenEnabled) {
  absl::StatusOr<Optimizer> on = Optimizer::Create({}, kSize, kSegments);
  absl::StatusOr<Optimizer> off =
      Optimizer::Create({.momentum_correction = false}, kSize, kSegments);
  ASSERT_TRUE(on.ok() && off.ok());
  for (Optimizer* optimizer : {&*on, &*off}) {
    ASSERT_TRUE(optimizer->BeginStep(0.1).ok());
    EXPECT_EQ(optimizer->step_hyper().momentum_correction, 1.0f);  // no history yet
    ASSERT_TRUE(optimizer->BeginStep(0.4).ok());
  }
  EXPECT_FLOAT_EQ(on->step_hyper().momentum_correction, 4.0f);
  EXPECT_EQ(off->step_hyper().momentum_correction, 1.0f);
  ASSERT_TRUE(on->BeginStep(0.4).ok());
  EXPECT_EQ(on->step_hyper().momentum_correction, 1.0f);
  EXPECT_EQ(on->step_hyper().weight_decay, 1e-4f);  // the paper's defaults
  EXPECT_EQ(on->step_hyper().momentum, 0.9f);
  EXPECT_FALSE(on->step_hyper().nesterov);
}

TEST(OptimizerTest, BucketsGiveTheSameBitsAsOneUpdate) {
  absl::StatusOr<Optimizer> whole = Optimizer::Create({}, kSize, kSegments);
  absl::StatusOr<Optimizer> bucketed = Optimizer::Create({}, kSize, kSegments);
  ASSERT_TRUE(whole.ok() && bucketed.ok());
  std::vector<float> params_whole = Uniform(kSize, 7);
  std::vector<float> params_bucketed = params_whole;
  // Bucket edges inside segment 0, inside the padding, and between segments.
  const std::vector<std::pair<int64_t, int64_t>> buckets = {
      {310, 1000}, {0, 150}, {150, 300}, {300, 310}};
  for (int step = 0; step < 3; ++step) {
    const std::vector<float> grads = Uniform(kSize, 20 + step);
    const double lr = 0.1 * (step + 1);
    ASSERT_TRUE(whole->BeginStep(lr).ok());
    ASSERT_TRUE(whole->ApplyAll(params_whole, grads).ok());
    ASSERT_TRUE(bucketed->BeginStep(lr).ok());
    for (auto [begin, end] : buckets) {
      ASSERT_TRUE(bucketed->Apply(params_bucketed, grads, begin, end).ok());
    }
    ASSERT_EQ(params_whole, params_bucketed);
    ASSERT_TRUE(std::equal(whole->momentum().begin(), whole->momentum().end(),
                           bucketed->momentum().begin()));
  }
}

TEST(OptimizerTest, RangeUpdatesOnlyItsElements) {
  absl::StatusOr<Optimizer> optimizer = Optimizer::Create({}, kSize, kSegments);
  ASSERT_TRUE(optimizer.ok());
  std::vector<float> params = Uniform(kSize, 3);
  const std::vector<float> before = params;
  const std::vector<float> grads = Uniform(kSize, 4);
  ASSERT_TRUE(optimizer->BeginStep(0.1).ok());
  ASSERT_TRUE(optimizer->Apply(params, grads, 100, 200).ok());
  for (int64_t i = 0; i < kSize; ++i) {
    const bool inside = i >= 100 && i < 200;
    EXPECT_EQ(params[i] != before[i], inside) << "element " << i;
    EXPECT_EQ(optimizer->momentum()[i] != 0.0f, inside) << "element " << i;
  }
}

TEST(OptimizerTest, RestoreSetsMomentumAndPreviousLr) {
  absl::StatusOr<Optimizer> optimizer = Optimizer::Create({}, kSize, kSegments);
  ASSERT_TRUE(optimizer.ok());
  const std::vector<float> momentum = Uniform(kSize, 9);
  ASSERT_TRUE(optimizer->Restore(momentum, 0.4).ok());
  EXPECT_TRUE(std::equal(momentum.begin(), momentum.end(), optimizer->momentum().begin()));
  EXPECT_EQ(optimizer->previous_lr(), 0.4);
  ASSERT_TRUE(optimizer->BeginStep(0.04).ok());
  EXPECT_FLOAT_EQ(optimizer->step_hyper().momentum_correction, 0.1f);
  EXPECT_THAT(optimizer->Restore(std::vector<float>(3), 0.1).message(),
              HasSubstr("restored momentum has 3 floats, the flat buffer 1000"));
  EXPECT_FALSE(optimizer->Restore(momentum, -1).ok());
}

TEST(OptimizerTest, BadInputIsRefused) {
  EXPECT_THAT(Optimizer::Create({.momentum = 1.0f}, kSize, kSegments).status().message(),
              HasSubstr("momentum must be in [0, 1)"));
  EXPECT_THAT(Optimizer::Create({.weight_decay = -1.0f}, kSize, kSegments).status().message(),
              HasSubstr("weight decay"));
  EXPECT_THAT(Optimizer::Create({.grad_scale = 0.0f}, kSize, kSegments).status().message(),
              HasSubstr("gradient scale"));
  EXPECT_THAT(Optimizer::Create({}, 100, kSegments).status().message(),
              HasSubstr("segment 0 (offset 0, count 300) is outside the buffer of 100"));
  EXPECT_THAT(Optimizer::Create({}, kSize, {{0, 10, true}, {5, 10, true}}).status().message(),
              HasSubstr("segment 1 starts at 5, before the end (10) of segment 0"));

  absl::StatusOr<Optimizer> optimizer = Optimizer::Create({}, kSize, kSegments);
  ASSERT_TRUE(optimizer.ok());
  std::vector<float> params(kSize), grads(kSize);
  EXPECT_EQ(optimizer->ApplyAll(params, grads).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(optimizer->BeginStep(std::nan("")).message(), HasSubstr("learning rate"));
  EXPECT_FALSE(optimizer->BeginStep(-0.1).ok());
  ASSERT_TRUE(optimizer->BeginStep(0.1).ok());
  EXPECT_THAT(optimizer->Apply(params, grads, 900, 1001).message(),
              HasSubstr("range [900, 1001) is not inside the flat buffer of 1000 floats"));
  EXPECT_FALSE(optimizer->Apply(params, grads, 10, 5).ok());
  std::vector<float> short_grads(kSize - 1);
  EXPECT_THAT(optimizer->ApplyAll(params, short_grads).message(),
              HasSubstr("grads (999 floats) must match the flat buffer of 1000 floats"));
}

}  // namespace
}  // namespace gradflow::runtime
