// The job's rendezvous store: a small key-value table every rank can reach (a shared directory or
// a Redis server) used to exchange addresses and start-time fingerprints.
//
// Keys are written once: Gloo's FileStore refuses to replace a file and RedisStore uses SETNX, so a
// second Set of a key fails with kAlreadyExists. A job therefore needs a fresh job id (or a fresh
// directory) for every run; the job id also lets one Redis server or one shared directory serve
// many jobs at once.
//
// Nothing here throws: every Gloo or hiredis exception becomes an absl::Status. The methods are
// thread-safe with each other, but not with direct use of gloo().
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gloo/rendezvous/store.h"
#include "runtime/dist/rendezvous.h"

namespace gradflow::runtime::dist {

class Store {
 public:
  // kFile: uses (and creates if missing) the directory `<path>/<job_id>`. kRedis: connects to the
  // server, failing with kUnavailable naming host:port when it cannot. job_id: letters, digits and
  // `._-`. `timeout` bounds every wait (Get, and Gloo's own waits through gloo()).
  static absl::StatusOr<std::unique_ptr<Store>> Open(const RendezvousSpec& spec,
                                                     const std::string& job_id,
                                                     std::chrono::milliseconds timeout);
  ~Store();

  // A second, independent handle on the same job's store (its own Redis connection), for a
  // component that outlives or runs beside the caller's handle.
  absl::StatusOr<std::unique_ptr<Store>> Reopen() const;

  absl::Status Set(const std::string& key, const std::string& value);
  // Waits until the key is set, up to timeout(); kDeadlineExceeded names the key and rendezvous.
  absl::StatusOr<std::string> Get(const std::string& key);
  absl::StatusOr<std::string> Get(const std::string& key, std::chrono::milliseconds timeout);
  // Whether every key is set now (no waiting).
  absl::StatusOr<bool> Check(const std::vector<std::string>& keys);

  // The underlying Gloo store (keys already scoped by the job id), for gloo::rendezvous::Context.
  gloo::rendezvous::Store& gloo();

  const RendezvousSpec& spec() const { return spec_; }
  const std::string& job_id() const { return job_id_; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  // "file:///dir (job 'x')", for messages.
  std::string Describe() const;

 private:
  using CheckFn = std::function<bool(const std::vector<std::string>&)>;
  Store(RendezvousSpec spec, std::string job_id, std::chrono::milliseconds timeout,
        std::unique_ptr<gloo::rendezvous::Store> base, CheckFn check);
  std::string ScopedKey(const std::string& key) const;

  RendezvousSpec spec_;
  std::string job_id_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<gloo::rendezvous::Store> base_;
  std::unique_ptr<gloo::rendezvous::Store> scoped_;  // a PrefixStore over base_
  CheckFn check_;  // on base_, with scoped keys (Gloo's Store interface has no check)
  std::mutex mutex_;
};

// Refuses to start a job whose ranks disagree on what they run. Every rank publishes
// `fingerprint` (short "key=value" items separated by spaces, e.g. "graph=ab12cd batch=32
// bucket_mb=25") under `what`, reads every other rank's, and compares each with node 0's.
// kFailedPrecondition on the first rank that differs, naming both nodes and every differing item,
// e.g. "node 1's batch=16 differs from node 0's batch=32". All ranks report the same message.
absl::Status CheckSameEverywhere(Store& store, int rank, int size, const std::string& what,
                                 const std::string& fingerprint);

// "5 s", "2.5 s", "250 ms": durations as messages show them.
std::string DurationText(std::chrono::milliseconds duration);

}  // namespace gradflow::runtime::dist
