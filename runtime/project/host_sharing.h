// How compute and communication share a host's cores when the host has none to spare for
// communication: a CPU-only host whose nodes compute on every core (the local validation, and any
// CPU cluster). There, Gloo's reduction and the kernel's TCP copies run on the cores compute is
// using, so whatever CPU a collective takes, compute loses. On GPU servers compute runs on the
// devices and the host's cores are free for the network stack: the projection leaves this off.
//
// The model is the scheduler's: Linux gives runnable threads equal shares of the cores (CFS), so
// the cores are divided max-min fairly among the host's runnable work. Each compute thread can use
// one core; each transfer in flight asks for the cores it uses at its unshared speed (the CPU time
// per byte that `runtime bench-allreduce` measures, times the bytes per second it moves). A
// compute step then advances at its thread's share of a core, and a transfer at its share over its
// demand. The nodes of a host are alike and in step, so one node's share of the host is
// cores / nodes-per-host. While the compute stream fills those cores, each message round of an
// allreduce costs the loaded latency instead of the idle one, and each byte the loaded CPU time
// (loaded_latency_seconds, loaded_cpu_seconds_per_sent_byte).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace gradflow::runtime::project {

struct HostSharing {
  // Cores of one host; 0 turns the model off (compute at its traced speed, transfers at the
  // link's, whatever else runs).
  double host_cores = 0;
  int64_t nodes_per_host = 1;   // nodes (processes) on one host, each computing and communicating
  int64_t compute_threads = 1;  // threads one node's compute runs on (`runtime --threads`)
  // CPU seconds one rank spends per byte it sends in an allreduce: TCP copies out and in, and
  // the reduction's adds (`cpu_us_per_mb` in a link file).
  double cpu_seconds_per_sent_byte = 0;
  // Latency per message round while the node computes on every core it has (`latency_loaded_us`
  // in a link file, measured by `runtime bench-allreduce --busy-threads`); < 0: unknown, the
  // network's idle latency throughout. A ring step waits for the peer's communication thread,
  // which on a host whose cores all compute must first be scheduled: a wake-up delay of the
  // order of the scheduler's time slice, where an idle host answers in the link's latency. Only
  // the latency changes: the bytes' CPU is already charged by the sharing above.
  double loaded_latency_seconds = -1;
  // CPU seconds per byte sent while the node computes on every core it has
  // (`cpu_us_per_mb_loaded`, measured beside the same busy threads); < 0: unknown, the idle
  // figure throughout. Beside compute the same bytes cost more CPU: each wake-up switches
  // context and finds the caches cold.
  double loaded_cpu_seconds_per_sent_byte = -1;

  bool enabled() const { return host_cores > 0; }
  // The node's share of the host's cores is all taken by its compute threads.
  bool ComputeFillsCores(int64_t nodes_on_host) const {
    return enabled() && static_cast<double>(compute_threads * nodes_on_host) >= host_cores;
  }
};

// Errors name the flag.
absl::Status CheckHostSharing(const HostSharing& host);

struct CoreShares {
  double compute_speed = 1;            // of the traced speed: a compute thread's share of a core
  std::vector<double> transfer_speed;  // per demand: its share over its demand (at most 1)
};

// Divides `cores` max-min fairly between `compute_threads` threads that can use one core each and
// transfers that would use `transfer_demand[i]` cores (> 0) at full speed. Everything runs at full
// speed when the demands fit.
CoreShares ShareCores(double cores, int64_t compute_threads,
                      const std::vector<double>& transfer_demand);

}  // namespace gradflow::runtime::project
