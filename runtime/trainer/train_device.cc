#include "runtime/trainer/train_device.h"

#include "absl/strings/str_cat.h"

#ifdef GRADFLOW_HAVE_CUDA
#include "ops/cuda/device.h"
#include "runtime/trainer/cuda/cuda_train_device.h"
#endif

namespace gradflow::runtime {

absl::StatusOr<DeviceChoice> ParseDeviceChoice(const std::string& text) {
  if (text == "auto") return DeviceChoice::kAuto;
  if (text == "cpu") return DeviceChoice::kCpu;
  if (text == "cuda") return DeviceChoice::kCuda;
  return absl::InvalidArgumentError(
      absl::StrCat("--device: expected auto, cpu or cuda, got '", text, "'"));
}

int UsableGpus() {
#ifdef GRADFLOW_HAVE_CUDA
  absl::StatusOr<int> gpus = ops::cuda::CudaDeviceCount();
  return gpus.ok() ? *gpus : 0;
#else
  return 0;
#endif
}

absl::StatusOr<std::unique_ptr<TrainDevice>> CreateTrainDevice(DeviceChoice choice, int threads,
                                                               int gpu, bool tf32) {
  if (choice == DeviceChoice::kCpu || (choice == DeviceChoice::kAuto && UsableGpus() == 0)) {
    return CreateCpuTrainDevice(threads);
  }
#ifdef GRADFLOW_HAVE_CUDA
  if (absl::Status s = ops::cuda::RequireCudaDevice(); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("--device cuda: ", s.message()));
  }
  return CreateCudaTrainDevice(gpu, tf32);
#else
  (void)gpu;
  (void)tf32;
  return absl::FailedPreconditionError(
      "--device cuda: this runtime was built without CUDA (configure with -DGRADFLOW_CUDA=ON)");
#endif
}

}  // namespace gradflow::runtime
