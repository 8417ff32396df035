// Checks and small pieces shared by the oneDNN kernels of Conv2D, FullyConnected and BiasGrad.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "oneapi/dnnl/dnnl.hpp"
#include "ops/cpu/cpu_context.h"
#include "ops/kernel.h"

namespace gradflow::ops::cpu {

// The CPU context a spec was prepared for; a spec for another device is a caller bug that must
// not turn into a bad static_cast.
inline absl::StatusOr<CpuContext*> CpuDeviceOf(const KernelSpec& spec, std::string_view op) {
  if (spec.device.type() != DeviceType::kCpu) {
    return absl::InvalidArgumentError(absl::StrCat("the CPU ", std::string(op),
                                                   " kernel was given a ",
                                                   DeviceTypeName(spec.device.type()), " device"));
  }
  return static_cast<CpuContext*>(&spec.device);
}

// These kernels are registered for f32 only; anything else is refused by name.
inline absl::Status RequireFloat32(const KernelSpec& spec, std::string_view op) {
  auto check = [&](std::span<const graph::TensorType> types, const char* kind) -> absl::Status {
    for (size_t i = 0; i < types.size(); ++i) {
      if (types[i].dtype != graph::DType::kFloat32) {
        return absl::UnimplementedError(
            absl::StrCat("the CPU ", std::string(op), " kernel supports ",
                         graph::DTypeName(graph::DType::kFloat32), " only, but ", kind, " ", i,
                         " is ", graph::DTypeName(types[i].dtype)));
      }
    }
    return absl::OkStatus();
  };
  if (absl::Status s = check(spec.inputs, "input"); !s.ok()) return s;
  return check(spec.outputs, "output");
}

// Operand counts within the op's contract and a layout for every operand, so that preparing
// never indexes past what the caller handed over.
inline absl::Status CheckOperandCounts(const KernelSpec& spec, std::string_view op,
                                       size_t min_inputs, size_t max_inputs, size_t outputs) {
  if (spec.inputs.size() < min_inputs || spec.inputs.size() > max_inputs ||
      spec.outputs.size() != outputs) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the CPU ", std::string(op), " kernel takes ", min_inputs,
        min_inputs == max_inputs ? "" : absl::StrCat(" to ", max_inputs), " inputs and ", outputs,
        " outputs, got ", spec.inputs.size(), " and ", spec.outputs.size()));
  }
  if (spec.input_layouts.size() != spec.inputs.size() ||
      spec.output_layouts.size() != spec.outputs.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the CPU ", std::string(op), " kernel needs one layout per operand, got ",
                     spec.input_layouts.size(), " for ", spec.inputs.size(), " inputs and ",
                     spec.output_layouts.size(), " for ", spec.outputs.size(), " outputs"));
  }
  return absl::OkStatus();
}

// Operand `what` (e.g. "input 0 (x)") has the rank the kernel indexes by.
inline absl::Status CheckRank(const graph::TensorType& type, size_t rank, std::string_view op,
                              std::string_view what) {
  if (type.shape.size() == rank) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("the CPU ", std::string(op), " kernel needs ",
                                                 std::string(what), " of rank ", rank, ", got ",
                                                 graph::ShapeToString(type.shape)));
}

// Every buffer a kernel needs lives in the workspace the planner hands to Run, so oneDNN's
// scratchpad is supplied by the caller instead of allocated by the library.
inline dnnl::primitive_attr UserScratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// The same dimensions and type with the layout left to the primitive (oneDNN's blocked formats).
inline dnnl::memory::desc AnyLayout(const dnnl::memory::desc& desc) {
  return dnnl::memory::desc(desc.dims(), desc.data_type(), dnnl::memory::format_tag::any);
}

// Regions inside a workspace start at cache-line multiples so that a staged operand is as
// aligned as the arena it lives in.
inline constexpr size_t kWorkspaceAlignment = 64;
inline size_t AlignWorkspace(size_t bytes) {
  return (bytes + kWorkspaceAlignment - 1) / kWorkspaceAlignment * kWorkspaceAlignment;
}

}  // namespace gradflow::ops::cpu
