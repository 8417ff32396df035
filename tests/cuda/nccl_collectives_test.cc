// NCCL collectives within one process: one rank on one GPU, and two ranks as threads on two GPUs
// where the machine has them; clear failures without a GPU, for a peer that never joins, and for
// one that stalls.
#include "runtime/dist/nccl_collectives.h"

#include <cuda_runtime_api.h>

#include <chrono>
#include <future>
#include <mutex>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ops/cuda/cuda_stream.h"
#include "ops/cuda/device.h"
#include "ops/cuda/launch.h"
#include "tests/runtime_dist/dist_test_util.h"
#include "tests/support/assert_ok.h"

namespace gradflow::runtime::dist {
namespace {

using ::testing::HasSubstr;

int Gpus() { return ops::cuda::CudaDeviceCount().value_or(0); }

std::unique_ptr<Store> OpenStore(const RendezvousSpec& spec, const std::string& job) {
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(spec, job, std::chrono::seconds(20));
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

struct DeviceFloats {
  DeviceFloats(int device, const std::vector<float>& values) : count(values.size()) {
    cudaSetDevice(device);
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&data), count * sizeof(float)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(data, values.data(), count * sizeof(float), cudaMemcpyHostToDevice),
              cudaSuccess);
  }
  ~DeviceFloats() { cudaFree(data); }
  std::vector<float> Read() const {
    std::vector<float> host(count);
    EXPECT_EQ(cudaMemcpy(host.data(), data, count * sizeof(float), cudaMemcpyDeviceToHost),
              cudaSuccess);
    return host;
  }
  std::span<float> span() const { return {data, count}; }
  float* data = nullptr;
  size_t count;
};

class CountingObserver final : public CollectiveObserver {
 public:
  void OnCollectiveStart(const CollectiveEvent&) override {
    std::lock_guard<std::mutex> lock(mutex_);
    ++starts;
  }
  void OnCollectiveEnd(const CollectiveEvent& event) override {
    std::lock_guard<std::mutex> lock(mutex_);
    ++ends;
    if (!event.status.ok()) ++failures;
  }
  int starts = 0, ends = 0, failures = 0;

