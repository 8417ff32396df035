#include "scheduler/cpu_stream.h"

#include <omp.h>
#include <pthread.h>

#include <chrono>
#include <utility>

namespace gradflow::sched {
namespace {

class HostTimestamp final : public DeviceTimestamp {
 public:
  absl::StatusOr<std::chrono::steady_clock::time_point> Time() override { return time_; }

 private:
  const std::chrono::steady_clock::time_point time_ = std::chrono::steady_clock::now();
};

// A recorded point: the stream and how many of its items must have run.
class CpuEvent final : public Event {
 public:
  void Set(CpuStream* stream, uint64_t count) {
    std::lock_guard<std::mutex> lock(mutex_);
    stream_ = stream;
    count_ = count;
  }
  std::pair<CpuStream*, uint64_t> Get() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {stream_, count_};
  }
  absl::Status HostWait() override {
    auto [stream, count] = Get();
    if (stream != nullptr) stream->WaitForCompleted(count);
    return absl::OkStatus();
  }
  bool Done() override {
    auto [stream, count] = Get();
    return stream == nullptr || stream->HasCompleted(count);
  }

 private:
  std::mutex mutex_;
  CpuStream* stream_ = nullptr;
  uint64_t count_ = 0;
};

}  // namespace

CpuStream::CpuStream(CpuStreamOptions options)
    : thread_([this, options = std::move(options)] { Loop(options); }) {}

CpuStream::~CpuStream() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_one();
  thread_.join();
}

void CpuStream::Loop(CpuStreamOptions options) {
  pthread_setname_np(pthread_self(), options.thread_name.substr(0, 15).c_str());
  if (options.omp_threads > 0) omp_set_num_threads(options.omp_threads);
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    work_ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything enqueued has run
    Work work = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    std::move(work)();
    lock.lock();
    ++completed_;
    work_done_.notify_all();
  }
}

void CpuStream::Enqueue(Work work) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(work));
    ++enqueued_;
  }
  work_ready_.notify_one();
}

void CpuStream::WaitForCompleted(uint64_t count) {
  std::unique_lock<std::mutex> lock(mutex_);
  work_done_.wait(lock, [this, count] { return completed_ >= count; });
}

bool CpuStream::HasCompleted(uint64_t count) {
  std::lock_guard<std::mutex> lock(mutex_);
  return completed_ >= count;
}

std::unique_ptr<Event> CpuStream::CreateEvent() { return std::make_unique<CpuEvent>(); }

absl::Status CpuStream::Record(Event& event) {
  auto* cpu_event = dynamic_cast<CpuEvent*>(&event);
  if (cpu_event == nullptr) {
    return absl::InvalidArgumentError("a CPU stream can only record CPU events");
  }
  uint64_t count = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    count = enqueued_;
  }
  cpu_event->Set(this, count);
  return absl::OkStatus();
}

absl::Status CpuStream::Wait(Event& event) {
  auto* cpu_event = dynamic_cast<CpuEvent*>(&event);
  if (cpu_event == nullptr) {
    return absl::InvalidArgumentError("a CPU stream can only wait on CPU events");
  }
  auto [stream, count] = cpu_event->Get();
  if (stream == nullptr || stream == this) return absl::OkStatus();  // in order already
  // Blocks this stream's thread, not the host thread that issued the wait.
  Enqueue([stream = stream, count = count] { stream->WaitForCompleted(count); });
  return absl::OkStatus();
}

absl::Status CpuStream::Synchronize() {
  uint64_t count = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    count = enqueued_;
  }
  WaitForCompleted(count);
  return absl::OkStatus();
}

std::unique_ptr<DeviceTimestamp> CpuStream::MarkTime() { return std::make_unique<HostTimestamp>(); }

}  // namespace gradflow::sched
