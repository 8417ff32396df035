// Shared helpers for the runtime/dist tests: temporary rendezvous directories and worlds of ranks
// running as threads of the test process.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/dist/collectives.h"
#include "runtime/dist/gloo_collectives.h"
#include "runtime/dist/store.h"

namespace gradflow::runtime::dist::testing {

// A fresh directory under $GRADFLOW_TEST_TMPDIR (or /tmp), unique to this call.
std::string MakeTempDir();
// A job id no other test in any process uses.
std::string UniqueJobId();
// A file:// rendezvous in a fresh directory.
RendezvousSpec FreshFileRendezvous();

// Runs fn(rank) on `size` threads at once and joins them.
void RunRanks(int size, const std::function<void(int rank)>& fn);

// `size` ranks as threads: each with its own Store handle and Gloo collectives. Destroying a Gloo
// collectives object is collective (a last barrier), so the ranks are destroyed in parallel.
struct ThreadWorld {
  ThreadWorld() = default;
  ThreadWorld(ThreadWorld&&) = default;
  ~ThreadWorld() { DestroyRanks(); }
  void DestroyRanks();

  std::vector<std::unique_ptr<Store>> stores;
  std::vector<std::unique_ptr<Collectives>> ranks;
};
ThreadWorld MakeThreadWorld(int size, const GlooOptions& options);

// Options for tests: loopback and a short timeout.
GlooOptions TestOptions(std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace gradflow::runtime::dist::testing
