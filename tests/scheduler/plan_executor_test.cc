// End to end: a zoo model's forward and backward through the plan, the real CPU kernels and the
// executor, compared with the sequential test runner on the same parameters and batch.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "graph/shape_inference.h"
#include "gtest/gtest.h"
#include "models/zoo.h"
#include "ops/kernels.h"
#include "ops/registry.h"
#include "scheduler/buffers.h"
#include "scheduler/cpu_stream.h"
#include "scheduler/executor.h"
#include "scheduler/plan.h"
#include "scheduler/plan_tasks.h"
#include "scheduler/prepare_kernels.h"
#include "tests/support/sequential_runner.h"
#include "tests/support/test_device.h"

namespace gradflow::sched {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kBatch = 4;
constexpr int kThreads = 2;

std::vector<float> NchwFromNhwc(const std::vector<float>& nhwc, const graph::Shape& shape) {
  const int64_t n_size = shape[0], c_size = shape[1], h_size = shape[2], w_size = shape[3];
  std::vector<float> nchw(nhwc.size());
  for (int64_t n = 0; n < n_size; ++n) {
    for (int64_t c = 0; c < c_size; ++c) {
      for (int64_t h = 0; h < h_size; ++h) {
        for (int64_t w = 0; w < w_size; ++w) {
          nchw[((n * c_size + c) * h_size + h) * w_size + w] =
              nhwc[((n * h_size + h) * w_size + w) * c_size + c];
        }
      }
    }
  }
  return nchw;
}

void ExpectClose(const std::vector<float>& actual, const std::vector<float>& expected,
                 const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  int reported = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double tolerance = 1e-5 * std::max(1.0, std::fabs(static_cast<double>(expected[i])));
    if (!(std::fabs(actual[i] - expected[i]) <= tolerance) && reported++ < 5) {
      ADD_FAILURE() << what << "[" << i << "]: executor " << actual[i] << ", sequential "
                    << expected[i];
    }
  }
}

class CountingObserver : public ExecutionObserver {
 public:
  explicit CountingObserver(size_t nodes) : starts(nodes), on_stream_thread(nodes) {}
  void OnNodeStart(const NodeEvent& event) override {
    starts[event.node].fetch_add(1);
    if (event.thread == stream_thread) on_stream_thread[event.node].fetch_add(1);
  }
  std::thread::id stream_thread;
  std::vector<std::atomic<int>> starts;
  std::vector<std::atomic<int>> on_stream_thread;
};

// A stand-in kernel that always fails, to see a kernel error come back named.
class FailingKernel final : public ops::Kernel {
 public:
  absl::Status Run(std::span<const ops::TensorRef>, std::span<const ops::TensorRef>,
                   void*) override {
    return absl::DataLossError("injected failure");
  }
};

class PlanExecutorTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    absl::StatusOr<graph::Graph> g = models::BuildModel(GetParam(), {}, ops::StandardOps());
    ASSERT_TRUE(g.ok()) << g.status();
    model_ = *std::move(g);
    bound_ = graph::BindBatchSize(model_, kBatch);
    absl::StatusOr<std::unique_ptr<test_support::TestDevice>> device =
        test_support::CreateTestDevice(ops::DeviceType::kCpu, kThreads);
    ASSERT_TRUE(device.ok()) << device.status();
    device_ = *std::move(device);

    // Keep the first convolution's output (channels-last) live so that it can be compared too.
    first_activation_ = bound_.nodes[0].outputs[0];
    absl::StatusOr<Plan> plan = PlanLayouts(bound_, {.keep_live = {first_activation_}});
    ASSERT_TRUE(plan.ok()) << plan.status();
    plan_ = *std::move(plan);
    absl::StatusOr<PreparedKernels> kernels = PrepareKernels(
        bound_, plan_, ops::StandardOps(), ops::StandardKernels(), device_->context());
    ASSERT_TRUE(kernels.ok()) << kernels.status();
    kernels_ = *std::move(kernels);
    ASSERT_TRUE(PlanMemory(bound_, kernels_.workspace_bytes, plan_).ok());
    absl::StatusOr<std::unique_ptr<Buffers>> buffers =
        Buffers::Allocate(plan_.sizes, {.poison_arena = true});
    ASSERT_TRUE(buffers.ok()) << buffers.status();
    buffers_ = *std::move(buffers);
    stream_ = std::make_unique<CpuStream>(CpuStreamOptions{.omp_threads = kThreads});

    absl::StatusOr<std::unique_ptr<test_support::SequentialRunner>> runner =
        test_support::SequentialRunner::Create(model_, kBatch, ops::StandardOps(),
                                               ops::StandardKernels(), *device_);
    ASSERT_TRUE(runner.ok()) << runner.status();
    runner_ = *std::move(runner);
    FillSources();
  }

  absl::StatusOr<std::unique_ptr<Executor>> MakeExecutor() {
    absl::StatusOr<TaskGraph> tasks = BuildTaskGraph(bound_, plan_, kernels_.kernels, *buffers_);
    if (!tasks.ok()) return tasks.status();
    return Executor::Create(*std::move(tasks), {stream_.get()}, {.host_threads = 1});
  }

  // The same parameters, inputs and labels in both runners.
  void FillSources() {
    std::mt19937 rng(1234);
    std::normal_distribution<float> normal(0.0f, 0.1f);
    for (size_t t = 0; t < bound_.tensors.size(); ++t) {
      const graph::Tensor& tensor = bound_.tensors[t];
      const auto count = static_cast<size_t>(graph::NumElements(tensor.shape));
      void* dst = buffers_->data(plan_.tensors[t]);
      if (tensor.role == graph::TensorRole::kLabel) {
        std::vector<int32_t> labels(count);
        for (int32_t& l : labels) l = static_cast<int32_t>(rng() % 10);
        ASSERT_TRUE(runner_->WriteInt32(tensor.name, labels).ok());
        std::memcpy(dst, labels.data(), count * sizeof(int32_t));
      } else if (tensor.role == graph::TensorRole::kParameter ||
                 tensor.role == graph::TensorRole::kInput ||
                 tensor.role == graph::TensorRole::kState) {
        std::vector<float> values(count);
        for (float& v : values) v = normal(rng);
        ASSERT_TRUE(runner_->Write(tensor.name, values).ok());
        // Parameters, inputs and state are row-major in the plan: a plain copy.
        ASSERT_EQ(plan_.layouts[t], ops::Layout::kRowMajor);
        std::memcpy(dst, values.data(), count * sizeof(float));
      }
    }
  }

  std::vector<float> ReadFloats(int32_t t) const {
    const graph::Tensor& tensor = bound_.tensors[t];
    std::vector<float> values(static_cast<size_t>(graph::NumElements(tensor.shape)));
    std::memcpy(values.data(), buffers_->data(plan_.tensors[t]), values.size() * sizeof(float));
    if (plan_.layouts[t] == ops::Layout::kChannelsLast) return NchwFromNhwc(values, tensor.shape);
    return values;
  }

  // State (batch-norm running statistics) moves every iteration: compare it after the first.
  void CompareWithSequential(bool with_state) {
    std::vector<int32_t> compared = {bound_.loss, first_activation_};
    for (size_t t = 0; with_state && t < bound_.tensors.size(); ++t) {
      if (bound_.tensors[t].role == graph::TensorRole::kState) {
        compared.push_back(static_cast<int32_t>(t));
      }
    }
    const graph::Node& loss_node = bound_.nodes[plan_.producer_step[bound_.loss]];
    compared.insert(compared.end(), loss_node.outputs.begin(), loss_node.outputs.end());
    for (const graph::ParamGrad& pg : bound_.param_grads) compared.push_back(pg.grad);
    for (int32_t t : compared) {
      const std::string& name = bound_.tensors[t].name;
      absl::StatusOr<std::vector<float>> expected = runner_->Read(name);
      ASSERT_TRUE(expected.ok()) << expected.status();
      const std::vector<float> actual = ReadFloats(t);
      ExpectClose(actual, *expected, name);
      // Agreement on zeros would prove nothing: every compared tensor carries signal.
      EXPECT_TRUE(std::any_of(actual.begin(), actual.end(), [](float v) { return v != 0; }))
          << name;
    }
  }

  graph::Graph model_;
  graph::Graph bound_;
  std::unique_ptr<test_support::TestDevice> device_;
  int32_t first_activation_ = -1;
  Plan plan_;
  PreparedKernels kernels_;
  std::unique_ptr<Buffers> buffers_;
  std::unique_ptr<CpuStream> stream_;
  std::unique_ptr<test_support::SequentialRunner> runner_;
};

