// Several replicas in one node process (--devices-per-node K on the CPU): a gradient bucket is
// summed over the node's K replicas first, then across the nodes, and every replica gets the
// result. The sum runs when the last of the K replicas has written the bucket (its compute
// stream does it), in replica order, so every node adds the same way.
#pragma once

#include <cstddef>
#include <mutex>
#include <span>
#include <vector>

#include "runtime/dist/collectives.h"

namespace gradflow::runtime {

class LocalReducer {
 public:
  using Done = dist::Done;
  // `collectives` reduce between the nodes (one rank per node process) and must outlive this.
  LocalReducer(int replicas, dist::Collectives& collectives);

  int replicas() const { return replicas_; }
  int lanes() const { return collectives_.lanes(); }

  // Replica `replica`'s copy of `bucket` is final in `range` (the same range of every replica's
  // own gradient buffer, which must stay untouched until `done`). Once all replicas have called,
  // replica 0's range holds the sum over replicas and nodes, the others get a copy, and every
  // replica's `done` runs.
  void Contribute(size_t bucket, int replica, std::span<float> range, Done done);

 private:
  struct Pending {
    std::vector<std::span<float>> ranges;  // by replica
    std::vector<Done> dones;
    int arrived = 0;
  };

  const int replicas_;
  dist::Collectives& collectives_;
  std::mutex mutex_;
  std::vector<Pending> pending_;  // by bucket, guarded by mutex_
};

}  // namespace gradflow::runtime
