// The CPU stream: one dedicated thread per stream runs its work items in order. The compute
// stream's thread is where oneDNN's OpenMP team lives: every OpenMP parallel region (kernels and
// the SGD update) starts from it, so exactly one team of `omp_threads` exists per device.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "scheduler/stream.h"

namespace gradflow::sched {

struct CpuStreamOptions {
  // OpenMP team size for parallel regions started on this stream's thread (OpenMP's thread count
  // is per thread, so it must be set there). 0 leaves the OpenMP default.
  int omp_threads = 0;
  std::string thread_name = "gf-stream";  // shown by debuggers and profilers (15 chars kept)
};

class CpuStream final : public Stream {
 public:
  explicit CpuStream(CpuStreamOptions options = {});
  // Runs every item already enqueued, then stops the thread.
  ~CpuStream() override;
  CpuStream(const CpuStream&) = delete;
  CpuStream& operator=(const CpuStream&) = delete;

  void Enqueue(Work work) override;
  // Same thread, same order: on the CPU an item has completed when it returns.
  void EnqueueHostCallback(Work callback) override { Enqueue(std::move(callback)); }
  std::unique_ptr<Event> CreateEvent() override;
  absl::Status Record(Event& event) override;
  absl::Status Wait(Event& event) override;
  absl::Status Synchronize() override;
  // Inside a work item the stream's thread is running it: the host's clock is the device's.
  std::unique_ptr<DeviceTimestamp> MarkTime() override;

  // Blocks until the first `count` items ever enqueued have run.
  void WaitForCompleted(uint64_t count);
  bool HasCompleted(uint64_t count);
  std::thread::id thread_id() const { return thread_.get_id(); }

 private:
  void Loop(CpuStreamOptions options);

  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  std::deque<Work> queue_;
  uint64_t enqueued_ = 0;
  uint64_t completed_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace gradflow::sched
