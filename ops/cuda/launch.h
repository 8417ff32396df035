// Launchers of gradflow's own CUDA kernels (kernels.cu), callable from host code compiled by g++.
// Each enqueues on `stream` and returns cudaGetLastError() (launch errors only; faults surface at
// the next synchronize). Element counts are int64; every pointer is device memory.
//
// Many kernels view a tensor [N,C,...] as [outer, channels, inner]: row-major gives
// (N, C, product of the rest); a rank-4 channels-last tensor gives (N*H*W, C, 1).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace gradflow::ops::cuda::launch {

// A rank-<=4 tensor's dims padded to four (n, c, h, w) and whether it is stored N,H,W,C.
struct Dims4 {
  int64_t n = 1, c = 1, h = 1, w = 1;
  bool channels_last = false;
};

cudaError_t Add(const float* a, const float* b, float* y, int64_t n, cudaStream_t stream);
cudaError_t Relu(const float* x, float* y, int64_t n, cudaStream_t stream);
cudaError_t ReluGrad(const float* dy, const float* y, float* dx, int64_t n, cudaStream_t stream);

// y[o, c, i] += bias[c], in place.
cudaError_t BiasAdd(float* y, const float* bias, int64_t outer, int64_t channels, int64_t inner,
                    cudaStream_t stream);
// db[c] = sum over o, i of dy[o, c, i], accumulated in double in a fixed order (deterministic).
cudaError_t BiasGrad(const float* dy, float* db, int64_t outer, int64_t channels, int64_t inner,
                     cudaStream_t stream);

// Copies `count` elements keeping their logical (row-major NCHW) order, from `in` stored as
// in_dims says to `out` stored as out_dims says. The two may have different shapes with the same
// element count (a reshape); with equal shapes and different layouts it is a transpose.
cudaError_t CopyLogical(const float* in, Dims4 in_dims, float* out, Dims4 out_dims, int64_t count,
                        cudaStream_t stream);

// Softmax cross-entropy over rows of logits[batch, classes] with labels (int32 or int64) and label
// smoothing; writes probs and loss[0] = mean row loss. `row_loss` is `batch` doubles of scratch.
// A label outside [0, classes) writes error_source and the sample into error_word (first report
// wins) and makes the loss NaN.
cudaError_t SoftmaxCrossEntropy(const float* logits, const void* labels, bool labels_int64,
                                float* probs, float* loss, double* row_loss, int64_t batch,
                                int64_t classes, float smoothing, int* error_word, int error_source,
                                cudaStream_t stream);
// dlogits = (probs - smoothed one-hot) / batch; bad labels are reported as above (row -> NaN).
cudaError_t SoftmaxCrossEntropyGrad(const float* probs, const void* labels, bool labels_int64,
                                    float* dlogits, int64_t batch, int64_t classes, float smoothing,
                                    int* error_word, int error_source, cudaStream_t stream);

// y[n, c] = mean over h, w of x (y is [N,C,1,1], the same memory in both layouts).
cudaError_t GlobalAvgPool(const float* x, Dims4 x_dims, float* y, cudaStream_t stream);
// dx[n, c, h, w] = dy[n, c] / (H * W).
cudaError_t GlobalAvgPoolGrad(const float* dy, float* dx, Dims4 dx_dims, cudaStream_t stream);

struct PoolWindow {
  int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
  int64_t out_h, out_w;
  bool count_include_pad;
};
// Average pooling's gradient, gathered: each dx element sums dy / count over the windows that
// cover it (no atomics, deterministic). dy is [N,C,out_h,out_w] in dx's layout.
cudaError_t AvgPoolGrad(const float* dy, float* dx, Dims4 dx_dims, PoolWindow window,
                        cudaStream_t stream);

// One block's share of an SGD update: elements [begin, end) of the flat buffers, with weight
// decay when `decay` is set.
struct SgdChunk {
  int64_t begin = 0;
  int64_t end = 0;
  int32_t decay = 0;
};
struct SgdScalars {
  float lr, momentum, weight_decay, momentum_correction, grad_scale;
  bool nesterov;
};
// The update of ops/sgd.h over `chunks` (device memory, `num_chunks` entries), with every
// multiply and add rounded separately (no FMA contraction), as the CPU loop computes it.
cudaError_t SgdUpdate(float* params, const float* grads, float* momentum, const SgdChunk* chunks,
                      int64_t num_chunks, SgdScalars scalars, cudaStream_t stream);
// Elements per SgdChunk.
inline constexpr int64_t kSgdChunkElements = 8192;

}  // namespace gradflow::ops::cuda::launch
