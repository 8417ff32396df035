// Training on the GPU as a user runs it (`runtime --device cuda`): the same steps as the CPU,
// gradient buckets reduced between node processes by NCCL or staged through host memory to
// Gloo, and virtual replicas. Real processes on loopback; every test skips without a GPU.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ops/cuda/device.h"
#include "tests/runtime/final_parameters.h"
#include "tests/runtime_data/test_files.h"
#include "tests/support/subprocess.h"

namespace gradflow::runtime {
namespace {

using ::gradflow::testing::ProcessResult;
using ::gradflow::testing::RunProcess;
using ::testing::HasSubstr;
namespace data_testing = ::gradflow::runtime::data::testing;

int Gpus() {
  absl::StatusOr<int> gpus = ops::cuda::CudaDeviceCount();
  return gpus.ok() ? *gpus : 0;
}

#define REQUIRE_GPUS(n)                                                               \
  do {                                                                                \
    if (Gpus() < (n)) GTEST_SKIP() << "needs " << (n) << " GPU(s), found " << Gpus(); \
  } while (false)

ProcessResult Runtime(std::vector<std::string> args) { return RunProcess(RUNTIME_PATH, args); }

std::vector<std::string> With(std::vector<std::string> args, const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

std::string Compile(const std::string& dir, const std::string& model) {
  const std::string path = dir + "/" + model + ".fb";
  const ProcessResult r = RunProcess(MODELC_PATH, {model, "-o", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return path;
}

// k iterations at a fixed lr on a fixed synthetic set, IEEE fp32 on the GPU (no TF32), so that
// only the order of floating-point sums differs from the CPU.
std::vector<std::string> TrainArgs(const std::string& graph, int64_t batch, int64_t iters,
                                   const std::string& checkpoints) {
  return {"--graph",
          graph,
          "--data",
          "synthetic:256,16",
          "--batch",
          std::to_string(batch),
          "--epochs",
          "100",
          "--iters",
          std::to_string(iters),
          "--threads",
          "1",
          "--seed",
          "3",
          "--warmup",
          "none",
          "--lr",
          "0.05",
          "--lr-reference-batch",
          "8",
          "--eval-every",
          "0",
          "--log-every",
          "1",
          "--timeout",
          "60",
          "--no-tf32",
          "--checkpoint-dir",
          checkpoints};
}

using ::gradflow::testing::FinalParameters;
using ::gradflow::testing::RelativeError;

class CudaTrainingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = data_testing::FreshTempDir("cuda-training");
    graph_ = Compile(dir_, "fmnist-cnn");  // no batch norm: N x b and 1 x Nb take the same steps
  }
  // One CPU node with the global batch: the reference every GPU run is held to.
  std::vector<float> CpuReference(int64_t batch, int64_t iters) {
    const ProcessResult cpu =
        Runtime(With(TrainArgs(graph_, batch, iters, dir_ + "/cpu"), {"--device", "cpu"}));
    EXPECT_EQ(cpu.exit_code, 0) << cpu.err;
    return FinalParameters(dir_ + "/cpu", iters);
  }
  // `runtime --device cuda` with per-process batch `batch` and `flags` for 4 iterations, against
  // one CPU node with the global batch of 8; its output must hold `expected_output`.
  void ExpectGpuRunTakesTheCpusSteps(const std::string& name, int64_t batch,
                                     std::vector<std::string> flags,
                                     const std::string& expected_output) {
    const std::vector<float> cpu = CpuReference(8, 4);
    const std::string checkpoints = dir_ + "/" + name;
    flags.insert(flags.begin(), {"--device", "cuda"});
    const ProcessResult gpu = Runtime(With(TrainArgs(graph_, batch, 4, checkpoints), flags));
    ASSERT_EQ(gpu.exit_code, 0) << gpu.err << gpu.out;
    EXPECT_THAT(gpu.out, HasSubstr(expected_output));
    EXPECT_LT(RelativeError(FinalParameters(checkpoints, 4), cpu), 1e-4);
  }
  // Two node processes of batch 4 (each on GPU local-rank % GPUs).
  void ExpectTwoNodesTakeTheCpusSteps(const std::string& collectives) {
    ExpectGpuRunTakesTheCpusSteps(
        collectives, 4, {"--nodes", "2", "--gpu-collectives", collectives, "--bucket-mb", "0.05"},
        "parameters identical on all 2");
  }
  std::string dir_;
  std::string graph_;
};

TEST_F(CudaTrainingTest, OneGpuTakesTheCpusSteps) {
  REQUIRE_GPUS(1);
  ExpectGpuRunTakesTheCpusSteps("gpu", 8, {}, "cuda:0");
}

TEST_F(CudaTrainingTest, TwoNodesSharingOneGpuStageBucketsThroughGloo) {
  REQUIRE_GPUS(1);
  ExpectTwoNodesTakeTheCpusSteps("gloo");
}

TEST_F(CudaTrainingTest, VirtualReplicasOnOneGpuSumTheirGradients) {
  REQUIRE_GPUS(1);
  ExpectGpuRunTakesTheCpusSteps("virtual", 4, {"--replicas-per-node", "2", "--bucket-mb", "0.05"},
                                "2 replicas x batch 4");
}

TEST_F(CudaTrainingTest, TwoGpusReduceBucketsWithNccl) {
  REQUIRE_GPUS(2);
  ExpectTwoNodesTakeTheCpusSteps("nccl");
}

TEST_F(CudaTrainingTest, OneProcessDrivesTwoGpusThroughNccl) {
  REQUIRE_GPUS(2);
  ExpectGpuRunTakesTheCpusSteps("devices", 4, {"--devices-per-node", "2", "--bucket-mb", "0.05"},
                                "2 devices x ");
}

TEST_F(CudaTrainingTest, AGpuRunResumesFromItsCheckpoint) {
  REQUIRE_GPUS(1);
  const ProcessResult first =
      Runtime(With(TrainArgs(graph_, 8, 2, dir_ + "/resume"), {"--device", "cuda"}));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const ProcessResult rest = Runtime(With(TrainArgs(graph_, 8, 4, dir_ + "/resume"),
                                          {"--device", "cuda", "--resume", dir_ + "/resume"}));
  ASSERT_EQ(rest.exit_code, 0) << rest.err;
  const ProcessResult straight =
      Runtime(With(TrainArgs(graph_, 8, 4, dir_ + "/straight"), {"--device", "cuda"}));
  ASSERT_EQ(straight.exit_code, 0) << straight.err;
  // Parameters, momentum and the data order come back from the checkpoint: the same run.
  EXPECT_LT(
      RelativeError(FinalParameters(dir_ + "/resume", 4), FinalParameters(dir_ + "/straight", 4)),
      1e-5);
}

}  // namespace
}  // namespace gradflow::runtime
