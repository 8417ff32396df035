#include "scheduler/executor.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "oneapi/tbb/global_control.h"
#include "scheduler/cpu_stream.h"

namespace gradflow::sched {
namespace {

using ::testing::HasSubstr;

// Lets the TBB arena have as many workers as the test asks for, even on a 2-core machine.
class ManyTbbThreads {
 public:
  ManyTbbThreads() : control_(tbb::global_control::max_allowed_parallelism, 16) {}

 private:
  tbb::global_control control_;
};

// A random DAG whose nodes check, when they run, that every predecessor has already finished.
// Node ids are a random permutation of a topological order, so the executor cannot rely on ids.
class RandomDag {
 public:
  RandomDag(std::mt19937& rng, int nodes, int streams, double host_fraction)
      : preds_(nodes), finished_(nodes), runs_(nodes), thread_of_(nodes), stream_of_(nodes) {
    std::vector<int32_t> id_at(nodes);
    std::iota(id_at.begin(), id_at.end(), 0);
    std::shuffle(id_at.begin(), id_at.end(), rng);
    std::uniform_real_distribution<double> unit(0, 1);
    for (int pos = 0; pos < nodes; ++pos) {
      const int32_t id = id_at[pos];
      stream_of_[id] =
          unit(rng) < host_fraction ? kHostStream : static_cast<int32_t>(rng() % streams);
      const int fan_in = pos == 0 ? 0 : static_cast<int>(rng() % 4);
      for (int k = 0; k < fan_in; ++k) {
        // Mostly recent nodes (deep chains), sometimes far ones (long edges).
        const int back = 1 + static_cast<int>(rng() % std::min(pos, rng() % 2 ? 8 : pos));
        preds_[id].push_back(id_at[pos - back]);
      }
    }
  }

  TaskGraph Build(std::atomic<int32_t>* fail_node) {
    TaskGraph graph;
    const auto count = static_cast<int32_t>(preds_.size());
    for (int32_t id = 0; id < count; ++id) {
      graph.AddNode(absl::StrCat("n", id), stream_of_[id], [this, id, fail_node]() {
        for (int32_t p : preds_[id]) {
          if (!finished_[p].load(std::memory_order_acquire)) violations_.fetch_add(1);
        }
        runs_[id].fetch_add(1);
        thread_of_[id] = std::this_thread::get_id();
        if (id % 7 == 0) std::this_thread::sleep_for(std::chrono::microseconds(20));
        if (fail_node != nullptr && fail_node->load() == id) {
          return absl::InternalError("boom");
        }
        finished_[id].store(true, std::memory_order_release);
        return absl::OkStatus();
      });
    }
    for (int32_t id = 0; id < count; ++id) {
      for (int32_t p : preds_[id]) graph.AddEdge(p, id);
    }
    return graph;
  }

  void Reset() {
    for (auto& f : finished_) f.store(false);
    for (auto& r : runs_) r.store(0);
    violations_.store(0);
  }
  // Nodes reachable from `from` along edges, `from` included.
  std::vector<bool> Descendants(int32_t from) const {
    std::vector<std::vector<int32_t>> succs(preds_.size());
    for (size_t id = 0; id < preds_.size(); ++id) {
      for (int32_t p : preds_[id]) succs[p].push_back(static_cast<int32_t>(id));
    }
    std::vector<bool> reached(preds_.size(), false);
    std::vector<int32_t> stack = {from};
    reached[from] = true;
    while (!stack.empty()) {
      const int32_t n = stack.back();
      stack.pop_back();
      for (int32_t s : succs[n]) {
        if (!reached[s]) {
          reached[s] = true;
          stack.push_back(s);
        }
      }
    }
    return reached;
  }

  int32_t size() const { return static_cast<int32_t>(preds_.size()); }
  int runs(int32_t id) const { return runs_[id].load(); }
  bool finished(int32_t id) const { return finished_[id].load(); }
  int violations() const { return violations_.load(); }
  std::thread::id thread_of(int32_t id) const { return thread_of_[id]; }
  int32_t stream_of(int32_t id) const { return stream_of_[id]; }

