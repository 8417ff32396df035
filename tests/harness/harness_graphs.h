// The graphs the harness runs: one node of a case's op over source tensors, and the op inside a
// small training graph whose backward pass autodiff writes.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/ir.h"
#include "tests/harness/op_cases.h"

namespace gradflow::test_support {

// Tensors 0..k-1 are the case's inputs (named and roled as in the case), then the outputs
// "out0", "out1", ...; node 0 is the op.
absl::StatusOr<graph::Graph> OneNodeGraph(const OpCase& op_case);

struct GradientCheckGraph {
  graph::Graph graph;  // forward, loss and the backward pass from graph::AppendBackward
  // For each case input, the source tensor holding its values: the input itself, or for a rank-4
  // activation a parameter of shape [N, rest] that a Reshape turns into it, so that the op sees
  // an activation (channels-last where the layout policy says so) and still gets a gradient.
  std::vector<int32_t> input_sources;
  // For ops other than the loss: output 0, flattened to [N, K], times constant weights [P, K]
  // gives logits for a softmax cross-entropy against labels [N], a random nonlinear projection.
  int32_t projection_weights = graph::kNoTensor;
  int32_t projection_labels = graph::kNoTensor;
};

inline constexpr int64_t kProjectionClasses = 5;

absl::StatusOr<GradientCheckGraph> BuildGradientCheckGraph(const OpCase& op_case);

}  // namespace gradflow::test_support
