#include "ops/cuda/cuda_kernels.h"

namespace gradflow::ops::cuda {

absl::Status RegisterCudaKernels(KernelRegistry& registry) {
  for (auto* register_family : {RegisterElementwiseCuda, RegisterBatchNormCuda, RegisterConv2DCuda,
                                RegisterFullyConnectedCuda, RegisterPoolingCuda}) {
    if (absl::Status s = register_family(registry); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace gradflow::ops::cuda
