// The fused CUDA SGD update against the CPU one (ops/cpu/sgd.h) on the same random buffers:
// every operation is rounded alike, so the results must agree bit for bit.
#include <cuda_runtime_api.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ops/cpu/sgd.h"
#include "ops/cuda/cuda_context.h"
#include "ops/cuda/device.h"
#include "ops/cuda/sgd.h"
#include "tests/support/assert_ok.h"

namespace gradflow::ops::cuda {
namespace {

using ::testing::HasSubstr;

bool HaveGpu() {
  absl::StatusOr<int> count = CudaDeviceCount();
  return count.ok() && *count > 0;
}

// Runs without a GPU: the checks are the CPU's.
TEST(CudaSgdTest, RejectsBadSegmentsLikeTheCpu) {
  const std::vector<std::vector<SgdSegment>> bad = {
      {{.offset = -1, .count = 2}},
      {{.offset = 0, .count = 11}},
      {{.offset = 4, .count = 4}, {.offset = 6, .count = 2}},
  };
  std::vector<float> w(10), g(10), u(10);
  for (const std::vector<SgdSegment>& segments : bad) {
    const absl::Status gpu = CheckSgdSegments(10, segments);
    const absl::Status cpu = cpu::SgdUpdate(w, g, u, segments, {.lr = 0.1f});
    EXPECT_EQ(gpu.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(gpu, cpu);
  }
  GRADFLOW_ASSERT_OK(
      CheckSgdSegments(10, {{{.offset = 0, .count = 4}, {.offset = 4, .count = 6}}}));
  const absl::Status nan_lr = CheckSgdHyper({.lr = std::numeric_limits<float>::quiet_NaN()});
  EXPECT_EQ(nan_lr.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(nan_lr.message()), HasSubstr("lr must be finite"));
}

TEST(CudaSgdTest, MatchesTheCpuUpdateBitForBit) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU on this machine";
  absl::StatusOr<std::unique_ptr<CudaContext>> context = CudaContext::Create();
  GRADFLOW_ASSERT_OK(context.status());
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<float> uniform(-1, 1);
  // Segments of odd sizes, one larger than a chunk, with gaps (alignment padding) that must stay
  // untouched, some without weight decay.
  const std::vector<SgdSegment> segments = {{.offset = 0, .count = 3, .weight_decay = true},
                                            {.offset = 8, .count = 20000, .weight_decay = false},
                                            {.offset = 20016, .count = 1, .weight_decay = true},
                                            {.offset = 20032, .count = 9000, .weight_decay = true}};
  const size_t n = 29040;
  for (bool nesterov : {false, true}) {
    SCOPED_TRACE(nesterov ? "nesterov" : "momentum");
    std::vector<float> w(n), g(n), u(n);
    for (size_t i = 0; i < n; ++i) w[i] = uniform(rng), g[i] = uniform(rng), u[i] = uniform(rng);
    absl::StatusOr<std::unique_ptr<CudaSgdUpdate>> update =
        CudaSgdUpdate::Prepare(**context, static_cast<int64_t>(n), segments);
    GRADFLOW_ASSERT_OK(update.status());
    float *dw = nullptr, *dg = nullptr, *du = nullptr;
    ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&dw), n * 4), cudaSuccess);
    ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&dg), n * 4), cudaSuccess);
    ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&du), n * 4), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(dw, w.data(), n * 4, cudaMemcpyHostToDevice), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(dg, g.data(), n * 4, cudaMemcpyHostToDevice), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(du, u.data(), n * 4, cudaMemcpyHostToDevice), cudaSuccess);
    // Three steps with changing hyperparameters (an lr change with its momentum correction).
    const SgdHyper steps[] = {
        {.lr = 0.1f, .momentum = 0.9f, .nesterov = nesterov, .weight_decay = 1e-4f},
        {.lr = 0.2f,
         .momentum = 0.9f,
         .nesterov = nesterov,
         .weight_decay = 1e-4f,
         .momentum_correction = 2.0f,
         .grad_scale = 0.25f},
        {.lr = 0.2f, .momentum = 0.8f, .nesterov = nesterov, .weight_decay = 5e-4f},
    };
    for (const SgdHyper& hyper : steps) {
      GRADFLOW_ASSERT_OK((*update)->Run(dw, dg, du, hyper));
      GRADFLOW_ASSERT_OK(cpu::SgdUpdate(w, g, u, segments, hyper));
    }
    std::vector<float> gw(n), gu(n);
    ASSERT_EQ(cudaMemcpy(gw.data(), dw, n * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(gu.data(), du, n * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_EQ(gw, w);
    EXPECT_EQ(gu, u);
    cudaFree(dw);
    cudaFree(dg);
    cudaFree(du);
  }
}

TEST(CudaSgdTest, NonFiniteHyperparametersEnqueueNothing) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU on this machine";
  absl::StatusOr<std::unique_ptr<CudaContext>> context = CudaContext::Create();
  GRADFLOW_ASSERT_OK(context.status());
  const std::vector<SgdSegment> segments = {{.offset = 0, .count = 4}};
  absl::StatusOr<std::unique_ptr<CudaSgdUpdate>> update =
      CudaSgdUpdate::Prepare(**context, 4, segments);
  GRADFLOW_ASSERT_OK(update.status());
  float* buffers = nullptr;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&buffers), 12 * 4), cudaSuccess);
  ASSERT_EQ(cudaMemset(buffers, 0, 12 * 4), cudaSuccess);
  const absl::Status status = (*update)->Run(buffers, buffers + 4, buffers + 8,
                                             {.lr = std::numeric_limits<float>::infinity()});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  cudaFree(buffers);
}

}  // namespace
}  // namespace gradflow::ops::cuda
