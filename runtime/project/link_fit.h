// Link parameters measured on a real allreduce: a least-squares fit of the cost model's alpha
// and beta to timings at several sizes, and the small text file `runtime bench-allreduce` writes
// and `runtime project --link-file` reads:
//   # any comment
//   latency_us 35.2
//   link_gbps 12.3
//   cpu_us_per_mb 850     (optional) CPU microseconds one rank spends per MB (2^20 bytes) it sends
//   latency_loaded_us 2100  (optional, with busy_threads) latency per round while each rank's
//   busy_threads 1          process also ran this many threads of compute (--busy-threads)
//   cpu_us_per_mb_loaded 990  (optional, with busy_threads) cpu_us_per_mb beside that compute
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/project/cost_model.h"
#include "runtime/project/host_sharing.h"

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
  // Latency per round measured while every rank also ran `busy_threads` compute threads; < 0
  // (and busy_threads 0): not measured.
  double loaded_latency_seconds = -1;
  int64_t busy_threads = 0;
  // CPU seconds per byte sent beside the same busy threads; < 0: not measured.
  double loaded_cpu_seconds_per_sent_byte = -1;
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

// The latency per round of allreduces timed while the ranks' hosts compute on every core
// (`loaded` samples), with the bandwidth term fixed to what the projection charges for it there:
// the idle fit's bytes, slowed by the host's core sharing (`load`: the host's cores, the ranks on
// it, their compute threads and the CPU per byte sent, the loaded one where known, as the replay
// shares them). Refitting beta
// under load would count the communication's CPU twice, once in beta and once in the sharing
// term; what the sharing does not explain is per-round waiting: the peer's thread being scheduled.
// Least squares on relative errors (each size counts alike); a negative result is clamped to 0.
absl::StatusOr<double> FitLoadedLatency(AllreduceAlgorithm algorithm, int64_t ranks,
                                        const LinkParams& idle, const HostSharing& load,
                                        const std::vector<AllreduceSample>& loaded);

// What the projection charges one allreduce of `bytes` alone on a loaded host: the loaded
// latency per round plus the idle link's bandwidth time slowed by the host's core sharing.
double LoadedAllreduceSeconds(AllreduceAlgorithm algorithm, int64_t ranks, double bytes,
                              const LinkParams& idle, const HostSharing& load,
                              double loaded_latency_seconds);

std::string FormatLinkFile(const MeasuredLink& measured, std::string_view comment);
absl::StatusOr<MeasuredLink> ParseLinkFile(std::string_view text, std::string_view source);

}  // namespace gradflow::runtime::project
