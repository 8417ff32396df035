// A GPU as a training device (runtime/trainer/train_device.h): the CUDA context and its compute
// stream, buffers from the context's caching allocator, and uploads through pinned host buffers
// on a copy stream of their own. CUDA builds only.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "ops/cuda/cuda_context.h"
#include "runtime/trainer/train_device.h"

namespace gradflow::runtime {

// FailedPrecondition without a usable GPU; InvalidArgument for a device index the machine lacks.
absl::StatusOr<std::unique_ptr<TrainDevice>> CreateCudaTrainDevice(int gpu, bool tf32);

// The CUDA context of a device made by CreateCudaTrainDevice; null for any other device.
ops::cuda::CudaContext* CudaContextOf(TrainDevice& device);

}  // namespace gradflow::runtime
