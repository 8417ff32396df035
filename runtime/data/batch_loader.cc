#include "runtime/data/batch_loader.h"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"

namespace gradflow::runtime::data {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

absl::StatusOr<std::unique_ptr<BatchLoader>> BatchLoader::Create(
    std::shared_ptr<const Dataset> dataset, const BatchLoaderOptions& options) {
  if (dataset == nullptr) return absl::InvalidArgumentError("batch loader: no dataset");
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch loader: rank ", options.rank, " is outside world of size ", options.world_size));
  }
  if (options.per_replica_batch < 1) {
    return absl::InvalidArgumentError(absl::StrCat("batch loader: per-replica batch ",
                                                   options.per_replica_batch, " must be >= 1"));
  }
  if (options.decode_threads < 1 || options.prefetch_batches < 0 || options.epochs < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch loader: decode threads (", options.decode_threads, ") must be >= 1, prefetch (",
        options.prefetch_batches, ") and epochs (", options.epochs, ") >= 0"));
  }
  ShardSpec shard{dataset->NumExamples(options.split), options.world_size, options.rank,
                  options.per_replica_batch};
  if (data::IterationsPerEpoch(options.split, shard) < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        dataset->Describe(), ": the ", SplitName(options.split), " split has ", shard.examples,
        " examples, fewer than one global batch of ", shard.GlobalBatch(), " (", shard.world_size,
        " replicas x ", shard.per_replica_batch, ")"));
  }
  return std::unique_ptr<BatchLoader>(new BatchLoader(std::move(dataset), options, shard));
}

BatchLoader::BatchLoader(std::shared_ptr<const Dataset> dataset, const BatchLoaderOptions& options,
                         const ShardSpec& shard)
    : dataset_(std::move(dataset)),
      options_(options),
      shard_(shard),
      shape_(dataset_->Shape()),
      iterations_per_epoch_(data::IterationsPerEpoch(options.split, shard)),
      arena_(options.decode_threads),
      seed_(options.seed) {
  // One buffer is held by the caller while K are filled ahead.
  ring_.resize(static_cast<size_t>(options.prefetch_batches) + 1);
  for (Buffer& buffer : ring_) {
    buffer.images.resize(static_cast<size_t>(options.per_replica_batch * shape_.Elements()));
    buffer.labels.resize(static_cast<size_t>(options.per_replica_batch));
  }
}

BatchLoader::~BatchLoader() { StopProducer(); }

int64_t BatchLoader::ExamplesPerEpoch() const {
  if (options_.split == Split::kTrain) return iterations_per_epoch_ * options_.per_replica_batch;
  int64_t total = 0;
  for (int64_t i = 0; i < iterations_per_epoch_; ++i) {
    total += ShareOfIteration(options_.split, shard_, i).Size();
  }
  return total;
}

BatchLoader::Position BatchLoader::After(Position position) const {
  if (++position.iteration == iterations_per_epoch_) return {position.epoch + 1, 0};
  return position;
}

bool BatchLoader::AtEnd(Position position) const {
  return options_.epochs > 0 && position.epoch >= options_.epochs;
}

absl::Status BatchLoader::LoadReadable(int64_t index, Rng& rng, float* image, int32_t* label,
                                       std::atomic<int64_t>& replaced) const {
  const int64_t examples = shard_.examples;
  for (int64_t attempt = 0; attempt < examples; ++attempt) {
    absl::Status status = dataset_->LoadExample(options_.split, index, rng, image, label);
    if (status.ok() || !absl::IsDataLoss(status)) return status;
    replaced.fetch_add(1, std::memory_order_relaxed);
    index = (index + 1) % examples;
  }
  return absl::FailedPreconditionError(
      absl::StrCat(dataset_->Describe(), ": none of the ", examples, " examples of the ",
                   SplitName(options_.split), " split is readable"));
}

absl::Status BatchLoader::Fill(Position position, Buffer& buffer) {
  const auto start = std::chrono::steady_clock::now();
  const bool shuffled = options_.split == Split::kTrain;
  if (shuffled && (permutation_epoch_ != position.epoch || permutation_seed_ != seed_)) {
    permutation_ = EpochPermutation(shard_.examples, seed_, position.epoch);
    permutation_epoch_ = position.epoch;
    permutation_seed_ = seed_;
  }
  const Share share = ShareOfIteration(options_.split, shard_, position.iteration);
  const uint64_t batch_seed =
      DeriveSeed({seed_, static_cast<uint64_t>(position.epoch),
                  static_cast<uint64_t>(position.iteration), static_cast<uint64_t>(shard_.rank)});
  const int64_t elements = shape_.Elements();
  std::atomic<int64_t> replaced{0};
  std::mutex error_mutex;
  absl::Status error;

  auto load_slot = [&](int64_t slot) {
    if (cancel_.load(std::memory_order_relaxed)) return;  // shutting down: abandon the batch
    const int64_t at = share.begin + slot;
    const int64_t index = shuffled ? permutation_[at] : at;
    Rng rng(DeriveSeed({batch_seed, static_cast<uint64_t>(slot)}));
    absl::Status status =
        LoadReadable(index, rng, &buffer.images[slot * elements], &buffer.labels[slot], replaced);
    if (!status.ok()) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (error.ok()) error = std::move(status);
    }
  };
  arena_.execute([&] {
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, share.Size(), 1),
                      [&](const tbb::blocked_range<int64_t>& slots) {
                        for (int64_t slot = slots.begin(); slot != slots.end(); ++slot) {
                          load_slot(slot);
                        }
                      });
  });
  if (cancel_.load()) return absl::CancelledError("batch loader stopped");
  if (!error.ok()) return error;

  Batch& batch = buffer.batch;
  batch.epoch = position.epoch;
  batch.iteration = position.iteration;
  batch.size = share.Size();
  batch.images = buffer.images.data();
  batch.labels = buffer.labels.data();
  batch.replaced = replaced.load();
  batch.decode_seconds = SecondsSince(start);
  return absl::OkStatus();
}

