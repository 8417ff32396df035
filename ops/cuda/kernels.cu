// gradflow's own CUDA kernels (fp32): the memory-bound ops where a library call would add
// nothing, and the fused ones no library has (softmax cross-entropy, the SGD update). See
// launch.h for what each computes.
#include <cfloat>
#include <cmath>
#include <cstdint>

#include "ops/cuda/launch.h"

namespace gradflow::ops::cuda::launch {
namespace {

constexpr int kThreads = 256;

// Enough blocks to fill the GPU with a grid-stride loop, never more than the work needs.
unsigned BlocksFor(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65535 * 8 ? 65535 * 8 : blocks));
}

#define GF_GRID_STRIDE(i, n)                                                             \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

__global__ void AddKernel(const float* a, const float* b, float* y, int64_t n) {
  GF_GRID_STRIDE(i, n) y[i] = a[i] + b[i];
}

__global__ void ReluKernel(const float* x, float* y, int64_t n) {
  // `x < 0 ? 0 : x` keeps NaN, as the CPU kernel and PyTorch do.
  GF_GRID_STRIDE(i, n) {
    const float v = x[i];
    y[i] = v < 0.0f ? 0.0f : v;
  }
}

__global__ void ReluGradKernel(const float* dy, const float* y, float* dx, int64_t n) {
  GF_GRID_STRIDE(i, n) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

__global__ void BiasAddKernel(float* y, const float* bias, int64_t channels, int64_t inner,
                              int64_t n) {
  GF_GRID_STRIDE(i, n) y[i] += bias[(i / inner) % channels];
}

// One block per channel; the block's threads stride over (outer, inner) and a tree reduction in
// shared memory adds their partial sums in a fixed order.
__global__ void BiasGradKernel(const float* dy, float* db, int64_t outer, int64_t channels,
                               int64_t inner) {
  __shared__ double partial[kThreads];
  const int64_t c = blockIdx.x;
  const int64_t per_channel = outer * inner;
  double sum = 0;
  for (int64_t j = threadIdx.x; j < per_channel; j += blockDim.x) {
    const int64_t o = j / inner, i = j % inner;
    sum += dy[(o * channels + c) * inner + i];
  }
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) db[c] = static_cast<float>(partial[0]);
}

// Logical (NCHW row-major) index of the element stored at memory position p.
__device__ int64_t LogicalIndex(int64_t p, const Dims4& d) {
  if (!d.channels_last) return p;
  const int64_t c = p % d.c;
  int64_t rest = p / d.c;
  const int64_t w = rest % d.w;
  rest /= d.w;
  const int64_t h = rest % d.h;
  const int64_t n = rest / d.h;
  return ((n * d.c + c) * d.h + h) * d.w + w;
}

// Memory position of the element with logical index l.
__device__ int64_t StoredIndex(int64_t l, const Dims4& d) {
  if (!d.channels_last) return l;
  const int64_t w = l % d.w;
  int64_t rest = l / d.w;
  const int64_t h = rest % d.h;
  rest /= d.h;
  const int64_t c = rest % d.c;
  const int64_t n = rest / d.c;
  return ((n * d.h + h) * d.w + w) * d.c + c;
}

__global__ void CopyLogicalKernel(const float* in, Dims4 in_dims, float* out, Dims4 out_dims,
                                  int64_t count) {
  GF_GRID_STRIDE(p, count) out[p] = in[StoredIndex(LogicalIndex(p, out_dims), in_dims)];
}

template <typename Label>
__device__ bool LabelOk(const Label* labels, int64_t row, int64_t classes, int* error_word,
                        int error_source) {
  const int64_t label = static_cast<int64_t>(labels[row]);
  if (label >= 0 && label < classes) return true;
  if (atomicCAS(error_word, 0, error_source) == 0) {
    error_word[1] = static_cast<int>(row);
    __threadfence_system();
  }
  return false;
}

// Block sums in double for one row (deterministic tree order).
__device__ double BlockSum(double value, double* scratch) {
  scratch[threadIdx.x] = value;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) scratch[threadIdx.x] += scratch[threadIdx.x + stride];
    __syncthreads();
  }
  const double total = scratch[0];
  __syncthreads();
  return total;
}

__device__ float BlockMax(float value, float* scratch) {
  scratch[threadIdx.x] = value;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride)
      scratch[threadIdx.x] = fmaxf(scratch[threadIdx.x], scratch[threadIdx.x + stride]);
    __syncthreads();
  }
  const float total = scratch[0];
  __syncthreads();
  return total;
}

