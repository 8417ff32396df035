// Which CUDA devices this process can use. Free of CUDA headers so that host code compiled by g++
// (the runtime, tests, tools) can ask without becoming CUDA code itself.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace gradflow::ops::cuda {

// Number of usable CUDA devices. A machine without a GPU or driver reports an error from
// cudaGetDeviceCount (cudaErrorInsufficientDriver where only the toolkit is installed, not
// cudaErrorNoDevice); every such error means "no GPU" here, so this returns 0 rather than failing.
absl::StatusOr<int> CudaDeviceCount();

// OK when at least one CUDA device is usable; otherwise FailedPrecondition saying why, for callers
// that were asked to run on a GPU.
absl::Status RequireCudaDevice();

}  // namespace gradflow::ops::cuda
