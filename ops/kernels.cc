#include "ops/kernels.h"

#include <cstdio>
#include <cstdlib>

#include "ops/cpu/cpu_kernels.h"

namespace gradflow::ops {

const KernelRegistry& StandardKernels() {
  static const KernelRegistry* const registry = [] {
    auto* r = new KernelRegistry;
    if (absl::Status s = cpu::RegisterCpuKernels(*r); !s.ok()) {
      // Two kernels for one key is a bug in this build, not something a user can fix.
      std::fprintf(stderr, "gradflow: %s\n", std::string(s.message()).c_str());
      std::abort();
    }
    return r;
  }();
  return *registry;
}

}  // namespace gradflow::ops
