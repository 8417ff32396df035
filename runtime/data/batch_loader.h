// Turns a Dataset into this replica's stream of batches: per-epoch shuffle shared by all replicas,
// parallel decoding on a oneTBB arena, prefetching into a ring of preallocated buffers, and a
// checkpointable position.
#pragma once

#include <oneapi/tbb/task_arena.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/data/dataset.h"
#include "runtime/data/sharding.h"

namespace gradflow::runtime::data {

struct BatchLoaderOptions {
  Split split = Split::kTrain;
  int32_t world_size = 1;
  int32_t rank = 0;
  int64_t per_replica_batch = 32;
  uint64_t seed = 0;
  // Threads of the decode arena, counting the thread that fills the batch (the prefetch thread,
  // or the caller of Next() without prefetch): the trainer budgets these with its other threads.
  int decode_threads = 1;
  // Batches decoded ahead on a background thread (K); 0 decodes inside Next().
  int prefetch_batches = 2;
  // Next() returns OutOfRange once this many epochs have been handed out; 0 never ends.
  int64_t epochs = 0;
};

// Where the stream stands: the next batch Next() returns. Stored in checkpoints so that a resumed
// run sees exactly the batches the interrupted one would have seen.
struct LoaderState {
  int64_t epoch = 0;
  int64_t next_iteration = 0;
  uint64_t seed = 0;
};

// A view into the loader's buffer, valid until the next call to Next() or Restore().
struct Batch {
  int64_t epoch = 0;
  int64_t iteration = 0;
  int64_t size = 0;                 // per_replica_batch, except eval's last batch
  const float* images = nullptr;    // size x C x H x W (NCHW float32)
  const int32_t* labels = nullptr;  // size
  int64_t replaced = 0;             // unreadable examples replaced by the next readable one
  double wait_seconds = 0;          // time Next() blocked: the data-loader stall
  double decode_seconds = 0;        // wall time spent filling this batch
};

// Totals over the batches of one epoch handed out so far.
struct EpochStats {
  int64_t batches = 0;
  int64_t examples = 0;
  int64_t replaced = 0;
  double wait_seconds = 0;
  double decode_seconds = 0;
};

class BatchLoader {
 public:
  // Errors (InvalidArgument) name the bad option: world/rank/batch out of range, or a split
  // smaller than one global batch.
  static absl::StatusOr<std::unique_ptr<BatchLoader>> Create(std::shared_ptr<const Dataset> dataset,
                                                             const BatchLoaderOptions& options);

  // Stops and joins the prefetch thread; a batch being decoded is abandoned early.
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // The next batch in order. Unreadable examples are replaced by the next readable example of the
  // split (in index order), so every batch is full. Errors: OutOfRange after the last epoch; any
  // non-DataLoss error from the dataset; FailedPrecondition if no example of the split is
  // readable. The RNG of each example derives from (seed, epoch, iteration, rank, slot), so the
  // contents do not depend on thread timing or on prefetching.
  absl::StatusOr<Batch> Next();

  LoaderState State() const;
  // Continues from `state` (discarding prefetched batches). InvalidArgument if its position is
  // outside this loader's epoch.
  absl::Status Restore(const LoaderState& state);

  int64_t IterationsPerEpoch() const { return iterations_per_epoch_; }
  // Examples this replica sees per epoch (eval: its share of the partial last batch included).
  int64_t ExamplesPerEpoch() const;
  EpochStats StatsOfEpoch(int64_t epoch) const;
  ExampleShape Shape() const { return shape_; }
  const BatchLoaderOptions& options() const { return options_; }

 private:
  struct Position {
    int64_t epoch = 0;
    int64_t iteration = 0;
  };
  struct Buffer {
    std::vector<float> images;
    std::vector<int32_t> labels;
    Batch batch;
  };

  BatchLoader(std::shared_ptr<const Dataset> dataset, const BatchLoaderOptions& options,
              const ShardSpec& shard);
  Position After(Position position) const;
  bool AtEnd(Position position) const;
  absl::Status Fill(Position position, Buffer& buffer);
  absl::Status LoadReadable(int64_t index, Rng& rng, float* image, int32_t* label,
                            std::atomic<int64_t>& replaced) const;
  Batch HandOut(const Batch& filled, double wait_seconds);
  void ProduceFrom(Position start);
  void StopProducer();

  const std::shared_ptr<const Dataset> dataset_;
  const BatchLoaderOptions options_;
  const ShardSpec shard_;
  const ExampleShape shape_;
  const int64_t iterations_per_epoch_;
  tbb::task_arena arena_;

  // Only the thread that fills batches (producer, or the caller without prefetch) touches these.
  int64_t permutation_epoch_ = -1;
  uint64_t permutation_seed_ = 0;
  std::vector<int64_t> permutation_;
  std::vector<Buffer> ring_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::thread producer_;
  std::atomic<bool> cancel_{false};
  bool producer_started_ = false;
  bool producer_finished_ = false;  // reached the end or failed; then producer_status_ says why
  absl::Status producer_status_;
  int64_t produced_ = 0;  // batches filled since the producer started
  int64_t consumed_ = 0;  // batches handed out since the producer started
  bool holding_ = false;  // the caller still holds the last handed-out buffer
  uint64_t seed_;
  Position next_;  // what Next() returns next
  std::map<int64_t, EpochStats> stats_;
};

}  // namespace gradflow::runtime::data
