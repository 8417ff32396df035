// Link parameters measured on a real allreduce: a least-squares fit of the cost model's alpha
// and beta to timings at several sizes, and the small text file `runtime bench-allreduce` writes
// and `runtime project --link-file` reads:
//   # any comment
//   latency_us 35.2
//   link_gbps 12.3
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/project/cost_model.h"

namespace gradflow::runtime::project {

struct AllreduceSample {
  double bytes = 0;
  double seconds = 0;  // one allreduce, typically the median of many
};

// Fits seconds = steps * alpha + critical_bytes * beta for `algorithm` on `ranks` ranks (at
// least 2) over at least two distinct sizes. A negative alpha (timings noisier than the
// latency) is clamped to 0 and beta refitted; a non-positive beta is an error.
absl::StatusOr<LinkParams> FitLink(AllreduceAlgorithm algorithm, int64_t ranks,
                                   const std::vector<AllreduceSample>& samples);

std::string FormatLinkFile(const LinkParams& link, std::string_view comment);
absl::StatusOr<LinkParams> ParseLinkFile(std::string_view text, std::string_view source);

}  // namespace gradflow::runtime::project
