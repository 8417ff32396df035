// Registration of the CUDA kernels (fp32), one function per kernel file, mirroring
// ops/cpu/cpu_kernels.h: every op and backward op the CPU has.
#pragma once

#include "absl/status/status.h"
#include "ops/kernel.h"

namespace gradflow::ops::cuda {

// Add, Relu, ReluGrad, BiasGrad, Reshape, Flatten, SoftmaxCrossEntropy(Grad) (elementwise.cc).
absl::Status RegisterElementwiseCuda(KernelRegistry& registry);
absl::Status RegisterBatchNormCuda(KernelRegistry& registry);       // cuDNN
absl::Status RegisterConv2DCuda(KernelRegistry& registry);          // cuDNN, 3 ops
absl::Status RegisterFullyConnectedCuda(KernelRegistry& registry);  // cuBLAS, 3 ops
absl::Status RegisterPoolingCuda(KernelRegistry& registry);         // cuDNN + own, 6 ops

// All of the above, under DeviceType::kCuda. Needs no GPU: kernels touch the device only when
// prepared.
absl::Status RegisterCudaKernels(KernelRegistry& registry);

}  // namespace gradflow::ops::cuda
