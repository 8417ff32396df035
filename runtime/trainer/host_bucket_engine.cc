// The bucket engine of CPU replicas: gradients, parameters and momentum are host memory, Gloo
// reduces a bucket's range in place, and the optimizer's loop updates it.
#include <algorithm>
#include <vector>

#include "runtime/trainer/bucket_engine.h"

namespace gradflow::runtime {
namespace {

class HostBucketEngine final : public BucketEngine {
 public:
  HostBucketEngine(DeviceGraph& graph, dist::Collectives& collectives, Optimizer& optimizer,
                   LocalReducer* local, int replica)
      : graph_(graph),
        collectives_(collectives),
        optimizer_(optimizer),
        local_(local),
        replica_(replica) {}

  absl::Status Prepare(std::span<const sched::Bucket> buckets) override {
    buckets_.assign(buckets.begin(), buckets.end());
    return absl::OkStatus();
  }

  absl::StatusOr<bool> Accumulate(size_t bucket, int micro, int count) override {
    if (count <= 1) return true;
    if (accumulated_.empty())
      accumulated_.resize(graph_.Floats(sched::BufferKind::kGradients).size());
    const sched::Bucket& b = buckets_[bucket];
    // The bucket's gradients are final for this micro-batch and the next micro-batch's backward
    // cannot overwrite them before this run ends: sum them here, beside the compute stream.
    float* sum = accumulated_.data();
    float* g = graph_.Floats(sched::BufferKind::kGradients).data();
    if (micro == 0) {
      std::copy(g + b.begin, g + b.end, sum + b.begin);
    } else {
      for (int64_t i = b.begin; i < b.end; ++i) sum[i] += g[i];
    }
    if (micro + 1 < count) return false;
    std::copy(sum + b.begin, sum + b.end, g + b.begin);
    return true;
  }

  void StartAllreduce(size_t bucket, Done done) override {
    const sched::Bucket& b = buckets_[bucket];
    const std::span<float> range =
        graph_.Floats(sched::BufferKind::kGradients).subspan(b.begin, b.end - b.begin);
    if (local_ != nullptr) return local_->Contribute(bucket, replica_, range, std::move(done));
    collectives_.AllreduceSumRepeated(range, static_cast<int>(bucket % collectives_.lanes()),
                                      std::move(done));
  }

  bool update_waits_on_host() const override { return true; }

  absl::Status Update(size_t bucket, const ops::SgdHyper& hyper) override {
    const sched::Bucket& b = buckets_[bucket];
    return optimizer_.Apply(hyper, graph_.Floats(sched::BufferKind::kParameters),
                            graph_.Floats(sched::BufferKind::kGradients), b.begin, b.end);
  }

  int lanes() const override { return collectives_.lanes(); }

 private:
  DeviceGraph& graph_;
  dist::Collectives& collectives_;
  Optimizer& optimizer_;
  LocalReducer* const local_;
  const int replica_;
  std::vector<sched::Bucket> buckets_;
  std::vector<float> accumulated_;  // virtual replicas: the step's running gradient sum
};

}  // namespace

std::unique_ptr<BucketEngine> CreateHostBucketEngine(DeviceGraph& graph,
                                                     dist::Collectives& collectives,
                                                     Optimizer& optimizer, LocalReducer* local,
                                                     int replica) {
  return std::make_unique<HostBucketEngine>(graph, collectives, optimizer, local, replica);
}

}  // namespace gradflow::runtime
