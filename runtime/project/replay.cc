#include "runtime/project/replay.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "runtime/project/stragglers.h"

namespace gradflow::runtime::project {
namespace {

constexpr double kNever = std::numeric_limits<double>::infinity();
constexpr double kPeakWindowOfBackward = 0.1;
// Each iteration depends on the previous one only through the allreduces it waits for, so the
// third iteration is already in steady state; a few more make that visible to tests.
constexpr int kIterations = 5;

// What the compute stream does, in order, over all the simulated iterations.
struct Item {
  enum class Kind : int8_t { kWork, kWait, kReady, kBackwardStart, kIterationEnd };
  Kind kind = Kind::kWork;
  int iteration = 0;
  double seconds = 0;  // kWork: at the traced speed
  size_t bucket = 0;   // kWait, kReady: iteration * buckets + bucket
};

// One bucket's allreduce in one iteration.
struct BucketRun {
  double ready = kNever;   // its ready step ended
  double issued = kNever;  // its host node ran: the allreduce is queued on its lane
  double done = kNever;    // every phase finished
  int phase = -1;          // the current phase, -1 before starting
  // Of the current phase's latency, the fraction still to wait: its rounds cost the loaded
  // latency while the compute stream fills the cores and the idle one otherwise, so the wait
  // runs down at whichever rate applies at each moment.
  double latency_left = 0;
  double remaining = 0;  // seconds of full-link transfer left in the current phase
  bool moving = false;
};

// A fluid simulation of the compute stream and the allreduces together. Each phase of an
// allreduce first waits its latency, then moves its bytes on its link, which the phases moving
// on it share in equal parts. With host sharing, the compute stream's threads and the network
// transfers also share the node's cores (host_sharing.h): both then advance at their share, and
// while compute fills the node's cores a network round costs the loaded latency.
class Simulation {
 public:
  Simulation(std::vector<Item> program, std::vector<std::vector<Phase>> phases, int64_t lanes,
             const HostSharing& host, double node_cores, bool compute_fills_cores)
      : program_(std::move(program)),
        phases_(std::move(phases)),
        num_buckets_(phases_.size()),
        lanes_(static_cast<size_t>(lanes)),
        host_(host),
        node_cores_(node_cores),
        loaded_latency_applies_(compute_fills_cores && host.loaded_latency_seconds >= 0),
        loaded_cpu_applies_(compute_fills_cores && host.loaded_cpu_seconds_per_sent_byte >= 0),
        runs_(num_buckets_ * kIterations),
        lane_queue_(lanes_),
        lane_position_(lanes_, 0),
        lane_free_(lanes_, 0) {
    // A lane runs its buckets in issue order: iteration by iteration, bucket by bucket.
    for (size_t g = 0; g < runs_.size(); ++g) lane_queue_[(g % num_buckets_) % lanes_].push_back(g);
  }

  absl::Status Run() {
    double now = 0;
    while (true) {
      Settle(now);
      if (pc_ == program_.size()) return absl::OkStatus();
      const Rates rates = CurrentRates();
      double next = kNever;
      const bool computing = program_[pc_].kind == Item::Kind::kWork;
      if (computing) next = now + work_left_ / rates.compute_speed;
      for (size_t g = first_live_; g < live_end_; ++g) {
        const BucketRun& r = runs_[g];
        if (r.phase < 0 || r.done != kNever) continue;
        next = std::min(next, r.moving ? now + r.remaining / rates.transfer[g - first_live_]
                                       : now + r.latency_left * LatencySeconds(g, computing));
      }
      for (size_t l = 0; l < lanes_; ++l) {
        if (lane_position_[l] == lane_queue_[l].size()) continue;
        const BucketRun& r = runs_[lane_queue_[l][lane_position_[l]]];
        if (r.phase < 0 && r.issued != kNever) {
          next = std::min(next, std::max(r.issued, lane_free_[l]));
        }
      }
      // Every lane's queue drains, so the compute stream never waits forever; never hang on it.
      if (next == kNever) return absl::InternalError("the replay stalled: no event is pending");
      next = std::max(next, now);
      const double dt = next - now;
      if (computing) work_left_ -= dt * rates.compute_speed;
      for (size_t g = first_live_; g < live_end_; ++g) {
        BucketRun& r = runs_[g];
        if (r.moving) r.remaining -= dt * rates.transfer[g - first_live_];
        if (r.phase < 0 || r.done != kNever || r.moving) continue;
        const double latency = LatencySeconds(g, computing);
        r.latency_left = latency > 0 ? std::max(0.0, r.latency_left - dt / latency) : 0;
      }
      now = next;
    }
  }

  double iteration_end(int k) const { return iteration_end_[k]; }
  double waited(int k) const { return waited_[k]; }
  double backward_start(int k) const { return backward_start_[k]; }
  double ready(int k, size_t b) const { return runs_[k * num_buckets_ + b].ready; }

