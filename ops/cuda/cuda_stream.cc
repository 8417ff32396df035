#include "ops/cuda/cuda_stream.h"

#include <pthread.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/device.h"

namespace gradflow::ops::cuda {

CudaEvent::CudaEvent(int device) : device_(device) {
  creation_status_ = CudaStatus(cudaSetDevice(device), "cudaSetDevice");
  if (creation_status_.ok()) {
    creation_status_ = CudaStatus(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming),
                                  "cudaEventCreateWithFlags");
  }
}

CudaEvent::~CudaEvent() {
  if (event_ != nullptr) cudaEventDestroy(event_);
}

absl::Status CudaEvent::HostWait() {
  GF_CUDA_RETURN_IF_ERROR(creation_status_);
  return CudaStatus(cudaEventSynchronize(event_), "cudaEventSynchronize");
}

bool CudaEvent::Done() {
  // A never-recorded event reports cudaSuccess: complete, as the interface asks.
  return creation_status_.ok() && cudaEventQuery(event_) == cudaSuccess;
}

absl::StatusOr<std::unique_ptr<CudaStream>> CudaStream::Create(CudaStreamOptions options) {
  GF_CUDA_RETURN_IF_ERROR(RequireCudaDevice());
  GF_CUDA_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(options.device),
                                     absl::StrCat("cudaSetDevice(", options.device, ")").c_str()));
  cudaStream_t stream = nullptr;
  GF_CUDA_RETURN_IF_ERROR(
      CudaStatus(cudaStreamCreateWithPriority(&stream, cudaStreamNonBlocking, options.priority),
                 "cudaStreamCreateWithPriority"));
  return std::unique_ptr<CudaStream>(
      new CudaStream(options.device, stream, std::move(options.callback_thread_name)));
}

CudaStream::CudaStream(int device, cudaStream_t stream, std::string thread_name)
    : device_(device),
      stream_(stream),
      timing_events_(std::make_shared<TimingEventPool>(device)),
      callback_thread_([this, name = std::move(thread_name)] { CallbackLoop(name); }) {}

CudaStream::~CudaStream() {
  Synchronize().IgnoreError();  // a destructor cannot report; waiting keeps callbacks safe
  {
    std::lock_guard<std::mutex> lock(callback_mutex_);
    stopping_ = true;
  }
  callbacks_ready_.notify_all();
  callback_thread_.join();
  cudaStreamDestroy(stream_);
}

void CudaStream::NoteError(absl::Status status) {
  std::lock_guard<std::mutex> lock(callback_mutex_);
  if (first_error_.ok()) first_error_ = std::move(status);
}

void CudaStream::Enqueue(sched::Work work) {
  std::lock_guard<std::mutex> lock(issue_mutex_);
  // The CUDA device is per host thread; the work's launches must land on this stream's device.
  // cudaSetDevice fails on a context that already faulted: the work still runs, so that its own
  // calls fail and its caller (an executor node) reports the error instead of skipping silently.
  if (absl::Status s = CudaStatus(cudaSetDevice(device_), "cudaSetDevice"); !s.ok()) {
    NoteError(std::move(s));
  }
  std::move(work)();
}

void CudaStream::HostFunction(void* self) {
  // Runs on a CUDA driver thread, which must not call CUDA: only hand the callback over.
  auto* stream = static_cast<CudaStream*>(self);
  {
    std::lock_guard<std::mutex> lock(stream->callback_mutex_);
    // After a fault every launched callback was handed over already.
    if (stream->faulted_ || stream->launched_.empty()) return;
    stream->ready_.push_back(std::move(stream->launched_.front()));
    stream->launched_.pop_front();
  }
  stream->callbacks_ready_.notify_one();
}

void CudaStream::EnqueueHostCallback(sched::Work callback) {
  std::lock_guard<std::mutex> issue(issue_mutex_);
  {
    std::lock_guard<std::mutex> lock(callback_mutex_);
    ++callbacks_enqueued_;
    if (faulted_) {
      // The device will not reach it: run it now, as for every callback launched before.
      ready_.push_back(std::move(callback));
      callbacks_ready_.notify_one();
      return;
    }
    launched_.push_back(std::move(callback));
  }
  absl::Status status = CudaStatus(cudaSetDevice(device_), "cudaSetDevice");
  if (status.ok()) {
    status = CudaStatus(cudaLaunchHostFunc(stream_, &CudaStream::HostFunction, this),
                        "cudaLaunchHostFunc");
  }
  if (!status.ok()) {
    // Run it anyway, so that nobody waits forever on a callback that will never come;
    // Synchronize reports the failure.
    {
      std::lock_guard<std::mutex> lock(callback_mutex_);
      // A fault check in between may have handed it over with the others already.
      if (!faulted_) {
        ready_.push_back(std::move(launched_.back()));
        launched_.pop_back();
      }
      if (first_error_.ok()) first_error_ = status;
    }
    callbacks_ready_.notify_one();
  }
}

