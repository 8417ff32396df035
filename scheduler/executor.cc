#include "scheduler/executor.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace gradflow::sched {
namespace {

std::string Quoted(const TaskNode& node) { return absl::StrCat("'", node.name, "'"); }

// Names the nodes of one cycle among `remaining` (nodes Kahn's algorithm could not order: each
// has a predecessor that is also remaining, so walking predecessors must come back).
std::string DescribeCycle(const std::vector<TaskNode>& nodes,
                          const std::vector<std::vector<int32_t>>& preds,
                          const std::vector<bool>& remaining) {
  int32_t start = -1;
  for (size_t i = 0; i < remaining.size() && start < 0; ++i) {
    if (remaining[i]) start = static_cast<int32_t>(i);
  }
  std::vector<int32_t> seen_at(nodes.size(), -1);
  std::vector<int32_t> path;
  int32_t at = start;
  while (seen_at[at] < 0) {
    seen_at[at] = static_cast<int32_t>(path.size());
    path.push_back(at);
    for (int32_t p : preds[at]) {
      if (remaining[p]) {
        at = p;
        break;
      }
    }
  }
  // The path walked predecessors: read backwards it runs in execution order, from `at` (the
  // predecessor of the path's last node) round to `at` again.
  std::vector<std::string> names = {Quoted(nodes[at])};
  for (size_t i = path.size(); i-- > static_cast<size_t>(seen_at[at]);) {
    names.push_back(Quoted(nodes[path[i]]));
  }
  return absl::StrJoin(names, " -> ");
}

}  // namespace

int32_t TaskGraph::AddNode(std::string name, int32_t stream, NodeWork work) {
  nodes_.push_back({std::move(name), stream, std::move(work)});
  return static_cast<int32_t>(nodes_.size() - 1);
}

void TaskGraph::AddEdge(int32_t from, int32_t to) { edges_.emplace_back(from, to); }

absl::StatusOr<std::unique_ptr<Executor>> Executor::Create(TaskGraph graph,
                                                           std::vector<Stream*> streams,
                                                           ExecutorOptions options) {
  if (options.host_threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("executor host_threads must be at least 1, got ", options.host_threads));
  }
  for (size_t i = 0; i < streams.size(); ++i) {
    if (streams[i] == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("executor stream ", i, " is null"));
    }
  }
  const auto count = static_cast<int32_t>(graph.nodes_.size());
  for (int32_t i = 0; i < count; ++i) {
    const int32_t stream = graph.nodes_[i].stream;
    if (stream != kHostStream && (stream < 0 || stream >= static_cast<int32_t>(streams.size()))) {
      return absl::InvalidArgumentError(absl::StrCat("node ", Quoted(graph.nodes_[i]),
                                                     " is on stream ", stream, " but only ",
                                                     streams.size(), " streams exist"));
    }
  }
  std::vector<std::pair<int32_t, int32_t>> edges = std::move(graph.edges_);
  for (const auto& [from, to] : edges) {
    if (from < 0 || from >= count || to < 0 || to >= count) {
      return absl::InvalidArgumentError(
          absl::StrCat("edge ", from, " -> ", to, " is outside the ", count, " nodes"));
    }
  }
  std::sort(edges.begin(), edges.end());
  edges.erase(std::unique(edges.begin(), edges.end()), edges.end());

  std::vector<std::vector<int32_t>> succs(count);
  std::vector<std::vector<int32_t>> preds(count);
  for (const auto& [from, to] : edges) {
    succs[from].push_back(to);
    preds[to].push_back(from);
  }
  // Kahn's algorithm: every node must become ready exactly once, or the DAG has a cycle.
  std::vector<int32_t> indegree(count);
  std::vector<int32_t> ready;
  for (int32_t i = 0; i < count; ++i) {
    indegree[i] = static_cast<int32_t>(preds[i].size());
    if (indegree[i] == 0) ready.push_back(i);
  }
  const std::vector<int32_t> roots = ready;
  int32_t ordered = 0;
  while (!ready.empty()) {
    const int32_t n = ready.back();
    ready.pop_back();
    ++ordered;
    for (int32_t s : succs[n]) {
      if (--indegree[s] == 0) ready.push_back(s);
    }
  }
  if (ordered != count) {
    std::vector<bool> remaining(count);
    for (int32_t i = 0; i < count; ++i) remaining[i] = indegree[i] > 0;
    return absl::InvalidArgumentError(absl::StrCat("the task graph has a cycle: ",
                                                   DescribeCycle(graph.nodes_, preds, remaining)));
  }

  std::vector<Node> nodes(count);
  for (int32_t i = 0; i < count; ++i) {
    nodes[i].task = std::move(graph.nodes_[i]);
    nodes[i].predecessors = static_cast<int32_t>(preds[i].size());
  }
  for (const auto& [from, to] : edges) {
    Node& u = nodes[from];
    Node& v = nodes[to];
    if (u.task.stream == kHostStream || v.task.stream == kHostStream) {
      u.release_on_complete.push_back(to);
      continue;
    }
    u.release_on_issue.push_back(to);
    if (u.task.stream != v.task.stream) {
      if (u.event == nullptr) u.event = streams[u.task.stream]->CreateEvent();
      v.wait_before_issue.push_back(u.event.get());
    }
  }
  std::unique_ptr<Executor> executor(new Executor(std::move(nodes), std::move(streams), options));
  executor->roots_ = roots;
  return executor;
}

