// The CPU as a training device: oneDNN kernels on a CpuStream whose thread owns the OpenMP team,
// buffers in host memory. The stream is idle between iterations (the executor's Run returns when
// it has finished), so copies are plain memcpy on the calling thread.
#include <array>
#include <cstddef>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/cpu/cpu_context.h"
#include "runtime/trainer/train_device.h"
#include "scheduler/cpu_stream.h"

namespace gradflow::runtime {
namespace {

class CpuTrainDevice final : public TrainDevice {
 public:
  CpuTrainDevice(std::unique_ptr<ops::cpu::CpuContext> context, int threads)
      : context_(std::move(context)),
        stream_(sched::CpuStreamOptions{.omp_threads = threads, .thread_name = "gf-compute"}) {}

  ops::DeviceType type() const override { return ops::DeviceType::kCpu; }
  std::string Describe() const override {
    return absl::StrCat("cpu, ", context_->threads(), " thread",
                        context_->threads() > 1 ? "s" : "");
  }
  ops::DeviceContext& context() override { return *context_; }
  sched::Stream& compute_stream() override { return stream_; }
  sched::BufferMemory& memory() override { return sched::HostBufferMemory(); }

  absl::Status Upload(void* device, const void* host, size_t bytes) override {
    std::memcpy(device, host, bytes);
    return absl::OkStatus();
  }
  absl::Status Zero(void* device, size_t bytes) override {
    std::memset(device, 0, bytes);
    return absl::OkStatus();
  }
  absl::Status CopyOnDevice(void* to, const void* from, size_t bytes) override {
    std::memcpy(to, from, bytes);
    return absl::OkStatus();
  }
  absl::Status Download(void* host, const void* device, size_t bytes) override {
    std::memcpy(host, device, bytes);
    return absl::OkStatus();
  }

  absl::Status Stage(int slot, const void* host, size_t bytes) override {
    std::vector<std::byte>& staged = staged_[slot];
    staged.resize(bytes);
    std::memcpy(staged.data(), host, bytes);
    return absl::OkStatus();
  }
  absl::Status ConsumeStaged(int slot, void* device, size_t bytes) override {
    if (staged_[slot].size() != bytes) {
      return absl::InternalError(absl::StrCat("staging slot ", slot, " holds ",
                                              staged_[slot].size(), " bytes, not ", bytes));
    }
    std::memcpy(device, staged_[slot].data(), bytes);
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<ops::cpu::CpuContext> context_;
  sched::CpuStream stream_;
  std::array<std::vector<std::byte>, 2> staged_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<TrainDevice>> CreateCpuTrainDevice(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  absl::StatusOr<std::unique_ptr<ops::cpu::CpuContext>> context =
      ops::cpu::CpuContext::Create(threads);
  if (!context.ok()) return context.status();
  return std::make_unique<CpuTrainDevice>(*std::move(context), threads);
}

}  // namespace gradflow::runtime
