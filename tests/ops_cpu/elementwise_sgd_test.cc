// The fused CPU SGD update against a scalar double-precision reference, step by step.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ops/cpu/sgd.h"
#include "tests/ops_cpu/elementwise_test_util.h"

namespace gradflow::ops::cpu::testing {
namespace {

using ::testing::HasSubstr;

// The paper's update for one element, in double.
void ReferenceStep(double& w, double& u, double g, bool decay, const SgdHyper& h) {
  const double scaled = h.grad_scale * g + (decay ? h.weight_decay : 0.0) * w;
  u = h.momentum * h.momentum_correction * u + h.lr * scaled;
  w -= h.nesterov ? h.momentum * u + h.lr * scaled : u;
}

struct Buffers {
  std::vector<float> params, grads, momentum;
  explicit Buffers(int64_t size, uint32_t seed) {
    for (double v : Uniform(size, -1, 1, seed)) params.push_back(static_cast<float>(v));
    grads.assign(size, 0.0f);
    momentum.assign(size, 0.0f);
  }
};

// Runs `lrs.size()` steps, the learning rate changing between some of them with the momentum
// correction lr_new / lr_old, and compares every element with the reference after each step.
void CheckAgainstReference(int64_t size, const std::vector<SgdSegment>& segments, bool nesterov) {
  Buffers buffers(size, 61);
  std::vector<double> w(buffers.params.begin(), buffers.params.end());
  std::vector<double> u(size, 0.0);
  std::vector<bool> covered(size, false), decayed(size, false);
  for (const SgdSegment& s : segments) {
    for (int64_t i = s.offset; i < s.offset + s.count; ++i) {
      covered[i] = true;
      decayed[i] = s.weight_decay;
    }
  }
  const std::vector<float> lrs = {0.1f, 0.1f, 0.4f, 0.4f, 0.04f, 0.04f};
  for (size_t step = 0; step < lrs.size(); ++step) {
    SCOPED_TRACE(::testing::Message() << "step " << step);
    const SgdHyper hyper{.lr = lrs[step],
                         .momentum = 0.9f,
                         .nesterov = nesterov,
                         .weight_decay = 0.05f,
                         .momentum_correction = step == 0 ? 1.0f : lrs[step] / lrs[step - 1],
                         .grad_scale = 0.5f};
    const std::vector<double> grads = Uniform(size, -1, 1, 62 + static_cast<uint32_t>(step));
    for (int64_t i = 0; i < size; ++i) buffers.grads[i] = static_cast<float>(grads[i]);
    ASSERT_EQ(SgdUpdate(buffers.params, buffers.grads, buffers.momentum, segments, hyper),
              absl::OkStatus());
    double max_w_diff = 0, max_u_diff = 0;
    for (int64_t i = 0; i < size; ++i) {
      if (covered[i]) ReferenceStep(w[i], u[i], buffers.grads[i], decayed[i], hyper);
      max_w_diff = std::max(max_w_diff, std::abs(buffers.params[i] - w[i]));
      max_u_diff = std::max(max_u_diff, std::abs(buffers.momentum[i] - u[i]));
    }
    // Weights are O(1) and the velocities O(lr): both within a few float roundings.
    EXPECT_LT(max_w_diff, 1e-5);
    EXPECT_LT(max_u_diff, 1e-6);
  }
}

TEST(SgdTest, MomentumMatchesReferenceAcrossLrChanges) {
  // A gap between segments 1 and 2 (alignment padding) must stay untouched.
  CheckAgainstReference(1000, {{0, 300, true}, {300, 5, false}, {320, 680, true}}, false);
}

TEST(SgdTest, NesterovMatchesReferenceAcrossLrChanges) {
  CheckAgainstReference(1000, {{0, 300, true}, {300, 5, false}, {320, 680, true}}, true);
}

TEST(SgdTest, LargeBufferRunsInParallelAndMatches) {
  std::vector<SgdSegment> segments;
  for (int64_t offset = 0; offset + 4099 <= 200000; offset += 4099 + 13) {
    segments.push_back({offset, 4099, segments.size() % 3 != 0});
  }
  CheckAgainstReference(200000, segments, false);
  CheckAgainstReference(200000, segments, true);
}

TEST(SgdTest, WeightDecayOnlyWhereTheSegmentAsks) {
  std::vector<float> params = {1, 1, 1, 1};
  const std::vector<float> grads = {0, 0, 0, 0};
  std::vector<float> momentum = {0, 0, 0, 0};
  const std::vector<SgdSegment> segments = {{0, 2, true}, {2, 2, false}};
  const SgdHyper hyper{.lr = 0.1f, .momentum = 0.0f, .weight_decay = 0.5f};
  ASSERT_EQ(SgdUpdate(params, grads, momentum, segments, hyper), absl::OkStatus());
  EXPECT_FLOAT_EQ(params[0], 0.95f);  // 1 - 0.1 * 0.5 * 1
  EXPECT_FLOAT_EQ(params[1], 0.95f);
  EXPECT_EQ(params[2], 1.0f);
  EXPECT_EQ(params[3], 1.0f);
  EXPECT_FLOAT_EQ(momentum[0], 0.05f);
  EXPECT_EQ(momentum[2], 0.0f);
}

TEST(SgdTest, MomentumCorrectionRescalesTheHistory) {
  // Step 1 at lr 0.1 builds u = 0.1; at lr 0.2 with correction 2 and no gradient, the history
  // carries over as if built at 0.2: u = 0.9 * 2 * 0.1 = 0.18.
  std::vector<float> params = {0};
  std::vector<float> grads = {1};
  std::vector<float> momentum = {0};
  const std::vector<SgdSegment> segments = {{0, 1, false}};
  ASSERT_EQ(SgdUpdate(params, grads, momentum, segments, {.lr = 0.1f}), absl::OkStatus());
  EXPECT_FLOAT_EQ(momentum[0], 0.1f);
  EXPECT_FLOAT_EQ(params[0], -0.1f);
  grads[0] = 0;
  ASSERT_EQ(SgdUpdate(params, grads, momentum, segments, {.lr = 0.2f, .momentum_correction = 2.0f}),
            absl::OkStatus());
  EXPECT_FLOAT_EQ(momentum[0], 0.18f);
  EXPECT_FLOAT_EQ(params[0], -0.28f);
}

TEST(SgdTest, BadBuffersAndSegmentsAreErrorsThatChangeNothing) {
  std::vector<float> params = {1, 2, 3, 4};
  std::vector<float> grads = {1, 1, 1, 1};
  std::vector<float> momentum = {0, 0, 0, 0};
  const SgdHyper hyper{.lr = 0.1f};
  struct BadCase {
    std::vector<SgdSegment> segments;
    const char* message;
  };
  const BadCase cases[] = {
      {{{0, 5, true}}, "outside the buffer of 4"},
      {{{-1, 2, true}}, "outside the buffer"},
      {{{2, -1, true}}, "outside the buffer"},
      {{{3, std::numeric_limits<int64_t>::max(), true}}, "outside the buffer"},
      {{{0, 3, true}, {2, 2, false}}, "segment 1 starts at 2, before the end (3) of segment 0"},
      {{{2, 2, true}, {0, 2, false}}, "must be in increasing order"},
  };
  for (const BadCase& c : cases) {
    const absl::Status status = SgdUpdate(params, grads, momentum, c.segments, hyper);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(status.message(), HasSubstr(c.message));
  }
  const std::vector<SgdSegment> all = {{0, 4, true}};
  const absl::Status short_grads =
      SgdUpdate(params, std::span<const float>(grads).first(3), momentum, all, hyper);
  EXPECT_EQ(short_grads.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(short_grads.message(), HasSubstr("4, 3 and 4 elements"));
  const absl::Status nan_lr =
      SgdUpdate(params, grads, momentum, all, {.lr = std::numeric_limits<float>::quiet_NaN()});
  EXPECT_EQ(nan_lr.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(nan_lr.message(), HasSubstr("lr must be finite"));
  EXPECT_EQ(params, (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(momentum, (std::vector<float>{0, 0, 0, 0}));
}

}  // namespace
}  // namespace gradflow::ops::cpu::testing
