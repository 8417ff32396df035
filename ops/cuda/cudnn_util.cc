#include "ops/cuda/cudnn_util.h"

#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "ops/cuda/cuda_check.h"

namespace gradflow::ops::cuda {

absl::StatusOr<CudaContext*> CudaContextOf(const KernelSpec& spec) {
  if (spec.device.type() != DeviceType::kCuda) {
    return absl::InvalidArgumentError(
        absl::StrCat("the CUDA ", spec.node.op, " kernel of node '", spec.node.name,
                     "' was given a ", DeviceTypeName(spec.device.type()), " device context"));
  }
  return static_cast<CudaContext*>(&spec.device);
}

absl::Status RequireFloat32(const KernelSpec& spec, int except_input) {
  for (size_t i = 0; i < spec.inputs.size(); ++i) {
    if (static_cast<int>(i) == except_input) continue;
    if (spec.inputs[i].dtype != graph::DType::kFloat32) {
      return absl::UnimplementedError(absl::StrCat(spec.node.op, " on CUDA supports float32, got ",
                                                   graph::DTypeName(spec.inputs[i].dtype),
                                                   " for input ", i));
    }
  }
  for (size_t i = 0; i < spec.outputs.size(); ++i) {
    if (spec.outputs[i].dtype != graph::DType::kFloat32) {
      return absl::UnimplementedError(absl::StrCat(spec.node.op, " on CUDA supports float32, got ",
                                                   graph::DTypeName(spec.outputs[i].dtype),
                                                   " for output ", i));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckCounts(const KernelSpec& spec, size_t min_inputs, size_t max_inputs,
                         size_t outputs) {
  if (spec.inputs.size() < min_inputs || spec.inputs.size() > max_inputs ||
      spec.outputs.size() != outputs || spec.input_layouts.size() != spec.inputs.size() ||
      spec.output_layouts.size() != spec.outputs.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the CUDA ", spec.node.op, " kernel of node '", spec.node.name, "' takes ", min_inputs,
        "..", max_inputs, " inputs and ", outputs, " outputs (with a layout each), got ",
        spec.inputs.size(), " and ", spec.outputs.size()));
  }
  return absl::OkStatus();
}

bool DiffersFromRowMajor(const graph::Shape& shape, Layout layout) {
  return layout == Layout::kChannelsLast && shape.size() == 4 && shape[1] > 1 &&
         shape[2] * shape[3] > 1;
}

launch::Dims4 DimsOf(const graph::Shape& shape, Layout layout) {
  launch::Dims4 dims;
  int64_t* fields[] = {&dims.n, &dims.c, &dims.h, &dims.w};
  for (size_t i = 0; i < shape.size() && i < 4; ++i) *fields[i] = shape[i];
  dims.channels_last = DiffersFromRowMajor(shape, layout);
  return dims;
}

ChannelView ChannelViewOf(const graph::Shape& shape, Layout layout) {
  int64_t inner = 1;
  for (size_t i = 2; i < shape.size(); ++i) inner *= shape[i];
  if (shape.size() == 4 && layout == Layout::kChannelsLast) {
    return {shape[0] * inner, shape[1], 1};
  }
  return {shape.empty() ? 1 : shape[0], shape.size() > 1 ? shape[1] : 1, inner};
}

absl::StatusOr<TensorDesc> MakeTensorDesc(const graph::Shape& shape, Layout layout) {
  if (shape.size() < 2 || shape.size() > 4) {
    return absl::UnimplementedError(
        absl::StrCat("cuDNN tensors here have rank 2 to 4, got ", graph::ShapeToString(shape)));
  }
  int dims[4] = {1, 1, 1, 1};
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] > std::numeric_limits<int>::max()) {
      return absl::UnimplementedError(
          absl::StrCat("dimension too large for cuDNN in ", graph::ShapeToString(shape)));
    }
    dims[i] = static_cast<int>(shape[i]);
  }
  cudnnTensorDescriptor_t raw = nullptr;
  GF_CUDA_RETURN_IF_ERROR(
      CudnnStatus(cudnnCreateTensorDescriptor(&raw), "cudnnCreateTensorDescriptor"));
  TensorDesc desc(raw);
  const cudnnTensorFormat_t format =
      shape.size() == 4 && layout == Layout::kChannelsLast ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
  GF_CUDA_RETURN_IF_ERROR(CudnnStatus(
      cudnnSetTensor4dDescriptor(raw, format, CUDNN_DATA_FLOAT, dims[0], dims[1], dims[2], dims[3]),
      "cudnnSetTensor4dDescriptor"));
  return desc;
}

absl::StatusOr<FilterDesc> MakeFilterDesc(const graph::Shape& shape, bool nhwc) {
  if (shape.size() != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("a convolution filter has rank 4, got ", graph::ShapeToString(shape)));
  }
  cudnnFilterDescriptor_t raw = nullptr;
  GF_CUDA_RETURN_IF_ERROR(
      CudnnStatus(cudnnCreateFilterDescriptor(&raw), "cudnnCreateFilterDescriptor"));
  FilterDesc desc(raw);
  GF_CUDA_RETURN_IF_ERROR(CudnnStatus(
      cudnnSetFilter4dDescriptor(raw, CUDNN_DATA_FLOAT,
                                 nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW,
                                 static_cast<int>(shape[0]), static_cast<int>(shape[1]),
                                 static_cast<int>(shape[2]), static_cast<int>(shape[3])),
      "cudnnSetFilter4dDescriptor"));
  return desc;
}

}  // namespace gradflow::ops::cuda
