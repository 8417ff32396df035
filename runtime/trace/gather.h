// Merging the traces of a multi-node job on node 0: clock offsets between nodes, gathering each
// node's events, and writing the one file. Everything here is collective: every rank calls the
// same functions in the same order (the collectives' ordering contract), on lane 0.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/dist/collectives.h"
#include "runtime/trace/tracer.h"

namespace gradflow::runtime::trace {

// Microseconds to add to this rank's steady clock to read rank 0's (0 on rank 0). Each of
// `rounds` round trips is a barrier followed by a broadcast of rank 0's clock: rank 0 read its
// clock after every rank had entered the barrier and before this rank received it, so its reading
// lies between this rank's barrier entry and the broadcast's arrival. The tightest round wins;
// its half-width bounds the error (loopback: tens of microseconds).
absl::StatusOr<double> MeasureClockOffsetMicros(dist::Collectives& collectives, int rounds = 5);

// Every rank's `mine` on rank 0, in rank order (`all_on_root` may be null elsewhere). Sizes travel
// by an AllreduceSum in which each rank sets only its own slots; then each rank's bytes by a
// Broadcast from it.
absl::Status GatherToRoot(dist::Collectives& collectives, const std::string& mine,
                          std::vector<std::string>* all_on_root);

// Gathers every node's events and writes one trace at `path` on rank 0 (other ranks write
// nothing). `clock_offset_us` is this rank's MeasureClockOffsetMicros, measured at rendezvous.
// Time 0 of the file is the earliest event of any node.
absl::Status WriteMergedTrace(dist::Collectives& collectives, const Tracer& tracer,
                              double clock_offset_us, const std::string& path);

}  // namespace gradflow::runtime::trace
