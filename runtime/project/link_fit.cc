#include "runtime/project/link_fit.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace gradflow::runtime::project {
namespace {

struct Fit {
  double alpha = 0;
  double beta = 0;
};

// Least squares of y = a x1 + b x2 through the origin (no constant term: an empty message costs
// nothing beyond its rounds), on relative errors: every size counts alike, however long it takes.
absl::StatusOr<Fit> Solve(const std::vector<double>& x1, const std::vector<double>& x2,
                          const std::vector<double>& y) {
  double s11 = 0, s12 = 0, s22 = 0, s1y = 0, s2y = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const double a = x1[i] / y[i];
    const double b = x2[i] / y[i];
    s11 += a * a;
    s12 += a * b;
    s22 += b * b;
    s1y += a;
    s2y += b;
  }
  const double det = s11 * s22 - s12 * s12;
  Fit fit;
  if (std::fabs(det) > 1e-12 * s11 * s22) {
    fit.alpha = (s1y * s22 - s2y * s12) / det;
    fit.beta = (s2y * s11 - s1y * s12) / det;
  }
  if (fit.alpha <= 0 || !(std::fabs(det) > 1e-12 * s11 * s22)) {
    fit.alpha = 0;
    fit.beta = s22 > 0 ? s2y / s22 : 0;
  }
  if (!(fit.beta > 0) || !std::isfinite(fit.beta)) {
    return absl::InvalidArgumentError(
        "the timings do not grow with the message size: cannot fit a bandwidth (use larger sizes)");
  }
  return fit;
}

}  // namespace

absl::StatusOr<LinkParams> FitLink(AllreduceAlgorithm algorithm, int64_t ranks,
                                   const std::vector<AllreduceSample>& samples) {
  if (ranks < 2) return absl::InvalidArgumentError("fitting a link needs at least 2 ranks");
  int distinct = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    if (!(samples[i].bytes > 0) || !(samples[i].seconds > 0)) {
      return absl::InvalidArgumentError(absl::StrCat("sample ", i, " has no size or no time"));
    }
    bool seen = false;
    for (size_t j = 0; j < i; ++j) seen = seen || samples[j].bytes == samples[i].bytes;
    distinct += seen ? 0 : 1;
  }
  if (distinct < 2) return absl::InvalidArgumentError("fitting a link needs two or more sizes");
  // Gloo's halving-doubling path for p not a power of two depends on alpha against beta: fit,
  // then refit on the path the fitted link makes longest (twice is enough to settle).
  LinkParams link{.latency_seconds = 50e-6, .bytes_per_second = 1e9};
  for (int round = 0; round < 3; ++round) {
    std::vector<double> steps, bytes, seconds;
    for (const AllreduceSample& s : samples) {
      const CollectiveCost cost = Allreduce(algorithm, ranks, s.bytes, link);
      steps.push_back(cost.steps);
      bytes.push_back(cost.critical_bytes);
      seconds.push_back(s.seconds);
    }
    absl::StatusOr<Fit> fit = Solve(steps, bytes, seconds);
    if (!fit.ok()) return fit.status();
    link = {.latency_seconds = fit->alpha, .bytes_per_second = 1 / fit->beta};
  }
  return link;
}

absl::StatusOr<double> FitCpuPerSentByte(AllreduceAlgorithm algorithm, int64_t ranks,
                                         const LinkParams& link,
                                         const std::vector<AllreduceSample>& samples) {
  if (ranks < 2) return absl::InvalidArgumentError("CPU per byte needs at least 2 ranks");
  double cpu = 0;
  double sent = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    if (!(samples[i].cpu_seconds >= 0) || !std::isfinite(samples[i].cpu_seconds)) {
      return absl::InvalidArgumentError(absl::StrCat("sample ", i, " has no CPU time"));
    }
    cpu += samples[i].cpu_seconds;
    sent += Allreduce(algorithm, ranks, samples[i].bytes, link).sent_bytes;
  }
  if (!(sent > 0)) return absl::InvalidArgumentError("the samples send no bytes");
  return cpu / sent;
}

namespace {

// The bandwidth part of one allreduce alone on a loaded host, and its rounds.
struct LoadedCost {
  double steps = 0;
  double bandwidth_seconds = 0;
};

LoadedCost LoadedBandwidth(AllreduceAlgorithm algorithm, int64_t ranks, double bytes,
                           const LinkParams& idle, const HostSharing& load) {
  const CollectiveCost cost = Allreduce(algorithm, ranks, bytes, idle);
  LoadedCost out{.steps = cost.steps, .bandwidth_seconds = cost.BandwidthSeconds(idle)};
  if (!load.enabled() || !(out.bandwidth_seconds > 0) || !(cost.sent_bytes > 0)) return out;
  // As the replay shares them (replay.cc): the rank's part of the host's cores between its
  // compute threads and the transfer, which asks for its CPU per second at the link's speed.
  const double node_cores =
      load.host_cores / static_cast<double>(std::min(load.nodes_per_host, ranks));
  const double cpu_per_byte = load.loaded_cpu_seconds_per_sent_byte >= 0
                                  ? load.loaded_cpu_seconds_per_sent_byte
                                  : load.cpu_seconds_per_sent_byte;
  const double demand = cpu_per_byte * cost.sent_bytes / out.bandwidth_seconds;
  if (!(demand > 0)) return out;
  const CoreShares shares = ShareCores(node_cores, load.compute_threads, {demand});
  out.bandwidth_seconds /= shares.transfer_speed[0];
  return out;
}

}  // namespace

