#include "ops/cpu/cpu_kernels.h"

namespace gradflow::ops::cpu {

absl::Status RegisterCpuKernels(KernelRegistry& registry) {
  for (auto register_kernels :
       {RegisterAddCpu, RegisterBatchNormCpu, RegisterBiasGradCpu, RegisterConv2DCpu,
        RegisterFullyConnectedCpu, RegisterPoolingCpu, RegisterReluCpu, RegisterReshapeCpu,
        RegisterSoftmaxCrossEntropyCpu}) {
    if (absl::Status s = register_kernels(registry); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace gradflow::ops::cpu
