// Small bridges between gradflow's tensors and oneDNN's memory objects.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "oneapi/dnnl/dnnl.hpp"
#include "ops/kernel.h"

namespace gradflow::ops::cpu {

absl::StatusOr<dnnl::memory::data_type> DnnlDataType(graph::DType dtype);

// The descriptor of a dense tensor of that type, in its layout (rank 4 honours kChannelsLast).
absl::StatusOr<dnnl::memory::desc> DnnlDesc(const graph::TensorType& type, Layout layout);

// A oneDNN memory object over a TensorRef's data (no copy).
dnnl::memory DnnlMemory(const dnnl::memory::desc& desc, const dnnl::engine& engine,
                        const TensorRef& ref);

// oneDNN reports failures by exception; gradflow by status. Every call into oneDNN goes through
// this so that no exception leaves a kernel.
template <typename Fn>
absl::Status CatchDnnl(const char* what, Fn&& fn) {
  try {
    return fn();
  } catch (const dnnl::error& e) {
    return absl::InternalError(std::string(what) + ": oneDNN: " + e.what());
  }
}

}  // namespace gradflow::ops::cpu
