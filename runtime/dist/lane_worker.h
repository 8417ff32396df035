// One thread running a FIFO queue of tasks: a lane's operations run one at a time, in the order
// they were issued, which is what keeps every rank's Gloo slots and messages in step.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace gradflow::runtime::dist {

class LaneWorker {
 public:
  struct Task {
    std::function<void()> run;
    std::function<void()> cancel;  // instead of run, when the worker stops first
  };

  LaneWorker();
  // Lets the running task finish, cancels the queued ones (on the worker thread) and joins.
  ~LaneWorker();
  LaneWorker(const LaneWorker&) = delete;
  LaneWorker& operator=(const LaneWorker&) = delete;

  void Post(Task task);

 private:
  void Loop();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Task> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace gradflow::runtime::dist