Executor::Executor(std::vector<Node> nodes, std::vector<Stream*> streams, ExecutorOptions options)
    : nodes_(std::move(nodes)),
      streams_(std::move(streams)),
      // No slot is reserved for an external thread: Run's caller only waits, and stream threads
      // hand work over with enqueue, so every slot is a worker's.
      arena_(std::make_unique<tbb::task_arena>(options.host_threads, 0)),
      pending_(new std::atomic<int32_t>[nodes_.size()]) {
  arena_->initialize();
  nodes_per_stream_.assign(streams_.size(), 0);
  for (const Node& node : nodes_) {
    if (node.task.stream != kHostStream) ++nodes_per_stream_[node.task.stream];
  }
  issued_per_stream_ = std::make_unique<std::atomic<int32_t>[]>(streams_.size());
  timed_streams_.assign(streams_.size(), false);
}

Executor::~Executor() = default;

void Executor::AddObserver(ExecutionObserver* observer) { observers_.push_back(observer); }

absl::Status Executor::OnNodeComplete(int32_t node, std::function<void()> callback) {
  if (node < 0 || static_cast<size_t>(node) >= nodes_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("completion callback for node ", node, " of ", nodes_.size()));
  }
  if (running_.load()) {
    return absl::FailedPreconditionError("completion callbacks can only be added between runs");
  }
  nodes_[node].on_complete.push_back(std::move(callback));
  return absl::OkStatus();
}

absl::Status Executor::Run() {
  bool idle = false;
  if (!running_.compare_exchange_strong(idle, true)) {
    return absl::FailedPreconditionError("Executor::Run called while an iteration is running");
  }
  const int64_t iteration = ++iteration_;
  // Tokens: a host node retires once; a stream node when its task has issued it and, with a
  // completion callback, again when that has run; each used stream once more when its last
  // node of the iteration has completed. Run returns only after all of them, so no thread
  // touches the executor after Run has returned.
  int64_t tokens = 0;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Node& n = nodes_[i];
    pending_[i].store(n.predecessors, std::memory_order_release);
    n.completion_callback = !n.release_on_complete.empty() || !n.on_complete.empty();
    tokens += n.task.stream == kHostStream ? 1 : (n.completion_callback ? 2 : 1);
  }
  for (size_t s = 0; s < streams_.size(); ++s) {
    issued_per_stream_[s].store(0, std::memory_order_relaxed);
    if (nodes_per_stream_[s] > 0) ++tokens;
  }
  timing_ = false;
  for (ExecutionObserver* observer : observers_) {
    if (observer->WantsDeviceTimes(iteration)) timing_ = true;
  }
  for (size_t s = 0; s < streams_.size(); ++s) {
    // A stream whose clock cannot be tied to the host's is left untimed: profiling must not
    // fail training.
    timed_streams_[s] = timing_ && nodes_per_stream_[s] > 0 && streams_[s]->StartTiming().ok();
  }
  cancelled_.store(false, std::memory_order_relaxed);
  tokens_left_.store(tokens, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = tokens == 0;
    error_ = absl::OkStatus();
  }
  for (ExecutionObserver* observer : observers_) observer->OnIterationStart(iteration);
  for (int32_t root : roots_) {
    arena_->enqueue([this, root] { Start(root); });
  }
  absl::Status status;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    finished_.wait(lock, [this] { return done_; });
    if (error_.ok()) {
      // On a GPU every node may have been issued before a kernel faulted: no node's work
      // failed, but the device's did.
      for (size_t s = 0; s < streams_.size() && error_.ok(); ++s) {
        if (nodes_per_stream_[s] == 0) continue;
        if (absl::Status failed = streams_[s]->AsyncError(); !failed.ok()) {
          error_ = absl::Status(failed.code(), absl::StrCat("stream ", s, ": ", failed.message()));
        }
      }
    }
    status = error_;
  }
  if (timing_) ReportDeviceSpans();
  for (ExecutionObserver* observer : observers_) observer->OnIterationEnd(iteration, status);
  running_.store(false);
  return status;
}

