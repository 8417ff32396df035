#include "graph/types.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace gradflow::graph {

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
    case DType::kInt32:
      return 4;
    case DType::kFloat64:
    case DType::kInt64:
      return 8;
    case DType::kFloat16:
    case DType::kBFloat16:
      return 2;
  }
  return 0;
}

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "f32";
    case DType::kFloat64:
      return "f64";
    case DType::kFloat16:
      return "f16";
    case DType::kBFloat16:
      return "bf16";
    case DType::kInt32:
      return "i32";
    case DType::kInt64:
      return "i64";
  }
  return "?";
}

const char* TensorRoleName(TensorRole role) {
  switch (role) {
    case TensorRole::kInput:
      return "input";
    case TensorRole::kLabel:
      return "label";
    case TensorRole::kParameter:
      return "parameter";
    case TensorRole::kActivation:
      return "activation";
    case TensorRole::kGradient:
      return "gradient";
    case TensorRole::kConstant:
      return "constant";
    case TensorRole::kState:
      return "state";
  }
  return "?";
}

bool IsSourceRole(TensorRole role) {
  return role != TensorRole::kActivation && role != TensorRole::kGradient;
}

const char* InitKindName(InitKind kind) {
  switch (kind) {
    case InitKind::kNone:
      return "none";
    case InitKind::kHeNormal:
      return "he_normal";
    case InitKind::kZeros:
      return "zeros";
    case InitKind::kOnes:
      return "ones";
    case InitKind::kNormal:
      return "normal";
    case InitKind::kConstant:
      return "constant";
    case InitKind::kUniform:
      return "uniform";
  }
  return "?";
}

const char* PhaseName(Phase phase) {
  switch (phase) {
    case Phase::kForward:
      return "forward";
    case Phase::kLoss:
      return "loss";
    case Phase::kBackward:
      return "backward";
  }
  return "?";
}

std::string ShapeToString(const Shape& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ",", [](std::string* out, int64_t dim) {
                        absl::StrAppend(out, dim == kBatch ? std::string("N") : absl::StrCat(dim));
                      }),
                      "]");
}

int64_t NumElements(const Shape& shape, int64_t batch) {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim == kBatch ? batch : dim;
  return count;
}

Shape BindBatch(const Shape& shape, int64_t batch) {
  Shape bound = shape;
  for (int64_t& dim : bound) {
    if (dim == kBatch) dim = batch;
  }
  return bound;
}

}  // namespace gradflow::graph
