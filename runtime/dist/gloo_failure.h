// Turns Gloo's transport errors, which name peers by socket address ("Read timeout
// [127.0.0.1]:4242$3"), into statuses that name the rank at fault.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"

namespace gradflow::runtime::dist {

// Which rank each peer's pair address belongs to, as exchanged at rendezvous.
class PeerDirectory {
 public:
  // `address` as transport::Pair::address().str() writes it, e.g. "[10.0.0.2]:4242$7".
  void Add(const std::string& address, int rank);
  // The rank of the first known peer address in `text`, if any.
  std::optional<int> RankIn(const std::string& text) const;

 private:
  absl::flat_hash_map<std::string, int> by_address_;   // with the pair's sequence number
  absl::flat_hash_map<std::string, int> by_listener_;  // without it: one listener per device
};

struct GlooFailure {
  absl::StatusCode code = absl::StatusCode::kUnavailable;
  std::optional<int> rank;  // the peer at fault, when the error names one
  std::string what;         // e.g. "rank 2 closed its connection (node died?)"
};

// `waiting_for`: the ranks the operation exchanges data with, named when the error names no peer.
GlooFailure ClassifyGlooError(const std::string& gloo_message, const PeerDirectory& peers,
                              std::chrono::milliseconds timeout,
                              const std::vector<int>& waiting_for);

// Gloo's message without the source location it starts with.
std::string StripGlooLocation(const std::string& message);

}  // namespace gradflow::runtime::dist
