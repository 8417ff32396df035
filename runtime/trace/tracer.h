// Records one replica's training as Chrome Trace Event JSON (the DESIGN notes, "Tracing").
//
// The tracer observes the executor (one `X` event per op step and per added task, on the thread
// that ran it; on a GPU, where the host only launches, on a track of the device's stream with the
// device's own times, and a `launch` event on the issuing thread), the collectives (one `X` per
// operation on its lane's thread), the gradient buckets (one async allreduce per bucket and
// iteration, from issue to reduction, with bytes and achieved bandwidth, plus a flow arrow from the
// step that wrote the bucket's last gradient) and the training loop (iterations, data batches,
// counters).
//
// Cost: none when tracing is off, because the trainer then creates no tracer. When on, recording
// an event is a clock read already done by the caller, a lock and an append of a fixed-size
// record to a preallocated buffer; names, args and JSON are only produced by EventsJson at the end.
// Only executor iterations [first_iteration, last_iteration] are recorded, plus the collectives
// that finish their allreduces.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "runtime/dist/collectives.h"
#include "runtime/trace/task_description.h"
#include "runtime/trainer/gradient_sync.h"
#include "scheduler/executor.h"

namespace gradflow::runtime::trace {

struct TracerOptions {
  int rank = 0;  // the trace's pid; its process is named "node <rank>"
  // Executor iterations to record, inclusive (the executor counts from 1).
  int64_t first_iteration = 1;
  int64_t last_iteration = std::numeric_limits<int64_t>::max();
  int lanes = 1;  // collective lanes: bucket b is reduced on lane b % lanes
  // Stream nodes run on a device that times them itself (a GPU): ask the executor for device
  // times in the traced iterations. CPU streams run their work when the host calls it, so their
  // host times are already the device's.
  bool device_times = false;
  // Records kept at most; later ones are counted in dropped() (bounds memory on long windows).
  int64_t max_records = 8 << 20;
};

class Tracer final : public sched::ExecutionObserver,
                     public dist::CollectiveObserver,
                     public BucketObserver {
 public:
  using Clock = std::chrono::steady_clock;

  Tracer(const TracerOptions& options, TaskGraphDescription description);
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  // sched::ExecutionObserver
  void OnIterationStart(int64_t iteration) override;
  void OnNodeStart(const sched::NodeEvent& event) override;
  void OnNodeEnd(const sched::NodeEvent& event) override;
  bool WantsDeviceTimes(int64_t iteration) override {
    return options_.device_times && Traces(iteration);
  }
  void OnDeviceSpan(const sched::DeviceSpan& span) override;
  void OnIterationEnd(int64_t iteration, const absl::Status& status) override;
  // dist::CollectiveObserver
  void OnCollectiveStart(const dist::CollectiveEvent& event) override;
  void OnCollectiveEnd(const dist::CollectiveEvent& event) override;
  // BucketObserver
  void OnBucketIssued(int64_t iteration, size_t bucket, Clock::time_point at) override;
  void OnBucketReduced(int64_t iteration, size_t bucket, Clock::time_point at,
                       const absl::Status& status) override;
  void OnBucketWait(int64_t iteration, size_t bucket, Clock::time_point from,
                    Clock::time_point to) override;

  // From the training loop. `iteration` is the executor iteration the step ran as (with several
  // micro-batches per step: the last one's). A step's images/s counter is derived from it.
  void OnIteration(int64_t iteration, Clock::time_point start, Clock::time_point end,
                   int64_t images);
  // The loader's Next() for the batch of `iteration`, and how long it blocked waiting for data.
  void OnDataBatch(int64_t iteration, Clock::time_point start, Clock::time_point end,
                   double wait_seconds);
  // A counter sample (e.g. "arena bytes in use"), kept while the window is open.
  void Counter(const std::string& name, Clock::time_point time, double value);

  bool Traces(int64_t iteration) const {
    return iteration >= options_.first_iteration && iteration <= options_.last_iteration;
  }

  // This node's events as a comma-separated list of JSON objects (for WriteTraceFile), with
  // ts = (steady-clock microseconds of the event) + clock_offset_us - origin_us: origin_us is on
  // the reference node's clock and clock_offset_us converts this node's clock to it. Call once
  // the traced iterations are over (nothing may be recording concurrently).
  std::string EventsJson(double origin_us, double clock_offset_us) const;
  // {"gradflow": {...}} as the trace format contract describes it, for a job of `nodes` nodes.
  std::string OtherDataJson(int nodes, const std::vector<double>& clock_offsets_us) const;

  // Steady-clock microseconds of the earliest recorded event (of the tracer's creation if none).
  double FirstEventMicros() const;
  int64_t records() const;
  int64_t dropped() const;
  const TaskGraphDescription& description() const { return description_; }
  const TracerOptions& options() const { return options_; }

 private:
  enum class Kind : uint8_t {
    kNode,        // a task node: op step, update, allreduce issue or other added work
    kLaunch,      // the host issuing a stream node whose device times come as a kNode
    kFlushWait,   // the compute stream waited for a bucket outside any iteration (Flush)
    kCollective,  // one operation on a lane
    kAllreduce,   // a bucket's allreduce from issue to reduction
    kIteration,
    kDataBatch,
    kCounter,
  };
  struct Record {
    Kind kind = Kind::kNode;
    bool failed = false;
    int8_t collective = 0;  // dist::CollectiveKind
    int32_t tid = 0;
    int32_t index = 0;  // node id | bucket | lane | counter name id
    int32_t extra = 0;  // allreduce: issuing tid; collective: algorithm name id
    int64_t iteration = 0;
    int64_t start_ns = 0;
    int64_t end_ns = 0;
    int64_t count = 0;      // bytes | images | collective sequence
    double value = 0;       // update wait (ns) | data wait (s) | counter value
    std::string_view name;  // task node name (owned by the executor)
  };
  // Device roles are tracks of their own, not threads: a GPU stream or a GPU lane.
  enum class Role : uint8_t { kOther, kLane, kWorker, kCompute, kDeviceStream, kDeviceLane };
  struct ThreadInfo {
    Role role = Role::kOther;
    int32_t number = 0;  // lane, worker index or stream
  };
  struct Issued {
    int64_t iteration = -1;
    int64_t at_ns = 0;
    int32_t tid = 0;
  };

  static int64_t Nanos(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  }
  // With mutex_ held.
  int32_t ThreadLocked(std::thread::id thread, Role role, int32_t number);
  int32_t DeviceTrackLocked(Role role, int32_t number);
  int32_t InternLocked(std::string_view text);
  void PushLocked(const Record& record);
  void MaybeCloseWindowLocked();

  const TracerOptions options_;
  const TaskGraphDescription description_;
  const int64_t created_ns_;
  const int32_t steps_;

  // Per task node, touched only by the thread running the node (the executor orders a node's
  // runs across iterations): its start time and, for update nodes, the bucket (-1: not one,
  // -2: not looked at yet).
  std::vector<int64_t> node_start_ns_;
  std::vector<int32_t> update_bucket_;
  // Per task node with device times: the update's host wait, for the device span that follows.
  std::vector<int64_t> node_wait_ns_;
  // Per bucket: the compute stream's wait inside the running update node.
  std::unique_ptr<std::atomic<int64_t>[]> update_wait_ns_;
  std::unique_ptr<std::atomic<bool>[]> in_update_;
  // Collectives are recorded while this is set: from the first traced iteration until the
  // allreduces of the last one have been reduced.
  std::atomic<bool> collecting_{false};

  mutable std::mutex mutex_;
  std::vector<Record> records_;                               // guarded by mutex_
  int64_t dropped_ = 0;                                       // guarded by mutex_
  absl::flat_hash_map<std::thread::id, int32_t> thread_ids_;  // guarded by mutex_
  absl::flat_hash_map<int64_t, int32_t> device_tracks_;       // guarded by mutex_
  std::vector<ThreadInfo> threads_;                           // guarded by mutex_; by tid
  int32_t workers_ = 0;                                       // guarded by mutex_
  std::vector<std::string> strings_;                          // guarded by mutex_
  std::vector<Issued> issued_;                                // guarded by mutex_; per bucket
  int64_t in_flight_in_window_ = 0;                           // guarded by mutex_
  bool past_window_ = false;                                  // guarded by mutex_
};

}  // namespace gradflow::runtime::trace
