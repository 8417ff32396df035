// The device one replica trains on, as the trainer sees it: where kernels run (the context and
// its compute stream), where the plan's buffers live, and how the host reaches them.
//
// On the CPU the buffers are host memory and every copy is a memcpy. On a GPU they are device
// memory: inputs travel through pinned host buffers on a copy stream that the compute stream
// waits for by event, and the host reads results (loss, probabilities, parameters for a
// checkpoint) only after the compute stream has finished with them.
//
// Every copy below is ordered with the compute stream: an upload lands after the work issued
// before it and before the work issued after it, without blocking the host; a download waits for
// everything issued so far. Between iterations the trainer may use them freely.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ops/kernel.h"
#include "scheduler/buffers.h"
#include "scheduler/stream.h"

namespace gradflow::runtime {

class TrainDevice {
 public:
  virtual ~TrainDevice() = default;

  virtual ops::DeviceType type() const = 0;
  // For the run's first line, e.g. "cpu (8 threads)" or "cuda:0 NVIDIA H100 80GB HBM3".
  virtual std::string Describe() const = 0;
  virtual ops::DeviceContext& context() = 0;
  virtual sched::Stream& compute_stream() = 0;
  virtual sched::BufferMemory& memory() = 0;

  // `host` may be reused as soon as the call returns.
  virtual absl::Status Upload(void* device, const void* host, size_t bytes) = 0;
  virtual absl::Status Zero(void* device, size_t bytes) = 0;
  virtual absl::Status CopyOnDevice(void* to, const void* from, size_t bytes) = 0;
  // Waits for the compute stream, then copies.
  virtual absl::Status Download(void* host, const void* device, size_t bytes) = 0;

  // Prefetching the next batch while an iteration runs: Stage copies host data into staging slot
  // `slot` (0 or 1) now, beside the compute stream (on a GPU: pinned memory, then a copy stream
  // into device memory), and may be called from another thread than the one running the
  // iteration. ConsumeStaged then lands it in `device`, in compute-stream order, between
  // iterations. A slot holds one staged copy at a time.
  virtual absl::Status Stage(int slot, const void* host, size_t bytes) = 0;
  virtual absl::Status ConsumeStaged(int slot, void* device, size_t bytes) = 0;
  // After an iteration: bad data a kernel met on the device (a label out of range), naming it.
  virtual absl::Status TakeDeviceError() { return absl::OkStatus(); }
  // The most device memory allocated at once so far; -1 where the host's memory is the device's.
  virtual int64_t peak_memory_bytes() const { return -1; }
};

// `threads` OpenMP threads for the kernels (0: every core).
absl::StatusOr<std::unique_ptr<TrainDevice>> CreateCpuTrainDevice(int threads);

// What --device asks for.
enum class DeviceChoice : int8_t { kAuto, kCpu, kCuda };
// "auto" | "cpu" | "cuda"; InvalidArgument names the flag otherwise.
absl::StatusOr<DeviceChoice> ParseDeviceChoice(const std::string& text);
// The device a replica runs on: kAuto is CUDA when this build has it and a GPU is present, else
// the CPU. kCuda without a usable GPU (or in a build without CUDA) is FailedPrecondition saying
// why. `gpu` is the CUDA device index (e.g. the node's local rank modulo the GPUs present);
// `tf32` lets cuDNN and cuBLAS use TF32.
absl::StatusOr<std::unique_ptr<TrainDevice>> CreateTrainDevice(DeviceChoice choice, int threads,
                                                               int gpu, bool tf32);
// Number of usable GPUs (0 in a build without CUDA).
int UsableGpus();

}  // namespace gradflow::runtime