// One block per row: loss_n = logsumexp(z) - (1 - s) z_label - (s / C) sum_c z_c, with z shifted
// by the row maximum (the CPU kernel's formula).
template <typename Label>
__global__ void SoftmaxRowsKernel(const float* logits, const Label* labels, float* probs,
                                  double* row_loss, int64_t classes, float smoothing,
                                  int* error_word, int error_source) {
  __shared__ double sums[kThreads];
  __shared__ float maxima[kThreads];
  const int64_t row = blockIdx.x;
  const float* z = logits + row * classes;
  float* p = probs + row * classes;
  float local_max = -INFINITY;
  for (int64_t c = threadIdx.x; c < classes; c += blockDim.x) local_max = fmaxf(local_max, z[c]);
  const float max = BlockMax(local_max, maxima);
  double exp_sum = 0, shifted_sum = 0;
  for (int64_t c = threadIdx.x; c < classes; c += blockDim.x) {
    const float shifted = z[c] - max;
    const float e = expf(shifted);
    p[c] = e;
    exp_sum += e;
    shifted_sum += shifted;
  }
  exp_sum = BlockSum(exp_sum, sums);
  shifted_sum = BlockSum(shifted_sum, sums);
  const float inverse = static_cast<float>(1.0 / exp_sum);
  for (int64_t c = threadIdx.x; c < classes; c += blockDim.x) p[c] *= inverse;
  if (threadIdx.x == 0) {
    if (!LabelOk(labels, row, classes, error_word, error_source)) {
      row_loss[row] = NAN;
      return;
    }
    const double label_shifted = static_cast<double>(z[labels[row]]) - max;
    const double per_class = static_cast<double>(smoothing) / static_cast<double>(classes);
    row_loss[row] = log(exp_sum) - (1.0 - smoothing) * label_shifted - per_class * shifted_sum;
  }
}

__global__ void MeanKernel(const double* values, int64_t n, float* mean) {
  __shared__ double sums[kThreads];
  double sum = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) sum += values[i];
  sum = BlockSum(sum, sums);
  if (threadIdx.x == 0) *mean = static_cast<float>(sum / static_cast<double>(n));
}

template <typename Label>
__global__ void SoftmaxGradKernel(const float* probs, const Label* labels, float* dlogits,
                                  int64_t batch, int64_t classes, float smoothing, int* error_word,
                                  int error_source) {
  const float per_class = static_cast<float>(static_cast<double>(smoothing) / classes);
  const float on_label = 1.0f - smoothing;
  const float inverse_batch = static_cast<float>(1.0 / static_cast<double>(batch));
  GF_GRID_STRIDE(i, batch * classes) {
    const int64_t row = i / classes, c = i % classes;
    const int64_t label = static_cast<int64_t>(labels[row]);
    if (label < 0 || label >= classes) {
      if (c == 0) LabelOk(labels, row, classes, error_word, error_source);
      dlogits[i] = NAN;
      continue;
    }
    // The CPU computes (p - per_class - on_label) at the label: the same two rounding steps.
    dlogits[i] = c == label ? (probs[i] - per_class - on_label) * inverse_batch
                            : (probs[i] - per_class) * inverse_batch;
  }
}

__global__ void GlobalAvgPoolKernel(const float* x, Dims4 d, float* y) {
  const int64_t planes = d.n * d.c;
  const int64_t area = d.h * d.w;
  GF_GRID_STRIDE(plane, planes) {
    const int64_t n = plane / d.c, c = plane % d.c;
    const int64_t base = d.channels_last ? n * area * d.c + c : plane * area;
    const int64_t step = d.channels_last ? d.c : 1;
    double sum = 0;
    for (int64_t i = 0; i < area; ++i) sum += x[base + i * step];
    y[plane] = static_cast<float>(sum / static_cast<double>(area));
  }
}

__global__ void GlobalAvgPoolGradKernel(const float* dy, float* dx, Dims4 d) {
  const int64_t count = d.n * d.c * d.h * d.w;
  const float inverse_area = static_cast<float>(1.0 / static_cast<double>(d.h * d.w));
  GF_GRID_STRIDE(p, count) {
    const int64_t l = LogicalIndex(p, d);
    dx[p] = dy[l / (d.h * d.w)] * inverse_area;
  }
}

