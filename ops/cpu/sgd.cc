#include "ops/cpu/sgd.h"

#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"

namespace gradflow::ops::cpu {
namespace {

// Below this many elements a thread team costs more than it saves.
constexpr int64_t kMinParallelElements = 1 << 15;

absl::Status CheckBuffers(std::span<float> params, std::span<const float> grads,
                          std::span<float> momentum, std::span<const SgdSegment> segments) {
  const auto size = static_cast<int64_t>(params.size());
  if (grads.size() != params.size() || momentum.size() != params.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("SGD: params, grads and momentum must have one length, got ", params.size(),
                     ", ", grads.size(), " and ", momentum.size(), " elements"));
  }
  return CheckSgdSegments(size, segments);
}

// Called inside a parallel region: the threads share the segment's elements (orphaned `omp for`,
// no barrier, so that small segments do not serialize the team).
template <bool kNesterov>
void UpdateSegment(float* __restrict w, const float* __restrict g, float* __restrict u,
                   int64_t count, float lr, float weight_decay, const SgdHyper& hyper) {
  const float scale = hyper.grad_scale;
  const float decay = hyper.momentum * hyper.momentum_correction;
  const float momentum = hyper.momentum;
#pragma omp for simd schedule(static) nowait
  for (int64_t i = 0; i < count; ++i) {
    const float step = lr * (scale * g[i] + weight_decay * w[i]);
    const float velocity = decay * u[i] + step;
    u[i] = velocity;
    if constexpr (kNesterov) {
      w[i] -= momentum * velocity + step;
    } else {
      w[i] -= velocity;
    }
  }
}

}  // namespace

absl::Status SgdUpdate(std::span<float> params, std::span<const float> grads,
                       std::span<float> momentum, std::span<const SgdSegment> segments,
                       const SgdHyper& hyper) {
  if (absl::Status s = CheckSgdHyper(hyper); !s.ok()) return s;
  if (absl::Status s = CheckBuffers(params, grads, momentum, segments); !s.ok()) return s;
  int64_t total = 0;
  for (const SgdSegment& segment : segments) total += segment.count;
  float* w = params.data();
  const float* g = grads.data();
  float* u = momentum.data();
#pragma omp parallel if (total >= kMinParallelElements)
  for (const SgdSegment& segment : segments) {
    const float weight_decay = segment.weight_decay ? hyper.weight_decay : 0.0f;
    const int64_t at = segment.offset;
    if (hyper.nesterov) {
      UpdateSegment<true>(w + at, g + at, u + at, segment.count, hyper.lr, weight_decay, hyper);
    } else {
      UpdateSegment<false>(w + at, g + at, u + at, segment.count, hyper.lr, weight_decay, hyper);
    }
  }
  return absl::OkStatus();
}

}  // namespace gradflow::ops::cpu