TEST_P(PlanExecutorTest, ForwardAndBackwardMatchTheSequentialRunner) {
  ASSERT_EQ(plan_.layouts[first_activation_], ops::Layout::kChannelsLast);
  absl::StatusOr<std::unique_ptr<Executor>> executor = MakeExecutor();
  ASSERT_TRUE(executor.ok()) << executor.status();
  CountingObserver observer(bound_.nodes.size());
  observer.stream_thread = stream_->thread_id();
  (*executor)->AddObserver(&observer);
  ASSERT_TRUE(runner_->Step().ok());
  const float loss = *reinterpret_cast<const float*>(buffers_->data(plan_.tensors[bound_.loss]));
  EXPECT_TRUE(std::isnan(loss)) << "the poisoned arena holds the loss before any run";
  // Repeated iterations with the arena poisoned before each: every value read was written in
  // that same iteration, so results repeat exactly.
  for (int iteration = 0; iteration < 3; ++iteration) {
    ASSERT_TRUE(buffers_->PoisonArena().ok());
    ASSERT_TRUE((*executor)->Run().ok());
    CompareWithSequential(/*with_state=*/iteration == 0);
  }
  for (size_t n = 0; n < bound_.nodes.size(); ++n) {
    EXPECT_EQ(observer.starts[n].load(), 3) << bound_.nodes[n].name;
    EXPECT_EQ(observer.on_stream_thread[n].load(), 3) << bound_.nodes[n].name;
  }
  RecordProperty("arena_bytes", std::to_string(plan_.sizes.arena));
  RecordProperty("peak_live_bytes", std::to_string(plan_.peak_live_bytes));
}

TEST_P(PlanExecutorTest, TensorWrittenCallbacksSeeFinalGradients) {
  absl::StatusOr<std::unique_ptr<Executor>> executor = MakeExecutor();
  ASSERT_TRUE(executor.ok()) << executor.status();
  std::vector<std::vector<float>> snapshots(bound_.param_grads.size());
  std::vector<int> calls(bound_.param_grads.size(), 0);
  for (size_t i = 0; i < bound_.param_grads.size(); ++i) {
    const int32_t grad = bound_.param_grads[i].grad;
    ASSERT_TRUE(
        OnTensorWritten(**executor, bound_, plan_, grad, [this, i, grad, &snapshots, &calls] {
          snapshots[i] = ReadFloats(grad);
          ++calls[i];
        }).ok());
  }
  const int32_t input = bound_.inputs[0];
  EXPECT_EQ(OnTensorWritten(**executor, bound_, plan_, input, [] {}).code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE((*executor)->Run().ok());
  for (size_t i = 0; i < bound_.param_grads.size(); ++i) {
    EXPECT_EQ(calls[i], 1);
    EXPECT_EQ(snapshots[i], ReadFloats(bound_.param_grads[i].grad))
        << bound_.tensors[bound_.param_grads[i].grad].name;
  }
}

TEST_P(PlanExecutorTest, KernelErrorIsNamedAndStopsTheIteration) {
  const size_t victim = 3;
  kernels_.kernels[victim] = std::make_unique<FailingKernel>();
  absl::StatusOr<std::unique_ptr<Executor>> executor = MakeExecutor();
  ASSERT_TRUE(executor.ok()) << executor.status();
  CountingObserver observer(bound_.nodes.size());
  (*executor)->AddObserver(&observer);
  const absl::Status status = (*executor)->Run();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr(absl::StrCat("node '", bound_.nodes[victim].name,
                                     "': ", bound_.nodes[victim].op, ": injected failure")));
  for (size_t n = 0; n < bound_.nodes.size(); ++n) {
    EXPECT_EQ(observer.starts[n].load(), n <= victim ? 1 : 0) << bound_.nodes[n].name;
  }
}

TEST_P(PlanExecutorTest, BuildRefusesMismatchedInputs) {
  std::vector<std::unique_ptr<ops::Kernel>> too_few;
  EXPECT_EQ(BuildTaskGraph(bound_, plan_, too_few, *buffers_).status().code(),
            absl::StatusCode::kInvalidArgument);
  BufferSizes small = plan_.sizes;
  small.arena /= 2;
  absl::StatusOr<std::unique_ptr<Buffers>> small_buffers = Buffers::Allocate(small);
  ASSERT_TRUE(small_buffers.ok());
  const absl::Status s = BuildTaskGraph(bound_, plan_, kernels_.kernels, **small_buffers).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("arena"));
}

// fmnist-cnn: conv, pooling, fully connected. resnet-fmnist adds batch norm (state updated in
// place), residual sums and their gradient accumulation, and global average pooling.
INSTANTIATE_TEST_SUITE_P(Zoo, PlanExecutorTest, ::testing::Values("fmnist-cnn", "resnet-fmnist"),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           std::string name = param_info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace gradflow::sched
