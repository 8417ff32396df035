// Link parameters measured on a real allreduce: a least-squares fit of the cost model's alpha
// and beta to timings at several sizes, and the small text file `runtime bench-allreduce` writes
// and `runtime project --link-file` reads:
//   # any comment
//   latency_us 35.2
//   link_gbps 12.3
//   cpu_us_per_mb 850     (optional) CPU microseconds one rank spends per MB (2^20 bytes) it sends
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
  // CPU time one rank's process (all its threads: the reduction, Gloo's I/O, the kernel's TCP
  // copies it makes) spent on that allreduce; < 0 when not measured.
  double cpu_seconds = -1;
};

// What a link file says.
struct MeasuredLink {
  LinkParams link;
  // CPU seconds one rank spends per byte it sends (CollectiveCost::sent_bytes); < 0: unknown.
  double cpu_seconds_per_sent_byte = -1;
};

// Fits seconds = steps * alpha + critical_bytes * beta for `algorithm` on `ranks` ranks (at
// least 2) over at least two distinct sizes. A negative alpha (timings noisier than the
// latency) is clamped to 0 and beta refitted; a non-positive beta is an error.
absl::StatusOr<LinkParams> FitLink(AllreduceAlgorithm algorithm, int64_t ranks,
                                   const std::vector<AllreduceSample>& samples);

// The CPU time per byte a rank sends: total CPU over total bytes sent across the samples, so the
// large sizes, where the per-message overhead no longer counts, weigh most. Every sample needs
// its cpu_seconds.
absl::StatusOr<double> FitCpuPerSentByte(AllreduceAlgorithm algorithm, int64_t ranks,
                                         const LinkParams& link,
                                         const std::vector<AllreduceSample>& samples);

std::string FormatLinkFile(const MeasuredLink& measured, std::string_view comment);
absl::StatusOr<MeasuredLink> ParseLinkFile(std::string_view text, std::string_view source);

}  // namespace gradflow::runtime::project
