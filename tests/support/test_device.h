// A device as the tests drive it: its kernel context plus the memory operations a test needs
// (allocate, copy in and out, wait). The CPU implementation is host memory; a CUDA one plugs in
// here when ops/ gains a CUDA DeviceContext, and every harness case then runs on it unchanged.
#pragma once

#include <cstddef>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ops/kernel.h"

namespace gradflow::test_support {

// Alignment of every buffer a test allocates: a cache line, and what AVX-512 loads like.
inline constexpr size_t kBufferAlignment = 64;

class TestDevice {
 public:
  virtual ~TestDevice() = default;
  virtual ops::DeviceContext& context() = 0;
  ops::DeviceType type() { return context().type(); }

  // kBufferAlignment-aligned device memory of at least `bytes` (one byte for empty requests).
  virtual absl::StatusOr<void*> Allocate(size_t bytes) = 0;
  virtual void Free(void* data) = 0;
  virtual absl::Status CopyToDevice(void* device_dst, const void* host_src, size_t bytes) = 0;
  virtual absl::Status CopyToHost(void* host_dst, const void* device_src, size_t bytes) = 0;
  // Waits until every kernel run so far has finished.
  virtual absl::Status Synchronize() = 0;
};

// CPU: a oneDNN context with `cpu_threads` OpenMP threads. CUDA: Unimplemented until the CUDA
// device context exists (the harness then fails loudly rather than skipping a registered kernel).
absl::StatusOr<std::unique_ptr<TestDevice>> CreateTestDevice(ops::DeviceType type,
                                                             int cpu_threads = 2);

// Device memory released through its device on destruction.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(TestDevice* device, void* data, size_t bytes)
      : device_(device), data_(data), bytes_(bytes) {}
  DeviceBuffer(DeviceBuffer&& other) noexcept { *this = std::move(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { Reset(); }

  static absl::StatusOr<DeviceBuffer> Allocate(TestDevice& device, size_t bytes);
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  void Reset();
  TestDevice* device_ = nullptr;
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace gradflow::test_support
