// The executor: runs a DAG of work items every iteration on oneTBB and the device streams.
//
// A node whose predecessors have all been accounted for becomes a TBB task. A host node's task
// runs its work on a TBB worker. A stream node's task only issues: it enqueues the node's work on
// its stream (after waiting, stream-side, on the events of predecessors on other streams), so
// the host never blocks on a device inside an iteration. When does a predecessor count down?
//   stream -> same or other stream: when the predecessor has been issued (stream order or an
//                                    event orders the two on the device)
//   stream -> host:                  when the predecessor has completed (a host callback)
//   host   -> anything:              when the predecessor's work has returned
// Each node runs at most once per iteration and only after every predecessor has finished.
//
// Errors: the first node whose work fails cancels the iteration. Nodes not yet started are
// skipped (their bookkeeping still runs, so nothing waits forever) and Run returns the error
// prefixed with "node '<name>': ".
//
// Thread budget (the rule the runtime follows when it sizes a device):
//   - `threads` cores belong to the device's compute stream: its one thread starts every OpenMP
//     parallel region (oneDNN kernels, the SGD update) with a team of `threads`
//     (CpuStreamOptions::omp_threads). No other OpenMP team exists in the process.
//   - ExecutorOptions::host_threads (default 1, at most a few) is the number of slots of this
//     executor's tbb::task_arena. Host tasks are short bookkeeping (issue a node, start a
//     collective, release successors) and sleep otherwise, so they are not counted against the
//     cores; anything that computes for long (e.g. data decoding) must have its own arena and
//     budget, taken out of `threads`.
//   - oneTBB caps all its workers at the process's hardware concurrency minus one unless a
//     tbb::global_control raises it; an arena never gets more workers than that.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "oneapi/tbb/task_arena.h"
#include "scheduler/stream.h"

namespace gradflow::sched {

inline constexpr int32_t kHostStream = -1;

using NodeWork = std::function<absl::Status()>;

struct TaskNode {
  std::string name;
  int32_t stream = kHostStream;  // index into the executor's streams, or kHostStream
  NodeWork work;                 // empty: a join point that only orders other nodes
};

// The DAG, built once and handed to the executor. Node ids are dense, in insertion order.
class TaskGraph {
 public:
  int32_t AddNode(std::string name, int32_t stream, NodeWork work);
  // `to` starts only after `from` has finished. Duplicates are harmless; ranges and cycles are
  // checked by Executor::Create.
  void AddEdge(int32_t from, int32_t to);

  size_t size() const { return nodes_.size(); }
  const TaskNode& node(int32_t id) const { return nodes_[id]; }
  const std::vector<std::pair<int32_t, int32_t>>& edges() const { return edges_; }

