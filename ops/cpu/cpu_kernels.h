// Registration of the CPU kernels, one function per kernel file.
#pragma once

#include "absl/status/status.h"
#include "ops/kernel.h"

namespace gradflow::ops::cpu {

absl::Status RegisterAddCpu(KernelRegistry& registry);
absl::Status RegisterBatchNormCpu(KernelRegistry& registry);
absl::Status RegisterBiasGradCpu(KernelRegistry& registry);
absl::Status RegisterConv2DCpu(KernelRegistry& registry);
absl::Status RegisterFullyConnectedCpu(KernelRegistry& registry);
absl::Status RegisterPoolingCpu(KernelRegistry& registry);
absl::Status RegisterReluCpu(KernelRegistry& registry);
absl::Status RegisterReshapeCpu(KernelRegistry& registry);
absl::Status RegisterSoftmaxCrossEntropyCpu(KernelRegistry& registry);

// All of the above.
absl::Status RegisterCpuKernels(KernelRegistry& registry);

}  // namespace gradflow::ops::cpu
