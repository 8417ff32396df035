// Which examples each replica reads: one shuffle per epoch shared by all replicas, cut into
// global batches, each global batch cut into one contiguous share per replica.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/data/dataset.h"

namespace gradflow::runtime::data {

struct ShardSpec {
  int64_t examples = 0;    // in the split
  int32_t world_size = 1;  // replicas
  int32_t rank = 0;        // this replica, in [0, world_size)
  int64_t per_replica_batch = 1;

  int64_t GlobalBatch() const { return per_replica_batch * world_size; }
};

// Positions [begin, end) of a replica's share in the epoch's example order.
struct Share {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t Size() const { return end - begin; }
};

// A random permutation of [0, n), a pure function of (seed, epoch): every replica computes the
// same one, so no communication is needed to agree on the shuffle.
std::vector<int64_t> EpochPermutation(int64_t n, uint64_t seed, int64_t epoch);

// Train: floor(examples / global batch), the incomplete last global batch dropped so that every
// replica takes the same number of equal steps. Eval: every example once, the last global batch
// possibly partial.
int64_t IterationsPerEpoch(Split split, const ShardSpec& spec);

// Train: replica r takes positions [i*G + r*b, i*G + (r+1)*b). Eval: the m = min(G, N - i*G)
// examples of iteration i are split as evenly as possible, [i*G + m*r/w, i*G + m*(r+1)/w), so the
// last, partial batch may be smaller (even empty) on some replicas.
Share ShareOfIteration(Split split, const ShardSpec& spec, int64_t iteration);

}  // namespace gradflow::runtime::data