 private:
  // How fast things advance now: the compute stream in traced seconds per second, each live
  // bucket's transfer in full-link seconds per second.
  struct Rates {
    double compute_speed = 1;
    std::vector<double> transfer;  // per live bucket, from first_live_
  };

  static bool Finished(double remaining, double now) {
    constexpr double kEpsilon = 1e-15;
    return remaining <= kEpsilon * (1 + now);
  }

  Rates CurrentRates() const {
    Rates rates;
    std::array<int, kNumResources> sharing{};
    for (size_t g = first_live_; g < live_end_; ++g) {
      if (runs_[g].moving) ++sharing[static_cast<int>(CurrentPhase(g).resource)];
    }
    rates.transfer.assign(live_end_ - first_live_, 0);
    const double cpu_per_byte = Computing() && loaded_cpu_applies_
                                    ? host_.loaded_cpu_seconds_per_sent_byte
                                    : host_.cpu_seconds_per_sent_byte;
    std::vector<double> demand;
    std::vector<size_t> demand_of;  // which live bucket each demand is
    for (size_t g = first_live_; g < live_end_; ++g) {
      if (!runs_[g].moving) continue;
      const Phase& phase = CurrentPhase(g);
      const double share = 1.0 / sharing[static_cast<int>(phase.resource)];
      rates.transfer[g - first_live_] = share;
      // Only the network's transfers run on the host's cores (a server's devices reduce their
      // own buckets); at its share of the link, a transfer sends sent_bytes / bandwidth_seconds
      // x share bytes per second.
      if (host_.enabled() && phase.resource == Resource::kNetwork && phase.bandwidth_seconds > 0 &&
          phase.sent_bytes > 0 && cpu_per_byte > 0) {
        demand.push_back(cpu_per_byte * phase.sent_bytes / phase.bandwidth_seconds * share);
        demand_of.push_back(g - first_live_);
      }
    }
    if (!host_.enabled()) return rates;
    const bool computing = Computing();
    const CoreShares shares =
        ShareCores(node_cores_, computing ? host_.compute_threads : 0, demand);
    rates.compute_speed = shares.compute_speed;
    for (size_t i = 0; i < demand.size(); ++i) {
      rates.transfer[demand_of[i]] *= shares.transfer_speed[i];
    }
    return rates;
  }

  const Phase& CurrentPhase(size_t g) const {
    return phases_[g % num_buckets_][static_cast<size_t>(runs_[g].phase)];
  }

  bool Computing() const {
    return pc_ < program_.size() && program_[pc_].kind == Item::Kind::kWork;
  }

  // The whole latency of bucket g's current phase at the rate that applies now.
  double LatencySeconds(size_t g, bool computing) const {
    const Phase& phase = CurrentPhase(g);
    if (computing && loaded_latency_applies_ && phase.resource == Resource::kNetwork) {
      return phase.steps * host_.loaded_latency_seconds;
    }
    return phase.latency_seconds;
  }

  void BeginPhase(size_t g, int p, double at) {
    BucketRun& r = runs_[g];
    r.phase = p;
    r.moving = false;
    const std::vector<Phase>& phases = phases_[g % num_buckets_];
    if (p == static_cast<int>(phases.size())) {
      r.done = at;
      const size_t lane = (g % num_buckets_) % lanes_;
      lane_free_[lane] = at;
      ++lane_position_[lane];
      while (first_live_ < live_end_ && runs_[first_live_].done != kNever) ++first_live_;
      return;
    }
    r.latency_left = 1;
    r.remaining = phases[static_cast<size_t>(p)].bandwidth_seconds;
  }

  // Everything that happens at `now`, until nothing more does: transfers ending, buckets
  // starting on their lanes, latencies running out, and the compute stream's instantaneous
  // items (waits that are over, buckets made ready).
  void Settle(double now) {
    bool changed = true;
    while (changed) {
      changed = false;
      for (size_t g = first_live_; g < live_end_; ++g) {
        if (runs_[g].moving && Finished(runs_[g].remaining, now)) {
          BeginPhase(g, runs_[g].phase + 1, now);
          changed = true;
        }
      }
      for (size_t l = 0; l < lanes_; ++l) {
        if (lane_position_[l] == lane_queue_[l].size()) continue;
        const size_t g = lane_queue_[l][lane_position_[l]];
        if (runs_[g].phase < 0 && runs_[g].issued <= now && lane_free_[l] <= now) {
          BeginPhase(g, 0, now);
          changed = true;
        }
      }
      for (size_t g = first_live_; g < live_end_; ++g) {
        BucketRun& r = runs_[g];
        if (r.phase >= 0 && r.done == kNever && !r.moving &&
            Finished(r.latency_left * LatencySeconds(g, Computing()), now)) {
          r.moving = true;
          if (r.remaining <= 0) BeginPhase(g, r.phase + 1, now);
          changed = true;
        }
      }
      changed = AdvanceProgram(now) || changed;
    }
  }

