// The CUDA device context, the caching allocator, and CUDA streams and events against the
// meaning scheduler/stream.h gives them. Without a GPU only the clear-failure tests run.
#include <cuda_runtime_api.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_context.h"
#include "ops/cuda/cuda_stream.h"
#include "ops/cuda/device.h"
#include "ops/cuda/launch.h"
#include "scheduler/executor.h"
#include "tests/support/assert_ok.h"

namespace gradflow::ops::cuda {
namespace {

using ::testing::HasSubstr;

bool HaveGpu() {
  absl::StatusOr<int> count = CudaDeviceCount();
  return count.ok() && *count > 0;
}

#define SKIP_WITHOUT_GPU() \
  if (!HaveGpu()) GTEST_SKIP() << "no GPU on this machine"

TEST(CudaContextTest, FailsClearlyWithoutGpu) {
  if (HaveGpu()) GTEST_SKIP() << "this machine has a GPU";
  absl::StatusOr<std::unique_ptr<CudaContext>> context = CudaContext::Create();
  ASSERT_FALSE(context.ok());
  EXPECT_EQ(context.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(context.status().message()), HasSubstr("no usable CUDA device"));
  absl::StatusOr<std::unique_ptr<CudaStream>> stream = CudaStream::Create();
  EXPECT_EQ(stream.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(CudaContextTest, RejectsAMissingDevice) {
  SKIP_WITHOUT_GPU();
  absl::StatusOr<std::unique_ptr<CudaContext>> context = CudaContext::Create({.device = 4096});
  EXPECT_EQ(context.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(context.status().message()), HasSubstr("device 4096"));
}

TEST(CudaContextTest, HandlesFollowTheTf32Switch) {
  SKIP_WITHOUT_GPU();
  for (bool tf32 : {true, false}) {
    absl::StatusOr<std::unique_ptr<CudaContext>> context = CudaContext::Create({.tf32 = tf32});
    GRADFLOW_ASSERT_OK(context.status());
    EXPECT_EQ((*context)->type(), DeviceType::kCuda);
    EXPECT_EQ((*context)->tf32(), tf32);
    cublasMath_t mode;
    ASSERT_EQ(cublasGetMathMode((*context)->cublas(), &mode), CUBLAS_STATUS_SUCCESS);
    EXPECT_EQ(mode, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
    cudaStream_t stream = nullptr;
    ASSERT_EQ(cudnnGetStream((*context)->cudnn(), &stream), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(stream, (*context)->stream());
    ASSERT_EQ(cublasGetStream((*context)->cublas(), &stream), CUBLAS_STATUS_SUCCESS);
    EXPECT_EQ(stream, (*context)->stream());
  }
}

TEST(CudaContextTest, DeviceErrorWordIsTakenOnce) {
  SKIP_WITHOUT_GPU();
  absl::StatusOr<std::unique_ptr<CudaContext>> context = CudaContext::Create();
  GRADFLOW_ASSERT_OK(context.status());
  const int source = (*context)->RegisterErrorSource("node 'x': bad thing at ");
  GRADFLOW_ASSERT_OK((*context)->TakeDeviceError());
  const int report[2] = {source, 17};
  ASSERT_EQ(
      cudaMemcpy((*context)->device_error_word(), report, sizeof(report), cudaMemcpyHostToDevice),
      cudaSuccess);
  const absl::Status status = (*context)->TakeDeviceError();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "node 'x': bad thing at 17");
  GRADFLOW_ASSERT_OK((*context)->TakeDeviceError());
}

TEST(CudaAllocatorTest, RoundsSizesIntoClasses) {
  EXPECT_EQ(CudaAllocator::RoundSize(0), 256u);
  EXPECT_EQ(CudaAllocator::RoundSize(1), 256u);
  EXPECT_EQ(CudaAllocator::RoundSize(257), 512u);
  EXPECT_EQ(CudaAllocator::RoundSize((1u << 20) + 1), 2u << 20);
  EXPECT_EQ(CudaAllocator::RoundSize(3u << 20), 4u << 20);
}

TEST(CudaAllocatorTest, ReusesFreedBlocksWithoutCudaMalloc) {
  SKIP_WITHOUT_GPU();
  CudaAllocator allocator(0);
  // Two "iterations" of the same sizes: the second one is served entirely from the cache.
  const std::vector<size_t> sizes = {1000, 1 << 20, 3 << 20, 64, 1000};
  for (int iteration = 0; iteration < 3; ++iteration) {
    std::vector<void*> blocks;
    for (size_t size : sizes) {
      absl::StatusOr<void*> block = allocator.Allocate(size);
      GRADFLOW_ASSERT_OK(block.status());
      EXPECT_EQ(reinterpret_cast<uintptr_t>(*block) % CudaAllocator::kAlignment, 0u);
      ASSERT_EQ(cudaMemset(*block, 0, size), cudaSuccess);  // the whole size is usable
      blocks.push_back(*block);
    }
    for (void* block : blocks) GRADFLOW_ASSERT_OK(allocator.Free(block));
    EXPECT_EQ(allocator.stats().device_mallocs, static_cast<int64_t>(sizes.size()));
    EXPECT_EQ(allocator.stats().bytes_in_use, 0u);
  }
  EXPECT_GT(allocator.stats().bytes_cached, 0u);
  GRADFLOW_ASSERT_OK(allocator.ReleaseCache());
  EXPECT_EQ(allocator.stats().bytes_cached, 0u);
}

TEST(CudaAllocatorTest, RejectsForeignAndDoubleFrees) {
  SKIP_WITHOUT_GPU();
  CudaAllocator allocator(0);
  absl::StatusOr<void*> block = allocator.Allocate(100);
  GRADFLOW_ASSERT_OK(block.status());
  GRADFLOW_ASSERT_OK(allocator.Free(*block));
  EXPECT_EQ(allocator.Free(*block).code(), absl::StatusCode::kInvalidArgument);
  int local = 0;
  EXPECT_EQ(allocator.Free(&local).code(), absl::StatusCode::kInvalidArgument);
}

TEST(CudaAllocatorTest, OutOfMemoryIsResourceExhausted) {
  SKIP_WITHOUT_GPU();
  CudaAllocator allocator(0);
  absl::StatusOr<void*> block = allocator.Allocate(size_t{1} << 50);  // a petabyte
  EXPECT_EQ(block.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(block.status().message()), HasSubstr("out of memory"));
  // The failure is not sticky: the device still works.
  absl::StatusOr<void*> small = allocator.Allocate(1024);
  GRADFLOW_ASSERT_OK(small.status());
  GRADFLOW_ASSERT_OK(allocator.Free(*small));
}

// A device buffer of n floats, freed at scope exit.
struct DeviceFloats {
  explicit DeviceFloats(size_t n) : count(n) {
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&data), n * sizeof(float)), cudaSuccess);
  }
  ~DeviceFloats() { cudaFree(data); }
  std::vector<float> Read() const {
    std::vector<float> host(count);
    EXPECT_EQ(cudaMemcpy(host.data(), data, count * sizeof(float), cudaMemcpyDeviceToHost),
              cudaSuccess);
    return host;
  }
  float* data = nullptr;
  size_t count;
};

TEST(CudaStreamTest, WorkRunsInOrderAndSynchronizeWaits) {
  SKIP_WITHOUT_GPU();
  absl::StatusOr<std::unique_ptr<CudaStream>> stream = CudaStream::Create();
  GRADFLOW_ASSERT_OK(stream.status());
  constexpr size_t kN = 1 << 22;
  DeviceFloats x(kN), y(kN);
  cudaStream_t s = (*stream)->handle();
  (*stream)->Enqueue([&] {
    std::vector<float> ones(kN, 1.0f);
    cudaMemcpyAsync(x.data, ones.data(), kN * sizeof(float), cudaMemcpyHostToDevice, s);
    cudaStreamSynchronize(s);  // `ones` dies here
  });
  // y = relu(x), then x = y + y, ten times: each launch reads the previous one's result.
  for (int i = 0; i < 10; ++i) {
    (*stream)->Enqueue([&] {
      ASSERT_EQ(launch::Relu(x.data, y.data, kN, s), cudaSuccess);
      ASSERT_EQ(launch::Add(y.data, y.data, x.data, kN, s), cudaSuccess);
    });
  }
  GRADFLOW_ASSERT_OK((*stream)->Synchronize());
  EXPECT_THAT(x.Read(), ::testing::Each(1024.0f));
}

TEST(CudaStreamTest, HostCallbacksRunInOrderOffTheDriverThreadAfterEarlierWork) {
  SKIP_WITHOUT_GPU();
  absl::StatusOr<std::unique_ptr<CudaStream>> stream = CudaStream::Create();
  GRADFLOW_ASSERT_OK(stream.status());
  std::mutex mutex;
  std::vector<int> order;
  std::vector<std::thread::id> threads;
  constexpr size_t kN = 1 << 20;
  DeviceFloats x(kN);
  std::vector<float> seen(1, -1.0f);
  for (int i = 0; i < 20; ++i) {
    (*stream)->Enqueue([&, i] {
      std::vector<float> value(kN, static_cast<float>(i));
      cudaMemcpyAsync(x.data, value.data(), kN * sizeof(float), cudaMemcpyHostToDevice,
                      (*stream)->handle());
      cudaStreamSynchronize((*stream)->handle());  // `value` dies here
    });
    (*stream)->EnqueueHostCallback([&, i] {
      std::lock_guard<std::mutex> lock(mutex);
      order.push_back(i);
      threads.push_back(std::this_thread::get_id());
    });
  }
  GRADFLOW_ASSERT_OK((*stream)->Synchronize());
  std::vector<int> expected(20);
  for (int i = 0; i < 20; ++i) expected[i] = i;
  EXPECT_EQ(order, expected);
  for (std::thread::id id : threads) {
    EXPECT_NE(id, std::this_thread::get_id());
    EXPECT_EQ(id, threads.front());  // one callback thread per stream
  }
}

TEST(CudaStreamTest, CallbacksMayUseCudaBecauseTheyRunOnTheStreamsThread) {
  SKIP_WITHOUT_GPU();
  absl::StatusOr<std::unique_ptr<CudaStream>> stream = CudaStream::Create();
  GRADFLOW_ASSERT_OK(stream.status());
  DeviceFloats x(16);
  std::atomic<bool> ok{false};
  (*stream)->Enqueue([&] { cudaMemsetAsync(x.data, 0, 16 * sizeof(float), (*stream)->handle()); });
  (*stream)->EnqueueHostCallback([&] {
    // A cudaLaunchHostFunc function itself may not call CUDA; the handed-off callback can.
    float value = -1;
    ok = cudaMemcpy(&value, x.data, sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess &&
         value == 0.0f;
  });
  GRADFLOW_ASSERT_OK((*stream)->Synchronize());
  EXPECT_TRUE(ok);
}

TEST(CudaStreamTest, EventsOrderTwoStreamsWithoutBlockingTheHost) {
  SKIP_WITHOUT_GPU();
  absl::StatusOr<std::unique_ptr<CudaStream>> producer = CudaStream::Create();
  absl::StatusOr<std::unique_ptr<CudaStream>> consumer = CudaStream::Create();
  GRADFLOW_ASSERT_OK(producer.status());
  GRADFLOW_ASSERT_OK(consumer.status());
  std::unique_ptr<sched::Event> never_recorded = (*producer)->CreateEvent();
  EXPECT_TRUE(never_recorded->Done());
  GRADFLOW_ASSERT_OK(never_recorded->HostWait());

  constexpr size_t kN = 1 << 24;
  DeviceFloats a(kN), b(kN);
  std::unique_ptr<sched::Event> written = (*producer)->CreateEvent();
  (*producer)->Enqueue([&] {
    cudaMemsetAsync(a.data, 0, kN * sizeof(float), (*producer)->handle());
    // Many passes so that the consumer would overtake an unordered producer.
    for (int i = 0; i < 50; ++i) launch::Add(a.data, a.data, a.data, kN, (*producer)->handle());
    std::vector<float> one(1, 1.0f);
    cudaMemcpyAsync(a.data + kN - 1, one.data(), sizeof(float), cudaMemcpyHostToDevice,
                    (*producer)->handle());
    cudaStreamSynchronize((*producer)->handle());
  });
  GRADFLOW_ASSERT_OK((*producer)->Record(*written));
  GRADFLOW_ASSERT_OK((*consumer)->Wait(*written));
  (*consumer)->Enqueue([&] { launch::Relu(a.data, b.data, kN, (*consumer)->handle()); });
  std::unique_ptr<sched::Event> consumed = (*consumer)->CreateEvent();
  GRADFLOW_ASSERT_OK((*consumer)->Record(*consumed));
  GRADFLOW_ASSERT_OK(consumed->HostWait());
  EXPECT_TRUE(consumed->Done());
  EXPECT_TRUE(written->Done());
  EXPECT_EQ(b.Read().back(), 1.0f);
}

TEST(CudaStreamTest, RejectsEventsOfOtherKinds) {
  SKIP_WITHOUT_GPU();
  absl::StatusOr<std::unique_ptr<CudaStream>> stream = CudaStream::Create();
  GRADFLOW_ASSERT_OK(stream.status());
  class OtherEvent final : public sched::Event {
   public:
    absl::Status HostWait() override { return absl::OkStatus(); }
    bool Done() override { return true; }
  } other;
  EXPECT_EQ((*stream)->Record(other).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*stream)->Wait(other).code(), absl::StatusCode::kInvalidArgument);
  if (CudaDeviceCount().value_or(0) > 1) {
    CudaEvent other_device(1);
    EXPECT_EQ((*stream)->Record(other_device).code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(CudaStreamTest, MarkTimeNeedsAnAnchorAndReadsOnlyOncePassed) {
  SKIP_WITHOUT_GPU();
  absl::StatusOr<std::unique_ptr<CudaStream>> stream = CudaStream::Create();
  GRADFLOW_ASSERT_OK(stream.status());
  std::unique_ptr<sched::DeviceTimestamp> before_anchor;
  (*stream)->Enqueue([&] { before_anchor = (*stream)->MarkTime(); });
  EXPECT_EQ(before_anchor, nullptr);
  const auto host_before = std::chrono::steady_clock::now();
  GRADFLOW_ASSERT_OK((*stream)->StartTiming());
  constexpr size_t kN = 1 << 24;
  DeviceFloats x(kN), y(kN);
  std::unique_ptr<sched::DeviceTimestamp> start, end;
  (*stream)->Enqueue([&] {
    start = (*stream)->MarkTime();
    for (int i = 0; i < 50; ++i) {
      ASSERT_EQ(launch::Add(x.data, x.data, y.data, kN, (*stream)->handle()), cudaSuccess);
    }
    end = (*stream)->MarkTime();
  });
  ASSERT_NE(start, nullptr);
  ASSERT_NE(end, nullptr);
  // 50 passes over 192 MB take milliseconds: the host reads before the device gets there.
  EXPECT_EQ(end->Time().status().code(), absl::StatusCode::kFailedPrecondition);
  GRADFLOW_ASSERT_OK((*stream)->Synchronize());
  const auto host_after = std::chrono::steady_clock::now();
  absl::StatusOr<std::chrono::steady_clock::time_point> from = start->Time();
  absl::StatusOr<std::chrono::steady_clock::time_point> to = end->Time();
  GRADFLOW_ASSERT_OK(from.status());
  GRADFLOW_ASSERT_OK(to.status());
  EXPECT_LE(host_before, *from);
  EXPECT_LT(*from, *to);
  EXPECT_LE(*to, host_after + std::chrono::microseconds(50));
  EXPECT_GT(*to - *from, std::chrono::microseconds(500));
}

// The executor on a CUDA stream: device spans come from CUDA events, so they last as long as the
// kernels, not as long as the launches.
TEST(CudaStreamTest, ExecutorReportsDeviceSpansFromCudaEvents) {
  SKIP_WITHOUT_GPU();
  absl::StatusOr<std::unique_ptr<CudaStream>> stream = CudaStream::Create();
  GRADFLOW_ASSERT_OK(stream.status());
  constexpr size_t kN = 1 << 24;
  DeviceFloats x(kN), y(kN);
  sched::TaskGraph graph;
  int32_t previous = -1;
  for (int node = 0; node < 6; ++node) {
    const int32_t id = graph.AddNode(absl::StrCat("adds", node), 0, [&] {
      for (int i = 0; i < 20; ++i) {
        const cudaError_t e = launch::Add(x.data, x.data, y.data, kN, (*stream)->handle());
        if (e != cudaSuccess) return CudaStatus(e, "Add");
      }
      return absl::OkStatus();
    });
    if (previous >= 0) graph.AddEdge(previous, id);
    previous = id;
  }
  absl::StatusOr<std::unique_ptr<sched::Executor>> executor =
      sched::Executor::Create(std::move(graph), {stream->get()});
  GRADFLOW_ASSERT_OK(executor.status());
  struct Observer final : sched::ExecutionObserver {
    bool WantsDeviceTimes(int64_t iteration) override { return iteration == 2; }
    void OnNodeStart(const sched::NodeEvent& e) override {
      std::lock_guard lock(mutex);
      issue_start[e.node] = e.time;
    }
    void OnNodeEnd(const sched::NodeEvent& e) override {
      std::lock_guard lock(mutex);
      if (e.iteration == 2)
        issue_us += std::chrono::duration<double, std::micro>(e.time - issue_start[e.node]).count();
    }
    void OnDeviceSpan(const sched::DeviceSpan& span) override { spans.push_back(span); }
    std::mutex mutex;
    std::map<int32_t, std::chrono::steady_clock::time_point> issue_start;
    double issue_us = 0;
    std::vector<sched::DeviceSpan> spans;
  } observer;
  (*executor)->AddObserver(&observer);
  GRADFLOW_ASSERT_OK((*executor)->Run());
  EXPECT_TRUE(observer.spans.empty());
  const auto before = std::chrono::steady_clock::now();
  GRADFLOW_ASSERT_OK((*executor)->Run());
  const auto after = std::chrono::steady_clock::now();
  ASSERT_EQ(observer.spans.size(), 6u);
  double device_us = 0;
  for (size_t i = 0; i < observer.spans.size(); ++i) {
    const sched::DeviceSpan& span = observer.spans[i];
    EXPECT_EQ(span.node, static_cast<int32_t>(i));
    EXPECT_LE(before, span.start);
    EXPECT_LT(span.start, span.end);
    EXPECT_LE(span.end, after);
    if (i > 0) {
      EXPECT_LE(observer.spans[i - 1].end, span.start);
    }
    device_us += std::chrono::duration<double, std::micro>(span.end - span.start).count();
  }
  EXPECT_GT(device_us, 5 * observer.issue_us) << "device spans look like launch times";
  GRADFLOW_ASSERT_OK(CudaStatus(cudaGetLastError(), "launches"));
}

// A faulting kernel makes the context unusable for the rest of the process, so it runs in a
// child (the threadsafe death-test style re-executes the binary rather than forking a process
// that already holds a CUDA context).
TEST(CudaStreamDeathTest, AFaultingKernelFailsTheIterationInsteadOfHanging) {
  SKIP_WITHOUT_GPU();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        absl::StatusOr<std::unique_ptr<CudaStream>> stream = CudaStream::Create();
        if (!stream.ok()) std::exit(3);
        sched::TaskGraph graph;
        graph.AddNode("fault", 0, [&] {
          // An address no allocation has: the kernel faults on the device, after the launch
          // returned.
          auto* wild = reinterpret_cast<float*>(uintptr_t{0x10});
          return CudaStatus(launch::Add(wild, wild, wild, 1 << 20, (*stream)->handle()), "Add");
        });
        absl::StatusOr<std::unique_ptr<sched::Executor>> executor =
            sched::Executor::Create(std::move(graph), {stream->get()});
        if (!executor.ok()) std::exit(4);
        // Run returns (the end-of-iteration callback still runs) and names the fault.
        const absl::Status run = (*executor)->Run();
        if (run.ok() || run.message().find("stream 0") == absl::string_view::npos) std::exit(6);
        std::exit((*stream)->Synchronize().ok() ? 5 : 0);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace gradflow::ops::cuda
