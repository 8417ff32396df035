#include "runtime/trainer/local_reduce.h"

#include <algorithm>
#include <memory>
#include <utility>

namespace gradflow::runtime {

LocalReducer::LocalReducer(int replicas, dist::Collectives& collectives)
    : replicas_(replicas), collectives_(collectives) {}

void LocalReducer::Contribute(size_t bucket, int replica, std::span<float> range, Done done) {
  auto ready = std::make_shared<Pending>();
  {
    std::lock_guard lock(mutex_);
    if (pending_.size() <= bucket) pending_.resize(bucket + 1);
    Pending& p = pending_[bucket];
    if (p.ranges.empty()) {
      p.ranges.resize(replicas_);
      p.dones.resize(replicas_);
    }
    p.ranges[replica] = range;
    p.dones[replica] = std::move(done);
    if (++p.arrived < replicas_) return;
    *ready = std::move(p);
    p = Pending();
  }
  // The last replica to arrive adds the others' copies into replica 0's, always in replica
  // order: the same sum on every node.
  std::span<float> sum = ready->ranges[0];
  for (int r = 1; r < replicas_; ++r) {
    const float* other = ready->ranges[r].data();
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += other[i];
  }
  collectives_.AllreduceSumRepeated(
      sum, static_cast<int>(bucket % collectives_.lanes()), [ready](absl::Status status) {
        if (status.ok()) {
          for (size_t r = 1; r < ready->ranges.size(); ++r) {
            std::copy(ready->ranges[0].begin(), ready->ranges[0].end(), ready->ranges[r].begin());
          }
        }
        for (Done& d : ready->dones) d(status);
      });
}

}  // namespace gradflow::runtime
