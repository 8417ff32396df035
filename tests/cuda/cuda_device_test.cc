#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ops/cuda/device.h"

namespace gradflow::ops::cuda {
namespace {

using ::testing::HasSubstr;

int DeviceCountOrFail() {
  absl::StatusOr<int> count = CudaDeviceCount();
  EXPECT_TRUE(count.ok()) << count.status();
  return count.ok() ? *count : 0;
}

TEST(CudaDeviceTest, CountIsNeverAnError) {
  absl::StatusOr<int> count = CudaDeviceCount();
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_GE(*count, 0);
}

// What a user sees when asking for a GPU on a machine without one (the case on CPU-only CI).
TEST(CudaDeviceTest, RequireCudaDeviceFailsClearlyWithoutGpu) {
  if (DeviceCountOrFail() > 0) GTEST_SKIP() << "this machine has a GPU";
  const absl::Status status = RequireCudaDevice();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("no usable CUDA device"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("CPU device"));
}

TEST(CudaDeviceTest, RequireCudaDeviceSucceedsWithGpu) {
  if (DeviceCountOrFail() == 0) GTEST_SKIP() << "no GPU on this machine";
  EXPECT_TRUE(RequireCudaDevice().ok()) << RequireCudaDevice();
}

// The GPU part: every device that is counted can really be used (memory round trip).
TEST(CudaDeviceTest, EveryCountedDeviceRoundTripsMemory) {
  const int count = DeviceCountOrFail();
  if (count == 0) GTEST_SKIP() << "no GPU on this machine";
  const std::vector<uint8_t> sent = {1, 2, 3, 5, 8, 13, 21, 34};
  for (int device = 0; device < count; ++device) {
    SCOPED_TRACE(device);
    ASSERT_EQ(cudaSetDevice(device), cudaSuccess);
    cudaDeviceProp properties{};
    ASSERT_EQ(cudaGetDeviceProperties(&properties, device), cudaSuccess);
    EXPECT_GT(properties.totalGlobalMem, 0u) << properties.name;
    void* on_device = nullptr;
    ASSERT_EQ(cudaMalloc(&on_device, sent.size()), cudaSuccess);
    std::vector<uint8_t> received(sent.size(), 0);
    EXPECT_EQ(cudaMemcpy(on_device, sent.data(), sent.size(), cudaMemcpyHostToDevice), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(received.data(), on_device, sent.size(), cudaMemcpyDeviceToHost),
              cudaSuccess);
    EXPECT_EQ(cudaFree(on_device), cudaSuccess);
    EXPECT_EQ(received, sent);
  }
}

}  // namespace
}  // namespace gradflow::ops::cuda