 private:
  std::vector<std::vector<int32_t>> preds_;
  std::vector<std::atomic<bool>> finished_;
  std::vector<std::atomic<int>> runs_;
  std::vector<std::thread::id> thread_of_;  // each written by one node run per iteration
  std::vector<int32_t> stream_of_;
  std::atomic<int> violations_{0};
};

std::vector<std::unique_ptr<CpuStream>> MakeStreams(int count) {
  std::vector<std::unique_ptr<CpuStream>> streams;
  for (int i = 0; i < count; ++i) streams.push_back(std::make_unique<CpuStream>());
  return streams;
}

std::vector<Stream*> Pointers(const std::vector<std::unique_ptr<CpuStream>>& streams) {
  std::vector<Stream*> result;
  for (const auto& s : streams) result.push_back(s.get());
  return result;
}

TEST(ExecutorTest, RandomDagsRunEveryNodeOnceAfterItsPredecessors) {
  ManyTbbThreads tbb_threads;
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  for (int dag_index = 0; dag_index < 4; ++dag_index) {
    const int streams = 1 + dag_index;
    RandomDag dag(rng, 200 + static_cast<int>(rng() % 300), streams, 0.3);
    auto cpu_streams = MakeStreams(streams);
    absl::StatusOr<std::unique_ptr<Executor>> executor = Executor::Create(
        dag.Build(nullptr), Pointers(cpu_streams), {.host_threads = 2 + 2 * dag_index});
    ASSERT_TRUE(executor.ok()) << executor.status();
    for (int iteration = 0; iteration < 60; ++iteration) {
      dag.Reset();
      ASSERT_TRUE((*executor)->Run().ok());
      ASSERT_EQ(dag.violations(), 0) << "iteration " << iteration;
      for (int32_t id = 0; id < dag.size(); ++id) {
        ASSERT_EQ(dag.runs(id), 1) << "node " << id << ", iteration " << iteration;
        const int32_t stream = dag.stream_of(id);
        if (stream != kHostStream) {
          ASSERT_EQ(dag.thread_of(id), cpu_streams[stream]->thread_id());
        } else {
          for (const auto& s : cpu_streams) ASSERT_NE(dag.thread_of(id), s->thread_id());
        }
      }
    }
    EXPECT_EQ((*executor)->iterations(), 60);
  }
}

TEST(ExecutorTest, AFailingNodeStopsTheIterationAndIsNamed) {
  ManyTbbThreads tbb_threads;
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  RandomDag dag(rng, 300, 3, 0.3);
  auto cpu_streams = MakeStreams(3);
  std::atomic<int32_t> fail_node{-1};
  absl::StatusOr<std::unique_ptr<Executor>> executor =
      Executor::Create(dag.Build(&fail_node), Pointers(cpu_streams), {.host_threads = 4});
  ASSERT_TRUE(executor.ok()) << executor.status();
  bool failed_on_host = false;
  bool failed_on_stream = false;
  for (int trial = 0; trial < 30; ++trial) {
    const auto victim = static_cast<int32_t>(rng() % dag.size());
    (dag.stream_of(victim) == kHostStream ? failed_on_host : failed_on_stream) = true;
    fail_node.store(victim);
    dag.Reset();
    const absl::Status status = (*executor)->Run();
    ASSERT_EQ(status.code(), absl::StatusCode::kInternal);
    EXPECT_THAT(std::string(status.message()), HasSubstr(absl::StrCat("node 'n", victim, "'")));
    EXPECT_THAT(std::string(status.message()), HasSubstr("boom"));
    EXPECT_EQ(dag.violations(), 0);
    const std::vector<bool> downstream = dag.Descendants(victim);
    for (int32_t id = 0; id < dag.size(); ++id) {
      ASSERT_LE(dag.runs(id), 1);
      if (downstream[id] && id != victim) {
        ASSERT_EQ(dag.runs(id), 0)
            << "node " << id << " ran after its ancestor " << victim << " failed";
      }
    }
    // The executor is usable again after an error.
    fail_node.store(-1);
    dag.Reset();
    ASSERT_TRUE((*executor)->Run().ok());
    for (int32_t id = 0; id < dag.size(); ++id) ASSERT_EQ(dag.runs(id), 1);
  }
  EXPECT_TRUE(failed_on_host || failed_on_stream);
}

TEST(ExecutorTest, StreamNodesRunInInsertionOrderOfTheirChain) {
  // A chain on one stream plus host nodes reading from it: the stream sees the chain in order.
  CpuStream stream;
  TaskGraph graph;
  std::vector<int> order;  // appended on the stream thread only
  std::atomic<int> host_saw_wrong{0};
  constexpr int kSteps = 500;
  for (int i = 0; i < kSteps; ++i) {
    graph.AddNode(absl::StrCat("s", i), 0, [&order, i] {
      order.push_back(i);
      return absl::OkStatus();
    });
    if (i > 0) graph.AddEdge(i - 1, i);
  }
  for (int i = 0; i < kSteps; i += 50) {
    const int32_t host = graph.AddNode(absl::StrCat("h", i), kHostStream, [&, i] {
      // A host successor of step i runs after step i has completed on the stream.
      if (static_cast<int>(order.size()) <= i) host_saw_wrong.fetch_add(1);
      return absl::OkStatus();
    });
    graph.AddEdge(i, host);
  }
  absl::StatusOr<std::unique_ptr<Executor>> executor =
      Executor::Create(std::move(graph), {&stream});
  ASSERT_TRUE(executor.ok()) << executor.status();
  for (int iteration = 0; iteration < 5; ++iteration) {
    order.clear();
    ASSERT_TRUE((*executor)->Run().ok());
    ASSERT_EQ(order.size(), static_cast<size_t>(kSteps));
    for (int i = 0; i < kSteps; ++i) ASSERT_EQ(order[i], i);
  }
  EXPECT_EQ(host_saw_wrong.load(), 0);
}

class RecordingObserver : public ExecutionObserver {
 public:
  void OnIterationStart(int64_t iteration) override {
    std::lock_guard<std::mutex> lock(mutex_);
    iterations_started.push_back(iteration);
  }
  void OnNodeStart(const NodeEvent& event) override {
    std::lock_guard<std::mutex> lock(mutex_);
    starts.push_back(event);
  }
  void OnNodeEnd(const NodeEvent& event) override {
    std::lock_guard<std::mutex> lock(mutex_);
    ends.push_back(event);
  }
  void OnIterationEnd(int64_t iteration, const absl::Status& status) override {
    std::lock_guard<std::mutex> lock(mutex_);
    iterations_ended.push_back(iteration);
    statuses.push_back(status);
  }
  std::vector<int64_t> iterations_started;
  std::vector<int64_t> iterations_ended;
  std::vector<absl::Status> statuses;
  std::vector<NodeEvent> starts;
  std::vector<NodeEvent> ends;

