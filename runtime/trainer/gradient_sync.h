// Data-parallel gradient synchronization for one replica: per gradient bucket, an allreduce that
// starts the moment backward has written the bucket's last gradient, and an SGD update of that
// bucket once the allreduce has finished.
//
// Both are nodes of the replica's task graph, so the executor orders them like any step:
//   allreduce:bucketB  a compute-stream node right after the step that makes bucket B ready
//                      (and after the allreduce node of bucket B-1), so every replica issues its
//                      buckets in the same order (the collectives' ordering contract). It only
//                      starts the asynchronous allreduce; backward goes on meanwhile.
//   sgd_update:bucketB a compute-stream node placed just before the first forward step that
//                      reads one of B's parameters. It waits for the allreduce B of the previous
//                      iteration and applies that iteration's update to B's range. So the next
//                      forward of a layer waits only for its own parameters' update, and the
//                      allreduces of the last buckets overlap the next iteration's data feed and
//                      first layers.
// The update of the last iteration is still pending when Run returns: Flush applies it (before
// evaluation, checkpoints and the end of training).
//
// Virtual replicas (Goyal et al. kept n = 32 images per BN replica; fewer processes can do the
// same): one step may run K micro-batches one after another, each normalized with its own batch
// statistics. The allreduce nodes of the first K-1 runs only add their bucket's gradients into an
// accumulator; in the last run each bucket adds the accumulator back and is reduced as usual.
//
// How a bucket is reduced and updated depends on the device (runtime/trainer/bucket_engine.h).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ops/sgd.h"
#include "runtime/dist/collectives.h"
#include "runtime/train/optimizer.h"
#include "runtime/trainer/bucket_engine.h"
#include "runtime/trainer/device_graph.h"
#include "scheduler/buckets.h"
#include "scheduler/executor.h"

namespace gradflow::runtime {

struct GradientSyncOptions {
  int64_t bucket_bytes = int64_t{25} << 20;  // the paper's and DDP's default cap
  // A final bucket of its own for the first layers (sched::PlanBuckets); 0: none.
  int64_t first_layers_bucket_bytes = 0;
  // How long the compute stream waits for a bucket before giving up. The collectives enforce
  // their own timeout; this only guards against one that never reports back.
  std::chrono::milliseconds wait_limit{std::chrono::minutes(6)};
};

// Totals since Attach; "communication" is wall time with at least one bucket allreduce in flight,
// "exposed" the part of it the compute stream spent waiting for a bucket (host-waiting engines
// only: where the device orders the update after the reduction, the trace shows the waits).
struct CommunicationStats {
  int64_t iterations = 0;
  int64_t allreduces = 0;
  int64_t bytes_reduced = 0;
  double communication_seconds = 0;
  double exposed_seconds = 0;
  // Bucket allreduces that started before the last backward step ended (from the executor's own
  // node events): > 0 means communication overlapped backward.
  int64_t allreduces_started_during_backward = 0;
  // False where the device orders each update after its reduction (NCCL) and the host never
  // waits: exposed_seconds is then unknown here (the trace shows the device's waits).
  bool exposure_measured = true;
};

// Sees each bucket's allreduce and the compute stream's waits for it (tracing). Called from TBB
// workers, communication threads and the compute stream: thread-safe and quick.
class BucketObserver {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~BucketObserver() = default;
  // `iteration` is the executor iteration whose backward produced the gradients.
  virtual void OnBucketIssued(int64_t /*iteration*/, size_t /*bucket*/, Clock::time_point /*at*/) {}
  virtual void OnBucketReduced(int64_t /*iteration*/, size_t /*bucket*/, Clock::time_point /*at*/,
                               const absl::Status& /*status*/) {}
  // The compute stream waited from `from` to `to` for the bucket before applying its update.
  virtual void OnBucketWait(int64_t /*iteration*/, size_t /*bucket*/, Clock::time_point /*from*/,
                            Clock::time_point /*to*/) {}
};

class GradientSync : public sched::ExecutionObserver {
 public:
  // Plans the buckets and adds their nodes to `graph`, which must not be started yet. Everything
  // passed must outlive this object. The optimizer's grad_scale should be 1 / collectives.size():
  // the allreduce sums the replicas' per-replica mean gradients.
  static absl::StatusOr<std::unique_ptr<GradientSync>> Attach(DeviceGraph& graph,
                                                              dist::Collectives& collectives,
                                                              Optimizer& optimizer,
                                                              const GradientSyncOptions& options);
  // The same with the device's own engine (a GPU's); the host engine above is for CPU graphs.
  static absl::StatusOr<std::unique_ptr<GradientSync>> Attach(DeviceGraph& graph,
                                                              std::unique_ptr<BucketEngine> engine,
                                                              Optimizer& optimizer,
                                                              const GradientSyncOptions& options);
  ~GradientSync() override;

