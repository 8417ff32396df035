// sched::Stream and sched::Event on CUDA (scheduler/stream.h gives the meaning; this is how CUDA
// provides it):
// - Enqueue runs the work item at once on the calling thread: on a GPU an item is a launch
//   (kernels, cuDNN/cuBLAS calls, copies issued on handle()), and its device effect completes
//   later, in stream order. A mutex makes the launches of two threads follow their call order.
// - EnqueueHostCallback goes through cudaLaunchHostFunc, whose function may not call CUDA: it
//   only hands the callback to this stream's callback thread, which runs it (in order). CUDA
//   never reaches a host function behind a faulted kernel, so while callbacks are outstanding
//   that thread checks the stream every 100 ms and, on a fault, runs them all (Synchronize
//   reports the fault): an iteration whose kernel faults fails instead of hanging.
// - Events are cudaEvents without timing; Record/Wait are cudaEventRecord/cudaStreamWaitEvent,
//   so the host never blocks to order two streams.
// - Device timing (profiling): StartTiming anchors the device's clock on this stream
//   (ops/cuda/device_clock.h) and makes it the device's current clock; MarkTime records a pooled
//   timing event at the current end of the stream.
#pragma once

#include <cuda_runtime_api.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ops/cuda/device_clock.h"
#include "scheduler/stream.h"

namespace gradflow::ops::cuda {

class CudaEvent final : public sched::Event {
 public:
  // An event of `device`. Creation failures surface from Record, HostWait and Done.
  explicit CudaEvent(int device);
  ~CudaEvent() override;
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;

  absl::Status HostWait() override;
  bool Done() override;

  cudaEvent_t handle() const { return event_; }
  int device() const { return device_; }
  const absl::Status& creation_status() const { return creation_status_; }

 private:
  int device_;
  cudaEvent_t event_ = nullptr;
  absl::Status creation_status_;
};

struct CudaStreamOptions {
  int device = 0;
  // CUDA stream priority; lower is more urgent (cudaDeviceGetStreamPriorityRange). A
  // communication stream gets a higher priority than compute so that allreduce kernels start as
  // soon as their bucket is ready.
  int priority = 0;
  std::string callback_thread_name = "gf-cuda-cb";  // 15 characters kept
};

class CudaStream final : public sched::Stream {
 public:
  // A new non-blocking stream (it does not synchronize with the legacy default stream) on
  // options.device. FailedPrecondition when there is no usable GPU.
  static absl::StatusOr<std::unique_ptr<CudaStream>> Create(CudaStreamOptions options = {});
  // Waits for everything enqueued (callbacks included), then destroys the stream.
  ~CudaStream() override;
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;

  void Enqueue(sched::Work work) override;
  void EnqueueHostCallback(sched::Work callback) override;
  std::unique_ptr<sched::Event> CreateEvent() override;
  absl::Status Record(sched::Event& event) override;
  absl::Status Wait(sched::Event& event) override;
  // cudaStreamSynchronize, then waits for the callbacks enqueued before the call to have run.
  // Reports the first asynchronous failure of this stream (a failed cudaLaunchHostFunc, a kernel
  // fault).
  absl::Status Synchronize() override;
  // The first asynchronous failure seen so far (a fault found by the callback thread, a failed
  // cudaLaunchHostFunc), without waiting for the device.
  absl::Status AsyncError() override;
  absl::Status StartTiming() override;
  // Inside a work item (Enqueue holds the issue lock, which orders it among launches). Null
  // before StartTiming.
  std::unique_ptr<sched::DeviceTimestamp> MarkTime() override;

  cudaStream_t handle() const { return stream_; }
  int device() const { return device_; }

 private:
  CudaStream(int device, cudaStream_t stream, std::string thread_name);
  static void HostFunction(void* self);
  void CallbackLoop(std::string thread_name);
  void NoteError(absl::Status status);

  const int device_;
  cudaStream_t stream_;

  std::mutex issue_mutex_;  // orders launches of different threads

  std::mutex clock_mutex_;
  std::shared_ptr<const DeviceClock> clock_;  // guarded by clock_mutex_
  std::shared_ptr<TimingEventPool> timing_events_;

  std::mutex callback_mutex_;
  std::condition_variable callbacks_ready_;
  std::condition_variable callbacks_done_;
  std::deque<sched::Work> launched_;  // handed to CUDA, not yet reached by the device
  std::deque<sched::Work> ready_;     // reached by the device, for the callback thread
  uint64_t callbacks_enqueued_ = 0;
  uint64_t callbacks_completed_ = 0;
  bool stopping_ = false;
  bool faulted_ = false;  // the device stopped: host functions will never run
  absl::Status first_error_;
  std::thread callback_thread_;
};

}  // namespace gradflow::ops::cuda
