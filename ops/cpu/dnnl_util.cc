#include "ops/cpu/dnnl_util.h"

#include "absl/strings/str_cat.h"

namespace gradflow::ops::cpu {

using dnnl::memory;

absl::StatusOr<memory::data_type> DnnlDataType(graph::DType dtype) {
  switch (dtype) {
    case graph::DType::kFloat32:
      return memory::data_type::f32;
    case graph::DType::kBFloat16:
      return memory::data_type::bf16;
    case graph::DType::kFloat16:
      return memory::data_type::f16;
    case graph::DType::kInt32:
      return memory::data_type::s32;
    default:
      return absl::UnimplementedError(
          absl::StrCat("oneDNN has no ", graph::DTypeName(dtype), " tensors"));
  }
}

absl::StatusOr<memory::desc> DnnlDesc(const graph::TensorType& type, Layout layout) {
  absl::StatusOr<memory::data_type> dt = DnnlDataType(type.dtype);
  if (!dt.ok()) return dt.status();
  const memory::dims dims(type.shape.begin(), type.shape.end());
  switch (type.shape.size()) {
    case 0:
      return memory::desc({1}, *dt, memory::format_tag::a);
    case 1:
      return memory::desc(dims, *dt, memory::format_tag::a);
    case 2:
      return memory::desc(dims, *dt, memory::format_tag::ab);
    case 3:
      return memory::desc(dims, *dt, memory::format_tag::abc);
    case 4:
      return memory::desc(dims, *dt,
                          layout == Layout::kChannelsLast ? memory::format_tag::nhwc
                                                          : memory::format_tag::nchw);
    default:
      return absl::UnimplementedError(
          absl::StrCat("tensors of rank ", type.shape.size(), " are not supported on the CPU"));
  }
}

memory DnnlMemory(const memory::desc& desc, const dnnl::engine& engine, const TensorRef& ref) {
  return memory(desc, engine, ref.data);
}

}  // namespace gradflow::ops::cpu
