#include "runtime/trace/tracer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "runtime/trace/chrome_json.h"

namespace gradflow::runtime::trace {
namespace {

constexpr int32_t kLoopTid = 1;
constexpr int32_t kLoaderTid = 2;
constexpr int32_t kFirstThreadTid = 3;
constexpr std::string_view kUpdatePrefix = "sgd_update:bucket";
constexpr std::string_view kAllreducePrefix = "allreduce:bucket";

// The bucket in a node name like "sgd_update:bucket3", or -1.
int32_t BucketOfName(std::string_view name, std::string_view prefix) {
  if (name.size() <= prefix.size() || name.substr(0, prefix.size()) != prefix) return -1;
  int32_t bucket = -1;
  const std::string_view digits = name.substr(prefix.size());
  if (!absl::SimpleAtoi(absl::string_view(digits.data(), digits.size()), &bucket)) return -1;
  return bucket;
}

absl::string_view View(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// One event object at a time; every field after the common ones goes through Arg().
class EventWriter {
 public:
  EventWriter(std::string* out, int rank, double origin_us, double offset_us)
      : out_(out), rank_(rank), origin_us_(origin_us), offset_us_(offset_us) {}

  double Ts(int64_t ns) const { return static_cast<double>(ns) / 1000.0 + offset_us_ - origin_us_; }

  // Opens {"name":..,"cat":..,"ph":..,"ts":..,"pid":..,"tid":.. ; the caller adds fields, then
  // Close().
  void Open(absl::string_view name, absl::string_view cat, char ph, int64_t ts_ns, int32_t tid,
            bool metadata = false) {
    if (!first_) out_->append(",\n");
    first_ = false;
    out_->append("{\"name\":");
    AppendJsonString(out_, name);
    if (!cat.empty()) {
      out_->append(",\"cat\":");
      AppendJsonString(out_, cat);
    }
    absl::StrAppend(out_, ",\"ph\":\"", absl::string_view(&ph, 1), "\",\"ts\":");
    if (metadata) {
      out_->push_back('0');  // metadata has no time
    } else {
      AppendJsonMicros(out_, Ts(ts_ns));
    }
    absl::StrAppend(out_, ",\"pid\":", rank_, ",\"tid\":", tid);
  }
  void Dur(int64_t start_ns, int64_t end_ns) {
    out_->append(",\"dur\":");
    AppendJsonMicros(out_, static_cast<double>(std::max<int64_t>(0, end_ns - start_ns)) / 1000.0);
  }
  void Field(absl::string_view key, absl::string_view raw_json) {
    absl::StrAppend(out_, ",\"", key, "\":", raw_json);
  }
  void BeginArgs() {
    out_->append(",\"args\":{");
    first_arg_ = true;
  }
  void Arg(absl::string_view key, double value) {
    Key(key);
    AppendJsonNumber(out_, value);
  }
  void ArgString(absl::string_view key, absl::string_view value) {
    Key(key);
    AppendJsonString(out_, value);
  }
  void EndArgs() { out_->push_back('}'); }
  void Close() { out_->push_back('}'); }

  // A metadata event ("M") naming a process or thread.
  void Metadata(absl::string_view what, int32_t tid, absl::string_view name, int64_t sort_index) {
    Open(what, "", 'M', 0, tid, /*metadata=*/true);
    BeginArgs();
    ArgString("name", name);
    EndArgs();
    Close();
    Open(absl::StrCat(absl::StripSuffix(what, "_name"), "_sort_index"), "", 'M', 0, tid,
         /*metadata=*/true);
    BeginArgs();
    Arg("sort_index", static_cast<double>(sort_index));
    EndArgs();
    Close();
  }

 private:
  void Key(absl::string_view key) {
    if (!first_arg_) out_->push_back(',');
    first_arg_ = false;
    AppendJsonString(out_, key);
    out_->push_back(':');
  }

  std::string* out_;
  const int rank_;
  const double origin_us_;
  const double offset_us_;
  bool first_ = true;
  bool first_arg_ = true;
};

double GigabytesPerSecond(int64_t bytes, int64_t ns) {
  return ns > 0 ? static_cast<double>(bytes) / static_cast<double>(ns) : 0;  // bytes/ns = GB/s
}

}  // namespace

Tracer::Tracer(const TracerOptions& options, TaskGraphDescription description)
    : options_(options),
      description_(std::move(description)),
      created_ns_(Nanos(Clock::now())),
      steps_(static_cast<int32_t>(description_.steps.size())) {
  const size_t nodes = static_cast<size_t>(std::max<int64_t>(description_.task_nodes, steps_));
  node_start_ns_.assign(nodes, 0);
  update_bucket_.assign(nodes, -2);
  node_wait_ns_.assign(nodes, 0);
  const size_t buckets = description_.buckets.size();
  update_wait_ns_ = std::make_unique<std::atomic<int64_t>[]>(buckets);
  in_update_ = std::make_unique<std::atomic<bool>[]>(buckets);
  for (size_t b = 0; b < buckets; ++b) {
    update_wait_ns_[b].store(0);
    in_update_[b].store(false);
  }
  issued_.resize(buckets);
  threads_.resize(kFirstThreadTid);
  // Every node of every traced iteration, with room for the trainer's extra events; reserving up
  // front keeps reallocation out of the traced iterations.
  const int64_t window =
      options_.last_iteration == std::numeric_limits<int64_t>::max()
          ? 16
          : std::clamp<int64_t>(options_.last_iteration - options_.first_iteration + 1, 1, 4096);
  const int64_t per_iteration = static_cast<int64_t>(nodes + 3 * buckets) + 8;
  records_.reserve(static_cast<size_t>(std::min(options_.max_records, window * per_iteration)));
}

int32_t Tracer::ThreadLocked(std::thread::id thread, Role role, int32_t number) {
  auto [it, inserted] = thread_ids_.try_emplace(thread, 0);
  if (inserted) {
    it->second = static_cast<int32_t>(threads_.size());
    threads_.push_back({});
  }
  ThreadInfo& info = threads_[it->second];
  // A thread keeps its most telling role: the compute stream also runs Flush's waits, and a
  // scheduler worker runs the one-rank world's collectives inline.
  if (role > info.role) {
    info.role = role;
    info.number = role == Role::kWorker ? workers_++ : number;
  }
  return it->second;
}

int32_t Tracer::DeviceTrackLocked(Role role, int32_t number) {
  const int64_t key = (static_cast<int64_t>(role) << 32) | static_cast<uint32_t>(number);
  auto [it, inserted] = device_tracks_.try_emplace(key, 0);
  if (inserted) {
    it->second = static_cast<int32_t>(threads_.size());
    threads_.push_back({.role = role, .number = number});
  }
  return it->second;
}

int32_t Tracer::InternLocked(std::string_view text) {
  for (size_t i = 0; i < strings_.size(); ++i) {
    if (strings_[i] == text) return static_cast<int32_t>(i);
  }
  strings_.emplace_back(text);
  return static_cast<int32_t>(strings_.size() - 1);
}

void Tracer::PushLocked(const Record& record) {
  if (static_cast<int64_t>(records_.size()) >= options_.max_records) {
    ++dropped_;
    return;
  }
  records_.push_back(record);
}

void Tracer::MaybeCloseWindowLocked() {
  if (past_window_ && in_flight_in_window_ == 0) collecting_.store(false);
}

void Tracer::OnIterationStart(int64_t iteration) {
  if (Traces(iteration)) {
    collecting_.store(true);
  } else if (iteration > options_.last_iteration) {
    std::lock_guard lock(mutex_);
    past_window_ = true;
    MaybeCloseWindowLocked();
  }
}

void Tracer::OnIterationEnd(int64_t iteration, const absl::Status& /*status*/) {
  if (iteration < options_.last_iteration) return;
  std::lock_guard lock(mutex_);
  past_window_ = true;
  MaybeCloseWindowLocked();
}

void Tracer::OnNodeStart(const sched::NodeEvent& event) {
  if (!Traces(event.iteration)) return;
  const size_t node = static_cast<size_t>(event.node);
  if (node >= node_start_ns_.size()) return;
  if (event.node >= steps_) {
    if (update_bucket_[node] == -2) {
      const int32_t bucket = BucketOfName(event.name, kUpdatePrefix);
      update_bucket_[node] =
          bucket >= 0 && static_cast<size_t>(bucket) < description_.buckets.size() ? bucket : -1;
    }
    if (const int32_t bucket = update_bucket_[node]; bucket >= 0) {
      update_wait_ns_[bucket].store(0);
      in_update_[bucket].store(true);
    }
  }
  node_start_ns_[node] = Nanos(event.time);
}

void Tracer::OnNodeEnd(const sched::NodeEvent& event) {
  if (!Traces(event.iteration)) return;
  const size_t node = static_cast<size_t>(event.node);
  if (node >= node_start_ns_.size()) return;
  Record r;
  r.kind = Kind::kNode;
  r.index = event.node;
  r.iteration = event.iteration;
  r.start_ns = node_start_ns_[node];
  r.end_ns = Nanos(event.time);
  r.name = event.name;
  if (event.node >= steps_) {
    if (const int32_t bucket = update_bucket_[node]; bucket >= 0) {
      in_update_[bucket].store(false);
      r.value = static_cast<double>(update_wait_ns_[bucket].load());
    }
  }
  Role role = event.stream == sched::kHostStream ? Role::kWorker : Role::kCompute;
  if (options_.device_times && event.stream != sched::kHostStream) {
    // The device span comes after the iteration; this was the host issuing the node's work (a
    // scheduler worker's), and an update's host wait is the device's wait too.
    r.kind = Kind::kLaunch;
    role = Role::kWorker;
    node_wait_ns_[node] = static_cast<int64_t>(r.value);
  }
  std::lock_guard lock(mutex_);
  r.tid = ThreadLocked(event.thread, role, event.stream);
  PushLocked(r);
}

void Tracer::OnDeviceSpan(const sched::DeviceSpan& span) {
  if (!Traces(span.iteration)) return;
  const size_t node = static_cast<size_t>(span.node);
  if (node >= node_start_ns_.size()) return;
  Record r;
  r.kind = Kind::kNode;
  r.index = span.node;
  r.iteration = span.iteration;
  r.start_ns = Nanos(span.start);
  r.end_ns = Nanos(span.end);
  r.name = span.name;
  if (span.node >= steps_ && update_bucket_[node] >= 0) {
    r.value = static_cast<double>(node_wait_ns_[node]);
  }
  std::lock_guard lock(mutex_);
  r.tid = DeviceTrackLocked(Role::kDeviceStream, span.stream);
  PushLocked(r);
}

void Tracer::OnCollectiveStart(const dist::CollectiveEvent& /*event*/) {}

void Tracer::OnCollectiveEnd(const dist::CollectiveEvent& event) {
  if (!collecting_.load()) return;
  Record r;
  r.kind = Kind::kCollective;
  r.collective = static_cast<int8_t>(event.kind);
  r.failed = !event.status.ok();
  r.index = event.lane;
  r.start_ns = Nanos(event.start);
  r.end_ns = Nanos(event.end);
  r.count = event.sequence;
  r.value = static_cast<double>(event.bytes);
  std::lock_guard lock(mutex_);
  r.tid = event.device_timed ? DeviceTrackLocked(Role::kDeviceLane, event.lane)
                             : ThreadLocked(std::this_thread::get_id(), Role::kLane, event.lane);
  r.extra = InternLocked(event.algorithm);
  PushLocked(r);
}

void Tracer::OnBucketIssued(int64_t iteration, size_t bucket, Clock::time_point at) {
  if (!Traces(iteration) || bucket >= issued_.size()) return;
  std::lock_guard lock(mutex_);
  Issued& issued = issued_[bucket];
  if (issued.iteration < 0) ++in_flight_in_window_;
  issued.iteration = iteration;
  issued.at_ns = Nanos(at);
  issued.tid = ThreadLocked(std::this_thread::get_id(), Role::kOther, 0);
}

void Tracer::OnBucketReduced(int64_t iteration, size_t bucket, Clock::time_point at,
                             const absl::Status& status) {
  if (!Traces(iteration) || bucket >= issued_.size()) return;
  std::lock_guard lock(mutex_);
  Issued& issued = issued_[bucket];
  if (issued.iteration != iteration) return;  // issued before the tracer saw it
  Record r;
  r.kind = Kind::kAllreduce;
  r.failed = !status.ok();
  r.index = static_cast<int32_t>(bucket);
  r.iteration = iteration;
  r.start_ns = issued.at_ns;
  r.end_ns = Nanos(at);
  r.count = description_.buckets[bucket].bytes;
  r.tid = issued.tid;
  PushLocked(r);
  issued.iteration = -1;
  --in_flight_in_window_;
  MaybeCloseWindowLocked();
}

void Tracer::OnBucketWait(int64_t iteration, size_t bucket, Clock::time_point from,
                          Clock::time_point to) {
  if (bucket >= description_.buckets.size()) return;
  const int64_t waited = Nanos(to) - Nanos(from);
  if (in_update_[bucket].load()) {
    update_wait_ns_[bucket].fetch_add(waited);
    return;
  }
  if (!Traces(iteration)) return;
  Record r;
  r.kind = Kind::kFlushWait;
  r.index = static_cast<int32_t>(bucket);
  r.iteration = iteration;
  r.start_ns = Nanos(from);
  r.end_ns = Nanos(to);
  std::lock_guard lock(mutex_);
  r.tid = ThreadLocked(std::this_thread::get_id(), Role::kOther, 0);
  PushLocked(r);
}

void Tracer::OnIteration(int64_t iteration, Clock::time_point start, Clock::time_point end,
                         int64_t images) {
  if (!Traces(iteration)) return;
  Record r;
  r.kind = Kind::kIteration;
  r.tid = kLoopTid;
  r.iteration = iteration;
  r.start_ns = Nanos(start);
  r.end_ns = Nanos(end);
  r.count = images;
  std::lock_guard lock(mutex_);
  PushLocked(r);
}

void Tracer::OnDataBatch(int64_t iteration, Clock::time_point start, Clock::time_point end,
                         double wait_seconds) {
  if (!Traces(iteration)) return;
  Record r;
  r.kind = Kind::kDataBatch;
  r.tid = kLoaderTid;
  r.iteration = iteration;
  r.start_ns = Nanos(start);
  r.end_ns = Nanos(end);
  r.value = wait_seconds;
  std::lock_guard lock(mutex_);
  PushLocked(r);
}

void Tracer::Counter(const std::string& name, Clock::time_point time, double value) {
  if (!collecting_.load()) return;
  Record r;
  r.kind = Kind::kCounter;
  r.tid = kLoopTid;
  r.start_ns = r.end_ns = Nanos(time);
  r.value = value;
  std::lock_guard lock(mutex_);
  r.index = InternLocked(name);
  PushLocked(r);
}

double Tracer::FirstEventMicros() const {
  std::lock_guard lock(mutex_);
  int64_t first = created_ns_;
  for (const Record& r : records_) first = std::min(first, r.start_ns);
  return static_cast<double>(first) / 1000.0;
}

int64_t Tracer::records() const {
  std::lock_guard lock(mutex_);
  return static_cast<int64_t>(records_.size());
}

int64_t Tracer::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

std::string Tracer::EventsJson(double origin_us, double clock_offset_us) const {
  std::lock_guard lock(mutex_);
  const int rank = options_.rank;
  std::string out;
  out.reserve(records_.size() * 260 + 4096);
  EventWriter w(&out, rank, origin_us, clock_offset_us);

  w.Metadata("process_name", 0, absl::StrCat("node ", rank), rank);
  w.Metadata("thread_name", kLoopTid, "training loop", 0);
  w.Metadata("thread_name", kLoaderTid, "data loader", 1);
  for (size_t tid = kFirstThreadTid; tid < threads_.size(); ++tid) {
    const ThreadInfo& t = threads_[tid];
    std::string name;
    int64_t sort = 0;
    switch (t.role) {
      case Role::kCompute:
      case Role::kDeviceStream:
        name = t.number == sched::kComputeStream ? "compute stream"
                                                 : absl::StrCat("stream ", t.number);
        sort = 2 + t.number;
        break;
      case Role::kLane:
      case Role::kDeviceLane:
        name = absl::StrCat("collectives lane ", t.number);
        sort = 100 + t.number;
        break;
      case Role::kWorker:
        name = absl::StrCat("scheduler worker ", t.number);
        sort = 200 + t.number;
        break;
      case Role::kOther:
        name = absl::StrCat("thread ", tid);
        sort = 300 + static_cast<int64_t>(tid);
        break;
    }
    // A device's own tracks (its times, not a host thread's) sit just before the host's.
    if (t.role == Role::kDeviceStream || t.role == Role::kDeviceLane) {
      name = absl::StrCat("GPU ", name);
      sort += 48;
    }
    w.Metadata("thread_name", static_cast<int32_t>(tid), name, sort);
  }

  // Where each (iteration, node) ran, for the flow arrows; and the op steps in time order for
  // the arena counter.
  absl::flat_hash_map<std::pair<int64_t, int32_t>, const Record*> node_records;
  std::vector<const Record*> steps;
  for (const Record& r : records_) {
    if (r.kind != Kind::kNode) continue;
    node_records[{r.iteration, r.index}] = &r;
    if (r.index < steps_) steps.push_back(&r);
  }

  for (const Record& r : records_) {
    switch (r.kind) {
      case Kind::kNode: {
        const std::string_view name = r.name;
        if (r.index < steps_) {
          const StepInfo& step = description_.steps[r.index];
          w.Open(step.name, "op", 'X', r.start_ns, r.tid);
          w.Dur(r.start_ns, r.end_ns);
          w.BeginArgs();
          w.ArgString("op", step.op);
          w.Arg("step", r.index);
          w.ArgString("phase", step.phase);
          w.Arg("iteration", static_cast<double>(r.iteration));
          w.ArgString("inputs", step.inputs);
          w.Arg("flops", step.flops);
          w.Arg("bytes", step.bytes);
          w.EndArgs();
        } else if (const int32_t bucket = BucketOfName(name, kUpdatePrefix); bucket >= 0) {
          w.Open(View(name), "update", 'X', r.start_ns, r.tid);
          w.Dur(r.start_ns, r.end_ns);
          w.BeginArgs();
          w.Arg("bucket", bucket);
          w.Arg("iteration", static_cast<double>(r.iteration));
          w.Arg("wait_us", r.value / 1000.0);
          w.EndArgs();
        } else {
          const int32_t allreduce = BucketOfName(name, kAllreducePrefix);
          w.Open(View(name), allreduce >= 0 ? "issue" : "task", 'X', r.start_ns, r.tid);
          w.Dur(r.start_ns, r.end_ns);
          w.BeginArgs();
          if (allreduce >= 0) w.Arg("bucket", allreduce);
          w.Arg("iteration", static_cast<double>(r.iteration));
          w.EndArgs();
        }
        w.Close();
        break;
      }
      case Kind::kLaunch: {
        const std::string_view name =
            r.index < steps_ ? std::string_view(description_.steps[r.index].name) : r.name;
        w.Open(View(name), "launch", 'X', r.start_ns, r.tid);
        w.Dur(r.start_ns, r.end_ns);
        w.BeginArgs();
        w.Arg("iteration", static_cast<double>(r.iteration));
        w.EndArgs();
        w.Close();
        break;
      }
      case Kind::kFlushWait:
        w.Open(absl::StrCat("wait allreduce bucket ", r.index), "wait", 'X', r.start_ns, r.tid);
        w.Dur(r.start_ns, r.end_ns);
        w.BeginArgs();
        w.Arg("bucket", r.index);
        w.Arg("iteration", static_cast<double>(r.iteration));
        w.EndArgs();
        w.Close();
        break;
      case Kind::kCollective: {
        const auto kind = static_cast<dist::CollectiveKind>(r.collective);
        const int64_t bytes = static_cast<int64_t>(r.value);
        w.Open(dist::CollectiveKindName(kind), "collective", 'X', r.start_ns, r.tid);
        w.Dur(r.start_ns, r.end_ns);
        w.BeginArgs();
        w.Arg("lane", r.index);
        w.Arg("sequence", static_cast<double>(r.count));
        w.Arg("bytes", static_cast<double>(bytes));
        w.ArgString("algorithm", strings_[r.extra]);
        w.Arg("gbps", GigabytesPerSecond(bytes, r.end_ns - r.start_ns));
        if (r.failed) w.ArgString("status", "failed");
        w.EndArgs();
        w.Close();
        break;
      }
      case Kind::kAllreduce: {
        // Async events: concurrent allreduces get their own rows instead of breaking the
        // nesting of a thread's slices. The id is unique per (bucket, iteration) in the job.
        const std::string name = absl::StrCat("allreduce bucket ", r.index);
        const int64_t buckets = static_cast<int64_t>(description_.buckets.size());
        const std::string id =
            absl::StrCat((static_cast<int64_t>(rank) << 40) + r.iteration * buckets + r.index);
        w.Open(name, "allreduce", 'b', r.start_ns, r.tid);
        w.Field("id", id);
        w.BeginArgs();
        w.Arg("bucket", r.index);
        w.Arg("iteration", static_cast<double>(r.iteration));
        w.Arg("bytes", static_cast<double>(r.count));
        w.Arg("lane", r.index % std::max(1, options_.lanes));
        w.Arg("gbps", GigabytesPerSecond(r.count, r.end_ns - r.start_ns));
        if (r.failed) w.ArgString("status", "failed");
        w.EndArgs();
        w.Close();
        w.Open(name, "allreduce", 'e', r.end_ns, r.tid);
        w.Field("id", id);
        w.Close();

        // The arrow from the step that wrote the bucket's last gradient to the node that issued
        // the allreduce, both of this iteration; each end sits inside its slice.
        const BucketInfo& bucket = description_.buckets[r.index];
        auto producer = node_records.find({r.iteration, bucket.ready_step});
        auto issuer = node_records.find({r.iteration, bucket.allreduce_node});
        if (producer == node_records.end() || issuer == node_records.end()) break;
        const Record& from = *producer->second;
        const Record& to = *issuer->second;
        w.Open("gradients ready", "flow", 's', (from.start_ns + from.end_ns) / 2, from.tid);
        w.Field("id", id);
        w.Close();
        w.Open("gradients ready", "flow", 'f', (to.start_ns + to.end_ns) / 2, to.tid);
        w.Field("id", id);
        w.Field("bp", "\"e\"");
        w.Close();
        break;
      }
      case Kind::kIteration: {
        w.Open(absl::StrCat("iteration ", r.iteration), "iteration", 'X', r.start_ns, r.tid);
        w.Dur(r.start_ns, r.end_ns);
        w.BeginArgs();
        w.Arg("iteration", static_cast<double>(r.iteration));
        w.Arg("images", static_cast<double>(r.count));
        w.EndArgs();
        w.Close();
        if (r.end_ns > r.start_ns) {
          w.Open("images/s", "", 'C', r.end_ns, r.tid);
          w.BeginArgs();
          w.Arg("images/s",
                static_cast<double>(r.count) * 1e9 / static_cast<double>(r.end_ns - r.start_ns));
          w.EndArgs();
          w.Close();
        }
        break;
      }
      case Kind::kDataBatch:
        w.Open(absl::StrCat("data batch ", r.iteration), "data", 'X', r.start_ns, r.tid);
        w.Dur(r.start_ns, r.end_ns);
        w.BeginArgs();
        w.Arg("iteration", static_cast<double>(r.iteration));
        w.Arg("wait_us", r.value * 1e6);
        w.EndArgs();
        w.Close();
        break;
      case Kind::kCounter:
        w.Open(strings_[r.index], "", 'C', r.start_ns, r.tid);
        w.BeginArgs();
        w.Arg("value", r.value);
        w.EndArgs();
        w.Close();
        break;
    }
  }

  // Arena memory in use, from the plan's liveness: a sample wherever a step changes it.
  std::sort(steps.begin(), steps.end(),
            [](const Record* a, const Record* b) { return a->start_ns < b->start_ns; });
  int64_t previous = -1;
  for (const Record* r : steps) {
    const int64_t live = description_.steps[r->index].arena_live_bytes;
    if (live == previous) continue;
    previous = live;
    w.Open("arena MB in use", "", 'C', r->start_ns, r->tid);
    w.BeginArgs();
    w.Arg("MB", static_cast<double>(live) / (1 << 20));
    w.EndArgs();
    w.Close();
  }
  return out;
}

std::string Tracer::OtherDataJson(int nodes, const std::vector<double>& clock_offsets_us) const {
  const TaskGraphDescription& d = description_;
  std::string out = "{\"gradflow\":{\"graph\":";
  AppendJsonString(&out, d.graph_name);
  absl::StrAppend(&out, ",\"nodes\":", nodes, ",\"batch_per_node\":", d.batch,
                  ",\"steps\":", d.steps.size(), ",\"param_grads\":", d.param_grads,
                  ",\"arena_bytes\":", d.arena_bytes, ",\"lanes\":", options_.lanes,
                  ",\"trace_iters\":[", options_.first_iteration, ",");
  if (options_.last_iteration == std::numeric_limits<int64_t>::max()) {
    out.append("null");
  } else {
    absl::StrAppend(&out, options_.last_iteration);
  }
  out.append("],\"clock_offsets_us\":[");
  for (size_t i = 0; i < clock_offsets_us.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendJsonMicros(&out, clock_offsets_us[i]);
  }
  out.append("],\"buckets\":[");
  for (size_t b = 0; b < d.buckets.size(); ++b) {
    const BucketInfo& bucket = d.buckets[b];
    absl::StrAppend(&out, b > 0 ? "," : "", "{\"index\":", bucket.index,
                    ",\"bytes\":", bucket.bytes, ",\"ready_step\":", bucket.ready_step,
                    ",\"first_reader_step\":", bucket.first_reader_step,
                    ",\"params\":", bucket.param_grads.size(), ",\"param_grads\":[");
    for (size_t i = 0; i < bucket.param_grads.size(); ++i) {
      absl::StrAppend(&out, i > 0 ? "," : "", bucket.param_grads[i]);
    }
    out.append("]}");
  }
  out.append("]}}");
  return out;
}

}  // namespace gradflow::runtime::trace