void CudaStream::CallbackLoop(std::string thread_name) {
  pthread_setname_np(pthread_self(), thread_name.substr(0, 15).c_str());
  cudaSetDevice(device_);  // for the fault check's cudaStreamQuery
  std::unique_lock<std::mutex> lock(callback_mutex_);
  while (true) {
    // CUDA never runs a host function once a kernel or copy before it has faulted (the context's
    // error is sticky), and whoever waits for one (the executor's end of an iteration) would wait
    // forever: while callbacks are outstanding, the stream is checked every 100 ms, and on a
    // fault they are all run, with the error kept for Synchronize.
    if (!callbacks_ready_.wait_for(lock, std::chrono::milliseconds(100),
                                   [this] { return stopping_ || !ready_.empty(); })) {
      if (launched_.empty() || faulted_) continue;
      lock.unlock();
      const cudaError_t state = cudaStreamQuery(stream_);
      lock.lock();
      // Unloading: the process is exiting, not a fault of this stream's work.
      if (state != cudaSuccess && state != cudaErrorNotReady && state != cudaErrorCudartUnloading &&
          !faulted_) {
        faulted_ = true;
        if (first_error_.ok()) {
          first_error_ = CudaStatus(state, "a kernel or copy on this stream");
        }
        while (!launched_.empty()) {
          ready_.push_back(std::move(launched_.front()));
          launched_.pop_front();
        }
      }
      continue;
    }
    if (ready_.empty()) return;  // stopping, and every callback that was reached has run
    sched::Work work = std::move(ready_.front());
    ready_.pop_front();
    lock.unlock();
    std::move(work)();
    lock.lock();
    ++callbacks_completed_;
    callbacks_done_.notify_all();
  }
}

std::unique_ptr<sched::Event> CudaStream::CreateEvent() {
  return std::make_unique<CudaEvent>(device_);
}

absl::Status CudaStream::Record(sched::Event& event) {
  auto* cuda_event = dynamic_cast<CudaEvent*>(&event);
  if (cuda_event == nullptr) {
    return absl::InvalidArgumentError("a CUDA stream can only record CUDA events");
  }
  if (cuda_event->device() != device_) {
    return absl::InvalidArgumentError(absl::StrCat("an event of CUDA device ", cuda_event->device(),
                                                   " cannot be recorded on a stream of device ",
                                                   device_));
  }
  GF_CUDA_RETURN_IF_ERROR(cuda_event->creation_status());
  std::lock_guard<std::mutex> lock(issue_mutex_);
  GF_CUDA_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(device_), "cudaSetDevice"));
  return CudaStatus(cudaEventRecord(cuda_event->handle(), stream_), "cudaEventRecord");
}

absl::Status CudaStream::Wait(sched::Event& event) {
  auto* cuda_event = dynamic_cast<CudaEvent*>(&event);
  if (cuda_event == nullptr) {
    return absl::InvalidArgumentError("a CUDA stream can only wait on CUDA events");
  }
  GF_CUDA_RETURN_IF_ERROR(cuda_event->creation_status());
  std::lock_guard<std::mutex> lock(issue_mutex_);
  GF_CUDA_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(device_), "cudaSetDevice"));
  // CUDA orders across devices too, so another device's event is fine here.
  return CudaStatus(cudaStreamWaitEvent(stream_, cuda_event->handle(), 0), "cudaStreamWaitEvent");
}

absl::Status CudaStream::Synchronize() {
  uint64_t target = 0;
  {
    std::lock_guard<std::mutex> lock(callback_mutex_);
    target = callbacks_enqueued_;
  }
  absl::Status status = CudaStatus(cudaSetDevice(device_), "cudaSetDevice");
  if (status.ok()) status = CudaStatus(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  std::unique_lock<std::mutex> lock(callback_mutex_);
  // A failed stream never reaches its pending host functions: do not wait for them then.
  if (status.ok()) {
    callbacks_done_.wait(lock, [this, target] { return callbacks_completed_ >= target; });
  }
  if (!first_error_.ok()) return first_error_;
  return status;
}

absl::Status CudaStream::StartTiming() {
  std::shared_ptr<const DeviceClock> clock;
  {
    std::lock_guard<std::mutex> lock(issue_mutex_);
    absl::StatusOr<std::shared_ptr<const DeviceClock>> anchored =
        DeviceClock::Anchor(device_, stream_);
    if (!anchored.ok()) return anchored.status();
    clock = *std::move(anchored);
  }
  SetCurrentDeviceClock(device_, clock);
  std::lock_guard<std::mutex> lock(clock_mutex_);
  clock_ = std::move(clock);
  return absl::OkStatus();
}

std::unique_ptr<sched::DeviceTimestamp> CudaStream::MarkTime() {
  std::shared_ptr<const DeviceClock> clock;
  {
    std::lock_guard<std::mutex> lock(clock_mutex_);
    clock = clock_;
  }
  return timing_events_->Mark(std::move(clock), stream_);
}

absl::Status CudaStream::AsyncError() {
  std::lock_guard<std::mutex> lock(callback_mutex_);
  return first_error_;
}

}  // namespace gradflow::ops::cuda
