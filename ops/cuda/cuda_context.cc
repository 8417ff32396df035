#include "ops/cuda/cuda_context.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/device.h"

namespace gradflow::ops::cuda {

absl::StatusOr<std::unique_ptr<CudaContext>> CudaContext::Create(CudaContextOptions options) {
  GF_CUDA_RETURN_IF_ERROR(RequireCudaDevice());
  absl::StatusOr<int> count = CudaDeviceCount();
  if (!count.ok()) return count.status();
  if (options.device < 0 || options.device >= *count) {
    return absl::InvalidArgumentError(absl::StrCat("CUDA device ", options.device,
                                                   " does not exist: this machine has ", *count,
                                                   " (valid: 0..", *count - 1, ")"));
  }
  std::unique_ptr<CudaContext> context(new CudaContext(options));
  if (absl::Status s = context->Init(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("creating the CUDA context on device ",
                                               options.device, ": ", s.message()));
  }
  return context;
}

absl::Status CudaContext::Init() {
  GF_CUDA_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(options_.device), "cudaSetDevice"));
  GF_CUDA_RETURN_IF_ERROR(CudaStatus(cudaGetDeviceProperties(&properties_, options_.device),
                                     "cudaGetDeviceProperties"));
  absl::StatusOr<std::unique_ptr<CudaStream>> created =
      CudaStream::Create({.device = options_.device, .callback_thread_name = "gf-cuda-compute"});
  if (!created.ok()) return created.status();
  compute_stream_ = *std::move(created);
  allocator_ = std::make_unique<CudaAllocator>(options_.device);

  GF_CUDA_RETURN_IF_ERROR(CudnnStatus(cudnnCreate(&cudnn_), "cudnnCreate"));
  GF_CUDA_RETURN_IF_ERROR(CudnnStatus(cudnnSetStream(cudnn_, stream()), "cudnnSetStream"));
  GF_CUDA_RETURN_IF_ERROR(CublasStatus(cublasCreate(&cublas_), "cublasCreate"));
  GF_CUDA_RETURN_IF_ERROR(CublasStatus(cublasSetStream(cublas_, stream()), "cublasSetStream"));
  // CUBLAS_DEFAULT_MATH keeps fp32 GEMMs in IEEE fp32; TF32 tensor cores only when asked.
  GF_CUDA_RETURN_IF_ERROR(CublasStatus(
      cublasSetMathMode(cublas_, options_.tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
      "cublasSetMathMode"));

  void* word = nullptr;
  GF_CUDA_RETURN_IF_ERROR(CudaStatus(cudaHostAlloc(&word, 2 * sizeof(int), cudaHostAllocMapped),
                                     "cudaHostAlloc (device error word)"));
  error_word_ = static_cast<int*>(word);
  error_word_[0] = 0;
  error_word_[1] = 0;
  return absl::OkStatus();
}

CudaContext::~CudaContext() {
  // The stream first: its destructor waits for queued work that may use the handles below.
  compute_stream_.reset();
  if (cublas_ != nullptr) cublasDestroy(cublas_);
  if (cudnn_ != nullptr) cudnnDestroy(cudnn_);
  allocator_.reset();
  if (error_word_ != nullptr) cudaFreeHost(error_word_);
}

int CudaContext::RegisterErrorSource(std::string what) {
  std::lock_guard<std::mutex> lock(error_mutex_);
  error_sources_.push_back(std::move(what));
  return static_cast<int>(error_sources_.size());
}

absl::Status CudaContext::TakeDeviceError() {
  // volatile: the device writes this host memory behind the compiler's back.
  volatile int* word = error_word_;
  const int source = word[0];
  if (source == 0) return absl::OkStatus();
  const int detail = word[1];
  word[0] = 0;
  word[1] = 0;
  std::lock_guard<std::mutex> lock(error_mutex_);
  if (source < 1 || source > static_cast<int>(error_sources_.size())) {
    return absl::InternalError(absl::StrCat("a CUDA kernel reported unknown error source ", source,
                                            " (detail ", detail, ")"));
  }
  return absl::InvalidArgumentError(absl::StrCat(error_sources_[source - 1], detail));
}

}  // namespace gradflow::ops::cuda
