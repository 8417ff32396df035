#include "runtime/data/batch_loader.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gradflow::runtime::data {
namespace {

using ::testing::HasSubstr;

// Example i is [i, a draw of the example's rng]: the first value identifies the example, the
// second shows which augmentation stream it got. Chosen indices fail like corrupt files, and each
// example can take a fixed time to "decode".
class IndexDataset final : public Dataset {
 public:
  IndexDataset(int64_t train, int64_t eval) : train_(train), eval_(eval) {}

  std::set<int64_t> corrupt;
  int64_t fails_hard = -1;  // this index returns a non-DataLoss error
  std::chrono::milliseconds delay{0};
  mutable std::atomic<int64_t> loads{0};

  std::string Describe() const override { return "index"; }
  int64_t NumExamples(Split split) const override {
    return split == Split::kTrain ? train_ : eval_;
  }
  int32_t NumClasses() const override { return 7; }
  ExampleShape Shape() const override { return {1, 1, 2}; }
  absl::Status LoadExample(Split split, int64_t index, Rng& rng, float* out_chw,
                           int32_t* label) const override {
    loads.fetch_add(1);
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    if (index < 0 || index >= NumExamples(split)) return absl::OutOfRangeError("index");
    if (index == fails_hard) return absl::InternalError(absl::StrCat("broken example ", index));
    if (corrupt.count(index) != 0) return absl::DataLossError(absl::StrCat("corrupt ", index));
    out_chw[0] = static_cast<float>(index);
    out_chw[1] = static_cast<float>(rng.Uniform());
    *label = static_cast<int32_t>(index % 7);
    return absl::OkStatus();
  }

 private:
  int64_t train_;
  int64_t eval_;
};

struct Seen {
  int64_t epoch;
  int64_t iteration;
  std::vector<float> values;  // 2 per example
  std::vector<int32_t> labels;
  bool operator==(const Seen&) const = default;
};

Seen Copy(const Batch& batch) {
  return {batch.epoch, batch.iteration,
          std::vector<float>(batch.images, batch.images + 2 * batch.size),
          std::vector<int32_t>(batch.labels, batch.labels + batch.size)};
}

std::vector<int64_t> Indices(const Seen& seen) {
  std::vector<int64_t> indices;
  for (size_t i = 0; i < seen.values.size(); i += 2)
    indices.push_back(static_cast<int64_t>(seen.values[i]));
  return indices;
}

std::unique_ptr<BatchLoader> MakeLoader(std::shared_ptr<const Dataset> dataset,
                                        BatchLoaderOptions options) {
  absl::StatusOr<std::unique_ptr<BatchLoader>> loader = BatchLoader::Create(dataset, options);
  EXPECT_TRUE(loader.ok()) << loader.status();
  return loader.ok() ? std::move(*loader) : nullptr;
}

std::vector<Seen> Take(BatchLoader& loader, int count) {
  std::vector<Seen> seen;
  for (int i = 0; i < count; ++i) {
    absl::StatusOr<Batch> batch = loader.Next();
    EXPECT_TRUE(batch.ok()) << batch.status();
    if (!batch.ok()) break;
    seen.push_back(Copy(*batch));
  }
  return seen;
}

class PartitionTest : public ::testing::TestWithParam<int32_t> {};

TEST_P(PartitionTest, ReplicasTakeDisjointSharesOfEachGlobalBatch) {
  const int32_t world = GetParam();
  auto dataset = std::make_shared<IndexDataset>(103, 10);
  const int64_t batch = 4;
  const int64_t iterations = 103 / (batch * world);
  std::vector<std::unique_ptr<BatchLoader>> loaders;
  for (int32_t rank = 0; rank < world; ++rank) {
    loaders.push_back(MakeLoader(dataset, {.world_size = world,
                                           .rank = rank,
                                           .per_replica_batch = batch,
                                           .seed = 5,
                                           .decode_threads = 2,
                                           .prefetch_batches = 2}));
    ASSERT_EQ(loaders.back()->IterationsPerEpoch(), iterations);
  }
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    const std::vector<int64_t> order = EpochPermutation(103, 5, epoch);
    std::set<int64_t> epoch_indices;
    for (int64_t i = 0; i < iterations; ++i) {
      for (int32_t rank = 0; rank < world; ++rank) {
        absl::StatusOr<Batch> next = loaders[rank]->Next();
        ASSERT_TRUE(next.ok()) << next.status();
        EXPECT_EQ(next->epoch, epoch);
        EXPECT_EQ(next->iteration, i);
        ASSERT_EQ(next->size, batch);
        const std::vector<int64_t> indices = Indices(Copy(*next));
        // Rank r's share is its slice of the epoch's global batch i, in order.
        const auto slice = order.begin() + i * batch * world + rank * batch;
        EXPECT_EQ(indices, std::vector<int64_t>(slice, slice + batch));
        for (int64_t index : indices) EXPECT_TRUE(epoch_indices.insert(index).second) << index;
        for (int64_t k = 0; k < batch; ++k) EXPECT_EQ(next->labels[k], indices[k] % 7);
      }
    }
    EXPECT_EQ(static_cast<int64_t>(epoch_indices.size()), iterations * batch * world);
  }
}

