// Where the replicas of a job meet: a shared directory or a Redis server, named by a URI.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace gradflow::runtime::dist {

struct RendezvousSpec {
  enum class Kind { kFile, kRedis };
  Kind kind = Kind::kFile;
  std::string path;  // kFile: an absolute directory
  std::string host;  // kRedis
  int port = 0;      // kRedis

  // The URI again, for messages.
  std::string ToString() const;
};

// Accepts `file:///abs/dir` and `redis://host:port`. Errors quote the value and list the accepted
// forms; the caller prefixes the flag's name.
absl::StatusOr<RendezvousSpec> ParseRendezvous(const std::string& uri);

}  // namespace gradflow::runtime::dist
