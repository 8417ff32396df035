// Element types, shapes and tensor roles of the graph IR.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gradflow::graph {

// Values match graph.fbs so that conversion is a cast.
enum class DType : int8_t { kFloat32 = 0, kFloat64, kFloat16, kBFloat16, kInt32, kInt64 };
inline constexpr int kNumDTypes = 6;

size_t DTypeSize(DType dtype);
const char* DTypeName(DType dtype);

enum class TensorRole : int8_t {
  kInput = 0,
  kLabel,
  kParameter,
  kActivation,
  kGradient,
  kConstant,
  kState,  // persistent but not trained (batch-norm running statistics)
};
inline constexpr int kNumTensorRoles = 7;
const char* TensorRoleName(TensorRole role);

// Roles whose values exist before any node runs: nodes may read them but never write them.
bool IsSourceRole(TensorRole role);

enum class InitKind : int8_t { kNone = 0, kHeNormal, kZeros, kOnes, kNormal, kConstant, kUniform };
inline constexpr int kNumInitKinds = 7;
const char* InitKindName(InitKind kind);

struct Initializer {
  InitKind kind = InitKind::kNone;
  // Standard deviation for kHeNormal/kNormal, fill value for kConstant, bound b of kUniform(-b, b).
  float value = 0;
  bool operator==(const Initializer&) const = default;
};

enum class Phase : int8_t { kForward = 0, kLoss, kBackward };
inline constexpr int kNumPhases = 3;
const char* PhaseName(Phase phase);

// Dimension sizes; kBatch in a dimension means "the batch size, bound at load".
using Shape = std::vector<int64_t>;
inline constexpr int64_t kBatch = -1;

// "[N,64,56,56]"; N stands for the batch dimension.
std::string ShapeToString(const Shape& shape);
// Number of elements with the batch dimension bound to `batch`.
int64_t NumElements(const Shape& shape, int64_t batch = 1);
// Replaces every kBatch dimension by `batch`.
Shape BindBatch(const Shape& shape, int64_t batch);

struct TensorType {
  DType dtype = DType::kFloat32;
  Shape shape;
  bool operator==(const TensorType&) const = default;
};

}  // namespace gradflow::graph
