// What the CUDA kernels share: the checks every factory makes, cuDNN descriptors that free
// themselves, and the mapping from a tensor's shape and layout to cuDNN's and launch.h's views.
#pragma once

#include <cudnn.h>

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "graph/types.h"
#include "ops/cuda/cuda_context.h"
#include "ops/cuda/launch.h"
#include "ops/kernel.h"

namespace gradflow::ops::cuda {

struct TensorDescDeleter {
  void operator()(cudnnTensorStruct* d) const { cudnnDestroyTensorDescriptor(d); }
};
struct FilterDescDeleter {
  void operator()(cudnnFilterStruct* d) const { cudnnDestroyFilterDescriptor(d); }
};
struct ConvDescDeleter {
  void operator()(cudnnConvolutionStruct* d) const { cudnnDestroyConvolutionDescriptor(d); }
};
struct PoolDescDeleter {
  void operator()(cudnnPoolingStruct* d) const { cudnnDestroyPoolingDescriptor(d); }
};
using TensorDesc = std::unique_ptr<cudnnTensorStruct, TensorDescDeleter>;
using FilterDesc = std::unique_ptr<cudnnFilterStruct, FilterDescDeleter>;
using ConvDesc = std::unique_ptr<cudnnConvolutionStruct, ConvDescDeleter>;
using PoolDesc = std::unique_ptr<cudnnPoolingStruct, PoolDescDeleter>;

// The CUDA context a spec was prepared for; InvalidArgument naming the op otherwise.
absl::StatusOr<CudaContext*> CudaContextOf(const KernelSpec& spec);
// Unimplemented naming the op and the dtype unless every input and output is float32
// (`except_input`, when >= 0, is skipped: labels).
absl::Status RequireFloat32(const KernelSpec& spec, int except_input = -1);
// InvalidArgument unless the spec has these operand counts.
absl::Status CheckCounts(const KernelSpec& spec, size_t min_inputs, size_t max_inputs,
                         size_t outputs);

// Whether a tensor in `layout` orders its elements unlike row-major (rank 4, channels-last,
// with more than one channel and more than one pixel).
bool DiffersFromRowMajor(const graph::Shape& shape, Layout layout);

// (n, c, h, w) of a rank 1-4 shape (missing trailing dims are 1) and its storage order.
launch::Dims4 DimsOf(const graph::Shape& shape, Layout layout);

// [outer, channels, inner] (see launch.h) of a [N,C,...] tensor in `layout`.
struct ChannelView {
  int64_t outer, channels, inner;
};
ChannelView ChannelViewOf(const graph::Shape& shape, Layout layout);

// A 4-d float tensor descriptor of a rank 2-4 shape (padded with trailing 1s), NHWC when the
// layout is channels-last at rank 4.
absl::StatusOr<TensorDesc> MakeTensorDesc(const graph::Shape& shape, Layout layout);
// A [O, C/groups, KH, KW] filter descriptor, NCHW (as stored) or NHWC (O,KH,KW,C).
absl::StatusOr<FilterDesc> MakeFilterDesc(const graph::Shape& shape, bool nhwc);

}  // namespace gradflow::ops::cuda
