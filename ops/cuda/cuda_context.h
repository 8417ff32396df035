// The CUDA device as kernels see it: one GPU, its in-order compute stream (every kernel of the
// device is issued there), the cuDNN and cuBLAS handles bound to that stream, the caching device
// allocator, the per-shape cuDNN algorithm choices, and a word through which kernels report bad
// data (a label out of range) without the host waiting for them.
//
// TF32: on by default, as in PyTorch for convolutions. Off gives IEEE fp32 arithmetic in cuDNN
// (CUDNN_FMA_MATH) and cuBLAS (CUBLAS_DEFAULT_MATH); the choice is fixed at creation because
// kernels bake it into their prepared descriptors.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ops/cuda/cuda_allocator.h"
#include "ops/cuda/cuda_stream.h"
#include "ops/kernel.h"

namespace gradflow::ops::cuda {

struct CudaContextOptions {
  int device = 0;
  bool tf32 = true;
  // The most scratch memory one convolution may ask for; faster algorithms needing more are
  // skipped when the algorithm is chosen.
  size_t max_conv_workspace_bytes = size_t{1} << 30;
};

// One cuDNN algorithm choice for a convolution direction and shape.
struct ConvAlgorithm {
  int algorithm = 0;  // cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t workspace_bytes = 0;
};

class CudaContext final : public DeviceContext {
 public:
  // FailedPrecondition (from RequireCudaDevice) without a usable GPU; InvalidArgument for a
  // device index the machine does not have.
  static absl::StatusOr<std::unique_ptr<CudaContext>> Create(CudaContextOptions options = {});
  ~CudaContext() override;
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;

  DeviceType type() const override { return DeviceType::kCuda; }
  int device() const { return options_.device; }
  bool tf32() const { return options_.tf32; }
  const CudaContextOptions& options() const { return options_; }

  // The compute stream: kernels launch on stream(); the executor enqueues through
  // compute_stream() (the same CUDA stream).
  cudaStream_t stream() const { return compute_stream_->handle(); }
  CudaStream& compute_stream() { return *compute_stream_; }
  cudnnHandle_t cudnn() const { return cudnn_; }
  cublasHandle_t cublas() const { return cublas_; }
  CudaAllocator& allocator() { return *allocator_; }
  const cudaDeviceProp& properties() const { return properties_; }

  // The cached choice for `key` (direction and every shape parameter), or `choose()`'s result,
  // which is remembered. Kernels of equal shape share one search.
  template <typename Choose>
  absl::StatusOr<ConvAlgorithm> ConvAlgorithmFor(const std::string& key, Choose choose) {
    {
      std::lock_guard<std::mutex> lock(conv_mutex_);
      if (auto it = conv_algorithms_.find(key); it != conv_algorithms_.end()) return it->second;
    }
    absl::StatusOr<ConvAlgorithm> chosen = choose();
    if (!chosen.ok()) return chosen.status();
    std::lock_guard<std::mutex> lock(conv_mutex_);
    conv_algorithms_.emplace(key, *chosen);
    return *chosen;
  }
  size_t conv_algorithm_searches() const {
    std::lock_guard<std::mutex> lock(conv_mutex_);
    return conv_algorithms_.size();
  }

  // Device-side error reporting. A kernel that meets bad data writes its source id (from
  // RegisterErrorSource, never 0) and a detail (e.g. the sample index) into device_error_word();
  // the host reads it with TakeDeviceError() after synchronizing (it already waits where it needs
  // a result, such as the loss). The first report wins.
  int RegisterErrorSource(std::string what);
  int* device_error_word() const { return error_word_; }
  // OK when no kernel reported since the last call; otherwise InvalidArgument with the source's
  // text and the detail, and the word is cleared. Call only after a synchronize.
  absl::Status TakeDeviceError();

 private:
  explicit CudaContext(CudaContextOptions options) : options_(options) {}
  absl::Status Init();

  CudaContextOptions options_;
  cudaDeviceProp properties_{};
  std::unique_ptr<CudaStream> compute_stream_;
  cudnnHandle_t cudnn_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  std::unique_ptr<CudaAllocator> allocator_;

  mutable std::mutex conv_mutex_;
  absl::flat_hash_map<std::string, ConvAlgorithm> conv_algorithms_;

  std::mutex error_mutex_;
  std::vector<std::string> error_sources_;  // id i + 1
  int* error_word_ = nullptr;  // two ints in mapped pinned host memory: source id, detail
};

}  // namespace gradflow::ops::cuda
