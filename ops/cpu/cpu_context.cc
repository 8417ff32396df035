#include "ops/cpu/cpu_context.h"

#include <omp.h>

#include "absl/strings/str_cat.h"

namespace gradflow::ops::cpu {

absl::StatusOr<std::unique_ptr<CpuContext>> CpuContext::Create(int threads) {
  if (threads < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--threads must be at least 1, got ", threads));
  }
  // oneDNN's primitives parallelize with OpenMP; its team size is process-wide.
  omp_set_num_threads(threads);
  try {
    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    dnnl::stream stream(engine);
    return std::unique_ptr<CpuContext>(new CpuContext(std::move(engine), std::move(stream), threads));
  } catch (const dnnl::error& e) {
    return absl::InternalError(absl::StrCat("oneDNN CPU engine: ", e.what()));
  }
}

}  // namespace gradflow::ops::cpu
