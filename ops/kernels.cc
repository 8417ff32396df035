#include "ops/kernels.h"

#include <cstdio>
#include <cstdlib>

#include "ops/cpu/cpu_kernels.h"
#ifdef GRADFLOW_HAVE_CUDA
#include "ops/cuda/cuda_kernels.h"
#include "ops/cuda/device.h"
#endif

namespace gradflow::ops {
namespace {

// Two kernels for one key is a bug in this build, not something a user can fix.
void MustSucceed(const absl::Status& status) {
  if (status.ok()) return;
  std::fprintf(stderr, "gradflow: %s\n", std::string(status.message()).c_str());
  std::abort();
}

}  // namespace

const KernelRegistry& StandardKernels() {
  static const KernelRegistry* const registry = [] {
    auto* r = new KernelRegistry;
    MustSucceed(cpu::RegisterCpuKernels(*r));
#ifdef GRADFLOW_HAVE_CUDA
    // CUDA kernels are offered only where a GPU can run them: on a machine with the toolkit but
    // no GPU, planners and the op harness must not pick a device that cannot be created.
    absl::StatusOr<int> gpus = cuda::CudaDeviceCount();
    if (gpus.ok() && *gpus > 0) MustSucceed(cuda::RegisterCudaKernels(*r));
#endif
    return r;
  }();
  return *registry;
}

}  // namespace gradflow::ops
