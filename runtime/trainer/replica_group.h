// The replicas of one data-parallel job as the trainer sees them: who we are, the store we met
// the others through, and the collectives between us. Also the whole-buffer operations the
// trainer needs at start, before evaluation and at the end.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/dist/collectives.h"
#include "runtime/dist/store.h"

namespace gradflow::runtime {

struct DistributedConfig {
  int64_t nodes = 1;
  int64_t rank = 0;
  std::string rendezvous;          // file:///dir | redis://host:port; required when nodes > 1
  std::string job_id = "gradflow"; // namespaces the store: one per run
  double timeout_seconds = 300;    // every collective, and the rendezvous itself
  double bucket_mb = 25;
  // The first layers' own final bucket (its allreduce cannot hide behind backward); 0: none.
  double first_layers_bucket_mb = 1;
  int64_t lanes = 2;               // buckets reduced at once, each on its own Gloo context
  std::string algorithm = "auto";  // auto | ring | halving-doubling
  std::string transport = "auto";  // auto | tcp | ibverbs
};

class ReplicaGroup {
 public:
  // One node: solo collectives, no store. More: meets the others at the rendezvous, refuses to
  // go on unless every node's `fingerprint` (graph hash and the flags that must agree) is the
  // same, and connects the collectives.
  static absl::StatusOr<std::unique_ptr<ReplicaGroup>> Join(const DistributedConfig& config,
                                                            const std::string& fingerprint);

  int rank() const { return collectives_->rank(); }
  int size() const { return collectives_->size(); }
  dist::Collectives& collectives() { return *collectives_; }
  // The rendezvous store the nodes met through (null for one node): other communicators of the
  // job (NCCL's unique ids) are exchanged there.
  dist::Store* store() { return store_.get(); }
  const DistributedConfig& config() const { return config_; }

  // Node 0's values everywhere (start state: parameters, BN statistics, momentum after a resume).
  absl::Status BroadcastFromRoot(std::span<float> values);
  // The mean over replicas, in place (BN running statistics before evaluation and checkpoints).
  absl::Status Average(std::span<float> values);
  // Sums in place (evaluation counters).
  absl::Status Sum(std::span<float> values);
  // FailedPrecondition on a node whose `values` differ in any bit from node 0's, naming it.
  absl::Status CheckIdenticalToRoot(std::span<const float> values, const std::string& what);

 private:
  ReplicaGroup() = default;
  DistributedConfig config_;
  std::unique_ptr<dist::Store> store_;
  std::unique_ptr<dist::Collectives> collectives_;
};

// FNV-1a over the bytes: a checksum that differs when any bit does.
uint64_t Checksum(std::span<const float> values);

}  // namespace gradflow::runtime
