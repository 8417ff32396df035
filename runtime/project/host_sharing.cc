#include "runtime/project/host_sharing.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace gradflow::runtime::project {

absl::Status CheckHostSharing(const HostSharing& host) {
  if (!(host.host_cores >= 0) || !std::isfinite(host.host_cores)) {
    return absl::InvalidArgumentError("--host-cores must be a number >= 0 (0: off)");
  }
  if (!host.enabled()) return absl::OkStatus();
  if (host.nodes_per_host < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--nodes-per-host must be at least 1, got ", host.nodes_per_host));
  }
  if (host.compute_threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--compute-threads must be at least 1, got ", host.compute_threads));
  }
  if (!(host.cpu_seconds_per_sent_byte >= 0) || !std::isfinite(host.cpu_seconds_per_sent_byte)) {
    return absl::InvalidArgumentError(
        "the communication's CPU time per byte (cpu_us_per_mb) must be a number >= 0");
  }
  if (!std::isfinite(host.loaded_cpu_seconds_per_sent_byte)) {
    return absl::InvalidArgumentError(
        "--cpu-us-per-mb-loaded (cpu_us_per_mb_loaded) must be a number >= 0, or unset");
  }
  if (!std::isfinite(host.loaded_latency_seconds)) {
    return absl::InvalidArgumentError(
        "--latency-loaded-us (latency_loaded_us) must be a number >= 0, or unset");
  }
  return absl::OkStatus();
}

CoreShares ShareCores(double cores, int64_t compute_threads,
                      const std::vector<double>& transfer_demand) {
  CoreShares shares;
  shares.transfer_speed.assign(transfer_demand.size(), 1.0);
  // Demands in increasing order; compute threads are demands of one core each.
  std::vector<double> demands = transfer_demand;
  demands.insert(demands.end(), static_cast<size_t>(std::max<int64_t>(0, compute_threads)), 1.0);
  std::sort(demands.begin(), demands.end());
  double total = 0;
  for (double d : demands) total += d;
  if (total <= cores) return shares;
  // Water-filling: the smallest demands are met in full while they are below an equal share of
  // what is left; everyone else gets that equal share (the level).
  double left = cores;
  double level = 0;
  for (size_t i = 0; i < demands.size(); ++i) {
    const double equal = left / static_cast<double>(demands.size() - i);
    if (demands[i] > equal) {
      level = equal;
      break;
    }
    left -= demands[i];
  }
  shares.compute_speed = std::min(1.0, level);
  for (size_t i = 0; i < transfer_demand.size(); ++i) {
    if (transfer_demand[i] > level) shares.transfer_speed[i] = level / transfer_demand[i];
  }
  return shares;
}

}  // namespace gradflow::runtime::project
