// The kernels gradflow ships, for every device this build supports.
#pragma once

#include "ops/kernel.h"

namespace gradflow::ops {

// Built on first use: every CPU kernel, and the CUDA kernels when the build has them.
const KernelRegistry& StandardKernels();

}  // namespace gradflow::ops