  // Runs the compute stream's items that take no time; stops at work or an unfinished wait.
  bool AdvanceProgram(double now) {
    bool changed = false;
    while (pc_ < program_.size()) {
      const Item& item = program_[pc_];
      switch (item.kind) {
        case Item::Kind::kWork:
          if (!working_) {
            work_left_ = item.seconds;
            working_ = true;
          }
          if (!Finished(work_left_, now)) return changed;
          working_ = false;
          break;
        case Item::Kind::kWait:
          if (blocked_since_ < 0) blocked_since_ = now;
          if (runs_[item.bucket].done > now) return changed;
          waited_[item.iteration] += now - blocked_since_;
          blocked_since_ = -1;
          break;
        case Item::Kind::kReady:
          runs_[item.bucket].ready = now;
          live_end_ = std::max(live_end_, (item.bucket / num_buckets_ + 1) * num_buckets_);
          ChainIssues(item.bucket / num_buckets_);
          break;
        case Item::Kind::kBackwardStart:
          backward_start_[item.iteration] = now;
          break;
        case Item::Kind::kIterationEnd:
          iteration_end_[item.iteration] = now;
          break;
      }
      ++pc_;
      changed = true;
    }
    return changed;
  }

  // The host nodes issuing the allreduces are chained in bucket order: a bucket is issued when
  // it is ready and the previous one was issued.
  void ChainIssues(size_t iteration) {
    const size_t first = iteration * num_buckets_;
    for (size_t g = first; g < first + num_buckets_; ++g) {
      BucketRun& r = runs_[g];
      if (r.ready == kNever) return;
      r.issued = g == first ? r.ready : std::max(r.ready, runs_[g - 1].issued);
    }
  }

