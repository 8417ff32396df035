// A caching allocator of device memory: cudaMalloc is slow and synchronizes the device, so blocks
// are kept after Free and handed out again. Training allocates the same sizes every iteration,
// so after the first one the loop never reaches cudaMalloc (device_mallocs() stops growing).
//
// Stream order: a block freed while kernels that use it are still queued is handed out again at
// once. That is safe when its next user runs on the same in-order stream (the compute stream,
// where all kernels of a device go); memory shared with another stream must be freed only after
// an event says that stream is done with it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>

#include "absl/status/statusor.h"

namespace gradflow::ops::cuda {

struct CudaAllocatorStats {
  int64_t device_mallocs = 0;  // cudaMalloc calls so far
  size_t bytes_in_use = 0;     // handed out and not yet freed (rounded sizes)
  size_t bytes_cached = 0;     // freed, kept for reuse
  size_t peak_bytes_in_use = 0;
};

class CudaAllocator {
 public:
  // Every block is at least this aligned (cudaMalloc gives 256 bytes).
  static constexpr size_t kAlignment = 256;

  explicit CudaAllocator(int device) : device_(device) {}
  // Returns every block to CUDA. Blocks still in use are released too: the owner of the
  // allocator outlives everything that allocates from it.
  ~CudaAllocator();
  CudaAllocator(const CudaAllocator&) = delete;
  CudaAllocator& operator=(const CudaAllocator&) = delete;

  // A block of at least `bytes` (one for 0) on this allocator's device. When the device is full,
  // the cache is returned to CUDA and the allocation tried again; ResourceExhausted then says how
  // much was asked for and how much this allocator holds.
  absl::StatusOr<void*> Allocate(size_t bytes);
  // InvalidArgument for a pointer this allocator did not hand out (or freed twice).
  absl::Status Free(void* data);
  // Returns the cached (free) blocks to CUDA.
  absl::Status ReleaseCache();

  CudaAllocatorStats stats() const;
  int device() const { return device_; }

  // The size class of a request: small requests round to kAlignment, large ones to 2 MiB so that
  // slightly different sizes share blocks.
  static size_t RoundSize(size_t bytes);

 private:
  absl::Status ReleaseCacheLocked();

  const int device_;
  mutable std::mutex mutex_;
  std::multimap<size_t, void*> free_blocks_;       // size -> block
  std::unordered_map<void*, size_t> used_blocks_;  // block -> size
  CudaAllocatorStats stats_;
};

}  // namespace gradflow::ops::cuda