__global__ void AvgPoolGradKernel(const float* dy, float* dx, Dims4 d, PoolWindow win) {
  const int64_t count = d.n * d.c * d.h * d.w;
  GF_GRID_STRIDE(p, count) {
    const int64_t l = LogicalIndex(p, d);
    const int64_t x = l % d.w;
    const int64_t y = (l / d.w) % d.h;
    const int64_t nc = l / (d.w * d.h);
    const int64_t n = nc / d.c, c = nc % d.c;
    // Windows oh whose rows [oh*s - pad, oh*s - pad + k) contain y.
    const int64_t ph = y + win.pad_h, pw = x + win.pad_w;
    const int64_t oh_begin = ph < win.kernel_h ? 0 : (ph - win.kernel_h) / win.stride_h + 1;
    const int64_t oh_end = min(ph / win.stride_h + 1, win.out_h);
    const int64_t ow_begin = pw < win.kernel_w ? 0 : (pw - win.kernel_w) / win.stride_w + 1;
    const int64_t ow_end = min(pw / win.stride_w + 1, win.out_w);
    float sum = 0;
    for (int64_t oh = oh_begin; oh < oh_end; ++oh) {
      const int64_t h0 = oh * win.stride_h - win.pad_h;
      for (int64_t ow = ow_begin; ow < ow_end; ++ow) {
        const int64_t w0 = ow * win.stride_w - win.pad_w;
        int64_t area;
        if (win.count_include_pad) {
          area = win.kernel_h * win.kernel_w;
        } else {
          const int64_t rows = min(h0 + win.kernel_h, d.h) - max(h0, int64_t{0});
          const int64_t cols = min(w0 + win.kernel_w, d.w) - max(w0, int64_t{0});
          area = rows * cols;
        }
        const int64_t at = d.channels_last ? ((n * win.out_h + oh) * win.out_w + ow) * d.c + c
                                           : ((n * d.c + c) * win.out_h + oh) * win.out_w + ow;
        sum += dy[at] / static_cast<float>(area);
      }
    }
    dx[p] = sum;
  }
}

template <bool kNesterov>
__global__ void SgdKernel(float* w, const float* g, float* u, const SgdChunk* chunks,
                          SgdScalars s) {
  const SgdChunk chunk = chunks[blockIdx.x];
  const float decay = __fmul_rn(s.momentum, s.momentum_correction);
  const float weight_decay = chunk.decay != 0 ? s.weight_decay : 0.0f;
  for (int64_t i = chunk.begin + threadIdx.x; i < chunk.end; i += blockDim.x) {
    const float wi = w[i];
    // lr * (scale * g + wd * w), every operation rounded on its own as on the CPU.
    const float step =
        __fmul_rn(s.lr, __fadd_rn(__fmul_rn(s.grad_scale, g[i]), __fmul_rn(weight_decay, wi)));
    const float velocity = __fadd_rn(__fmul_rn(decay, u[i]), step);
    u[i] = velocity;
    if (kNesterov) {
      w[i] = __fsub_rn(wi, __fadd_rn(__fmul_rn(s.momentum, velocity), step));
    } else {
      w[i] = __fsub_rn(wi, velocity);
    }
  }
}

}  // namespace

cudaError_t Add(const float* a, const float* b, float* y, int64_t n, cudaStream_t stream) {
  AddKernel<<<BlocksFor(n), kThreads, 0, stream>>>(a, b, y, n);
  return cudaGetLastError();
}

cudaError_t Relu(const float* x, float* y, int64_t n, cudaStream_t stream) {
  ReluKernel<<<BlocksFor(n), kThreads, 0, stream>>>(x, y, n);
  return cudaGetLastError();
}

cudaError_t ReluGrad(const float* dy, const float* y, float* dx, int64_t n, cudaStream_t stream) {
  ReluGradKernel<<<BlocksFor(n), kThreads, 0, stream>>>(dy, y, dx, n);
  return cudaGetLastError();
}

cudaError_t BiasAdd(float* y, const float* bias, int64_t outer, int64_t channels, int64_t inner,
                    cudaStream_t stream) {
  const int64_t n = outer * channels * inner;
  BiasAddKernel<<<BlocksFor(n), kThreads, 0, stream>>>(y, bias, channels, inner, n);
  return cudaGetLastError();
}