  const std::vector<Item> program_;
  const std::vector<std::vector<Phase>> phases_;
  const size_t num_buckets_;
  const size_t lanes_;
  const HostSharing host_;
  const double node_cores_;
  const bool loaded_latency_applies_;  // a loaded latency is known and compute fills the cores
  const bool loaded_cpu_applies_;      // the same for the CPU per byte
  std::vector<BucketRun> runs_;        // per iteration and bucket
  std::vector<std::vector<size_t>> lane_queue_;
  std::vector<size_t> lane_position_;
  std::vector<double> lane_free_;  // when each lane's last bucket finished
  size_t first_live_ = 0;          // buckets before it are done
  size_t live_end_ = 0;            // buckets from it on belong to iterations not yet ready
  size_t pc_ = 0;                  // the compute stream's current item
  bool working_ = false;           // the current work item has begun
  double work_left_ = 0;           // of the current work item, at the traced speed
  double blocked_since_ = -1;      // when the current wait began; -1: not waiting
  std::array<double, kIterations> iteration_end_{};
  std::array<double, kIterations> waited_{};
  std::array<double, kIterations> backward_start_{};
};

// The network bandwidth backward asks for at its busiest: the most traffic released (buckets
// made ready) within any window of `window` seconds, over the window. A bucket's traffic counts
// in full at its ready time, so windows much shorter than a bucket's production would only
// measure the bucket size; the caller passes a tenth of the backward pass.
double PeakDemand(const std::vector<double>& ready, const std::vector<double>& sent,
                  double window) {
  if (!(window > 0)) return 0;
  double peak = 0;
  for (size_t i = 0; i < ready.size(); ++i) {
    double bytes = 0;
    for (size_t j = 0; j < ready.size(); ++j) {
      if (ready[j] >= ready[i] && ready[j] < ready[i] + window) bytes += sent[j];
    }
    peak = std::max(peak, bytes / window);
  }
  return peak;
}

}  // namespace

absl::StatusOr<Projection> Replay(const PlannedGraph& plan, const StepProfile& profile,
                                  const Topology& topology, const ReplayOptions& options) {
  if (absl::Status s = CheckTopology(topology); !s.ok()) return s;
  if (absl::Status s = CheckHostSharing(options.host); !s.ok()) return s;
  if (options.lanes < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--lanes must be at least 1, got ", options.lanes));
  }
  if (!(options.scale_compute > 0) || !std::isfinite(options.scale_compute)) {
    return absl::InvalidArgumentError("--scale-compute must be a positive number");
  }
  if (!(options.compute_jitter >= 0) || options.compute_jitter > 10) {
    return absl::InvalidArgumentError("--compute-jitter must be in [0, 10]");
  }
  const size_t num_steps = plan.steps.size();
  if (profile.step_seconds.size() != num_steps) {
    return absl::InvalidArgumentError(absl::StrCat("the step times cover ",
                                                   profile.step_seconds.size(),
                                                   " steps but the plan has ", num_steps));
  }
  const size_t num_buckets = plan.buckets.size();
  // The device that sets the pace: the slowest of the job's devices, on average.
  const double device_scale =
      StragglerFactor(options.compute_jitter, topology.servers * topology.devices_per_server) /
      options.scale_compute;
  std::vector<double> step_seconds(num_steps);
  for (size_t s = 0; s < num_steps; ++s) step_seconds[s] = profile.step_seconds[s] * device_scale;
  std::vector<double> update_seconds(num_buckets);
  std::vector<std::vector<Phase>> phases(num_buckets);
  std::vector<double> sent(num_buckets, 0);
  // Updates placed before each step, and buckets made ready by each step, in bucket order.
  std::vector<std::vector<size_t>> updates_before(num_steps + 1);
  std::vector<std::vector<size_t>> ready_after(num_steps);
  Projection out;
  out.servers = topology.servers;
  out.devices = topology.servers * topology.devices_per_server;
  for (size_t b = 0; b < num_buckets; ++b) {
    const PlannedBucket& bucket = plan.buckets[b];
    if (bucket.ready_step < 0 || static_cast<size_t>(bucket.ready_step) >= num_steps ||
        bucket.first_reader_step < 0 ||
        static_cast<size_t>(bucket.first_reader_step) >= num_steps) {
      return absl::InternalError(absl::StrCat("bucket ", b, " refers to a step outside the plan"));
    }
    update_seconds[b] = bucket.bytes * profile.update_seconds_per_byte * device_scale;
    phases[b] = BucketPhases(topology, bucket.bytes);
    for (const Phase& p : phases[b]) sent[b] += p.sent_bytes;
    out.network_bytes += sent[b];
    updates_before[bucket.first_reader_step].push_back(b);
    ready_after[bucket.ready_step].push_back(b);
  }

  std::vector<Item> program;
  for (int k = 0; k < kIterations; ++k) {
    program.push_back(
        {.kind = Item::Kind::kWork, .iteration = k, .seconds = profile.overhead_seconds});
    for (size_t s = 0; s < num_steps; ++s) {
      for (size_t b : updates_before[s]) {
        // The first iteration has no previous allreduce to wait for.
        if (k > 0) {
          program.push_back(
              {.kind = Item::Kind::kWait, .iteration = k, .bucket = (k - 1) * num_buckets + b});
        }
        program.push_back(
            {.kind = Item::Kind::kWork, .iteration = k, .seconds = update_seconds[b]});
      }
      if (static_cast<int32_t>(s) == plan.first_backward_step) {
        program.push_back({.kind = Item::Kind::kBackwardStart, .iteration = k});
      }
      program.push_back({.kind = Item::Kind::kWork, .iteration = k, .seconds = step_seconds[s]});
      for (size_t b : ready_after[s]) {
        program.push_back(
            {.kind = Item::Kind::kReady, .iteration = k, .bucket = k * num_buckets + b});
      }
    }
    program.push_back({.kind = Item::Kind::kIterationEnd, .iteration = k});
  }
  // The nodes of a host are alike: each gets an equal part of its cores. A job smaller than a
  // host fills only part of it.
  const int64_t nodes_on_host = std::min(options.host.nodes_per_host, topology.servers);
  const double node_cores = options.host.host_cores / static_cast<double>(nodes_on_host);
  Simulation sim(std::move(program), phases, options.lanes, options.host, node_cores,
                 options.host.ComputeFillsCores(nodes_on_host));
  if (absl::Status s = sim.Run(); !s.ok()) return s;

  const int last = kIterations - 1;
  out.iteration_seconds = sim.iteration_end(last) - sim.iteration_end(last - 1);
  out.exposed_seconds = sim.waited(last);
  out.compute_seconds = out.iteration_seconds - out.exposed_seconds;
  out.backward_seconds = sim.iteration_end(last) - sim.backward_start(last);
  std::vector<double> ready(num_buckets);
  for (size_t b = 0; b < num_buckets; ++b) ready[b] = sim.ready(last, b);
  out.peak_network_bytes_per_second =
      PeakDemand(ready, sent, out.backward_seconds * kPeakWindowOfBackward);
  if (out.backward_seconds > 0) {
    out.backward_network_bytes_per_second = out.network_bytes / out.backward_seconds;
  }
  if (out.iteration_seconds > 0) {
    out.mean_network_bytes_per_second = out.network_bytes / out.iteration_seconds;
  }
  if (options.host.enabled()) {
    out.communication_cpu_seconds = options.host.cpu_seconds_per_sent_byte * out.network_bytes;
  }
  return out;
}

}  // namespace gradflow::runtime::project