 private:
  friend class Executor;
  std::vector<TaskNode> nodes_;
  std::vector<std::pair<int32_t, int32_t>> edges_;
};

struct NodeEvent {
  int32_t node = 0;
  std::string_view name;
  int32_t stream = kHostStream;
  int64_t iteration = 0;
  std::thread::id thread;
  std::chrono::steady_clock::time_point time;
};

// When a stream node's work ran on its device, from the device's own timestamps.
struct DeviceSpan {
  int32_t node = 0;
  std::string_view name;
  int32_t stream = 0;
  int64_t iteration = 0;
  std::chrono::steady_clock::time_point start;
  std::chrono::steady_clock::time_point end;
};

// Sees every node that runs (skipped nodes of a failed iteration are not reported). Called
// concurrently from stream threads and TBB workers: implementations must be thread-safe and
// quick. On a CPU stream the start and end are those of the computation; a GPU stream reports
// the issue on the host, and its device times come as DeviceSpans to observers that ask.
class ExecutionObserver {
 public:
  virtual ~ExecutionObserver() = default;
  virtual void OnIterationStart(int64_t /*iteration*/) {}
  virtual void OnNodeStart(const NodeEvent& /*event*/) {}
  virtual void OnNodeEnd(const NodeEvent& /*event*/) {}
  // Asked before each iteration. Timing costs two device timestamps per stream node and a wait
  // for the streams to drain before the iteration, so profilers ask only for traced iterations.
  virtual bool WantsDeviceTimes(int64_t /*iteration*/) { return false; }
  // Each stream node that ran in an iteration that asked, once the devices have finished it;
  // from Run's thread, before OnIterationEnd.
  virtual void OnDeviceSpan(const DeviceSpan& /*span*/) {}
  virtual void OnIterationEnd(int64_t /*iteration*/, const absl::Status& /*status*/) {}
};

struct ExecutorOptions {
  int host_threads = 1;  // slots of the executor's tbb::task_arena (see the budget rule above)
};

class Executor {
 public:
  // Checks node streams and edges (in range, acyclic: a cycle is named) and prepares the events
  // that order nodes across streams. `streams[i]` runs the nodes of stream i and must outlive
  // the executor.
  static absl::StatusOr<std::unique_ptr<Executor>> Create(TaskGraph graph,
                                                          std::vector<Stream*> streams,
                                                          ExecutorOptions options = {});
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Both only between iterations. The observer must outlive the executor.
  void AddObserver(ExecutionObserver* observer);
  // `callback` runs every iteration right after `node` has completed successfully (after its
  // stream has finished it), before its completion releases host successors. It runs on a stream
  // thread or TBB worker and must be short (e.g. start an asynchronous allreduce).
  absl::Status OnNodeComplete(int32_t node, std::function<void()> callback);

  // Runs one iteration and returns when every node has finished or been skipped. One Run at a
  // time (FailedPrecondition otherwise); callers may run again after an error.
  absl::Status Run();

  size_t size() const { return nodes_.size(); }
  int64_t iterations() const { return iteration_; }

 private:
  struct Node {
    TaskNode task;
    int32_t predecessors = 0;
    std::vector<int32_t> release_on_issue;     // stream successors of a stream node
    std::vector<int32_t> release_on_complete;  // everything else
    std::vector<Event*> wait_before_issue;     // events of predecessors on other streams
    std::unique_ptr<Event> event;              // recorded after issue when another stream waits
    std::vector<std::function<void()>> on_complete;
    // A stream node gets a host callback only when something waits on the host for its
    // completion; each stream's last node of an iteration gets one regardless, so that Run
    // returns only once the devices have finished (a CUDA host function per kernel would hold
    // the stream for a host thread's wake-up each time).
    bool completion_callback = false;
    std::unique_ptr<DeviceTimestamp> device_start;  // timed iterations only
    std::unique_ptr<DeviceTimestamp> device_end;
  };

  Executor(std::vector<Node> nodes, std::vector<Stream*> streams, ExecutorOptions options);

  void Release(int32_t node);
  void Start(int32_t node);     // a TBB task
  void RunWork(int32_t node);   // the node's work, on its stream or the TBB worker
  void Complete(int32_t node);  // after the work has finished (host callback for streams)
  void Fail(int32_t node, const absl::Status& status);
  void Retire();  // one of the iteration's tokens is done
  void Notify(bool start, int32_t node);
  void ReportDeviceSpans();

  std::vector<Node> nodes_;
  std::vector<Stream*> streams_;
  std::vector<ExecutionObserver*> observers_;
  std::unique_ptr<tbb::task_arena> arena_;
  std::vector<int32_t> roots_;
  std::vector<int32_t> nodes_per_stream_;

  // Per iteration.
  std::unique_ptr<std::atomic<int32_t>[]> pending_;
  std::unique_ptr<std::atomic<int32_t>[]> issued_per_stream_;
  std::vector<bool> timed_streams_;  // this iteration: streams whose clocks were tied to the host
  bool timing_ = false;              // this iteration: an observer asked for device times
  std::atomic<int64_t> tokens_left_{0};
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> running_{false};
  int64_t iteration_ = 0;
  std::mutex mutex_;
  std::condition_variable finished_;
  bool done_ = false;   // guarded by mutex_
  absl::Status error_;  // guarded by mutex_
};

}  // namespace gradflow::sched