cudaError_t BiasGrad(const float* dy, float* db, int64_t outer, int64_t channels, int64_t inner,
                     cudaStream_t stream) {
  BiasGradKernel<<<static_cast<unsigned>(channels), kThreads, 0, stream>>>(dy, db, outer, channels,
                                                                           inner);
  return cudaGetLastError();
}

cudaError_t CopyLogical(const float* in, Dims4 in_dims, float* out, Dims4 out_dims, int64_t count,
                        cudaStream_t stream) {
  if (!in_dims.channels_last && !out_dims.channels_last) {
    return cudaMemcpyAsync(out, in, static_cast<size_t>(count) * sizeof(float),
                           cudaMemcpyDeviceToDevice, stream);
  }
  CopyLogicalKernel<<<BlocksFor(count), kThreads, 0, stream>>>(in, in_dims, out, out_dims, count);
  return cudaGetLastError();
}

cudaError_t SoftmaxCrossEntropy(const float* logits, const void* labels, bool labels_int64,
                                float* probs, float* loss, double* row_loss, int64_t batch,
                                int64_t classes, float smoothing, int* error_word, int error_source,
                                cudaStream_t stream) {
  const auto rows = static_cast<unsigned>(batch);
  if (labels_int64) {
    SoftmaxRowsKernel<<<rows, kThreads, 0, stream>>>(logits, static_cast<const int64_t*>(labels),
                                                     probs, row_loss, classes, smoothing,
                                                     error_word, error_source);
  } else {
    SoftmaxRowsKernel<<<rows, kThreads, 0, stream>>>(logits, static_cast<const int32_t*>(labels),
                                                     probs, row_loss, classes, smoothing,
                                                     error_word, error_source);
  }
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  MeanKernel<<<1, kThreads, 0, stream>>>(row_loss, batch, loss);
  return cudaGetLastError();
}

cudaError_t SoftmaxCrossEntropyGrad(const float* probs, const void* labels, bool labels_int64,
                                    float* dlogits, int64_t batch, int64_t classes, float smoothing,
                                    int* error_word, int error_source, cudaStream_t stream) {
  const unsigned blocks = BlocksFor(batch * classes);
  if (labels_int64) {
    SoftmaxGradKernel<<<blocks, kThreads, 0, stream>>>(probs, static_cast<const int64_t*>(labels),
                                                       dlogits, batch, classes, smoothing,
                                                       error_word, error_source);
  } else {
    SoftmaxGradKernel<<<blocks, kThreads, 0, stream>>>(probs, static_cast<const int32_t*>(labels),
                                                       dlogits, batch, classes, smoothing,
                                                       error_word, error_source);
  }
  return cudaGetLastError();
}

cudaError_t GlobalAvgPool(const float* x, Dims4 x_dims, float* y, cudaStream_t stream) {
  GlobalAvgPoolKernel<<<BlocksFor(x_dims.n * x_dims.c), kThreads, 0, stream>>>(x, x_dims, y);
  return cudaGetLastError();
}

cudaError_t GlobalAvgPoolGrad(const float* dy, float* dx, Dims4 dx_dims, cudaStream_t stream) {
  const int64_t count = dx_dims.n * dx_dims.c * dx_dims.h * dx_dims.w;
  GlobalAvgPoolGradKernel<<<BlocksFor(count), kThreads, 0, stream>>>(dy, dx, dx_dims);
  return cudaGetLastError();
}

cudaError_t AvgPoolGrad(const float* dy, float* dx, Dims4 dx_dims, PoolWindow window,
                        cudaStream_t stream) {
  const int64_t count = dx_dims.n * dx_dims.c * dx_dims.h * dx_dims.w;
  AvgPoolGradKernel<<<BlocksFor(count), kThreads, 0, stream>>>(dy, dx, dx_dims, window);
  return cudaGetLastError();
}

cudaError_t SgdUpdate(float* params, const float* grads, float* momentum, const SgdChunk* chunks,
                      int64_t num_chunks, SgdScalars scalars, cudaStream_t stream) {
  if (num_chunks == 0) return cudaSuccess;
  const auto blocks = static_cast<unsigned>(num_chunks);
  if (scalars.nesterov) {
    SgdKernel<true><<<blocks, kThreads, 0, stream>>>(params, grads, momentum, chunks, scalars);
  } else {
    SgdKernel<false><<<blocks, kThreads, 0, stream>>>(params, grads, momentum, chunks, scalars);
  }
  return cudaGetLastError();
}

}  // namespace gradflow::ops::cuda::launch