absl::StatusOr<double> FitLoadedLatency(AllreduceAlgorithm algorithm, int64_t ranks,
                                        const LinkParams& idle, const HostSharing& load,
                                        const std::vector<AllreduceSample>& loaded) {
  if (ranks < 2) return absl::InvalidArgumentError("fitting a latency needs at least 2 ranks");
  if (absl::Status s = CheckHostSharing(load); !s.ok()) return s;
  if (loaded.empty()) return absl::InvalidArgumentError("no loaded timings to fit");
  // y = steps * alpha + r for each sample, alpha alone unknown: on relative errors,
  // alpha = sum(steps (y - r) / y^2) / sum(steps^2 / y^2).
  double numerator = 0;
  double denominator = 0;
  for (size_t i = 0; i < loaded.size(); ++i) {
    const AllreduceSample& s = loaded[i];
    if (!(s.bytes > 0) || !(s.seconds > 0) || !std::isfinite(s.seconds)) {
      return absl::InvalidArgumentError(absl::StrCat("loaded sample ", i, " has no size or time"));
    }
    const LoadedCost cost = LoadedBandwidth(algorithm, ranks, s.bytes, idle, load);
    numerator += cost.steps * (s.seconds - cost.bandwidth_seconds) / (s.seconds * s.seconds);
    denominator += cost.steps * cost.steps / (s.seconds * s.seconds);
  }
  if (!(denominator > 0)) return absl::InvalidArgumentError("the loaded samples have no rounds");
  return std::max(0.0, numerator / denominator);
}

double LoadedAllreduceSeconds(AllreduceAlgorithm algorithm, int64_t ranks, double bytes,
                              const LinkParams& idle, const HostSharing& load,
                              double loaded_latency_seconds) {
  const LoadedCost cost = LoadedBandwidth(algorithm, ranks, bytes, idle, load);
  return cost.steps * loaded_latency_seconds + cost.bandwidth_seconds;
}

std::string FormatLinkFile(const MeasuredLink& measured, std::string_view comment) {
  std::string text =
      absl::StrFormat("# %s\nlatency_us %.6g\nlink_gbps %.6g\n", std::string(comment),
                      measured.link.latency_seconds * 1e6, measured.link.gbps());
  if (measured.cpu_seconds_per_sent_byte >= 0) {
    absl::StrAppend(&text, absl::StrFormat("cpu_us_per_mb %.6g\n",
                                           measured.cpu_seconds_per_sent_byte * 1e6 * (1 << 20)));
  }
  if (measured.loaded_latency_seconds >= 0 && measured.busy_threads > 0) {
    absl::StrAppend(&text,
                    absl::StrFormat("latency_loaded_us %.6g\nbusy_threads %d\n",
                                    measured.loaded_latency_seconds * 1e6, measured.busy_threads));
    if (measured.loaded_cpu_seconds_per_sent_byte >= 0) {
      absl::StrAppend(&text,
                      absl::StrFormat("cpu_us_per_mb_loaded %.6g\n",
                                      measured.loaded_cpu_seconds_per_sent_byte * 1e6 * (1 << 20)));
    }
  }
  return text;
}

absl::StatusOr<MeasuredLink> ParseLinkFile(std::string_view text, std::string_view source) {
  double latency_us = -1;
  double gbps = -1;
  double cpu_us_per_mb = -1;
  double loaded_latency_us = -1;
  double busy_threads = -1;
  double loaded_cpu_us_per_mb = -1;
  int64_t line_number = 0;
  for (absl::string_view line : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    ++line_number;
    std::vector<absl::string_view> words =
        absl::StrSplit(line.substr(0, line.find('#')), absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (words.empty()) continue;
    double value = 0;
    double* key = words[0] == "latency_us"             ? &latency_us
                  : words[0] == "link_gbps"            ? &gbps
                  : words[0] == "cpu_us_per_mb"        ? &cpu_us_per_mb
                  : words[0] == "latency_loaded_us"    ? &loaded_latency_us
                  : words[0] == "busy_threads"         ? &busy_threads
                  : words[0] == "cpu_us_per_mb_loaded" ? &loaded_cpu_us_per_mb
                                                       : nullptr;
    if (words.size() != 2 || key == nullptr || !absl::SimpleAtod(words[1], &value) ||
        !std::isfinite(value) || value < 0 ||
        (key == &busy_threads && (value < 1 || value > 4096 || value != std::floor(value)))) {
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(source), ": line ", line_number,
                       ": expected 'latency_us US', 'link_gbps GBPS', 'cpu_us_per_mb US', "
                       "'latency_loaded_us US' or 'cpu_us_per_mb_loaded US' with a number >= 0, or "
                       "'busy_threads N' (N in [1, 4096])"));
    }
    *key = value;
  }
  if ((loaded_latency_us >= 0) != (busy_threads >= 1) ||
      (loaded_cpu_us_per_mb >= 0 && busy_threads < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(source),
                     ": 'latency_loaded_us' (and 'cpu_us_per_mb_loaded') and 'busy_threads' go "
                     "together (the load they were measured under)"));
  }
  if (latency_us < 0 || !(gbps > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(source), ": needs both 'latency_us' and a positive 'link_gbps'"));
  }
  MeasuredLink measured{.link = LinkParams::FromGbpsAndMicros(gbps, latency_us)};
  if (cpu_us_per_mb >= 0) measured.cpu_seconds_per_sent_byte = cpu_us_per_mb * 1e-6 / (1 << 20);
  if (loaded_latency_us >= 0) {
    measured.loaded_latency_seconds = loaded_latency_us * 1e-6;
    measured.busy_threads = static_cast<int64_t>(busy_threads);
  }
  if (loaded_cpu_us_per_mb >= 0) {
    measured.loaded_cpu_seconds_per_sent_byte = loaded_cpu_us_per_mb * 1e-6 / (1 << 20);
  }
  return measured;
}

}  // namespace gradflow::runtime::project
