#include "runtime/trainer/cuda/cuda_train_device.h"

#include <cuda_runtime_api.h>

#include <array>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_stream.h"

namespace gradflow::runtime {
namespace {

using ops::cuda::CudaStatus;

// Plan buffers from the context's caching allocator; filled on the compute stream.
class CudaBufferMemory final : public sched::BufferMemory {
 public:
  explicit CudaBufferMemory(ops::cuda::CudaContext& context) : context_(context) {}

  absl::StatusOr<std::byte*> Allocate(size_t bytes) override {
    // The allocator's blocks are 256-byte aligned, more than kBufferAlignment.
    absl::StatusOr<void*> block = context_.allocator().Allocate(bytes);
    if (!block.ok()) return block.status();
    return static_cast<std::byte*>(*block);
  }
  void Free(std::byte* data) override { (void)context_.allocator().Free(data); }
  absl::Status Fill(std::byte* data, int value, size_t bytes) override {
    absl::Status status;
    context_.compute_stream().Enqueue([&] {
      status =
          CudaStatus(cudaMemsetAsync(data, value, bytes, context_.stream()), "cudaMemsetAsync");
    });
    if (!status.ok()) return status;
    return context_.compute_stream().Synchronize();
  }

 private:
  ops::cuda::CudaContext& context_;
};

// Pinned host memory that a copy reads while the host fills the other slot.
struct StagingSlot {
  void* host = nullptr;
  size_t capacity = 0;
  std::unique_ptr<sched::Event> copied;  // on the copy stream, after this slot's last copy
};

class CudaTrainDevice final : public TrainDevice {
 public:
  CudaTrainDevice(std::unique_ptr<ops::cuda::CudaContext> context,
                  std::unique_ptr<ops::cuda::CudaStream> copy_stream)
      : context_(std::move(context)), copy_stream_(std::move(copy_stream)), memory_(*context_) {
    for (StagingSlot& slot : staging_) slot.copied = copy_stream_->CreateEvent();
    for (DeviceSlot& slot : staged_) {
      slot.copied = copy_stream_->CreateEvent();
      slot.consumed = context_->compute_stream().CreateEvent();
    }
    compute_point_ = context_->compute_stream().CreateEvent();
  }
  ~CudaTrainDevice() override {
    (void)copy_stream_->Synchronize();
    for (StagingSlot& slot : staging_) {
      if (slot.host != nullptr) cudaFreeHost(slot.host);
    }
    for (DeviceSlot& slot : staged_) {
      if (slot.host != nullptr) cudaFreeHost(slot.host);
    }
  }

  ops::DeviceType type() const override { return ops::DeviceType::kCuda; }
  std::string Describe() const override {
    return absl::StrCat("cuda:", context_->device(), " ", context_->properties().name,
                        context_->tf32() ? " (TF32)" : " (fp32)");
  }
  ops::DeviceContext& context() override { return *context_; }
  sched::Stream& compute_stream() override { return context_->compute_stream(); }
  sched::BufferMemory& memory() override { return memory_; }

  absl::Status Upload(void* device, const void* host, size_t bytes) override {
    if (bytes == 0) return absl::OkStatus();
    StagingSlot& slot = staging_[next_slot_];
    next_slot_ = (next_slot_ + 1) % staging_.size();
    // The slot's previous copy (two uploads ago) must have read it before it is refilled.
    if (absl::Status s = slot.copied->HostWait(); !s.ok()) return s;
    if (slot.capacity < bytes) {
      if (slot.host != nullptr) cudaFreeHost(slot.host);
      slot.host = nullptr;
      slot.capacity = 0;
      GF_CUDA_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(context_->device()), "cudaSetDevice"));
      GF_CUDA_RETURN_IF_ERROR(CudaStatus(cudaHostAlloc(&slot.host, bytes, cudaHostAllocDefault),
                                         "cudaHostAlloc (pinned input staging)"));
      slot.capacity = bytes;
    }
    std::memcpy(slot.host, host, bytes);
    // Work queued on the compute stream may still read the destination (the last iteration's
    // input): the copy waits for it, and the compute stream waits for the copy.
    sched::Stream& compute = context_->compute_stream();
    if (absl::Status s = compute.Record(*compute_point_); !s.ok()) return s;
    if (absl::Status s = copy_stream_->Wait(*compute_point_); !s.ok()) return s;
    absl::Status status;
    copy_stream_->Enqueue([&] {
      status = CudaStatus(
          cudaMemcpyAsync(device, slot.host, bytes, cudaMemcpyHostToDevice, copy_stream_->handle()),
          "cudaMemcpyAsync (host to device)");
    });
    if (!status.ok()) return status;
    if (absl::Status s = copy_stream_->Record(*slot.copied); !s.ok()) return s;
    return compute.Wait(*slot.copied);
  }

  absl::Status Zero(void* device, size_t bytes) override {
    if (bytes == 0) return absl::OkStatus();
    absl::Status status;
    context_->compute_stream().Enqueue([&] {
      status = CudaStatus(cudaMemsetAsync(device, 0, bytes, context_->stream()), "cudaMemsetAsync");
    });
    return status;
  }

