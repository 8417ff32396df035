#include "tests/support/test_device.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ops/cpu/cpu_context.h"

namespace gradflow::test_support {
namespace {

class CpuTestDevice final : public TestDevice {
 public:
  explicit CpuTestDevice(std::unique_ptr<ops::cpu::CpuContext> context)
      : context_(std::move(context)) {}

  ops::DeviceContext& context() override { return *context_; }

  absl::StatusOr<void*> Allocate(size_t bytes) override {
    // aligned_alloc wants a size that is a multiple of the alignment.
    const size_t rounded =
        (std::max<size_t>(bytes, 1) + kBufferAlignment - 1) / kBufferAlignment * kBufferAlignment;
    void* data = std::aligned_alloc(kBufferAlignment, rounded);
    if (data == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat("cannot allocate ", bytes, " bytes"));
    }
    return data;
  }
  void Free(void* data) override { std::free(data); }
  absl::Status CopyToDevice(void* device_dst, const void* host_src, size_t bytes) override {
    std::memcpy(device_dst, host_src, bytes);
    return absl::OkStatus();
  }
  absl::Status CopyToHost(void* host_dst, const void* device_src, size_t bytes) override {
    std::memcpy(host_dst, device_src, bytes);
    return absl::OkStatus();
  }
  // CPU kernels wait for their oneDNN stream before returning.
  absl::Status Synchronize() override { return absl::OkStatus(); }

 private:
  std::unique_ptr<ops::cpu::CpuContext> context_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<TestDevice>> CreateTestDevice(ops::DeviceType type,
                                                             int cpu_threads) {
  switch (type) {
    case ops::DeviceType::kCpu: {
      absl::StatusOr<std::unique_ptr<ops::cpu::CpuContext>> context =
          ops::cpu::CpuContext::Create(cpu_threads);
      if (!context.ok()) return context.status();
      return std::unique_ptr<TestDevice>(new CpuTestDevice(*std::move(context)));
    }
    case ops::DeviceType::kCuda:
      return absl::UnimplementedError(
          "a CUDA kernel is registered but tests/support/test_device.cc has no CUDA test device "
          "yet: add one over the CUDA DeviceContext (cudaMalloc, cudaMemcpy, stream sync)");
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown device type ", static_cast<int>(type)));
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    Reset();
    device_ = std::exchange(other.device_, nullptr);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void DeviceBuffer::Reset() {
  if (device_ != nullptr && data_ != nullptr) device_->Free(data_);
  device_ = nullptr;
  data_ = nullptr;
  bytes_ = 0;
}

absl::StatusOr<DeviceBuffer> DeviceBuffer::Allocate(TestDevice& device, size_t bytes) {
  absl::StatusOr<void*> data = device.Allocate(bytes);
  if (!data.ok()) return data.status();
  return DeviceBuffer(&device, *data, bytes);
}

}  // namespace gradflow::test_support
