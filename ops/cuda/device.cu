#include <cuda_runtime_api.h>

#include "absl/strings/str_cat.h"
#include "ops/cuda/device.h"

namespace gradflow::ops::cuda {
namespace {

struct DeviceQuery {
  int count = 0;
  cudaError_t error = cudaSuccess;
};

DeviceQuery QueryDevices() {
  DeviceQuery query;
  query.error = cudaGetDeviceCount(&query.count);
  // The count is unspecified when the call fails.
  if (query.error != cudaSuccess) query.count = 0;
  return query;
}

}  // namespace

absl::StatusOr<int> CudaDeviceCount() { return QueryDevices().count; }

absl::Status RequireCudaDevice() {
  const DeviceQuery query = QueryDevices();
  if (query.count > 0) return absl::OkStatus();
  if (query.error != cudaSuccess) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no usable CUDA device: cudaGetDeviceCount failed with ", cudaGetErrorName(query.error),
        " (", cudaGetErrorString(query.error),
        "); run on a machine with an NVIDIA GPU and driver, or choose the CPU device"));
  }
  return absl::FailedPreconditionError(
      "no usable CUDA device: the driver reports 0 GPUs (check CUDA_VISIBLE_DEVICES), or choose "
      "the CPU device");
}

}  // namespace gradflow::ops::cuda