  absl::Status CopyOnDevice(void* to, const void* from, size_t bytes) override {
    if (bytes == 0) return absl::OkStatus();
    absl::Status status;
    context_->compute_stream().Enqueue([&] {
      status =
          CudaStatus(cudaMemcpyAsync(to, from, bytes, cudaMemcpyDeviceToDevice, context_->stream()),
                     "cudaMemcpyAsync (device to device)");
    });
    return status;
  }

  absl::Status Download(void* host, const void* device, size_t bytes) override {
    if (absl::Status s = context_->compute_stream().Synchronize(); !s.ok()) return s;
    if (bytes == 0) return absl::OkStatus();
    GF_CUDA_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(context_->device()), "cudaSetDevice"));
    return CudaStatus(cudaMemcpy(host, device, bytes, cudaMemcpyDeviceToHost),
                      "cudaMemcpy (device to host)");
  }

  absl::Status Stage(int slot, const void* host, size_t bytes) override {
    DeviceSlot& s = staged_[slot];
    // The pinned buffer is free once its last copy has run; the device buffer once the compute
    // stream has consumed it.
    if (absl::Status st = s.copied->HostWait(); !st.ok()) return st;
    if (s.capacity < bytes) {
      if (s.host != nullptr) cudaFreeHost(s.host);
      if (s.device != nullptr) (void)context_->allocator().Free(s.device);
      s.host = nullptr;
      s.device = nullptr;
      s.capacity = 0;
      GF_CUDA_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(context_->device()), "cudaSetDevice"));
      GF_CUDA_RETURN_IF_ERROR(CudaStatus(cudaHostAlloc(&s.host, bytes, cudaHostAllocDefault),
                                         "cudaHostAlloc (pinned prefetch staging)"));
      absl::StatusOr<void*> block = context_->allocator().Allocate(bytes);
      if (!block.ok()) return block.status();
      s.device = *block;
      s.capacity = bytes;
    }
    std::memcpy(s.host, host, bytes);
    s.bytes = bytes;
    if (absl::Status st = copy_stream_->Wait(*s.consumed); !st.ok()) return st;
    absl::Status status;
    copy_stream_->Enqueue([&] {
      status = CudaStatus(
          cudaMemcpyAsync(s.device, s.host, bytes, cudaMemcpyHostToDevice, copy_stream_->handle()),
          "cudaMemcpyAsync (prefetch to the device)");
    });
    if (!status.ok()) return status;
    return copy_stream_->Record(*s.copied);
  }

  absl::Status ConsumeStaged(int slot, void* device, size_t bytes) override {
    DeviceSlot& s = staged_[slot];
    if (s.bytes != bytes) {
      return absl::InternalError(
          absl::StrCat("staging slot ", slot, " holds ", s.bytes, " bytes, not ", bytes));
    }
    sched::Stream& compute = context_->compute_stream();
    if (absl::Status st = compute.Wait(*s.copied); !st.ok()) return st;
    if (absl::Status st = CopyOnDevice(device, s.device, bytes); !st.ok()) return st;
    return compute.Record(*s.consumed);
  }

  absl::Status TakeDeviceError() override {
    if (absl::Status s = context_->compute_stream().Synchronize(); !s.ok()) return s;
    return context_->TakeDeviceError();
  }

  int64_t peak_memory_bytes() const override {
    return static_cast<int64_t>(context_->allocator().stats().peak_bytes_in_use);
  }

 private:
  std::unique_ptr<ops::cuda::CudaContext> context_;
  std::unique_ptr<ops::cuda::CudaStream> copy_stream_;
  CudaBufferMemory memory_;
  std::array<StagingSlot, 2> staging_;
  size_t next_slot_ = 0;
  std::unique_ptr<sched::Event> compute_point_;
  // Prefetch: pinned and device copies of the next batch's inputs.
  struct DeviceSlot {
    void* host = nullptr;
    void* device = nullptr;
    size_t capacity = 0;
    size_t bytes = 0;
    std::unique_ptr<sched::Event> copied;    // copy stream: the device copy is complete
    std::unique_ptr<sched::Event> consumed;  // compute stream: the device copy was read
  };
  std::array<DeviceSlot, 2> staged_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<TrainDevice>> CreateCudaTrainDevice(int gpu, bool tf32) {
  absl::StatusOr<std::unique_ptr<ops::cuda::CudaContext>> context =
      ops::cuda::CudaContext::Create({.device = gpu, .tf32 = tf32});
  if (!context.ok()) return context.status();
  absl::StatusOr<std::unique_ptr<ops::cuda::CudaStream>> copy_stream =
      ops::cuda::CudaStream::Create({.device = gpu, .callback_thread_name = "gf-copy-cb"});
  if (!copy_stream.ok()) return copy_stream.status();
  return std::make_unique<CudaTrainDevice>(*std::move(context), *std::move(copy_stream));
}

ops::cuda::CudaContext* CudaContextOf(TrainDevice& device) {
  return dynamic_cast<ops::cuda::CudaContext*>(&device.context());
}

}  // namespace gradflow::runtime
