// The harness's op cases: every forward and backward op of the contract on small shapes chosen to
// reach the corners kernels get wrong (batch 1, odd sizes, stride 2, padding, groups, dilation,
// unequal height/width attributes, label smoothing), with input generators that keep the checks
// meaningful (distinct values for max pooling, values away from ReLU's kink, consistent saved
// statistics for the batch-norm gradient).
#pragma once

#include <functional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "graph/attribute.h"
#include "graph/types.h"
#include "tests/support/reference_ops.h"

namespace gradflow::test_support {

enum class Fill {
  kUniform,       // U[-1, 1]
  kAwayFromZero,  // +-U[0.1, 1]: no element near a kink at 0
  kDistinct,      // a permutation of evenly spaced values in [-1, 1]: no ties, clear gaps
  kPositive,      // U[0.5, 1.5] (variances, scales)
  kOffset,        // 4 + 0.1 * U[-1, 1]: a mean far from 0 next to a small spread
  kLabels,        // whole numbers in [0, classes)
  kDerived,       // computed from the other inputs by the case's derive()
};

struct InputSpec {
  std::string name;
  graph::Shape shape;
  graph::TensorRole role = graph::TensorRole::kInput;
  Fill fill = Fill::kUniform;
  int64_t classes = 0;  // kLabels only
  graph::DType dtype() const {
    return fill == Fill::kLabels ? graph::DType::kInt32 : graph::DType::kFloat32;
  }
};

struct OpCase {
  std::string op;
  std::string name;  // unique within the op; letters, digits and '_'
  graph::AttrMap attrs;
  std::vector<InputSpec> inputs;
  // Overwrites the kDerived inputs from the others (given already rounded to float), drawing any
  // randomness it needs from the generator.
  std::function<void(std::vector<RefTensor>&, std::mt19937_64&)> derive;
  // A forward op whose gradient rule the harness checks (false for backward ops and for
  // inference-mode batch norm, which has no gradient).
  bool differentiable = false;
  int num_outputs = 1;

  std::string FullName() const { return op + "_" + name; }
};

// Every case, built once.
const std::vector<OpCase>& AllOpCases();

// Fresh inputs for a case, every value exactly representable as a float, derived ones last.
std::vector<RefTensor> MakeInputs(const OpCase& op_case, std::mt19937_64& rng);

}  // namespace gradflow::test_support
