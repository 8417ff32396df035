#include "runtime/trainer/gradient_sync.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace gradflow::runtime {
namespace {

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

GradientSync::GradientSync(DeviceGraph& graph, std::unique_ptr<BucketEngine> engine,
                           Optimizer& optimizer, const GradientSyncOptions& options)
    : graph_(graph), engine_(std::move(engine)), optimizer_(optimizer), options_(options) {}

GradientSync::~GradientSync() {
  // An allreduce still in flight writes into the gradient buffer and calls back into this
  // object: wait for it (the collectives bound this by their timeout).
  std::unique_lock lock(mutex_);
  reduced_.wait_for(lock, options_.wait_limit, [this] { return in_flight_ == 0; });
}

absl::StatusOr<std::unique_ptr<GradientSync>> GradientSync::Attach(
    DeviceGraph& graph, dist::Collectives& collectives, Optimizer& optimizer,
    const GradientSyncOptions& options) {
  return Attach(graph, CreateHostBucketEngine(graph, collectives, optimizer), optimizer, options);
}

absl::StatusOr<std::unique_ptr<GradientSync>> GradientSync::Attach(
    DeviceGraph& graph, std::unique_ptr<BucketEngine> engine, Optimizer& optimizer,
    const GradientSyncOptions& options) {
  absl::StatusOr<std::vector<sched::Bucket>> buckets =
      sched::PlanBuckets(graph.graph(), graph.plan(), options.bucket_bytes,
                         options.first_layers_bucket_bytes);
  if (!buckets.ok()) return buckets.status();
  if (absl::Status s = engine->Prepare(*buckets); !s.ok()) return s;
  const bool host_waits = engine->update_waits_on_host();
  std::unique_ptr<GradientSync> sync(new GradientSync(graph, std::move(engine), optimizer, options));
  sync->stats_.exposure_measured = host_waits;
  sync->buckets_ = *std::move(buckets);
  sync->state_.resize(sync->buckets_.size());
  sync->allreduce_started_.resize(sync->buckets_.size());
  sync->last_step_node_ = graph.last_step_node();
  GradientSync* self = sync.get();
  int32_t previous_allreduce = -1;
  for (size_t b = 0; b < self->buckets_.size(); ++b) {
    const sched::Bucket& bucket = self->buckets_[b];
    // On the compute stream right after the step that makes the bucket ready: the allreduce
    // starts the moment its last gradient exists, in bucket order on every node, without waiting
    // for a host worker to wake up (on a busy machine that wait outlasts the rest of backward).
    std::vector<int32_t> after = {bucket.ready_step};
    if (previous_allreduce >= 0) after.push_back(previous_allreduce);
    std::vector<int32_t> before;
    if (bucket.ready_step + 1 < static_cast<int32_t>(graph.plan().steps.size())) {
      before.push_back(bucket.ready_step + 1);
    }
    previous_allreduce = graph.AddWork(
        absl::StrCat("allreduce:bucket", b), sched::kComputeStream,
        [self, b] { return self->StartAllreduce(b); }, after, before);
    self->allreduce_nodes_.push_back(previous_allreduce);

    // Plan steps are task nodes 0..n-1 chained in stream order: sitting between the step before
    // the first reader and the first reader puts the update exactly there on the stream.
    std::vector<int32_t> before_update;
    if (bucket.first_reader_step > 0) before_update.push_back(bucket.first_reader_step - 1);
    const int32_t first_reader = bucket.first_reader_step;
    graph.AddWork(absl::StrCat("sgd_update:bucket", b), sched::kComputeStream,
                  [self, b] { return self->WaitAndUpdate(b); }, before_update,
                  std::span(&first_reader, 1));
  }
  return sync;
}

void GradientSync::ObserveExecutor() {
  graph_.executor().AddObserver(this);
  std::lock_guard lock(mutex_);
  observing_ = true;
}

void GradientSync::SetMicroBatch(int micro, int count) {
  micro_ = micro;
  micro_count_ = count;
}

absl::Status GradientSync::StartAllreduce(size_t bucket) {
  const sched::Bucket& b = buckets_[bucket];
  absl::StatusOr<bool> ready = engine_->Accumulate(bucket, micro_, micro_count_);
  if (!ready.ok()) return ready.status();
  if (!*ready) return absl::OkStatus();
  {
    std::lock_guard lock(mutex_);
    if (!first_failure_.ok()) return first_failure_;
    BucketState& s = state_[bucket];
    s.pending = true;
    s.reduced = false;
    s.status = absl::OkStatus();
    s.hyper = optimizer_.step_hyper();
    s.iteration = iteration_.load();
    if (in_flight_++ == 0) busy_since_ = Clock::now();
    ++stats_.allreduces;
    stats_.bytes_reduced += b.bytes(sizeof(float));
  }
  const int64_t iteration = iteration_.load();
  for (BucketObserver* o : bucket_observers_) o->OnBucketIssued(iteration, bucket, Clock::now());
  engine_->StartAllreduce(bucket, [this, bucket](absl::Status status) { Reduced(bucket, status); });
  return absl::OkStatus();
}

void GradientSync::Reduced(size_t bucket, const absl::Status& status) {
  const Clock::time_point now = Clock::now();
  std::lock_guard lock(mutex_);
  BucketState& s = state_[bucket];
  for (BucketObserver* o : bucket_observers_) o->OnBucketReduced(s.iteration, bucket, now, status);
  s.reduced = true;
  s.status = status;
  if (!status.ok() && first_failure_.ok()) {
    first_failure_ = absl::Status(
        status.code(), absl::StrCat("allreduce of gradient bucket ", bucket, ": ", status.message()));
  }
  if (--in_flight_ == 0) stats_.communication_seconds += Seconds(Clock::now() - busy_since_);
  reduced_.notify_all();
}

absl::Status GradientSync::WaitAndUpdate(size_t bucket) {
  ops::SgdHyper hyper;
  {
    std::unique_lock lock(mutex_);
    BucketState& s = state_[bucket];
    if (!s.pending) return absl::OkStatus();  // the first iteration: nothing reduced yet
    if (!engine_->update_waits_on_host()) {
      // The device orders the update after the reduction; a failure reported so far stops here.
      if (!first_failure_.ok()) return first_failure_;
      s.pending = false;
      hyper = s.hyper;
      lock.unlock();
      return engine_->Update(bucket, hyper);
    }
    const Clock::time_point start = Clock::now();
    const bool done = reduced_.wait_for(lock, options_.wait_limit, [&s] { return s.reduced; });
    const Clock::time_point end = Clock::now();
    stats_.exposed_seconds += Seconds(end - start);
    for (BucketObserver* o : bucket_observers_) o->OnBucketWait(s.iteration, bucket, start, end);
    if (!done) {
      return absl::DeadlineExceededError(
          absl::StrCat("the allreduce of gradient bucket ", bucket, " did not report back within ",
                       options_.wait_limit.count() / 1000, " s"));
    }
    if (!s.status.ok()) {
      return absl::Status(s.status.code(), absl::StrCat("allreduce of gradient bucket ", bucket,
                                                        ": ", s.status.message()));
    }
    s.pending = false;
    hyper = s.hyper;
  }
  return engine_->Update(bucket, hyper);
}

absl::Status GradientSync::Flush() {
  return graph_.RunOnComputeStream([this]() -> absl::Status {
    for (size_t b = 0; b < buckets_.size(); ++b) {
      if (absl::Status s = WaitAndUpdate(b); !s.ok()) return s;
    }
    return absl::OkStatus();
  });
}

CommunicationStats GradientSync::stats() const {
  std::lock_guard lock(mutex_);
  CommunicationStats stats = stats_;
  if (in_flight_ > 0) stats.communication_seconds += Seconds(Clock::now() - busy_since_);
  return stats;
}

void GradientSync::OnIterationStart(int64_t iteration) { iteration_.store(iteration); }

void GradientSync::OnNodeStart(const sched::NodeEvent& event) {
  // Called for every step of every iteration: the allreduce nodes come after all plan steps and
  // are added in increasing id order, so steps leave at the first comparison.
  if (allreduce_nodes_.empty() || event.node < allreduce_nodes_.front()) return;
  const auto it = std::lower_bound(allreduce_nodes_.begin(), allreduce_nodes_.end(), event.node);
  if (it == allreduce_nodes_.end() || *it != event.node) return;
  std::lock_guard lock(mutex_);
  allreduce_started_[it - allreduce_nodes_.begin()] = event.time;
}

void GradientSync::OnNodeEnd(const sched::NodeEvent& event) {
  if (event.node != last_step_node_) return;
  std::lock_guard lock(mutex_);
  backward_ended_ = event.time;
}

void GradientSync::OnIterationEnd(int64_t /*iteration*/, const absl::Status& status) {
  std::lock_guard lock(mutex_);
  ++stats_.iterations;
  // Runs that only accumulate a micro-batch start no allreduce.
  if (!status.ok() || !observing_ || micro_ + 1 < micro_count_) return;
  for (const Clock::time_point started : allreduce_started_) {
    stats_.allreduces_started_during_backward += started < backward_ended_;
  }
}

}  // namespace gradflow::runtime
