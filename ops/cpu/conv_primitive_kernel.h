// A kernel that runs one prepared oneDNN primitive (a convolution or inner product, forward or
// backward) on the tensors of a node, with the weight operand staged through oneDNN's preferred
// layout when it differs from the tensor's.
//
// Memory: every buffer lives in the workspace that Run receives (the planner owns it):
//   [oneDNN scratchpad, shared by the primitive and the reorder | staged weights]
// The primitive and the reorder never run at the same time (one in-order stream), so they share
// the scratchpad region. Weights change every step, so staging them costs one reorder per run,
// counted with CpuContext::CountReorder.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "oneapi/dnnl/dnnl.hpp"
#include "ops/cpu/conv_kernel_util.h"
#include "ops/cpu/cpu_context.h"
#include "ops/cpu/dnnl_util.h"
#include "ops/kernel.h"

namespace gradflow::ops::cpu {

// Where a primitive argument finds its data in Run: input or output `index` of the node.
struct TensorSlot {
  bool is_output = false;
  size_t index = 0;
};
inline TensorSlot InputSlot(size_t index) { return {false, index}; }
inline TensorSlot OutputSlot(size_t index) { return {true, index}; }
inline const graph::TensorType& TypeAt(const KernelSpec& spec, TensorSlot slot) {
  return slot.is_output ? spec.outputs[slot.index] : spec.inputs[slot.index];
}
inline Layout LayoutAt(const KernelSpec& spec, TensorSlot slot) {
  return slot.is_output ? spec.output_layouts[slot.index] : spec.input_layouts[slot.index];
}

// A oneDNN memory object made at prepare time without a buffer; Run points it at the tensor of
// the moment (set_data_handle), so that no descriptor work happens per run.
inline dnnl::memory UnboundMemory(const dnnl::memory::desc& desc, const dnnl::engine& engine) {
  return dnnl::memory(desc, engine, nullptr);
}

class PrimitiveKernel final : public Kernel {
 public:
  // Whether the staged operand is read by the primitive (weights: reorder before it runs) or
  // written by it (a weight gradient: reorder into the output after it runs).
  enum class Direction { kIntoPrimitive, kOutOfPrimitive };

  // `op` names the kernel in errors. May throw dnnl::error, like every method up to Run: prepare
  // inside CatchDnnl.
  PrimitiveKernel(CpuContext& ctx, std::string op, const KernelSpec& spec,
                  dnnl::primitive primitive, const dnnl::memory::desc& scratchpad_desc)
      : ctx_(ctx),
        op_(std::move(op)),
        num_inputs_(spec.inputs.size()),
        num_outputs_(spec.outputs.size()),
        primitive_(std::move(primitive)),
        primitive_scratchpad_bytes_(scratchpad_desc.get_size()) {
    if (primitive_scratchpad_bytes_ > 0) {
      scratchpad_ = UnboundMemory(scratchpad_desc, ctx_.engine());
      args_.emplace(DNNL_ARG_SCRATCHPAD, scratchpad_);
    }
  }

  // Argument `arg` is the tensor in `slot`, stored as `desc` (the primitive accepted it as is).
  void Bind(int arg, TensorSlot slot, const dnnl::memory::desc& desc) {
    dnnl::memory memory = UnboundMemory(desc, ctx_.engine());
    args_.emplace(arg, memory);
    direct_.push_back({slot, std::move(memory)});
  }

  // Argument `arg` is the tensor in `slot`, stored as `tensor_desc`, which the primitive wants as
  // `primitive_desc`. When the two differ, a reorder is prepared and the primitive works on a
  // staging buffer in the workspace (each staged operand has its own).
  void BindStaged(int arg, TensorSlot slot, const dnnl::memory::desc& tensor_desc,
                  const dnnl::memory::desc& primitive_desc, Direction direction) {
    if (tensor_desc == primitive_desc) {
      Bind(arg, slot, tensor_desc);
      return;
    }
    Staged staged;
    staged.slot = slot;
    staged.direction = direction;
    staged.tensor = UnboundMemory(tensor_desc, ctx_.engine());
    staged.staging = UnboundMemory(primitive_desc, ctx_.engine());
    staged.bytes = primitive_desc.get_size();
    args_.emplace(arg, staged.staging);

    const bool into = direction == Direction::kIntoPrimitive;
    dnnl::reorder::primitive_desc pd(ctx_.engine(), into ? tensor_desc : primitive_desc,
                                     ctx_.engine(), into ? primitive_desc : tensor_desc,
                                     UserScratchpad());
    staged.reorder = dnnl::reorder(pd);
    staged.reorder_args = {{DNNL_ARG_FROM, into ? staged.tensor : staged.staging},
                           {DNNL_ARG_TO, into ? staged.staging : staged.tensor}};
    const size_t scratchpad_bytes = pd.scratchpad_desc().get_size();
    if (scratchpad_bytes > 0) {
      staged.scratchpad = UnboundMemory(pd.scratchpad_desc(), ctx_.engine());
      staged.reorder_args.emplace(DNNL_ARG_SCRATCHPAD, staged.scratchpad);
      reorder_scratchpad_bytes_ = std::max(reorder_scratchpad_bytes_, scratchpad_bytes);
    }
    staged_.push_back(std::move(staged));
  }

