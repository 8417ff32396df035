// How one replica's device sums a gradient bucket across replicas and applies its SGD update.
// GradientSync decides *when* (nodes of the task graph on the compute stream, see
// gradient_sync.h); an engine decides *how*:
//   host    (CPU replicas) the bucket's range of the host gradient buffer is reduced in place by
//           the collectives (Gloo), and the update is the optimizer's loop on the host;
//   cuda    (GPU replicas, runtime/trainer/cuda/) NCCL reduces device memory on its own stream
//           after an event, so the device orders the update after it; or, where NCCL cannot
//           serve (replicas sharing one GPU), the bucket goes through pinned host memory to Gloo
//           and back; or, alone, nothing is reduced. The update is the fused CUDA SGD kernel.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ops/sgd.h"
#include "runtime/dist/collectives.h"
#include "runtime/train/optimizer.h"
#include "runtime/trainer/device_graph.h"
#include "runtime/trainer/local_reduce.h"
#include "scheduler/buckets.h"

namespace gradflow::runtime {

class BucketEngine {
 public:
  using Done = std::function<void(absl::Status)>;
  virtual ~BucketEngine() = default;

  // Once, before the first iteration, with the plan's buckets.
  virtual absl::Status Prepare(std::span<const sched::Bucket> buckets) = 0;
  // On the compute stream right after backward wrote the bucket's last gradient of micro-batch
  // `micro` of `count` (virtual replicas): keeps the running sum of the step's micro-batches and,
  // on the last one, leaves the sum in the gradient buffer. True when the bucket is then ready to
  // be reduced (always for count 1).
  virtual absl::StatusOr<bool> Accumulate(size_t bucket, int micro, int count) = 0;
  // On the compute stream: starts the sum over replicas. `done` runs once, on another thread,
  // when the engine is finished with it (see update_waits_on_host).
  virtual void StartAllreduce(size_t bucket, Done done) = 0;
  // True: Update may run only after `done` (the sum is in place, or the device event that
  // marks it has been recorded). False: the device orders the update after the reduction itself,
  // and the host need not wait.
  virtual bool update_waits_on_host() const = 0;
  // On the compute stream: the SGD update of the bucket's range with `hyper`.
  virtual absl::Status Update(size_t bucket, const ops::SgdHyper& hyper) = 0;
  virtual int lanes() const = 0;
  // The collectives the engine reduces with itself (a GPU's NCCL lanes), for observers such as
  // the tracer; null where buckets go through the replica group's collectives.
  virtual dist::Collectives* device_collectives() { return nullptr; }
  // Where the engine keeps the momentum off the host (a GPU): copies between it and the
  // optimizer's host copy (checkpoints, the start broadcast). No-ops for the host engine, which
  // updates the optimizer's own buffer.
  virtual absl::Status MomentumToHost(Optimizer& /*optimizer*/) { return absl::OkStatus(); }
  virtual absl::Status MomentumFromHost(const Optimizer& /*optimizer*/) { return absl::OkStatus(); }
};

// The host engine over `graph`'s host buffers; everything must outlive it. With `local`, the
// graph is replica `replica` of several in this process and buckets are summed over them first
// (runtime/trainer/local_reduce.h); `local` then reduces between the nodes.
std::unique_ptr<BucketEngine> CreateHostBucketEngine(DeviceGraph& graph,
                                                     dist::Collectives& collectives,
                                                     Optimizer& optimizer,
                                                     LocalReducer* local = nullptr,
                                                     int replica = 0);

}  // namespace gradflow::runtime
