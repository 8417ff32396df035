#include "scheduler/memory_plan.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace gradflow::sched {
namespace {

int64_t AlignUp(int64_t value, int64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

bool TimesOverlap(const LiveRange& a, const LiveRange& b) {
  return a.first <= b.last && b.first <= a.last;
}

}  // namespace

absl::StatusOr<MemoryPlan> PlanMemory(std::span<const LiveRange> ranges, int64_t alignment) {
  if (alignment <= 0 || (alignment & (alignment - 1)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("alignment ", alignment, " is not a power of two"));
  }
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (ranges[i].bytes < 0 || ranges[i].first > ranges[i].last) {
      return absl::InvalidArgumentError(absl::StrCat("block ", i, " has ", ranges[i].bytes,
                                                     " bytes live from step ", ranges[i].first,
                                                     " to ", ranges[i].last));
    }
  }
  MemoryPlan plan;
  plan.offsets.assign(ranges.size(), 0);
  std::vector<size_t> by_size(ranges.size());
  std::iota(by_size.begin(), by_size.end(), 0);
  // Largest first; ties by earlier start so that the result is deterministic.
  std::stable_sort(by_size.begin(), by_size.end(), [&](size_t a, size_t b) {
    if (ranges[a].bytes != ranges[b].bytes) return ranges[a].bytes > ranges[b].bytes;
    return ranges[a].first < ranges[b].first;
  });

  std::vector<size_t> placed;
  std::vector<std::pair<int64_t, int64_t>> busy;  // [begin, end) of placed blocks live with this one
  for (size_t index : by_size) {
    const LiveRange& range = ranges[index];
    plan.sum_of_bytes += range.bytes;
    if (range.bytes == 0) continue;
    busy.clear();
    for (size_t other : placed) {
      if (TimesOverlap(range, ranges[other])) {
        busy.emplace_back(plan.offsets[other], plan.offsets[other] + ranges[other].bytes);
      }
    }
    std::sort(busy.begin(), busy.end());
    // First gap, in address order, that holds the block.
    int64_t candidate = 0;
    for (const auto& [begin, end] : busy) {
      if (candidate + range.bytes <= begin) break;
      candidate = std::max(candidate, AlignUp(end, alignment));
    }
    plan.offsets[index] = candidate;
    plan.arena_bytes = std::max(plan.arena_bytes, candidate + range.bytes);
    placed.push_back(index);
  }
  plan.arena_bytes = AlignUp(plan.arena_bytes, alignment);
  return plan;
}

absl::Status CheckMemoryPlan(std::span<const LiveRange> ranges, const MemoryPlan& plan) {
  if (plan.offsets.size() != ranges.size()) {
    return absl::InternalError(absl::StrCat("plan has ", plan.offsets.size(), " offsets for ",
                                            ranges.size(), " blocks"));
  }
  // Sweep over steps: at each step the live blocks, sorted by offset, must not overlap.
  std::map<int32_t, std::vector<size_t>> starts;
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (ranges[i].bytes == 0) continue;
    if (plan.offsets[i] < 0 || plan.offsets[i] + ranges[i].bytes > plan.arena_bytes) {
      return absl::InternalError(absl::StrCat("block ", i, " at offset ", plan.offsets[i], " (",
                                              ranges[i].bytes, " bytes) is outside the arena of ",
                                              plan.arena_bytes));
    }
    starts[ranges[i].first].push_back(i);
  }
  std::vector<size_t> live;
  for (const auto& [step, new_blocks] : starts) {
    std::erase_if(live, [&, at = step](size_t i) { return ranges[i].last < at; });
    live.insert(live.end(), new_blocks.begin(), new_blocks.end());
    std::vector<size_t> by_offset = live;
    std::sort(by_offset.begin(), by_offset.end(),
              [&](size_t a, size_t b) { return plan.offsets[a] < plan.offsets[b]; });
    for (size_t k = 1; k < by_offset.size(); ++k) {
      const size_t prev = by_offset[k - 1];
      const size_t cur = by_offset[k];
      if (plan.offsets[prev] + ranges[prev].bytes > plan.offsets[cur]) {
        return absl::InternalError(absl::StrCat("blocks ", prev, " and ", cur,
                                                " are both live at step ", step,
                                                " and overlap in memory"));
      }
    }
  }
  return absl::OkStatus();
}

int64_t PeakLiveBytes(std::span<const LiveRange> ranges) {
  std::map<int32_t, int64_t> delta;
  for (const LiveRange& r : ranges) {
    delta[r.first] += r.bytes;
    delta[r.last + 1] -= r.bytes;
  }
  int64_t live = 0;
  int64_t peak = 0;
  for (const auto& [step, change] : delta) {
    live += change;
    peak = std::max(peak, live);
  }
  return peak;
}

}  // namespace gradflow::sched