  bool staged() const { return !staged_.empty(); }

  size_t workspace_bytes() const override {
    size_t bytes = staging_offset();
    for (const Staged& s : staged_) bytes += AlignWorkspace(s.bytes);
    return bytes;
  }

  absl::Status Run(std::span<const TensorRef> inputs, std::span<const TensorRef> outputs,
                   void* workspace) override {
    if (inputs.size() != num_inputs_ || outputs.size() != num_outputs_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the CPU ", op_, " kernel was prepared for ", num_inputs_, " inputs and ", num_outputs_,
          " outputs, run with ", inputs.size(), " and ", outputs.size()));
    }
    if (workspace_bytes() > 0 && workspace == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the CPU ", op_, " kernel needs ", workspace_bytes(), " workspace bytes, got none"));
    }
    return CatchDnnl(op_.c_str(), [&]() -> absl::Status {
      auto data = [&](TensorSlot slot) {
        return slot.is_output ? outputs[slot.index].data : inputs[slot.index].data;
      };
      std::byte* base = static_cast<std::byte*>(workspace);
      for (DirectOperand& operand : direct_) operand.memory.set_data_handle(data(operand.slot));
      if (primitive_scratchpad_bytes_ > 0) scratchpad_.set_data_handle(base);
      size_t offset = staging_offset();
      for (Staged& s : staged_) {
        s.tensor.set_data_handle(data(s.slot));
        s.staging.set_data_handle(base + offset);
        offset += AlignWorkspace(s.bytes);
        // Reorders run one at a time, before or after the primitive: they share one scratchpad.
        if (s.scratchpad) s.scratchpad.set_data_handle(base);
      }
      for (Staged& s : staged_) {
        if (s.direction == Direction::kIntoPrimitive) Reorder(s);
      }
      primitive_.execute(ctx_.stream(), args_);
      for (Staged& s : staged_) {
        if (s.direction == Direction::kOutOfPrimitive) Reorder(s);
      }
      ctx_.stream().wait();
      return absl::OkStatus();
    });
  }

 private:
  struct DirectOperand {
    TensorSlot slot;
    dnnl::memory memory;
  };
  struct Staged {
    TensorSlot slot;
    Direction direction = Direction::kIntoPrimitive;
    size_t bytes = 0;
    dnnl::memory tensor;
    dnnl::memory staging;
    dnnl::reorder reorder;
    dnnl::memory scratchpad;
    std::unordered_map<int, dnnl::memory> reorder_args;
  };

  size_t staging_offset() const {
    return AlignWorkspace(std::max(primitive_scratchpad_bytes_, reorder_scratchpad_bytes_));
  }

  void Reorder(Staged& s) {
    s.reorder.execute(ctx_.stream(), s.reorder_args);
    ctx_.CountReorder();
  }

  CpuContext& ctx_;
  std::string op_;
  size_t num_inputs_;
  size_t num_outputs_;
  dnnl::primitive primitive_;
  size_t primitive_scratchpad_bytes_;
  dnnl::memory scratchpad_;
  std::vector<DirectOperand> direct_;
  // Built once; the memory objects in it share their buffers' handles with the members above
  // (dnnl::memory is a reference), so rebinding those rebinds the arguments.
  std::unordered_map<int, dnnl::memory> args_;
  std::vector<Staged> staged_;
  size_t reorder_scratchpad_bytes_ = 0;
};

}  // namespace gradflow::ops::cpu
