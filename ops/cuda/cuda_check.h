// CUDA, cuDNN, cuBLAS and NCCL results as absl::Status: every library call in ops/cuda goes
// through one of these, so an error names the call that failed and the library's own words.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace gradflow::ops::cuda {

inline absl::Status CudaStatus(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return absl::OkStatus();
  // Reported here once: clear the thread's last error so that the next launch check
  // (cudaGetLastError) does not blame itself for it. Sticky errors (a kernel fault) stay.
  cudaGetLastError();
  return absl::InternalError(absl::StrCat(what, " failed: ", cudaGetErrorName(error), " (",
                                          cudaGetErrorString(error), ")"));
}

inline absl::Status CudnnStatus(cudnnStatus_t status, const char* what) {
  if (status == CUDNN_STATUS_SUCCESS) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, " failed: ", cudnnGetErrorString(status)));
}

inline absl::Status CublasStatus(cublasStatus_t status, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, " failed: ", cublasGetStatusName(status), " (",
                                          cublasGetStatusString(status), ")"));
}

}  // namespace gradflow::ops::cuda

#define GF_CUDA_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::absl::Status gf_cuda_status_ = (expr);           \
    if (!gf_cuda_status_.ok()) return gf_cuda_status_; \
  } while (false)
