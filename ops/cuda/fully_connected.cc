// FullyConnected and its two backward ops on cuBLAS (fp32 SGEMM; TF32 tensor cores when the
// context allows). Operands are row-major: x [N,K], w [M,K], y [N,M]. cuBLAS is column-major, and
// a row-major [R,C] matrix is the column-major [C,R] one, so each product is written transposed:
// (w as stored is the column-major w^T [K,M], x is x^T [K,N], dy is dy^T [M,N]):
//   y  = x w^T   ->  y^T  (M x N) = w (M x K) x^T (K x N)  : gemm(T, N, M, N, K, w, x)
//   dx = dy w    ->  dx^T (K x N) = w^T (K x M) dy^T (M x N): gemm(N, N, K, N, M, w, dy)
//   dw = dy^T x  ->  dw^T (K x M) = x^T (K x N) dy (N x M)  : gemm(N, T, K, M, N, x, dy)
#include <climits>
#include <memory>

#include "absl/strings/str_cat.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_kernels.h"
#include "ops/cuda/cudnn_util.h"
#include "ops/cuda/launch.h"

namespace gradflow::ops::cuda {
namespace {

enum class Product { kForward, kBackwardData, kBackwardWeights };

class FullyConnectedKernel final : public Kernel {
 public:
  FullyConnectedKernel(CudaContext& ctx, Product product, int n, int m, int k, bool bias)
      : ctx_(ctx), product_(product), n_(n), m_(m), k_(k), bias_(bias) {}

  absl::Status Run(std::span<const TensorRef> in, std::span<const TensorRef> out, void*) override {
    const float one = 1.0f, zero = 0.0f;
    const float* a = in[0].as<const float>();
    const float* b = in[1].as<const float>();
    float* c = out[0].as<float>();
    switch (product_) {
      case Product::kForward:  // a = x [N,K], b = w [M,K], c = y [N,M]
        GF_CUDA_RETURN_IF_ERROR(
            CublasStatus(cublasSgemm(ctx_.cublas(), CUBLAS_OP_T, CUBLAS_OP_N, m_, n_, k_, &one, b,
                                     k_, a, k_, &zero, c, m_),
                         "cublasSgemm (FullyConnected)"));
        if (!bias_) return absl::OkStatus();
        return CudaStatus(launch::BiasAdd(c, in[2].as<const float>(), n_, m_, 1, ctx_.stream()),
                          "FullyConnected bias launch");
      case Product::kBackwardData:  // a = dy [N,M], b = w [M,K], c = dx [N,K]
        return CublasStatus(cublasSgemm(ctx_.cublas(), CUBLAS_OP_N, CUBLAS_OP_N, k_, n_, m_, &one,
                                        b, k_, a, m_, &zero, c, k_),
                            "cublasSgemm (FullyConnectedBackwardData)");
      case Product::kBackwardWeights:  // a = dy [N,M], b = x [N,K], c = dw [M,K]
        return CublasStatus(cublasSgemm(ctx_.cublas(), CUBLAS_OP_N, CUBLAS_OP_T, k_, m_, n_, &one,
                                        b, k_, a, m_, &zero, c, k_),
                            "cublasSgemm (FullyConnectedBackwardWeights)");
    }
    return absl::InternalError("unknown FullyConnected product");
  }

 private:
  CudaContext& ctx_;
  Product product_;
  int n_, m_, k_;
  bool bias_;
};

absl::StatusOr<std::unique_ptr<Kernel>> Prepare(const KernelSpec& spec, Product product) {
  absl::StatusOr<CudaContext*> ctx = CudaContextOf(spec);
  if (!ctx.ok()) return ctx.status();
  GF_CUDA_RETURN_IF_ERROR(CheckCounts(spec, 2, product == Product::kForward ? 3 : 2, 1));
  GF_CUDA_RETURN_IF_ERROR(RequireFloat32(spec));
  for (const graph::TensorType* t : {&spec.inputs[0], &spec.inputs[1], &spec.outputs[0]}) {
    if (t->shape.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat("the CUDA ", spec.node.op, " kernel of node '",
                                                     spec.node.name, "' takes matrices, got ",
                                                     graph::ShapeToString(t->shape)));
    }
    for (int64_t d : t->shape) {
      if (d > INT_MAX) {
        return absl::UnimplementedError(
            absl::StrCat("matrix too large for cuBLAS: ", graph::ShapeToString(t->shape)));
      }
    }
  }
  const graph::Shape& a = spec.inputs[0].shape;
  const graph::Shape& b = spec.inputs[1].shape;
  int64_t n = 0, m = 0, k = 0;
  graph::Shape expected;
  switch (product) {
    case Product::kForward:
      n = a[0], k = a[1], m = b[0];
      expected = {n, m};
      if (b[1] != k) expected = {};
      break;
    case Product::kBackwardData:
      n = a[0], m = a[1], k = b[1];
      expected = {n, k};
      if (b[0] != m) expected = {};
      break;
    case Product::kBackwardWeights:
      n = a[0], m = a[1], k = b[1];
      expected = {m, k};
      if (b[0] != n) expected = {};
      break;
  }
  if (expected != spec.outputs[0].shape) {
    return absl::InvalidArgumentError(absl::StrCat("node '", spec.node.name, "' (", spec.node.op,
                                                   "): inputs ", graph::ShapeToString(a), " and ",
                                                   graph::ShapeToString(b), " do not give output ",
                                                   graph::ShapeToString(spec.outputs[0].shape)));
  }
  const bool bias = spec.inputs.size() > 2;
  if (bias && spec.inputs[2].shape != graph::Shape{m}) {
    return absl::InvalidArgumentError(absl::StrCat("node '", spec.node.name, "': bias ",
                                                   graph::ShapeToString(spec.inputs[2].shape),
                                                   " must be [", m, "]"));
  }
  return std::unique_ptr<Kernel>(new FullyConnectedKernel(
      **ctx, product, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), bias));
}

}  // namespace

absl::Status RegisterFullyConnectedCuda(KernelRegistry& registry) {
  const std::pair<const char*, Product> kernels[] = {
      {"FullyConnected", Product::kForward},
      {"FullyConnectedBackwardData", Product::kBackwardData},
      {"FullyConnectedBackwardWeights", Product::kBackwardWeights}};
  for (const auto& [op, product] : kernels) {
    const Product p = product;
    if (absl::Status s =
            registry.Register(op, DeviceType::kCuda, graph::DType::kFloat32,
                              [p](const KernelSpec& spec) { return Prepare(spec, p); });
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace gradflow::ops::cuda
