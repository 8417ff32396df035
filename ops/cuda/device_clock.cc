#include "ops/cuda/device_clock.h"

#include <map>
#include <utility>

#include "ops/cuda/cuda_check.h"

namespace gradflow::ops::cuda {
namespace {

std::mutex& CurrentClocksMutex() {
  static std::mutex mutex;
  return mutex;
}

std::map<int, std::shared_ptr<const DeviceClock>>& CurrentClocks() {
  static auto* clocks = new std::map<int, std::shared_ptr<const DeviceClock>>();
  return *clocks;
}

// A pooled event recorded on a stream; its time is read once the stream has passed it.
class CudaTimestamp final : public sched::DeviceTimestamp {
 public:
  CudaTimestamp(std::shared_ptr<const DeviceClock> clock, std::shared_ptr<TimingEventPool> pool,
                cudaEvent_t event)
      : clock_(std::move(clock)), pool_(std::move(pool)), event_(event) {}
  ~CudaTimestamp() override { pool_->Release(event_); }

  absl::StatusOr<std::chrono::steady_clock::time_point> Time() override {
    const cudaError_t state = cudaEventQuery(event_);
    if (state == cudaErrorNotReady) {
      return absl::FailedPreconditionError("the device has not reached this timestamp yet");
    }
    GF_CUDA_RETURN_IF_ERROR(CudaStatus(state, "cudaEventQuery (device timestamp)"));
    return clock_->TimeOf(event_);
  }

 private:
  const std::shared_ptr<const DeviceClock> clock_;
  const std::shared_ptr<TimingEventPool> pool_;
  const cudaEvent_t event_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<const DeviceClock>> DeviceClock::Anchor(int device,
                                                                       cudaStream_t stream) {
  GF_CUDA_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(device), "cudaSetDevice"));
  cudaEvent_t anchor = nullptr;
  GF_CUDA_RETURN_IF_ERROR(
      CudaStatus(cudaEventCreateWithFlags(&anchor, cudaEventDefault), "cudaEventCreate (anchor)"));
  absl::Status status = CudaStatus(cudaEventRecord(anchor, stream), "cudaEventRecord (anchor)");
  if (status.ok()) {
    status = CudaStatus(cudaEventSynchronize(anchor), "cudaEventSynchronize (anchor)");
  }
  // Read right after the wait returns: the anchor completed at most the wake-up before this.
  const Clock::time_point host = Clock::now();
  if (!status.ok()) {
    cudaEventDestroy(anchor);
    return status;
  }
  return std::shared_ptr<const DeviceClock>(new DeviceClock(device, anchor, host));
}

DeviceClock::~DeviceClock() { cudaEventDestroy(anchor_); }

absl::StatusOr<DeviceClock::Clock::time_point> DeviceClock::TimeOf(cudaEvent_t event) const {
  float milliseconds = 0;
  GF_CUDA_RETURN_IF_ERROR(
      CudaStatus(cudaEventElapsedTime(&milliseconds, anchor_, event), "cudaEventElapsedTime"));
  return host_ + std::chrono::duration_cast<Clock::duration>(
                     std::chrono::duration<double, std::milli>(milliseconds));
}

std::shared_ptr<const DeviceClock> CurrentDeviceClock(int device) {
  std::lock_guard lock(CurrentClocksMutex());
  auto it = CurrentClocks().find(device);
  return it == CurrentClocks().end() ? nullptr : it->second;
}

void SetCurrentDeviceClock(int device, std::shared_ptr<const DeviceClock> clock) {
  std::lock_guard lock(CurrentClocksMutex());
  CurrentClocks()[device] = std::move(clock);
}

TimingEventPool::~TimingEventPool() {
  for (cudaEvent_t event : free_) cudaEventDestroy(event);
}

absl::StatusOr<cudaEvent_t> TimingEventPool::Acquire() {
  {
    std::lock_guard lock(mutex_);
    if (!free_.empty()) {
      cudaEvent_t event = free_.back();
      free_.pop_back();
      return event;
    }
  }
  GF_CUDA_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(device_), "cudaSetDevice"));
  cudaEvent_t event = nullptr;
  GF_CUDA_RETURN_IF_ERROR(
      CudaStatus(cudaEventCreateWithFlags(&event, cudaEventDefault), "cudaEventCreate (timing)"));
  return event;
}

void TimingEventPool::Release(cudaEvent_t event) {
  std::lock_guard lock(mutex_);
  free_.push_back(event);
}

std::unique_ptr<sched::DeviceTimestamp> TimingEventPool::Mark(
    std::shared_ptr<const DeviceClock> clock, cudaStream_t stream) {
  if (clock == nullptr) return nullptr;
  absl::StatusOr<cudaEvent_t> event = Acquire();
  if (!event.ok()) return nullptr;
  if (!CudaStatus(cudaEventRecord(*event, stream), "cudaEventRecord (timing)").ok()) {
    Release(*event);
    return nullptr;
  }
  return std::make_unique<CudaTimestamp>(std::move(clock), shared_from_this(), *event);
}

}  // namespace gradflow::ops::cuda
