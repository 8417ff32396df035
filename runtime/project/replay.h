// Replays one node's iteration, in steady state, with a given number of servers: the compute
// stream runs the plan's steps in order; a bucket's allreduce is issued when its ready step ends
// and not before the previous bucket's (the runtime's host nodes are chained), runs on lane
// bucket % lanes once that lane's previous bucket is done, and its phases share each link with
// whatever else is in flight (bandwidth split evenly, latencies overlapping); the bucket's SGD
// update runs on the compute stream right before its first forward reader in the next iteration,
// after waiting for that allreduce (runtime/trainer/gradient_sync.h). Devices compute equally
// fast unless ReplayOptions::compute_jitter says how much they vary (then the slowest sets the
// pace). When ReplayOptions::host says the host's cores are shared by compute and communication
// (host_sharing.h), compute and the transfers in flight slow each other down, so the compute
// stream and the allreduces are simulated together.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/project/cost_model.h"
#include "runtime/project/host_sharing.h"
#include "runtime/project/planned_graph.h"
#include "runtime/project/step_profile.h"

namespace gradflow::runtime::project {

struct ReplayOptions {
  int64_t lanes = 2;           // `runtime --comm-lanes`
  double scale_compute = 1.0;  // a device this many times faster divides step and update times
  // Coefficient of variation of one device's compute per iteration: each iteration waits for the
  // slowest device of the job (stragglers.h). 0: every device always equally fast.
  double compute_jitter = 0;
  HostSharing host;  // off by default: communication has cores (and devices) of its own
};

struct Projection {
  int64_t servers = 1;
  int64_t devices = 1;           // in the whole job
  double iteration_seconds = 0;  // steady state, one iteration
  // The compute stream's own work plus host overhead: the time it was busy, stretched where it
  // shared the host's cores with communication (ReplayOptions::host).
  double compute_seconds = 0;
  double exposed_seconds = 0;   // iteration time the compute stream spent waiting for buckets
  double backward_seconds = 0;  // from the first backward step's start to the last's end
  double network_bytes = 0;     // sent through one server's network port per iteration
  // The most traffic backward releases within any tenth of the backward pass, per second.
  double peak_network_bytes_per_second = 0;
  double backward_network_bytes_per_second = 0;  // network_bytes over backward_seconds
  double mean_network_bytes_per_second = 0;      // network_bytes over iteration_seconds
  // CPU time one node's allreduces take per iteration at the idle CPU per byte (host sharing
  // only; 0 when off).
  double communication_cpu_seconds = 0;
};

absl::StatusOr<Projection> Replay(const PlannedGraph& plan, const StepProfile& profile,
                                  const Topology& topology, const ReplayOptions& options);

}  // namespace gradflow::runtime::project
