#include "runtime/dist/lane_worker.h"

#include <utility>

namespace gradflow::runtime::dist {

LaneWorker::LaneWorker() : thread_([this] { Loop(); }) {}

LaneWorker::~LaneWorker() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void LaneWorker::Post(Task task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(task));
  }
  wake_.notify_one();
}

void LaneWorker::Loop() {
  for (;;) {
    Task task;
    bool cancel = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      task = std::move(queue_.front());
      queue_.pop_front();
      cancel = stopping_;
    }
    if (cancel) {
      if (task.cancel) task.cancel();
    } else if (task.run) {
      task.run();
    }
  }
}

}  // namespace gradflow::runtime::dist
