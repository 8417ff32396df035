// Device timestamps on the host's steady clock, for profiling GPU work. The host only issues
// kernels, so its own clock tells when a launch happened, not when the kernel ran. A CUDA event
// created with timing measures milliseconds between two events of one device; an anchor event
// whose completion the host has waited for ties that scale to the host's clock, within the few
// microseconds the host takes to see the anchor complete.
//
// A clock is immutable once anchored. Anchoring again (each traced iteration) makes a new one;
// timestamps keep the clock they were taken under, so none is ever converted with another's
// anchor, and the float milliseconds CUDA reports stay short (sub-microsecond).
#pragma once

#include <cuda_runtime_api.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "scheduler/stream.h"

namespace gradflow::ops::cuda {

class DeviceClock {
 public:
  using Clock = std::chrono::steady_clock;

  // Records an anchor on `stream` (of `device`) and waits for it, so everything already issued
  // to the stream runs first. Call only where the host may wait (between iterations).
  static absl::StatusOr<std::shared_ptr<const DeviceClock>> Anchor(int device, cudaStream_t stream);
  ~DeviceClock();
  DeviceClock(const DeviceClock&) = delete;
  DeviceClock& operator=(const DeviceClock&) = delete;

  // When the device reached `event`: a timing event of this device that has completed.
  absl::StatusOr<Clock::time_point> TimeOf(cudaEvent_t event) const;
  int device() const { return device_; }

 private:
  DeviceClock(int device, cudaEvent_t anchor, Clock::time_point host)
      : device_(device), anchor_(anchor), host_(host) {}

  const int device_;
  const cudaEvent_t anchor_;
  const Clock::time_point host_;
};

// The clock a profiler anchored last for `device` (null before any): code that issues work on
// streams of its own (NCCL's lanes) times it while a profiler times the device's streams.
std::shared_ptr<const DeviceClock> CurrentDeviceClock(int device);
void SetCurrentDeviceClock(int device, std::shared_ptr<const DeviceClock> clock);

// Timing events of one device, reused: creating a CUDA event costs microseconds that would land
// inside the traced iterations.
class TimingEventPool : public std::enable_shared_from_this<TimingEventPool> {
 public:
  explicit TimingEventPool(int device) : device_(device) {}
  ~TimingEventPool();
  TimingEventPool(const TimingEventPool&) = delete;
  TimingEventPool& operator=(const TimingEventPool&) = delete;

  absl::StatusOr<cudaEvent_t> Acquire();
  void Release(cudaEvent_t event);

  // A timestamp at the current end of `stream` under `clock`: records a pooled event there (the
  // caller orders this against other launches on the stream, e.g. by holding its issue lock).
  // Null if the event cannot be recorded: profiling never fails the work it observes.
  std::unique_ptr<sched::DeviceTimestamp> Mark(std::shared_ptr<const DeviceClock> clock,
                                               cudaStream_t stream);

 private:
  const int device_;
  std::mutex mutex_;
  std::vector<cudaEvent_t> free_;
};

}  // namespace gradflow::ops::cuda
