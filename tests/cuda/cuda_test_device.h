// The CUDA device as the test harness drives it (tests/support/test_device.h): a CudaContext plus
// allocation and copies ordered on its compute stream. Synchronize also collects errors kernels
// reported through the context's device error word (a label out of range).
//
// Built here rather than in tests/support so that the support library stays free of CUDA; it can
// move into CreateTestDevice(kCuda) unchanged.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "ops/cuda/cuda_context.h"
#include "tests/support/test_device.h"

namespace gradflow::test_support {

// FailedPrecondition without a GPU.
absl::StatusOr<std::unique_ptr<TestDevice>> CreateCudaTestDevice(
    ops::cuda::CudaContextOptions options = {});

}  // namespace gradflow::test_support