INSTANTIATE_TEST_SUITE_P(Worlds, PartitionTest, ::testing::Values(1, 2, 4));

TEST(BatchLoaderTest, ShuffleIsFixedBySeedAndEpochAndChangesPerEpoch) {
  auto dataset = std::make_shared<IndexDataset>(64, 8);
  const BatchLoaderOptions options{.per_replica_batch = 64, .seed = 1};
  auto first = MakeLoader(dataset, options);
  auto second = MakeLoader(dataset, options);
  auto other_seed = MakeLoader(dataset, {.per_replica_batch = 64, .seed = 2});
  const std::vector<Seen> a = Take(*first, 3);
  const std::vector<Seen> b = Take(*second, 3);
  const std::vector<Seen> c = Take(*other_seed, 1);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a, b);
  EXPECT_NE(Indices(a[0]), Indices(a[1]));
  EXPECT_NE(Indices(a[1]), Indices(a[2]));
  EXPECT_NE(Indices(a[0]), Indices(c[0]));
  std::vector<int64_t> sorted = Indices(a[1]);
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 64; ++i) EXPECT_EQ(sorted[i], i);
}

TEST(BatchLoaderTest, PrefetchAndThreadCountDoNotChangeTheBatches) {
  auto dataset = std::make_shared<IndexDataset>(200, 20);
  BatchLoaderOptions options{.world_size = 2,
                             .rank = 1,
                             .per_replica_batch = 8,
                             .seed = 3,
                             .decode_threads = 1,
                             .prefetch_batches = 0};
  auto synchronous = MakeLoader(dataset, options);
  options.decode_threads = 2;
  options.prefetch_batches = 3;
  auto prefetching = MakeLoader(dataset, options);
  const int count = 2 * static_cast<int>(synchronous->IterationsPerEpoch()) + 3;
  const std::vector<Seen> expected = Take(*synchronous, count);
  const std::vector<Seen> actual = Take(*prefetching, count);
  ASSERT_EQ(expected.size(), static_cast<size_t>(count));
  EXPECT_EQ(expected, actual);
  // Every example in a batch gets its own augmentation stream.
  std::set<float> draws;
  for (size_t i = 1; i < expected[0].values.size(); i += 2) draws.insert(expected[0].values[i]);
  EXPECT_EQ(draws.size(), 8u);
}

TEST(BatchLoaderTest, RestoreContinuesWithTheSameBatches) {
  auto dataset = std::make_shared<IndexDataset>(50, 10);
  const BatchLoaderOptions options{.per_replica_batch = 8, .seed = 9, .prefetch_batches = 2};
  auto original = MakeLoader(dataset, options);  // 6 iterations per epoch
  std::vector<Seen> before = Take(*original, 4);
  const LoaderState state = original->State();
  EXPECT_EQ(state.epoch, 0);
  EXPECT_EQ(state.next_iteration, 4);
  EXPECT_EQ(state.seed, 9u);
  const std::vector<Seen> after = Take(*original, 6);  // crosses into epoch 1

  auto resumed = MakeLoader(dataset, {.per_replica_batch = 8, .seed = 12345});
  ASSERT_TRUE(resumed->Restore(state).ok());
  EXPECT_EQ(Take(*resumed, 6), after);

  // Restoring the running loader discards what it prefetched and repeats.
  ASSERT_TRUE(original->Restore(state).ok());
  EXPECT_EQ(Take(*original, 6), after);
}

