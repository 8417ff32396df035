// The SGD update every device implements (Goyal et al. 2017, sec. 2.1 and 2.4): what it computes,
// independent of where it runs. The optimizer is runtime policy, not a graph op: the runtime
// applies it to each gradient bucket's flat buffer once that bucket's allreduce has finished.
//
// For each element w of a segment, with g its gradient and u its momentum buffer:
//   g' = grad_scale * g + wd * w            (wd = weight_decay where the segment asks for it)
//   u  = momentum * momentum_correction * u + lr * g'
//   w  = w - u                              (plain momentum)
//   w  = w - (momentum * u + lr * g')       (Nesterov, with the updated u)
// The learning rate sits inside u (the paper's eq. (10)), so u carries the lr of the step that
// built it. When the lr changes from lr_old to lr_new between two steps, set
// momentum_correction = lr_new / lr_old for that one step (and 1 otherwise): it rescales the
// history u to the new lr, so the update behaves as if u had been built with lr_new. Without it,
// a large lr change (warmup at every iteration, or the 10x drops) makes the first steps after the
// change follow the old lr's scale, which the paper shows harms large-minibatch training.
#pragma once

#include <cstdint>
#include <span>

#include "absl/status/status.h"

namespace gradflow::ops {

struct SgdHyper {
  float lr = 0;
  float momentum = 0.9f;
  bool nesterov = false;
  float weight_decay = 1e-4f;
  // lr_new / lr_old on the step where the learning rate changes, else 1 (see above).
  float momentum_correction = 1.0f;
  // Multiplies every gradient first, e.g. 1/world_size when the allreduce sums per-device means.
  float grad_scale = 1.0f;
};

// One parameter tensor inside a flat buffer of parameters: elements [offset, offset + count).
// weight_decay is false for batch-norm gamma/beta and biases, which the paper leaves undecayed.
// A buffer's segments are listed in increasing offset order and never overlap; elements outside
// every segment (alignment padding) are left untouched.
struct SgdSegment {
  int64_t offset = 0;
  int64_t count = 0;
  bool weight_decay = true;
};

// What every device's update checks first: hyperparameters finite, and segments inside a buffer
// of `buffer_elements` in increasing order without overlap. InvalidArgument names the culprit.
absl::Status CheckSgdHyper(const SgdHyper& hyper);
absl::Status CheckSgdSegments(int64_t buffer_elements, std::span<const SgdSegment> segments);

}  // namespace gradflow::ops
