#include "runtime/data/sharding.h"

#include <algorithm>
#include <numeric>
#include <utility>

namespace gradflow::runtime::data {

std::vector<int64_t> EpochPermutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  // A stream distinct from the augmentation streams, which also derive from (seed, epoch, ...).
  constexpr uint64_t kShuffleStream = 0x5348554646ULL;
  Rng rng(DeriveSeed({seed, kShuffleStream, static_cast<uint64_t>(epoch)}));
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(rng.Below(static_cast<uint64_t>(i) + 1));
    std::swap(order[i], order[j]);
  }
  return order;
}

int64_t IterationsPerEpoch(Split split, const ShardSpec& spec) {
  const int64_t global = spec.GlobalBatch();
  if (split == Split::kTrain) return spec.examples / global;
  return (spec.examples + global - 1) / global;
}

Share ShareOfIteration(Split split, const ShardSpec& spec, int64_t iteration) {
  const int64_t global = spec.GlobalBatch();
  const int64_t start = iteration * global;
  if (split == Split::kTrain) {
    const int64_t begin = start + spec.rank * spec.per_replica_batch;
    return {begin, begin + spec.per_replica_batch};
  }
  const int64_t in_batch = std::min(global, spec.examples - start);
  return {start + in_batch * spec.rank / spec.world_size,
          start + in_batch * (spec.rank + 1) / spec.world_size};
}

}  // namespace gradflow::runtime::data