TEST(BatchLoaderTest, RestoreRejectsAPositionOutsideTheEpoch) {
  auto dataset = std::make_shared<IndexDataset>(50, 10);
  auto loader = MakeLoader(dataset, {.per_replica_batch = 8});
  absl::Status status = loader->Restore({.epoch = 2, .next_iteration = 6, .seed = 0});
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_THAT(status.message(), HasSubstr("has 6 iterations"));
  EXPECT_FALSE(loader->Restore({.epoch = -1, .next_iteration = 0, .seed = 0}).ok());
}

TEST(BatchLoaderTest, CorruptExamplesAreReplacedByTheNextReadableOne) {
  auto dataset = std::make_shared<IndexDataset>(16, 4);
  dataset->corrupt = {3, 4, 15};
  auto loader = MakeLoader(dataset, {.per_replica_batch = 16, .seed = 4, .epochs = 2});
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    absl::StatusOr<Batch> batch = loader->Next();
    ASSERT_TRUE(batch.ok()) << batch.status();
    ASSERT_EQ(batch->size, 16);
    std::multiset<int64_t> indices;
    for (int64_t index : Indices(Copy(*batch))) indices.insert(index);
    EXPECT_EQ(indices.count(3) + indices.count(4) + indices.count(15), 0u);
    EXPECT_EQ(indices.count(5), 3u);  // itself, and for 3 (via 4) and 4
    EXPECT_EQ(indices.count(0), 2u);  // itself, and for 15 (wrapping around)
    EXPECT_EQ(batch->replaced, 4);    // 3 -> 4 -> 5 counts two
    EXPECT_EQ(loader->StatsOfEpoch(epoch).replaced, 4);
    EXPECT_EQ(loader->StatsOfEpoch(epoch).examples, 16);
  }
  absl::StatusOr<Batch> end = loader->Next();
  EXPECT_TRUE(absl::IsOutOfRange(end.status())) << end.status();
}

TEST(BatchLoaderTest, NoReadableExampleIsAnError) {
  auto dataset = std::make_shared<IndexDataset>(4, 4);
  dataset->corrupt = {0, 1, 2, 3};
  auto loader = MakeLoader(dataset, {.per_replica_batch = 2, .prefetch_batches = 1});
  absl::StatusOr<Batch> batch = loader->Next();
  EXPECT_TRUE(absl::IsFailedPrecondition(batch.status())) << batch.status();
  EXPECT_THAT(batch.status().message(), HasSubstr("none of the 4 examples"));
}

TEST(BatchLoaderTest, OtherDatasetErrorsStopTheStream) {
  auto dataset = std::make_shared<IndexDataset>(32, 4);
  dataset->fails_hard = 0;
  auto loader = MakeLoader(dataset, {.per_replica_batch = 4, .prefetch_batches = 2});
  absl::Status failure;
  for (int i = 0; i < 8 && failure.ok(); ++i) failure = loader->Next().status();
  EXPECT_TRUE(absl::IsInternal(failure)) << failure;
  EXPECT_THAT(failure.message(), HasSubstr("broken example 0"));
  EXPECT_EQ(loader->Next().status(), failure);
}