  // After graph.Start(): watches the executor for the overlap counter.
  void ObserveExecutor();
  // Before each run: this run is micro-batch `micro` of `count` in the step (0 of 1 without
  // virtual replicas). The optimizer's grad_scale should then be 1 / (collectives.size() x count).
  void SetMicroBatch(int micro, int count);
  // Waits for every bucket still in flight and applies its update, on the compute stream. The
  // first error (a failed allreduce names the peer) is returned; the iteration's updates are
  // then incomplete and training must stop.
  absl::Status Flush();

  // Before the first iteration; the observer must outlive this object.
  void AddBucketObserver(BucketObserver* observer) { bucket_observers_.push_back(observer); }
  // The task node of each bucket's allreduce and update (for tracers naming them).
  const std::vector<int32_t>& allreduce_nodes() const { return allreduce_nodes_; }
  const std::vector<sched::Bucket>& buckets() const { return buckets_; }
  BucketEngine& engine() { return *engine_; }
  CommunicationStats stats() const;

  void OnIterationStart(int64_t iteration) override;
  void OnNodeStart(const sched::NodeEvent& event) override;
  void OnNodeEnd(const sched::NodeEvent& event) override;
  void OnIterationEnd(int64_t iteration, const absl::Status& status) override;

 private:
  using Clock = std::chrono::steady_clock;
  struct BucketState {
    bool pending = false;  // an allreduce was issued and its update not applied yet
    bool reduced = false;  // that allreduce has reported back
    absl::Status status;
    ops::SgdHyper hyper;   // of the step whose gradients are being reduced
    int64_t iteration = 0; // the executor iteration that produced them
  };

  GradientSync(DeviceGraph& graph, std::unique_ptr<BucketEngine> engine, Optimizer& optimizer,
               const GradientSyncOptions& options);
  absl::Status StartAllreduce(size_t bucket);
  absl::Status WaitAndUpdate(size_t bucket);
  void Reduced(size_t bucket, const absl::Status& status);

  DeviceGraph& graph_;
  std::unique_ptr<BucketEngine> engine_;
  Optimizer& optimizer_;
  const GradientSyncOptions options_;
  std::vector<sched::Bucket> buckets_;
  std::vector<int32_t> allreduce_nodes_;  // task node per bucket
  std::vector<BucketObserver*> bucket_observers_;
  std::atomic<int64_t> iteration_{0};     // the executor's current iteration
  int32_t last_step_node_ = 0;

  // Virtual replicas: which micro-batch of the step runs.
  int micro_ = 0;
  int micro_count_ = 1;

  mutable std::mutex mutex_;
  std::condition_variable reduced_;
  std::vector<BucketState> state_;  // guarded by mutex_
  absl::Status first_failure_;      // guarded by mutex_: a failed allreduce stops training
  int in_flight_ = 0;               // guarded by mutex_
  Clock::time_point busy_since_;    // guarded by mutex_: when in_flight_ last became 1
  CommunicationStats stats_;        // guarded by mutex_

  // Per iteration, for the overlap counter; guarded by mutex_.
  std::vector<Clock::time_point> allreduce_started_;
  Clock::time_point backward_ended_;
  bool observing_ = false;
};

}  // namespace gradflow::runtime