 private:
  std::mutex mutex_;
};

TEST(ExecutorTest, ObserverSeesStartAndEndOfEveryNode) {
  ManyTbbThreads tbb_threads;
  std::mt19937 rng(7);
  RandomDag dag(rng, 150, 2, 0.4);
  auto cpu_streams = MakeStreams(2);
  absl::StatusOr<std::unique_ptr<Executor>> executor =
      Executor::Create(dag.Build(nullptr), Pointers(cpu_streams), {.host_threads = 3});
  ASSERT_TRUE(executor.ok()) << executor.status();
  RecordingObserver observer;
  (*executor)->AddObserver(&observer);
  ASSERT_TRUE((*executor)->Run().ok());
  ASSERT_TRUE((*executor)->Run().ok());
  EXPECT_EQ(observer.iterations_started, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(observer.iterations_ended, (std::vector<int64_t>{1, 2}));
  ASSERT_EQ(observer.starts.size(), 2u * dag.size());
  ASSERT_EQ(observer.ends.size(), 2u * dag.size());
  // Pair each end with its start: same node, iteration, stream and thread; end after start.
  std::vector<std::vector<const NodeEvent*>> start_of(3, std::vector<const NodeEvent*>(dag.size()));
  for (const NodeEvent& e : observer.starts) {
    ASSERT_EQ(start_of[e.iteration][e.node], nullptr);
    start_of[e.iteration][e.node] = &e;
  }
  for (const NodeEvent& end : observer.ends) {
    const NodeEvent* start = start_of[end.iteration][end.node];
    ASSERT_NE(start, nullptr);
    EXPECT_EQ(start->thread, end.thread);
    EXPECT_EQ(start->stream, end.stream);
    EXPECT_EQ(end.name, absl::StrCat("n", end.node));
    EXPECT_EQ(end.stream, dag.stream_of(end.node));
    EXPECT_LE(start->time, end.time);
    if (end.stream != kHostStream) {
      EXPECT_EQ(end.thread, cpu_streams[end.stream]->thread_id());
    }
  }
}

TEST(ExecutorTest, CompletionCallbacksRunAfterTheNodeEveryIteration) {
  ManyTbbThreads tbb_threads;
  std::mt19937 rng(11);
  RandomDag dag(rng, 120, 2, 0.3);
  auto cpu_streams = MakeStreams(2);
  absl::StatusOr<std::unique_ptr<Executor>> executor =
      Executor::Create(dag.Build(nullptr), Pointers(cpu_streams), {.host_threads = 2});
  ASSERT_TRUE(executor.ok()) << executor.status();
  std::vector<std::atomic<int>> calls(dag.size());
  std::atomic<int> early{0};
  for (int32_t id = 0; id < dag.size(); id += 3) {
    ASSERT_TRUE((*executor)
                    ->OnNodeComplete(id,
                                     [&, id] {
                                       if (!dag.finished(id)) early.fetch_add(1);
                                       calls[id].fetch_add(1);
                                     })
                    .ok());
  }
  EXPECT_EQ((*executor)->OnNodeComplete(dag.size(), [] {}).code(),
            absl::StatusCode::kInvalidArgument);
  for (int iteration = 0; iteration < 10; ++iteration) {
    dag.Reset();
    ASSERT_TRUE((*executor)->Run().ok());
  }
  for (int32_t id = 0; id < dag.size(); ++id) EXPECT_EQ(calls[id].load(), id % 3 == 0 ? 10 : 0);
  EXPECT_EQ(early.load(), 0);
}

// The CPU stream with its host callbacks counted: what a CUDA stream would turn into
// cudaLaunchHostFunc calls, each holding the GPU stream for a host thread's wake-up.
class CallbackCountingStream final : public Stream {
 public:
  void Enqueue(Work work) override { stream_.Enqueue(std::move(work)); }
  void EnqueueHostCallback(Work callback) override {
    callbacks_.fetch_add(1);
    stream_.EnqueueHostCallback(std::move(callback));
  }
  std::unique_ptr<Event> CreateEvent() override { return stream_.CreateEvent(); }
  absl::Status Record(Event& event) override { return stream_.Record(event); }
  absl::Status Wait(Event& event) override { return stream_.Wait(event); }
  absl::Status Synchronize() override { return stream_.Synchronize(); }
  std::unique_ptr<DeviceTimestamp> MarkTime() override { return stream_.MarkTime(); }
  int callbacks() const { return callbacks_.load(); }

 private:
  CpuStream stream_;
  std::atomic<int> callbacks_{0};
};

TEST(ExecutorTest, OnlyNodesTheHostWaitsForGetHostCallbacks) {
  CallbackCountingStream stream;
  TaskGraph graph;
  std::atomic<int> ran{0};
  std::atomic<bool> last_finished{false};
  std::atomic<bool> host_saw_fifth{false};
  int32_t previous = -1;
  for (int i = 0; i < 10; ++i) {
    const int32_t node = graph.AddNode(absl::StrCat("s", i), 0, [&, i] {
      ran.fetch_add(1);
      if (i == 9) {
        // Run must wait for the device's last item even though nothing on the host does.
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        last_finished.store(true);
      }
      return absl::OkStatus();
    });
    if (previous >= 0) graph.AddEdge(previous, node);
    previous = node;
    if (i == 4) {
      const int32_t host = graph.AddNode("host", kHostStream, [&] {
        host_saw_fifth.store(ran.load() >= 5);
        return absl::OkStatus();
      });
      graph.AddEdge(node, host);
    }
  }
  absl::StatusOr<std::unique_ptr<Executor>> executor =
      Executor::Create(std::move(graph), {&stream});
  ASSERT_TRUE(executor.ok()) << executor.status();
  for (int iteration = 1; iteration <= 3; ++iteration) {
    last_finished.store(false);
    ASSERT_TRUE((*executor)->Run().ok());
    EXPECT_TRUE(last_finished.load()) << "Run returned before the stream finished";
    EXPECT_TRUE(host_saw_fifth.load());
    // Per iteration: the node the host node waits for, and the end of the stream.
    EXPECT_EQ(stream.callbacks(), 2 * iteration);
  }
  // A completion callback added later gets its node a host callback from the next run on.
  std::atomic<int> completed{0};
  ASSERT_TRUE((*executor)->OnNodeComplete(2, [&] { completed.fetch_add(1); }).ok());
  ASSERT_TRUE((*executor)->Run().ok());
  EXPECT_EQ(stream.callbacks(), 6 + 3);
  EXPECT_EQ(completed.load(), 1);
}

// Asks for device times in one iteration only and keeps what it is told.
class DeviceTimesObserver final : public ExecutionObserver {
 public:
  explicit DeviceTimesObserver(int64_t timed) : timed_(timed) {}
  bool WantsDeviceTimes(int64_t iteration) override { return iteration == timed_; }
  void OnNodeStart(const NodeEvent& event) override {
    std::lock_guard lock(mutex_);
    host_start[{event.iteration, event.node}] = event.time;
  }
  void OnNodeEnd(const NodeEvent& event) override {
    std::lock_guard lock(mutex_);
    host_end[{event.iteration, event.node}] = event.time;
  }
  void OnDeviceSpan(const DeviceSpan& span) override {
    std::lock_guard lock(mutex_);
    spans.push_back(span);
  }
  void OnIterationEnd(int64_t iteration, const absl::Status& /*status*/) override {
    std::lock_guard lock(mutex_);
    for (const DeviceSpan& span : spans) {
      if (span.iteration == iteration) ++spans_before_end;
    }
  }

  std::mutex mutex_;
  std::map<std::pair<int64_t, int32_t>, std::chrono::steady_clock::time_point> host_start;
  std::map<std::pair<int64_t, int32_t>, std::chrono::steady_clock::time_point> host_end;
  std::vector<DeviceSpan> spans;
  int spans_before_end = 0;

 private:
  const int64_t timed_;
};

TEST(ExecutorTest, DeviceSpansOfEveryStreamNodeComeOnlyForIterationsThatAsk) {
  ManyTbbThreads tbb_threads;
  std::mt19937 rng(5);
  RandomDag dag(rng, 80, 2, 0.3);
  auto cpu_streams = MakeStreams(2);
  absl::StatusOr<std::unique_ptr<Executor>> executor =
      Executor::Create(dag.Build(nullptr), Pointers(cpu_streams), {.host_threads = 2});
  ASSERT_TRUE(executor.ok()) << executor.status();
  DeviceTimesObserver observer(/*timed=*/2);
  (*executor)->AddObserver(&observer);
  for (int iteration = 0; iteration < 3; ++iteration) {
    dag.Reset();
    ASSERT_TRUE((*executor)->Run().ok());
  }
  int stream_nodes = 0;
  for (int32_t id = 0; id < dag.size(); ++id) stream_nodes += dag.stream_of(id) != kHostStream;
  ASSERT_GT(stream_nodes, 10);
  ASSERT_EQ(observer.spans.size(), static_cast<size_t>(stream_nodes));
  EXPECT_EQ(observer.spans_before_end, stream_nodes);
  std::map<int32_t, std::vector<const DeviceSpan*>> by_stream;
  for (const DeviceSpan& span : observer.spans) {
    EXPECT_EQ(span.iteration, 2);
    EXPECT_EQ(span.stream, dag.stream_of(span.node));
    EXPECT_EQ(span.name, absl::StrCat("n", span.node));
    // On the CPU the stream's thread runs the work, so the device span is inside the host's.
    const std::pair<int64_t, int32_t> key{2, span.node};
    EXPECT_LE(observer.host_start[key], span.start);
    EXPECT_LE(span.start, span.end);
    EXPECT_LE(span.end, observer.host_end[key]);
    by_stream[span.stream].push_back(&span);
  }
  // A stream runs one item at a time: its spans never overlap.
  for (auto& [stream, spans] : by_stream) {
    std::sort(spans.begin(), spans.end(),
              [](const DeviceSpan* a, const DeviceSpan* b) { return a->start < b->start; });
    for (size_t i = 1; i < spans.size(); ++i) {
      EXPECT_LE(spans[i - 1]->end, spans[i]->start) << "stream " << stream;
    }
  }
}

TEST(ExecutorTest, RunFromInsideAnIterationIsRefused) {
  TaskGraph graph;
  Executor* self = nullptr;
  absl::Status inner;
  graph.AddNode("reentrant", kHostStream, [&] {
    inner = self->Run();
    return absl::OkStatus();
  });
  absl::StatusOr<std::unique_ptr<Executor>> executor = Executor::Create(std::move(graph), {});
  ASSERT_TRUE(executor.ok()) << executor.status();
  self = executor->get();
  ASSERT_TRUE((*executor)->Run().ok());
  EXPECT_EQ(inner.code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ExecutorTest, EmptyGraphAndJoinNodes) {
  absl::StatusOr<std::unique_ptr<Executor>> empty = Executor::Create(TaskGraph(), {});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE((*empty)->Run().ok());

  CpuStream stream;
  TaskGraph graph;
  std::atomic<int> ran{0};
  const int32_t a = graph.AddNode("a", 0, [&] {
    ran.fetch_add(1);
    return absl::OkStatus();
  });
  const int32_t join = graph.AddNode("join", kHostStream, nullptr);
  const int32_t b = graph.AddNode("b", 0, [&] {
    ran.fetch_add(1);
    return absl::OkStatus();
  });
  graph.AddEdge(a, join);
  graph.AddEdge(join, b);
  graph.AddEdge(a, join);  // duplicate edges count once
  absl::StatusOr<std::unique_ptr<Executor>> executor =
      Executor::Create(std::move(graph), {&stream});
  ASSERT_TRUE(executor.ok()) << executor.status();
  ASSERT_TRUE((*executor)->Run().ok());
  EXPECT_EQ(ran.load(), 2);
}

TEST(ExecutorTest, RejectsCyclesBadStreamsAndBadEdges) {
  {
    TaskGraph graph;
    graph.AddNode("a", kHostStream, nullptr);
    graph.AddNode("b", kHostStream, nullptr);
    graph.AddNode("c", kHostStream, nullptr);
    graph.AddNode("d", kHostStream, nullptr);
    graph.AddEdge(3, 0);
    graph.AddEdge(0, 1);
    graph.AddEdge(1, 2);
    graph.AddEdge(2, 0);
    const absl::Status s = Executor::Create(std::move(graph), {}).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s.message()), HasSubstr("cycle"));
    EXPECT_THAT(std::string(s.message()), HasSubstr("'a'"));
    EXPECT_THAT(std::string(s.message()), HasSubstr("'c'"));
    EXPECT_THAT(std::string(s.message()), ::testing::Not(HasSubstr("'d'")));
  }
  {
    TaskGraph graph;
    graph.AddNode("gpu-only", 2, nullptr);
    CpuStream stream;
    const absl::Status s = Executor::Create(std::move(graph), {&stream}).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s.message()), HasSubstr("'gpu-only'"));
  }
  {
    TaskGraph graph;
    graph.AddNode("a", kHostStream, nullptr);
    graph.AddEdge(0, 5);
    EXPECT_EQ(Executor::Create(std::move(graph), {}).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  {
    EXPECT_EQ(Executor::Create(TaskGraph(), {nullptr}).status().code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(Executor::Create(TaskGraph(), {}, {.host_threads = 0}).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace gradflow::sched
