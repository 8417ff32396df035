// Reshape and Flatten (fp32). Their element order is the logical (NCHW, row-major) one, so a copy
// suffices unless a rank-4 side is stored channels-last with distinct channel and spatial orders;
// then a prepared oneDNN reorder converts, and the context counts it.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <optional>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "ops/cpu/cpu_context.h"
#include "ops/cpu/cpu_kernels.h"
#include "ops/cpu/dnnl_util.h"

namespace gradflow::ops::cpu {
namespace {

using dnnl::memory;

constexpr size_t kAlignment = 64;
size_t AlignUp(size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }
size_t Bytes(const graph::TensorType& type) {
  return static_cast<size_t>(graph::NumElements(type.shape)) * graph::DTypeSize(type.dtype);
}

// Whether a tensor stored in `layout` orders its elements differently from row-major.
bool DiffersFromRowMajor(const graph::Shape& shape, Layout layout) {
  return layout == Layout::kChannelsLast && shape.size() == 4 && shape[1] > 1 &&
         shape[2] * shape[3] > 1;
}

// A reorder prepared once, with its arguments bound to placeholder memory that each run points at
// its buffers (so Run neither builds primitives nor allocates).
class PreparedReorder {
 public:
  static absl::StatusOr<PreparedReorder> Create(const memory::desc& from, const memory::desc& to,
                                                const dnnl::engine& engine) {
    PreparedReorder prepared;
    absl::Status status = CatchDnnl("preparing a layout reorder", [&]() -> absl::Status {
      dnnl::primitive_attr attr;
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      dnnl::reorder::primitive_desc pd(engine, from, engine, to, attr);
      prepared.primitive_ = dnnl::reorder(pd);
      prepared.scratchpad_bytes_ = pd.scratchpad_desc().get_size();
      prepared.args_.emplace(DNNL_ARG_FROM, memory(from, engine, DNNL_MEMORY_NONE));
      prepared.args_.emplace(DNNL_ARG_TO, memory(to, engine, DNNL_MEMORY_NONE));
      prepared.args_.emplace(DNNL_ARG_SCRATCHPAD,
                             memory(pd.scratchpad_desc(), engine, DNNL_MEMORY_NONE));
      return absl::OkStatus();
    });
    if (!status.ok()) return status;
    return prepared;
  }

  size_t scratchpad_bytes() const { return scratchpad_bytes_; }

  void Execute(dnnl::stream& stream, void* from, void* to, void* scratchpad) {
    args_.at(DNNL_ARG_FROM).set_data_handle(from);
    args_.at(DNNL_ARG_TO).set_data_handle(to);
    args_.at(DNNL_ARG_SCRATCHPAD).set_data_handle(scratchpad);
    primitive_.execute(stream, args_);
  }

 private:
  dnnl::reorder primitive_;
  size_t scratchpad_bytes_ = 0;
  std::unordered_map<int, memory> args_;
};

class CopyKernel final : public Kernel {
 public:
  absl::Status Run(std::span<const TensorRef> inputs, std::span<const TensorRef> outputs,
                   void* /*workspace*/) override {
    if (inputs[0].data != outputs[0].data) {
      std::memcpy(outputs[0].data, inputs[0].data, outputs[0].bytes());
    }
    return absl::OkStatus();
  }
};

// One reorder (channels-last input to row-major output, or the reverse), or two through a
// row-major copy in the workspace when both sides are channels-last under different shapes.
class ReorderKernel final : public Kernel {
 public:
  ReorderKernel(CpuContext& context, PreparedReorder first, std::optional<PreparedReorder> second,
                size_t staging_bytes)
      : context_(context),
        first_(std::move(first)),
        second_(std::move(second)),
        staging_bytes_(staging_bytes) {}

  size_t workspace_bytes() const override {
    size_t scratchpad = first_.scratchpad_bytes();
    if (second_) scratchpad = std::max(scratchpad, second_->scratchpad_bytes());
    return staging_bytes_ + scratchpad;
  }

