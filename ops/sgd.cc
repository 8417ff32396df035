#include "ops/sgd.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

namespace gradflow::ops {

absl::Status CheckSgdHyper(const SgdHyper& hyper) {
  for (auto [name, value] : {std::pair{"lr", hyper.lr},
                             {"momentum", hyper.momentum},
                             {"weight_decay", hyper.weight_decay},
                             {"momentum_correction", hyper.momentum_correction},
                             {"grad_scale", hyper.grad_scale}}) {
    if (!std::isfinite(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("SGD: ", name, " must be finite, got ", value));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckSgdSegments(int64_t buffer_elements, std::span<const SgdSegment> segments) {
  if (buffer_elements < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("SGD: the buffer length must be >= 0, got ", buffer_elements));
  }
  int64_t previous_end = 0;
  for (size_t i = 0; i < segments.size(); ++i) {
    const SgdSegment& segment = segments[i];
    if (segment.offset < 0 || segment.count < 0 || segment.offset > buffer_elements ||
        segment.count > buffer_elements - segment.offset) {
      return absl::InvalidArgumentError(
          absl::StrCat("SGD: segment ", i, " (offset ", segment.offset, ", count ", segment.count,
                       ") is outside the buffer of ", buffer_elements, " elements"));
    }
    if (segment.offset < previous_end) {
      return absl::InvalidArgumentError(absl::StrCat(
          "SGD: segment ", i, " starts at ", segment.offset, ", before the end (", previous_end,
          ") of segment ", i - 1, "; segments must be in increasing order and not overlap"));
    }
    previous_end = segment.offset + segment.count;
  }
  return absl::OkStatus();
}

}  // namespace gradflow::ops