TEST(BatchLoaderTest, EvalIsSequentialAndKeepsThePartialBatch) {
  auto dataset = std::make_shared<IndexDataset>(10, 11);
  std::vector<int64_t> all;
  for (int32_t rank = 0; rank < 2; ++rank) {
    auto loader = MakeLoader(dataset, {.split = Split::kEval,
                                       .world_size = 2,
                                       .rank = rank,
                                       .per_replica_batch = 3,
                                       .epochs = 1});
    ASSERT_EQ(loader->IterationsPerEpoch(), 2);
    EXPECT_EQ(loader->ExamplesPerEpoch(), rank == 0 ? 5 : 6);
    const std::vector<Seen> seen = Take(*loader, 2);
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0].labels.size(), 3u);
    EXPECT_EQ(seen[1].labels.size(), rank == 0 ? 2u : 3u);  // 5 left: 2 + 3
    for (const Seen& batch : seen) {
      for (int64_t index : Indices(batch)) all.push_back(index);
    }
    EXPECT_TRUE(absl::IsOutOfRange(loader->Next().status()));
    EXPECT_EQ(loader->StatsOfEpoch(0).examples, rank == 0 ? 5 : 6);
  }
  std::sort(all.begin(), all.end());
  std::vector<int64_t> expected(11);
  for (int64_t i = 0; i < 11; ++i) expected[i] = i;
  EXPECT_EQ(all, expected);
}

TEST(BatchLoaderTest, RecordsTheConsumerStall) {
  auto dataset = std::make_shared<IndexDataset>(16, 4);
  dataset->delay = std::chrono::milliseconds(5);
  auto loader =
      MakeLoader(dataset, {.per_replica_batch = 4, .decode_threads = 1, .prefetch_batches = 1});
  absl::StatusOr<Batch> batch = loader->Next();
  ASSERT_TRUE(batch.ok());
  // The first batch cannot have been prefetched before it was asked for.
  EXPECT_GE(batch->wait_seconds, 0.015);
  EXPECT_GE(batch->decode_seconds, 0.015);
  EXPECT_DOUBLE_EQ(loader->StatsOfEpoch(0).wait_seconds, batch->wait_seconds);
  // Once the consumer is slower than the loader, the next batch is ready: no stall.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  batch = loader->Next();
  ASSERT_TRUE(batch.ok());
  EXPECT_LT(batch->wait_seconds, 0.015);
}

TEST(BatchLoaderTest, EarlyDestructionDoesNotHang) {
  auto dataset = std::make_shared<IndexDataset>(4000, 4);
  dataset->delay = std::chrono::milliseconds(20);
  const auto start = std::chrono::steady_clock::now();
  { auto never_used = MakeLoader(dataset, {.per_replica_batch = 64, .prefetch_batches = 4}); }
  {
    // Destroyed while the producer decodes a 64-example batch (>1 s at 20 ms per example).
    auto loader =
        MakeLoader(dataset, {.per_replica_batch = 64, .decode_threads = 2, .prefetch_batches = 4});
    ASSERT_TRUE(loader->Next().ok());
  }
  {
    // Destroyed while the producer waits for the consumer to free a buffer.
    auto small = std::make_shared<IndexDataset>(400, 4);
    auto loader = MakeLoader(small, {.per_replica_batch = 2, .prefetch_batches = 2});
    ASSERT_TRUE(loader->Next().ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The first batch alone takes ~0.7 s on two threads; abandoning the second must not add a
  // whole batch.
  EXPECT_LT(seconds, 2.5);
  // The abandoned batch stopped early instead of loading all 64 examples.
  EXPECT_LT(dataset->loads.load(), 2 * 64);
}

TEST(BatchLoaderTest, CreateRejectsBadOptions) {
  auto dataset = std::make_shared<IndexDataset>(10, 4);
  auto bad_rank = BatchLoader::Create(dataset, {.world_size = 2, .rank = 2});
  EXPECT_THAT(bad_rank.status().message(), HasSubstr("rank 2 is outside world of size 2"));
  auto bad_batch = BatchLoader::Create(dataset, {.per_replica_batch = 0});
  EXPECT_THAT(bad_batch.status().message(), HasSubstr("per-replica batch 0"));
  auto too_small = BatchLoader::Create(dataset, {.world_size = 2, .per_replica_batch = 6});
  EXPECT_THAT(too_small.status().message(),
              HasSubstr("10 examples, fewer than one global batch of 12 (2 replicas x 6)"));
  auto no_threads = BatchLoader::Create(dataset, {.per_replica_batch = 2, .decode_threads = 0});
  EXPECT_TRUE(absl::IsInvalidArgument(no_threads.status()));
}

}  // namespace
}  // namespace gradflow::runtime::data