  absl::Status Run(std::span<const TensorRef> inputs, std::span<const TensorRef> outputs,
                   void* workspace) override {
    if (inputs[0].data == outputs[0].data) {
      return absl::InternalError(
          "a Reshape that changes the memory order cannot run in place; plan distinct buffers");
    }
    auto* base = static_cast<std::byte*>(workspace);
    std::byte* scratchpad = base == nullptr ? nullptr : base + staging_bytes_;
    return CatchDnnl("Reshape reorder", [&]() -> absl::Status {
      if (second_) {
        first_.Execute(context_.stream(), inputs[0].data, base, scratchpad);
        second_->Execute(context_.stream(), base, outputs[0].data, scratchpad);
        context_.CountReorder();
      } else {
        first_.Execute(context_.stream(), inputs[0].data, outputs[0].data, scratchpad);
      }
      context_.CountReorder();
      context_.stream().wait();
      return absl::OkStatus();
    });
  }

 private:
  CpuContext& context_;
  PreparedReorder first_;
  std::optional<PreparedReorder> second_;
  size_t staging_bytes_;
};

absl::StatusOr<std::unique_ptr<Kernel>> MakeReshape(const KernelSpec& spec) {
  const graph::TensorType& in = spec.inputs[0];
  const graph::TensorType& out = spec.outputs[0];
  if (in.dtype != graph::DType::kFloat32) {
    return absl::UnimplementedError(absl::StrCat(spec.node.op, " on the CPU supports float32, got ",
                                                 graph::DTypeName(in.dtype)));
  }
  const bool reorder_in = DiffersFromRowMajor(in.shape, spec.input_layouts[0]);
  const bool reorder_out = DiffersFromRowMajor(out.shape, spec.output_layouts[0]);
  if ((!reorder_in && !reorder_out) || (reorder_in && reorder_out && in.shape == out.shape)) {
    return std::unique_ptr<Kernel>(new CopyKernel());
  }
  auto& context = static_cast<CpuContext&>(spec.device);
  const dnnl::engine& engine = context.engine();
  // Each reorder keeps one shape on both sides; the row-major views of input and output are the
  // same bytes, so either shape can describe the row-major side.
  absl::StatusOr<memory::desc> in_stored = DnnlDesc(in, spec.input_layouts[0]);
  absl::StatusOr<memory::desc> in_row_major = DnnlDesc(in, Layout::kRowMajor);
  absl::StatusOr<memory::desc> out_row_major = DnnlDesc(out, Layout::kRowMajor);
  absl::StatusOr<memory::desc> out_stored = DnnlDesc(out, spec.output_layouts[0]);
  for (const auto* desc : {&in_stored, &in_row_major, &out_row_major, &out_stored}) {
    if (!desc->ok()) return desc->status();
  }
  if (reorder_in && reorder_out) {
    absl::StatusOr<PreparedReorder> to_row_major =
        PreparedReorder::Create(*in_stored, *in_row_major, engine);
    if (!to_row_major.ok()) return to_row_major.status();
    absl::StatusOr<PreparedReorder> to_channels_last =
        PreparedReorder::Create(*out_row_major, *out_stored, engine);
    if (!to_channels_last.ok()) return to_channels_last.status();
    return std::unique_ptr<Kernel>(new ReorderKernel(
        context, *std::move(to_row_major), *std::move(to_channels_last), AlignUp(Bytes(in))));
  }
  absl::StatusOr<PreparedReorder> reorder =
      reorder_in ? PreparedReorder::Create(*in_stored, *in_row_major, engine)
                 : PreparedReorder::Create(*out_row_major, *out_stored, engine);
  if (!reorder.ok()) return reorder.status();
  return std::unique_ptr<Kernel>(new ReorderKernel(context, *std::move(reorder), std::nullopt, 0));
}

}  // namespace

absl::Status RegisterReshapeCpu(KernelRegistry& registry) {
  for (const char* op : {"Reshape", "Flatten"}) {
    if (absl::Status s =
            registry.Register(op, DeviceType::kCpu, graph::DType::kFloat32, MakeReshape);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace gradflow::ops::cpu
