#include "ops/cuda/sgd.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/launch.h"

namespace gradflow::ops::cuda {

absl::StatusOr<std::unique_ptr<CudaSgdUpdate>> CudaSgdUpdate::Prepare(
    CudaContext& context, int64_t buffer_elements, std::span<const SgdSegment> segments) {
  GF_CUDA_RETURN_IF_ERROR(CheckSgdSegments(buffer_elements, segments));
  std::vector<launch::SgdChunk> chunks;
  for (const SgdSegment& segment : segments) {
    for (int64_t begin = segment.offset; begin < segment.offset + segment.count;
         begin += launch::kSgdChunkElements) {
      chunks.push_back(
          {.begin = begin,
           .end = std::min(begin + launch::kSgdChunkElements, segment.offset + segment.count),
           .decay = segment.weight_decay ? 1 : 0});
    }
  }
  std::unique_ptr<CudaSgdUpdate> update(new CudaSgdUpdate(context, buffer_elements));
  update->num_chunks_ = static_cast<int64_t>(chunks.size());
  if (chunks.empty()) return update;
  const size_t bytes = chunks.size() * sizeof(launch::SgdChunk);
  absl::StatusOr<void*> table = context.allocator().Allocate(bytes);
  if (!table.ok()) return table.status();
  update->chunks_ = *table;
  // The calling thread may have last used another GPU (one process drives several).
  GF_CUDA_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(context.device()), "cudaSetDevice"));
  GF_CUDA_RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(update->chunks_, chunks.data(), bytes,
                                                     cudaMemcpyHostToDevice, context.stream()),
                                     "copying the SGD chunk table"));
  // The host vector dies here: wait for the copy (prepare time, not the iteration loop).
  GF_CUDA_RETURN_IF_ERROR(
      CudaStatus(cudaStreamSynchronize(context.stream()), "cudaStreamSynchronize"));
  return update;
}

CudaSgdUpdate::~CudaSgdUpdate() {
  if (chunks_ != nullptr) context_.allocator().Free(chunks_).IgnoreError();
}

absl::Status CudaSgdUpdate::Run(float* params, const float* grads, float* momentum,
                                const SgdHyper& hyper, cudaStream_t stream) {
  GF_CUDA_RETURN_IF_ERROR(CheckSgdHyper(hyper));
  if (num_chunks_ == 0) return absl::OkStatus();
  const launch::SgdScalars scalars{.lr = hyper.lr,
                                   .momentum = hyper.momentum,
                                   .weight_decay = hyper.weight_decay,
                                   .momentum_correction = hyper.momentum_correction,
                                   .grad_scale = hyper.grad_scale,
                                   .nesterov = hyper.nesterov};
  return CudaStatus(
      launch::SgdUpdate(params, grads, momentum, static_cast<const launch::SgdChunk*>(chunks_),
                        num_chunks_, scalars, stream != nullptr ? stream : context_.stream()),
      "SGD update launch");
}

}  // namespace gradflow::ops::cuda
