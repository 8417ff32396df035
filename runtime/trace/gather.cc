#include "runtime/trace/gather.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "runtime/trace/chrome_json.h"

namespace gradflow::runtime::trace {
namespace {

using Clock = std::chrono::steady_clock;

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// Raw bytes in floats, for Broadcast (which copies bits and never computes on them).
std::vector<float> ToFloats(const void* bytes, size_t size) {
  std::vector<float> floats((size + sizeof(float) - 1) / sizeof(float), 0.0f);
  if (size > 0) std::memcpy(floats.data(), bytes, size);
  return floats;
}

// AllreduceSum computes on the values: a size is split into 12-bit digits, which floats add
// exactly (a sum of one non-zero digit and zeros).
constexpr int kSizeDigits = 3;
constexpr int64_t kDigitBase = 4096;
constexpr int64_t kMaxGatherBytes = kDigitBase * kDigitBase * kDigitBase;

absl::Status Prefixed(const absl::Status& status, absl::string_view what) {
  return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
}

// Every rank's value of one int64, on every rank (a Broadcast from each in turn).
absl::StatusOr<std::vector<int64_t>> AllGatherInt64(dist::Collectives& collectives, int64_t mine) {
  std::vector<int64_t> all(collectives.size(), 0);
  for (int root = 0; root < collectives.size(); ++root) {
    int64_t value = root == collectives.rank() ? mine : 0;
    std::vector<float> buffer = ToFloats(&value, sizeof(value));
    if (absl::Status s = dist::BroadcastSync(collectives, buffer, root); !s.ok()) return s;
    std::memcpy(&all[root], buffer.data(), sizeof(int64_t));
  }
  return all;
}

}  // namespace

absl::StatusOr<double> MeasureClockOffsetMicros(dist::Collectives& collectives, int rounds) {
  if (rounds < 1) return absl::InvalidArgumentError("clock offset: rounds must be at least 1");
  double best_offset_us = 0;
  double best_width_us = std::numeric_limits<double>::infinity();
  for (int round = 0; round < rounds; ++round) {
    const int64_t entered = NowNanos();
    if (absl::Status s = dist::BarrierSync(collectives); !s.ok()) {
      return Prefixed(s, "measuring clock offsets");
    }
    int64_t root_now = collectives.rank() == 0 ? NowNanos() : 0;
    std::vector<float> buffer = ToFloats(&root_now, sizeof(root_now));
    if (absl::Status s = dist::BroadcastSync(collectives, buffer, 0); !s.ok()) {
      return Prefixed(s, "measuring clock offsets");
    }
    const int64_t received = NowNanos();
    std::memcpy(&root_now, buffer.data(), sizeof(root_now));
    const double width_us = static_cast<double>(received - entered) / 1000.0;
    if (width_us < best_width_us) {
      best_width_us = width_us;
      // Rank 0's reading taken as the middle of [entered, received] on this rank's clock.
      best_offset_us = (static_cast<double>(root_now) -
                        (static_cast<double>(entered) + static_cast<double>(received)) / 2.0) /
                       1000.0;
    }
  }
  return collectives.rank() == 0 ? 0.0 : best_offset_us;
}

absl::Status GatherToRoot(dist::Collectives& collectives, const std::string& mine,
                          std::vector<std::string>* all_on_root) {
  const int size = collectives.size();
  const int rank = collectives.rank();
  const int64_t my_size = static_cast<int64_t>(mine.size());
  // Every rank takes part in every step even when its own part is too large, so no rank is left
  // waiting in a collective; the error is returned afterwards.
  const bool too_large = my_size >= kMaxGatherBytes;
  std::vector<float> sizes(static_cast<size_t>(size) * kSizeDigits, 0.0f);
  int64_t remaining = too_large ? 0 : my_size;
  for (int d = 0; d < kSizeDigits; ++d) {
    sizes[rank * kSizeDigits + d] = static_cast<float>(remaining % kDigitBase);
    remaining /= kDigitBase;
  }
  if (absl::Status s = dist::AllreduceSumSync(collectives, sizes); !s.ok()) {
    return Prefixed(s, "gathering traces (sizes)");
  }
  if (rank == 0 && all_on_root != nullptr) all_on_root->assign(size, std::string());
  for (int root = 0; root < size; ++root) {
    int64_t bytes = 0;
    for (int d = kSizeDigits - 1; d >= 0; --d) {
      bytes = bytes * kDigitBase + static_cast<int64_t>(sizes[root * kSizeDigits + d]);
    }
    if (root == 0) {
      if (rank == 0 && all_on_root != nullptr) (*all_on_root)[0] = mine;
      continue;  // rank 0's own part does not travel
    }
    if (bytes == 0) continue;
    std::vector<float> buffer = root == rank ? ToFloats(mine.data(), mine.size())
                                             : std::vector<float>((bytes + 3) / 4, 0.0f);
    if (absl::Status s = dist::BroadcastSync(collectives, buffer, root); !s.ok()) {
      return Prefixed(s, absl::StrCat("gathering the trace of node ", root));
    }
    if (rank == 0 && all_on_root != nullptr) {
      (*all_on_root)[root].assign(reinterpret_cast<const char*>(buffer.data()),
                                  static_cast<size_t>(bytes));
    }
  }
  if (too_large) {
    return absl::ResourceExhaustedError(absl::StrCat("node ", rank, "'s trace is ", my_size,
                                                     " bytes, more than can be gathered (",
                                                     kMaxGatherBytes, "): trace fewer iterations"));
  }
  return absl::OkStatus();
}

absl::Status WriteMergedTrace(dist::Collectives& collectives, const Tracer& tracer,
                              double clock_offset_us, const std::string& path) {
  // Time 0 is the earliest event of any node, on rank 0's clock (nanoseconds for the exchange).
  const double first_us = tracer.FirstEventMicros() + clock_offset_us;
  absl::StatusOr<std::vector<int64_t>> firsts =
      AllGatherInt64(collectives, static_cast<int64_t>(std::floor(first_us * 1000.0)));
  if (!firsts.ok()) return Prefixed(firsts.status(), "merging traces");
  const double origin_us =
      static_cast<double>(*std::min_element(firsts->begin(), firsts->end())) / 1000.0;
  absl::StatusOr<std::vector<int64_t>> offsets =
      AllGatherInt64(collectives, static_cast<int64_t>(std::llround(clock_offset_us * 1000.0)));
  if (!offsets.ok()) return Prefixed(offsets.status(), "merging traces");

  std::vector<std::string> all;
  if (absl::Status s =
          GatherToRoot(collectives, tracer.EventsJson(origin_us, clock_offset_us), &all);
      !s.ok()) {
    return s;
  }
  if (collectives.rank() != 0) return absl::OkStatus();
  std::vector<double> offsets_us;
  for (int64_t ns : *offsets) offsets_us.push_back(static_cast<double>(ns) / 1000.0);
  return WriteTraceFile(path, all, tracer.OtherDataJson(collectives.size(), offsets_us));
}

}  // namespace gradflow::runtime::trace
