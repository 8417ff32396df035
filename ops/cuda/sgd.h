// The SGD update of ops/sgd.h on device memory, fused into one launch over a bucket's flat
// buffers (parameters, gradients, momentum). Prepared once per bucket: the segments become a
// table of fixed-size chunks in device memory (one block each), so Run neither allocates nor
// copies anything but the hyperparameters, which travel as kernel arguments.
//
// Every multiply and add is rounded on its own, in the CPU loop's order (ops/cpu/sgd.cc), so the
// GPU and CPU updates agree bit for bit on the same inputs.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ops/cuda/cuda_context.h"
#include "ops/sgd.h"

namespace gradflow::ops::cuda {

class CudaSgdUpdate {
 public:
  // `buffer_elements` is the length of each of the three flat buffers; segments as in ops/sgd.h
  // (increasing offsets, inside the buffer, non-overlapping), else InvalidArgument naming the
  // segment. The chunk table lives in the context's allocator until this object is destroyed.
  static absl::StatusOr<std::unique_ptr<CudaSgdUpdate>> Prepare(
      CudaContext& context, int64_t buffer_elements, std::span<const SgdSegment> segments);
  ~CudaSgdUpdate();
  CudaSgdUpdate(const CudaSgdUpdate&) = delete;
  CudaSgdUpdate& operator=(const CudaSgdUpdate&) = delete;

  // Enqueues the update on `stream` (the context's compute stream when null). The buffers are
  // device memory of buffer_elements floats each. Non-finite hyperparameters give
  // InvalidArgument and enqueue nothing.
  absl::Status Run(float* params, const float* grads, float* momentum, const SgdHyper& hyper,
                   cudaStream_t stream = nullptr);

  int64_t buffer_elements() const { return buffer_elements_; }
  int64_t chunks() const { return num_chunks_; }

 private:
  CudaSgdUpdate(CudaContext& context, int64_t buffer_elements)
      : context_(context), buffer_elements_(buffer_elements) {}

  CudaContext& context_;
  int64_t buffer_elements_;
  void* chunks_ = nullptr;  // launch::SgdChunk[num_chunks_] on the device
  int64_t num_chunks_ = 0;
};

}  // namespace gradflow::ops::cuda
