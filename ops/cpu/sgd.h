// The SGD update (ops/sgd.h) on host memory, fused into one pass over a flat parameter buffer.
#pragma once

#include <span>

#include "absl/status/status.h"
#include "ops/sgd.h"

namespace gradflow::ops::cpu {

// Updates params and momentum in place from grads, segment by segment, as ops/sgd.h describes.
// The three spans have one length; segments are in increasing offset order, inside the buffer
// and non-overlapping. Bad spans, segments or non-finite hyperparameters give InvalidArgument and
// leave every buffer untouched. Parallel over OpenMP threads; does not allocate.
absl::Status SgdUpdate(std::span<float> params, std::span<const float> grads,
                       std::span<float> momentum, std::span<const SgdSegment> segments,
                       const SgdHyper& hyper);

}  // namespace gradflow::ops::cpu
