#include "ops/cuda/cuda_allocator.h"

#include <cuda_runtime_api.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "ops/cuda/cuda_check.h"

namespace gradflow::ops::cuda {
namespace {

constexpr size_t kLargeRequest = size_t{1} << 20;
constexpr size_t kLargeGranule = size_t{2} << 20;

size_t RoundUp(size_t bytes, size_t granule) { return (bytes + granule - 1) / granule * granule; }

}  // namespace

size_t CudaAllocator::RoundSize(size_t bytes) {
  bytes = std::max<size_t>(bytes, 1);
  return bytes < kLargeRequest ? RoundUp(bytes, kAlignment) : RoundUp(bytes, kLargeGranule);
}

CudaAllocator::~CudaAllocator() {
  // Destructors cannot report; a failing cudaFree here means the context is already gone.
  cudaSetDevice(device_);
  for (const auto& [size, block] : free_blocks_) cudaFree(block);
  for (const auto& [block, size] : used_blocks_) cudaFree(block);
}

absl::StatusOr<void*> CudaAllocator::Allocate(size_t bytes) {
  const size_t size = RoundSize(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  // Best fit among cached blocks, but never more than twice the need: a huge cached block
  // serving a small request would starve the next large one.
  auto it = free_blocks_.lower_bound(size);
  if (it != free_blocks_.end() && it->first <= 2 * size) {
    void* block = it->second;
    const size_t block_size = it->first;
    free_blocks_.erase(it);
    stats_.bytes_cached -= block_size;
    used_blocks_.emplace(block, block_size);
    stats_.bytes_in_use += block_size;
    stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
    return block;
  }
  GF_CUDA_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(device_), "cudaSetDevice"));
  void* block = nullptr;
  cudaError_t error = cudaMalloc(&block, size);
  if (error == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clears the sticky-free error so that later calls do not see it
    GF_CUDA_RETURN_IF_ERROR(ReleaseCacheLocked());
    error = cudaMalloc(&block, size);
    if (error == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_bytes = 0, total_bytes = 0;
      cudaMemGetInfo(&free_bytes, &total_bytes);
      return absl::ResourceExhaustedError(
          absl::StrCat("CUDA device ", device_, " is out of memory: asked for ", bytes,
                       " bytes while this "
                       "allocator holds ",
                       stats_.bytes_in_use, " bytes in use; the device has ", free_bytes, " of ",
                       total_bytes, " bytes free"));
    }
  }
  GF_CUDA_RETURN_IF_ERROR(CudaStatus(error, "cudaMalloc"));
  ++stats_.device_mallocs;
  used_blocks_.emplace(block, size);
  stats_.bytes_in_use += size;
  stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
  return block;
}

absl::Status CudaAllocator::Free(void* data) {
  if (data == nullptr) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = used_blocks_.find(data);
  if (it == used_blocks_.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CudaAllocator::Free: ", reinterpret_cast<uintptr_t>(data),
        " was not allocated by this allocator (device ", device_, ") or was freed already"));
  }
  const size_t size = it->second;
  used_blocks_.erase(it);
  stats_.bytes_in_use -= size;
  free_blocks_.emplace(size, data);
  stats_.bytes_cached += size;
  return absl::OkStatus();
}

absl::Status CudaAllocator::ReleaseCache() {
  std::lock_guard<std::mutex> lock(mutex_);
  return ReleaseCacheLocked();
}

absl::Status CudaAllocator::ReleaseCacheLocked() {
  GF_CUDA_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(device_), "cudaSetDevice"));
  absl::Status status;
  for (const auto& [size, block] : free_blocks_) {
    status.Update(CudaStatus(cudaFree(block), "cudaFree"));
  }
  free_blocks_.clear();
  stats_.bytes_cached = 0;
  return status;
}

CudaAllocatorStats CudaAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace gradflow::ops::cuda
