// Initial values of parameters and state from the graph's initializers.
#pragma once

#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "graph/ir.h"

namespace gradflow::runtime {

// Fills `values` (the tensor's elements, row-major) as its initializer says. The random stream
// depends only on `seed` and the tensor's name, so every replica that uses the same seed starts
// from identical parameters whatever order tensors are visited in. A tensor with stored data
// (graph buffer) takes that data instead.
absl::Status InitializeTensor(const graph::Graph& graph, const graph::Tensor& tensor,
                              uint64_t seed, std::span<float> values);

}  // namespace gradflow::runtime
