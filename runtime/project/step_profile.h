// The compute side of one node's iteration, per plan step: measured in a trace, read from a
// per-step time table, or spread over the steps by FLOPs from totals a user gives.
//
// Per-step time table (text, one item per line, '#' starts a comment; all times in ms):
//   batch 32                  the per-device batch the times were measured at (required)
//   overhead_ms 1.5           host time per iteration outside the steps (data feed, ...)
//   update_ms_per_mb 0.04     SGD update time per MB of parameters (0 if absent)
//   step 17 2.345 conv1/fwd   a step's time; the node name is optional and checked if given
// Every step of the plan must be listed exactly once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/json/json.h"
#include "runtime/project/planned_graph.h"

namespace gradflow::runtime::project {

using json::JsonValue;

struct StepProfile {
  std::vector<double> step_seconds;    // per plan step
  double update_seconds_per_byte = 0;  // SGD update of a bucket, per byte of its parameters
  double overhead_seconds = 0;         // per iteration, outside the compute stream's steps
  int64_t batch = 0;                   // per device, as measured
  int64_t iterations = 0;              // traced iterations the medians come from (0: not a trace)
  // How much the traced node's compute per iteration varied: sample std / mean of its op time
  // per iteration; -1 when unknown (fewer than 3 iterations traced, or not a trace).
  double compute_cv = -1;
  std::string source;  // for the report, e.g. "trace t.json, node 0, 5 iterations"
};

// What a trace says about its run, before the graph is planned (the batch picks the plan).
struct TraceHeader {
  int64_t batch_per_node = 0;  // 0 when the trace does not say
  int64_t nodes = 0;
  int64_t steps = 0;
};
absl::StatusOr<TraceHeader> ReadTraceHeader(const JsonValue& trace, std::string_view source);

// Medians over the traced iterations of node `node`'s op events (see the trace format contract
// in runtime/trace). Checks that the trace has exactly the plan's steps and names the first
// step without any event.
absl::StatusOr<StepProfile> ProfileFromTrace(const JsonValue& trace, std::string_view source,
                                             const PlannedGraph& plan, int64_t node);

absl::StatusOr<int64_t> ReadTableBatch(std::string_view text, std::string_view source);
absl::StatusOr<StepProfile> ProfileFromTable(std::string_view text, std::string_view source,
                                             const PlannedGraph& plan);
std::string FormatTable(const StepProfile& profile, const PlannedGraph& plan);

// Forward (and loss) steps share `forward_seconds`, backward steps `backward_seconds`, each in
// proportion to its FLOPs: how a device that is compute-bound everywhere would spend them.
absl::StatusOr<StepProfile> ProfileFromFlops(const PlannedGraph& plan, double forward_seconds,
                                             double backward_seconds);

}  // namespace gradflow::runtime::project
