#include "tests/cuda/cuda_test_device.h"

#include <cuda_runtime_api.h>

#include <utility>

#include "ops/cuda/cuda_check.h"

namespace gradflow::test_support {
namespace {

using ops::cuda::CudaContext;
using ops::cuda::CudaStatus;

class CudaTestDevice final : public TestDevice {
 public:
  explicit CudaTestDevice(std::unique_ptr<CudaContext> context) : context_(std::move(context)) {}

  ops::DeviceContext& context() override { return *context_; }

  absl::StatusOr<void*> Allocate(size_t bytes) override {
    return context_->allocator().Allocate(bytes);
  }
  void Free(void* data) override { context_->allocator().Free(data).IgnoreError(); }
  absl::Status CopyToDevice(void* device_dst, const void* host_src, size_t bytes) override {
    GF_CUDA_RETURN_IF_ERROR(CudaStatus(
        cudaMemcpyAsync(device_dst, host_src, bytes, cudaMemcpyHostToDevice, context_->stream()),
        "cudaMemcpyAsync to the device"));
    // The host buffer may die when this returns.
    return CudaStatus(cudaStreamSynchronize(context_->stream()), "cudaStreamSynchronize");
  }
  absl::Status CopyToHost(void* host_dst, const void* device_src, size_t bytes) override {
    GF_CUDA_RETURN_IF_ERROR(CudaStatus(
        cudaMemcpyAsync(host_dst, device_src, bytes, cudaMemcpyDeviceToHost, context_->stream()),
        "cudaMemcpyAsync to the host"));
    return CudaStatus(cudaStreamSynchronize(context_->stream()), "cudaStreamSynchronize");
  }
  absl::Status Synchronize() override {
    GF_CUDA_RETURN_IF_ERROR(context_->compute_stream().Synchronize());
    return context_->TakeDeviceError();
  }

 private:
  std::unique_ptr<CudaContext> context_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<TestDevice>> CreateCudaTestDevice(
    ops::cuda::CudaContextOptions options) {
  absl::StatusOr<std::unique_ptr<CudaContext>> context = CudaContext::Create(options);
  if (!context.ok()) return context.status();
  return std::unique_ptr<TestDevice>(new CudaTestDevice(*std::move(context)));
}

}  // namespace gradflow::test_support
