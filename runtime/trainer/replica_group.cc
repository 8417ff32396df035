#include "runtime/trainer/replica_group.h"

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/dist/gloo_collectives.h"
#include "runtime/dist/rendezvous.h"

namespace gradflow::runtime {

absl::StatusOr<std::unique_ptr<ReplicaGroup>> ReplicaGroup::Join(const DistributedConfig& config,
                                                                 const std::string& fingerprint) {
  std::unique_ptr<ReplicaGroup> group(new ReplicaGroup);
  group->config_ = config;
  if (config.nodes == 1) {
    group->collectives_ = dist::CreateSoloCollectives(static_cast<int>(config.lanes));
    return group;
  }
  absl::StatusOr<dist::RendezvousSpec> spec = dist::ParseRendezvous(config.rendezvous);
  if (!spec.ok()) return absl::InvalidArgumentError(absl::StrCat("--rendezvous: ", spec.status().message()));
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(config.timeout_seconds * 1000));
  absl::StatusOr<std::unique_ptr<dist::Store>> store = dist::Store::Open(*spec, config.job_id, timeout);
  if (!store.ok()) return store.status();
  group->store_ = *std::move(store);
  const int rank = static_cast<int>(config.rank);
  const int size = static_cast<int>(config.nodes);
  if (absl::Status s = dist::CheckSameEverywhere(*group->store_, rank, size, "configuration", fingerprint);
      !s.ok()) {
    return s;
  }
  dist::GlooOptions options;
  options.lanes = static_cast<int>(config.lanes);
  options.timeout = timeout;
  options.algorithm = config.algorithm;
  options.transport = config.transport;
  absl::StatusOr<std::unique_ptr<dist::Collectives>> collectives =
      dist::CreateGlooCollectives(*group->store_, rank, size, options);
  if (!collectives.ok()) return collectives.status();
  group->collectives_ = *std::move(collectives);
  return group;
}

absl::Status ReplicaGroup::BroadcastFromRoot(std::span<float> values) {
  if (size() == 1 || values.empty()) return absl::OkStatus();
  return dist::BroadcastSync(*collectives_, values, 0);
}

absl::Status ReplicaGroup::Sum(std::span<float> values) {
  if (size() == 1 || values.empty()) return absl::OkStatus();
  return dist::AllreduceSumSync(*collectives_, values);
}

absl::Status ReplicaGroup::Average(std::span<float> values) {
  if (size() == 1) return absl::OkStatus();
  if (absl::Status s = Sum(values); !s.ok()) return s;
  const float scale = 1.0f / static_cast<float>(size());
  for (float& v : values) v *= scale;
  return absl::OkStatus();
}

absl::Status ReplicaGroup::CheckIdenticalToRoot(std::span<const float> values,
                                                const std::string& what) {
  if (size() == 1) return absl::OkStatus();
  const uint64_t mine = Checksum(values);
  // Broadcast copies bytes, so the checksum travels as the bit pattern of two floats.
  float wire[2];
  std::memcpy(wire, &mine, sizeof(mine));
  if (absl::Status s = dist::BroadcastSync(*collectives_, wire, 0); !s.ok()) return s;
  uint64_t root = 0;
  std::memcpy(&root, wire, sizeof(root));
  if (root != mine) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "node %d's %s differ from node 0's (checksum %016x vs %016x): the replicas diverged",
        rank(), what, mine, root));
  }
  return absl::OkStatus();
}

uint64_t Checksum(std::span<const float> values) {
  uint64_t hash = 1469598103934665603ull;
  const auto* bytes = reinterpret_cast<const unsigned char*>(values.data());
  for (size_t i = 0; i < values.size_bytes(); ++i) {
    hash ^= bytes[i];
    hash *= 1099511628211ull;
  }
  return hash;
}

}  // namespace gradflow::runtime
