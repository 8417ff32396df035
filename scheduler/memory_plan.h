// Placement of temporary tensors in one arena per device, reusing bytes by liveness.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace gradflow::sched {

// One block to place: `bytes` long, live from step `first` to step `last` inclusive (steps are
// positions in the device's in-order execution sequence).
struct LiveRange {
  int64_t bytes = 0;
  int32_t first = 0;
  int32_t last = 0;
};

struct MemoryPlan {
  std::vector<int64_t> offsets;  // one per LiveRange, aligned
  int64_t arena_bytes = 0;       // the peak: every offset + bytes fits below it
  int64_t sum_of_bytes = 0;      // what no reuse would need, to show the saving
};

// Greedy by size (largest first, each at the lowest aligned offset that no block live at the same
// time occupies), as TFLite's arena planner does: within a few percent of the lower bound on
// networks like ResNet. `alignment` must be a power of two.
absl::StatusOr<MemoryPlan> PlanMemory(std::span<const LiveRange> ranges, int64_t alignment);

// Independent check of a plan: no two blocks that are live at the same step share a byte, and
// every block lies inside the arena. Used by tests and by the planner in debug builds.
absl::Status CheckMemoryPlan(std::span<const LiveRange> ranges, const MemoryPlan& plan);

// The largest total of bytes live at any one step: a lower bound for any plan's arena.
int64_t PeakLiveBytes(std::span<const LiveRange> ranges);

}  // namespace gradflow::sched
