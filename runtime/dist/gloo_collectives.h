// Collectives over Gloo for host memory: TCP (ibverbs where present), several lanes each with its
// own Gloo context, connections and worker thread, so that several gradient buckets are reduced
// at once.
//
// Failure: when a peer dies or stalls, the pending operation and every later one fail within the
// timeout (plus a short grace, see below) with a message naming the rank at fault, e.g.
// "allreduce on lane 1 failed: rank 2 closed its connection (node died?)" or "... rank 3 did not
// respond within 5 s". The rank that first sees a failure publishes its cause in the store and
// closes its connections so that every other rank learns at once; a rank that then sees that
// rank's connection close reports the original cause ("... (reported by rank 0)") instead of
// blaming the messenger. Attribution waits up to min(0.7 s, timeout / 5) for the other ranks to
// say they saw the failure too (a rank that stays silent is the one at fault), so a failure is
// reported within timeout + about 1.5 s.
//
// Reuse: allreduce algorithms are set up on first use of a (lane, data pointer, count) and reused
// afterwards, which consumes Gloo slots only on first use. Every rank must therefore reuse regions
// in the same pattern: pass stable buffers (the trainer's buckets), never temporaries whose
// address the allocator may recycle on one rank but not on another.
//
// Destruction is collective: a last barrier on every lane (bounded by the timeout, skipped after a
// failure) makes sure no rank disconnects while a peer still reads its last message.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/dist/collectives.h"
#include "runtime/dist/store.h"

namespace gradflow::runtime::dist {

struct GlooOptions {
  // Independent channels (Gloo contexts), each with its own connections and thread.
  int lanes = 2;
  // Bounds every wait on a peer: connecting, and every send or receive of an operation.
  std::chrono::milliseconds timeout{300000};
  // Allreduce algorithm: "auto" (ring for messages of at least ring_min_bytes, halving-doubling
  // below), "ring" or "halving-doubling".
  std::string algorithm = "auto";
  int64_t ring_min_bytes = 256 << 10;
  // "auto" (ibverbs when /sys/class/infiniband lists a device and opening it works, else TCP),
  // "tcp" or "ibverbs".
  std::string transport = "auto";
  // The address peers reach this rank at (TCP). "" picks this machine's host name when it resolves
  // to a non-loopback address, and 127.0.0.1 otherwise (a machine without a routable name can only
  // run local jobs anyway). Local multi-process jobs may pass "127.0.0.1" to stay on loopback.
  std::string hostname;
};

// Connects this rank to the others through `store` (every rank calls it with the same options).
// Reads and writes keys under "gloo/" in the store: one Gloo collectives object per store job.
// The store is only used during this call; failure reports go through a second handle
// (Store::Reopen), so `store` need not outlive the result. size == 1 needs no network: operations
// complete on the lane threads with the data unchanged.
absl::StatusOr<std::unique_ptr<Collectives>> CreateGlooCollectives(Store& store, int rank, int size,
                                                                   const GlooOptions& options);

}  // namespace gradflow::runtime::dist
