// One data-parallel replica of the zoo's fmnist-cnn, set up the way the trainer does it (device,
// compute stream, DeviceGraph, optimizer, GradientSync over the given collectives) with a Tracer
// attached to the executor, the collectives and the buckets.
#pragma once

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "runtime/dist/collectives.h"
#include "runtime/trace/tracer.h"
#include "runtime/train/optimizer.h"
#include "runtime/trainer/device_graph.h"
#include "runtime/trainer/gradient_sync.h"
#include "runtime/trainer/train_device.h"

namespace gradflow::runtime::trace::testing {

struct ReplicaOptions {
  int rank = 0;
  int64_t first_iteration = 1;
  int64_t last_iteration = 1 << 30;
  int64_t batch = 4;
  int64_t bucket_bytes = 64 << 10;  // small: several buckets, overlapping allreduces
  bool device_times = false;        // TracerOptions::device_times
};

class TracedReplica {
 public:
  // `collectives` must outlive the replica; the tracer is added as its observer, so no operation
  // may have run on it yet.
  static absl::StatusOr<std::unique_ptr<TracedReplica>> Create(dist::Collectives& collectives,
                                                               const ReplicaOptions& options);
  ~TracedReplica();

  // `count` training iterations (data feed, step, and the trainer's tracer calls), then Flush.
  absl::Status Train(int count);

  Tracer& tracer() { return *tracer_; }
  GradientSync& sync() { return *sync_; }
  DeviceGraph& graph() { return *graph_; }

 private:
  TracedReplica() = default;
  ReplicaOptions options_;
  std::unique_ptr<TrainDevice> device_;
  std::unique_ptr<DeviceGraph> graph_;
  std::unique_ptr<Optimizer> optimizer_;
  std::unique_ptr<GradientSync> sync_;
  std::unique_ptr<Tracer> tracer_;
};

}  // namespace gradflow::runtime::trace::testing
