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

struct BucketTimes {
  double issued = 0;  // its host node ran: the allreduce is queued on its lane
  double done = 0;    // every phase finished
};

// The allreduces of one iteration, as a fluid model: each phase first waits its latency, then
// moves its bytes on its link, which active phases share in equal parts.
class CommunicationSim {
 public:
  CommunicationSim(std::vector<std::vector<Phase>> phases, int64_t lanes)
      : phases_(std::move(phases)), lanes_(lanes) {}

  // `issued[b]` per bucket; `lane_free` per lane: when its last operation (from the previous
  // iteration) finished. Returns each bucket's completion time and updates lane_free.
  std::vector<double> Run(const std::vector<double>& issued, std::vector<double>& lane_free) {
    const size_t n = phases_.size();
    std::vector<double> done(n, kNever);
    std::vector<int> phase(n, -1);             // current phase, -1 before starting
    std::vector<double> active_at(n, kNever);  // when the current phase's transfer begins
    std::vector<double> remaining(n, 0);       // seconds of full-link transfer left
    std::vector<bool> moving(n, false);
    std::vector<size_t> next_on_lane(lanes_);  // the bucket each lane runs next
    for (int64_t l = 0; l < lanes_; ++l) next_on_lane[l] = static_cast<size_t>(l);
    size_t finished = 0;
    double now = 0;
    auto begin_phase = [&](size_t b, int p, double at) {
      phase[b] = p;
      if (p == static_cast<int>(phases_[b].size())) {
        done[b] = at;
        moving[b] = false;
        ++finished;
        const size_t lane = b % static_cast<size_t>(lanes_);
        lane_free[lane] = at;
        next_on_lane[lane] = b + static_cast<size_t>(lanes_);
        return;
      }
      active_at[b] = at + phases_[b][p].latency_seconds;
      remaining[b] = phases_[b][p].bandwidth_seconds;
      moving[b] = false;
    };
    while (finished < n) {
      // The next event: a bucket starting on its lane, a phase's transfer beginning, or one
      // ending at the current sharing.
      std::array<int, kNumResources> sharing{};
      for (size_t b = 0; b < n; ++b) {
        if (moving[b]) ++sharing[static_cast<int>(phases_[b][phase[b]].resource)];
      }
      double next = kNever;
      for (int64_t l = 0; l < lanes_; ++l) {
        const size_t b = next_on_lane[l];
        if (b < n && phase[b] < 0) next = std::min(next, std::max(issued[b], lane_free[l]));
      }
      for (size_t b = 0; b < n; ++b) {
        if (phase[b] < 0 || done[b] != kNever) continue;
        if (!moving[b]) {
          next = std::min(next, active_at[b]);
        } else {
          next = std::min(
              next, now + remaining[b] * sharing[static_cast<int>(phases_[b][phase[b]].resource)]);
        }
      }
      if (next == kNever) break;  // cannot happen: every lane's queue drains; never hang on it
      next = std::max(next, now);
      for (size_t b = 0; b < n; ++b) {
        if (moving[b]) {
          remaining[b] -= (next - now) / sharing[static_cast<int>(phases_[b][phase[b]].resource)];
        }
      }
      now = next;
      // Transfers that end now move to their next phase; those whose latency is over start.
      constexpr double kEpsilon = 1e-15;
      for (size_t b = 0; b < n; ++b) {
        if (moving[b] && remaining[b] <= kEpsilon * (1 + now)) begin_phase(b, phase[b] + 1, now);
      }
      for (int64_t l = 0; l < lanes_; ++l) {
        const size_t b = next_on_lane[l];
        if (b < n && phase[b] < 0 && std::max(issued[b], lane_free[l]) <= now) {
          begin_phase(b, 0, now);
        }
      }
      for (size_t b = 0; b < n; ++b) {
        if (phase[b] >= 0 && done[b] == kNever && !moving[b] && active_at[b] <= now) {
          moving[b] = true;
          if (remaining[b] <= 0) begin_phase(b, phase[b] + 1, now);
        }
      }
    }
    return done;
  }

 private:
  std::vector<std::vector<Phase>> phases_;
  int64_t lanes_;
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
  out.compute_seconds = profile.overhead_seconds;
  for (double s : step_seconds) out.compute_seconds += s;
  for (double u : update_seconds) out.compute_seconds += u;

  // Each iteration depends on the previous one only through the allreduces it waits for, so the
  // third iteration is already in steady state; a few more make that visible to tests.
  constexpr int kIterations = 5;
  CommunicationSim comm(phases, options.lanes);
  std::vector<double> lane_free(options.lanes, 0);
  std::vector<double> previous_done;  // per bucket, of the previous iteration
  std::vector<double> ready(num_buckets);
  std::vector<double> issued(num_buckets);
  double t = 0;
  double previous_end = 0;
  for (int k = 0; k < kIterations; ++k) {
    t += profile.overhead_seconds;
    double waited = 0;
    double backward_start = t;
    for (size_t s = 0; s < num_steps; ++s) {
      for (size_t b : updates_before[s]) {
        if (!previous_done.empty() && previous_done[b] > t) {
          waited += previous_done[b] - t;
          t = previous_done[b];
        }
        t += update_seconds[b];
      }
      if (static_cast<int32_t>(s) == plan.first_backward_step) backward_start = t;
      t += step_seconds[s];
      for (size_t b : ready_after[s]) ready[b] = t;
    }
    // The host nodes issuing the allreduces are chained in bucket order.
    for (size_t b = 0; b < num_buckets; ++b) {
      issued[b] = b == 0 ? ready[b] : std::max(ready[b], issued[b - 1]);
    }
    previous_done = comm.Run(issued, lane_free);
    if (k == kIterations - 1) {
      out.iteration_seconds = t - previous_end;
      out.exposed_seconds = waited;
      out.backward_seconds = t - backward_start;
      out.peak_network_bytes_per_second =
          PeakDemand(ready, sent, (t - backward_start) * kPeakWindowOfBackward);
    }
    previous_end = t;
  }
  if (out.backward_seconds > 0) {
    out.backward_network_bytes_per_second = out.network_bytes / out.backward_seconds;
  }
  if (out.iteration_seconds > 0) {
    out.mean_network_bytes_per_second = out.network_bytes / out.iteration_seconds;
  }
  return out;
}

}  // namespace gradflow::runtime::project