 private:
  std::mutex mutex_;
};

TEST(NcclCollectivesTest, RejectsBadWorldsBeforeTouchingTheGpu) {
  std::unique_ptr<Store> store = OpenStore(testing::FreshFileRendezvous(), testing::UniqueJobId());
  ASSERT_NE(store, nullptr);
  auto lanes = CreateNcclCollectives(*store, 0, 1, 0, {.lanes = 0});
  EXPECT_EQ(lanes.status().code(), absl::StatusCode::kInvalidArgument);
  auto rank = CreateNcclCollectives(*store, 3, 2, 0, {});
  EXPECT_EQ(rank.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(NcclCollectivesTest, FailsClearlyWithoutGpu) {
  if (Gpus() > 0) GTEST_SKIP() << "this machine has a GPU";
  std::unique_ptr<Store> store = OpenStore(testing::FreshFileRendezvous(), testing::UniqueJobId());
  ASSERT_NE(store, nullptr);
  auto nccl = CreateNcclCollectives(*store, 0, 1, 0, {});
  EXPECT_EQ(nccl.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(nccl.status().message()), HasSubstr("no usable CUDA device"));
}

TEST(NcclCollectivesTest, OneRankOneGpu) {
  if (Gpus() < 1) GTEST_SKIP() << "no GPU on this machine";
  std::unique_ptr<Store> store = OpenStore(testing::FreshFileRendezvous(), testing::UniqueJobId());
  ASSERT_NE(store, nullptr);
  auto nccl =
      CreateNcclCollectives(*store, 0, 1, 0, {.lanes = 2, .timeout = std::chrono::seconds(30)});
  GRADFLOW_ASSERT_OK(nccl.status());
  CountingObserver observer;
  (*nccl)->AddObserver(&observer);
  EXPECT_EQ((*nccl)->rank(), 0);
  EXPECT_EQ((*nccl)->size(), 1);
  EXPECT_EQ((*nccl)->lanes(), 2);

  const std::vector<float> values = {1.5f, -2.0f, 3.25f};
  DeviceFloats data(0, values);
  for (int lane = 0; lane < 2; ++lane) {
    GRADFLOW_ASSERT_OK(AllreduceSumSync(**nccl, data.span(), lane));
  }
  EXPECT_EQ(data.Read(), values);
  GRADFLOW_ASSERT_OK(BroadcastSync(**nccl, data.span(), 0));
  GRADFLOW_ASSERT_OK(BarrierSync(**nccl));
  EXPECT_EQ(observer.starts, 4);
  EXPECT_EQ(observer.ends, 4);
  EXPECT_EQ(observer.failures, 0);

  // Overlapped form: after an event of a compute stream; the compute stream then waits for the
  // lane on the device.
  auto compute = ops::cuda::CudaStream::Create();
  GRADFLOW_ASSERT_OK(compute.status());
  std::unique_ptr<sched::Event> ready = (*compute)->CreateEvent();
  GRADFLOW_ASSERT_OK((*compute)->Record(*ready));
  std::promise<absl::Status> done;
  (*nccl)->AllreduceSumAfter(data.span(), 1, ready.get(),
                             [&](absl::Status s) { done.set_value(std::move(s)); });
  std::unique_ptr<sched::Event> reduced = (*compute)->CreateEvent();
  GRADFLOW_ASSERT_OK((*nccl)->RecordCompletion(1, *reduced));
  GRADFLOW_ASSERT_OK((*compute)->Wait(*reduced));
  GRADFLOW_ASSERT_OK((*compute)->Synchronize());
  GRADFLOW_ASSERT_OK(done.get_future().get());

  // Bad arguments fail that call only.
  EXPECT_EQ(AllreduceSumSync(**nccl, data.span(), 2).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BroadcastSync(**nccl, data.span(), 1).code(), absl::StatusCode::kInvalidArgument);
  GRADFLOW_ASSERT_OK(AllreduceSumSync(**nccl, data.span(), 0));
}

TEST(NcclCollectivesTest, APeerThatNeverJoinsIsATimeout) {
  if (Gpus() < 1) GTEST_SKIP() << "no GPU on this machine";
  std::unique_ptr<Store> store = OpenStore(testing::FreshFileRendezvous(), testing::UniqueJobId());
  ASSERT_NE(store, nullptr);
  const auto start = std::chrono::steady_clock::now();
  auto nccl =
      CreateNcclCollectives(*store, 0, 2, 0, {.lanes = 1, .timeout = std::chrono::seconds(2)});
  EXPECT_EQ(nccl.status().code(), absl::StatusCode::kDeadlineExceeded) << nccl.status();
  EXPECT_THAT(std::string(nccl.status().message()), HasSubstr("not every rank joined"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15));
}

TEST(NcclCollectivesTest, TwoRanksOnTwoGpusSumAfterTheirReadyEvents) {
  if (Gpus() < 2) GTEST_SKIP() << "fewer than 2 GPUs on this machine";
  const RendezvousSpec spec = testing::FreshFileRendezvous();
  const std::string job = testing::UniqueJobId();
  constexpr size_t kN = 1 << 22;
  testing::RunRanks(2, [&](int rank) {
    std::unique_ptr<Store> store = OpenStore(spec, job);
    ASSERT_NE(store, nullptr);
    auto nccl = CreateNcclCollectives(*store, rank, 2, rank, {.lanes = 2});
    GRADFLOW_ASSERT_OK(nccl.status());
    DeviceFloats data(rank, std::vector<float>(kN, 0.0f));
    auto compute = ops::cuda::CudaStream::Create({.device = rank});
    GRADFLOW_ASSERT_OK(compute.status());
    // The "last gradient" is written by a slow chain on the compute stream; the allreduce must
    // wait for it on the device, though it is issued at once.
    std::vector<float> values(kN, static_cast<float>(rank + 1));
    DeviceFloats source(rank, values);
    (*compute)->Enqueue([&] {
      for (int i = 0; i < 20; ++i) {
        ops::cuda::launch::Relu(source.data, data.data, kN, (*compute)->handle());
      }
    });
    std::unique_ptr<sched::Event> ready = (*compute)->CreateEvent();
    GRADFLOW_ASSERT_OK((*compute)->Record(*ready));
    std::promise<absl::Status> done;
    (*nccl)->AllreduceSumAfter(data.span(), rank % 2, ready.get(),
                               [&](absl::Status s) { done.set_value(std::move(s)); });
    GRADFLOW_ASSERT_OK(done.get_future().get());
    EXPECT_THAT(data.Read(), ::testing::Each(3.0f));
    GRADFLOW_ASSERT_OK(BarrierSync(**nccl));
  });
}

TEST(NcclCollectivesTest, AStalledPeerFailsEveryLaterCallWithinTheTimeout) {
  if (Gpus() < 2) GTEST_SKIP() << "fewer than 2 GPUs on this machine";
  const RendezvousSpec spec = testing::FreshFileRendezvous();
  const std::string job = testing::UniqueJobId();
  testing::RunRanks(2, [&](int rank) {
    std::unique_ptr<Store> store = OpenStore(spec, job);
    ASSERT_NE(store, nullptr);
    auto nccl = CreateNcclCollectives(*store, rank, 2, rank,
                                      {.lanes = 1, .timeout = std::chrono::seconds(2)});
    GRADFLOW_ASSERT_OK(nccl.status());
    if (rank == 1) return;  // never reduces: rank 0 waits in vain
    DeviceFloats data(rank, std::vector<float>(16, 1.0f));
    const absl::Status first = AllreduceSumSync(**nccl, data.span(), 0);
    EXPECT_EQ(first.code(), absl::StatusCode::kDeadlineExceeded) << first;
    EXPECT_THAT(std::string(first.message()), HasSubstr("made no progress"));
    EXPECT_EQ(AllreduceSumSync(**nccl, data.span(), 0), first);
  });
}

}  // namespace
}  // namespace gradflow::runtime::dist