void Executor::Release(int32_t node) {
  if (pending_[node].fetch_sub(1, std::memory_order_acq_rel) == 1) {
    arena_->enqueue([this, node] { Start(node); });
  }
}

void Executor::Start(int32_t node) {
  // Pairs with the last predecessor's release (or Run's, for roots). The TBB hand-off orders
  // this already; the explicit acquire lets ThreadSanitizer, which cannot see into libtbb, see it.
  (void)pending_[node].load(std::memory_order_acquire);
  Node& n = nodes_[node];
  if (n.task.stream == kHostStream) {
    RunWork(node);
    Complete(node);
    return;
  }
  Stream& stream = *streams_[n.task.stream];
  for (Event* event : n.wait_before_issue) {
    if (absl::Status s = stream.Wait(*event); !s.ok()) Fail(node, s);
  }
  stream.Enqueue([this, node] { RunWork(node); });
  if (n.completion_callback) stream.EnqueueHostCallback([this, node] { Complete(node); });
  if (n.event != nullptr) {
    if (absl::Status s = stream.Record(*n.event); !s.ok()) Fail(node, s);
  }
  // Every other node of this stream was enqueued before its count was added, so this callback
  // follows all of the iteration's work on the stream.
  const int32_t issued = issued_per_stream_[n.task.stream].fetch_add(1, std::memory_order_acq_rel);
  if (issued + 1 == nodes_per_stream_[n.task.stream]) {
    stream.EnqueueHostCallback([this] { Retire(); });
  }
  for (int32_t successor : n.release_on_issue) Release(successor);
  Retire();
}

void Executor::RunWork(int32_t node) {
  Node& n = nodes_[node];
  const NodeWork& work = n.task.work;
  if (!work || cancelled_.load(std::memory_order_acquire)) return;
  Notify(/*start=*/true, node);
  const bool timed = n.task.stream != kHostStream && timed_streams_[n.task.stream];
  if (timed) n.device_start = streams_[n.task.stream]->MarkTime();
  absl::Status status = work();
  if (timed) n.device_end = streams_[n.task.stream]->MarkTime();
  Notify(/*start=*/false, node);
  if (!status.ok()) Fail(node, status);
}

void Executor::ReportDeviceSpans() {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Node& n = nodes_[i];
    std::unique_ptr<DeviceTimestamp> start = std::move(n.device_start);
    std::unique_ptr<DeviceTimestamp> end = std::move(n.device_end);
    if (start == nullptr || end == nullptr) continue;
    absl::StatusOr<std::chrono::steady_clock::time_point> from = start->Time();
    absl::StatusOr<std::chrono::steady_clock::time_point> to = end->Time();
    // A timestamp the device never reached (a faulted kernel) leaves the node untimed; the
    // iteration's error says why.
    if (!from.ok() || !to.ok()) continue;
    const DeviceSpan span{.node = static_cast<int32_t>(i),
                          .name = n.task.name,
                          .stream = n.task.stream,
                          .iteration = iteration_,
                          .start = *from,
                          .end = *to};
    for (ExecutionObserver* observer : observers_) observer->OnDeviceSpan(span);
  }
}

void Executor::Complete(int32_t node) {
  Node& n = nodes_[node];
  if (!n.on_complete.empty() && !cancelled_.load(std::memory_order_acquire)) {
    for (const std::function<void()>& callback : n.on_complete) callback();
  }
  for (int32_t successor : n.release_on_complete) Release(successor);
  Retire();
}

void Executor::Fail(int32_t node, const absl::Status& status) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (error_.ok()) {
    error_ = absl::Status(status.code(),
                          absl::StrCat("node ", Quoted(nodes_[node].task), ": ", status.message()));
  }
  cancelled_.store(true, std::memory_order_release);
}

void Executor::Retire() {
  if (tokens_left_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
    finished_.notify_all();
  }
}

void Executor::Notify(bool start, int32_t node) {
  if (observers_.empty()) return;
  const TaskNode& task = nodes_[node].task;
  const NodeEvent event{.node = node,
                        .name = task.name,
                        .stream = task.stream,
                        .iteration = iteration_,
                        .thread = std::this_thread::get_id(),
                        .time = std::chrono::steady_clock::now()};
  for (ExecutionObserver* observer : observers_) {
    if (start) {
      observer->OnNodeStart(event);
    } else {
      observer->OnNodeEnd(event);
    }
  }
}

}  // namespace gradflow::sched