Batch BatchLoader::HandOut(const Batch& filled, double wait_seconds) {
  Batch batch = filled;
  batch.wait_seconds = wait_seconds;
  next_ = After({batch.epoch, batch.iteration});
  EpochStats& stats = stats_[batch.epoch];
  ++stats.batches;
  stats.examples += batch.size;
  stats.replaced += batch.replaced;
  stats.wait_seconds += wait_seconds;
  stats.decode_seconds += batch.decode_seconds;
  return batch;
}

void BatchLoader::ProduceFrom(Position start) {
  const int64_t ring_size = static_cast<int64_t>(ring_.size());
  Position position = start;
  for (int64_t sequence = 0;; ++sequence) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (AtEnd(position)) {
        producer_finished_ = true;
        producer_status_ = absl::OutOfRangeError(
            absl::StrCat("batch loader: all ", options_.epochs, " epochs were handed out"));
        changed_.notify_all();
        return;
      }
      // The buffer of `sequence` is free once the caller released the batch ring_size before.
      changed_.wait(lock, [&] {
        return cancel_.load() || sequence < consumed_ - (holding_ ? 1 : 0) + ring_size;
      });
      if (cancel_.load()) return;
    }
    absl::Status status = Fill(position, ring_[sequence % ring_size]);
    std::lock_guard<std::mutex> lock(mutex_);
    if (!status.ok()) {
      producer_finished_ = true;
      producer_status_ = std::move(status);
      changed_.notify_all();
      return;
    }
    ++produced_;
    changed_.notify_all();
    position = After(position);
  }
}

absl::StatusOr<Batch> BatchLoader::Next() {
  const auto start = std::chrono::steady_clock::now();
  if (options_.prefetch_batches == 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (AtEnd(next_)) {
      return absl::OutOfRangeError(
          absl::StrCat("batch loader: all ", options_.epochs, " epochs were handed out"));
    }
    absl::Status status = Fill(next_, ring_[0]);
    if (!status.ok()) return status;
    return HandOut(ring_[0].batch, SecondsSince(start));
  }

  std::unique_lock<std::mutex> lock(mutex_);
  if (!producer_started_) {
    producer_started_ = true;
    producer_ = std::thread([this, from = next_] { ProduceFrom(from); });
  }
  if (holding_) {
    holding_ = false;
    changed_.notify_all();
  }
  changed_.wait(lock, [&] { return produced_ > consumed_ || producer_finished_; });
  if (produced_ == consumed_) return producer_status_;
  const Buffer& buffer = ring_[consumed_ % static_cast<int64_t>(ring_.size())];
  ++consumed_;
  holding_ = true;
  return HandOut(buffer.batch, SecondsSince(start));
}

void BatchLoader::StopProducer() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancel_.store(true);
    changed_.notify_all();
  }
  if (producer_.joinable()) producer_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  cancel_.store(false);
  producer_started_ = false;
  producer_finished_ = false;
  producer_status_ = absl::OkStatus();
  produced_ = 0;
  consumed_ = 0;
  holding_ = false;
}

LoaderState BatchLoader::State() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return {next_.epoch, next_.iteration, seed_};
}

absl::Status BatchLoader::Restore(const LoaderState& state) {
  if (state.epoch < 0 || state.next_iteration < 0 ||
      state.next_iteration >= iterations_per_epoch_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch loader: cannot restore epoch ", state.epoch, " iteration ", state.next_iteration,
        ": an epoch of the ", SplitName(options_.split), " split has ", iterations_per_epoch_,
        " iterations (", shard_.world_size, " replicas x batch ", shard_.per_replica_batch, ")"));
  }
  StopProducer();
  std::lock_guard<std::mutex> lock(mutex_);
  seed_ = state.seed;
  next_ = {state.epoch, state.next_iteration};
  return absl::OkStatus();
}

EpochStats BatchLoader::StatsOfEpoch(int64_t epoch) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = stats_.find(epoch);
  return it == stats_.end() ? EpochStats{} : it->second;
}

}  // namespace gradflow::runtime::data
