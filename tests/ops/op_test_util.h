// Helpers for the op schema tests: run a registered op's shape function and cost the way loading
// and planning do, and a recording GradContext for gradient rules.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "graph/ir.h"
#include "graph/op_schema.h"
#include "graph/types.h"

namespace gradflow::ops::testing {

inline graph::TensorType F32(graph::Shape shape) { return {graph::DType::kFloat32, shape}; }
inline graph::TensorType F16(graph::Shape shape) { return {graph::DType::kFloat16, shape}; }
inline graph::TensorType I64(graph::Shape shape) { return {graph::DType::kInt64, shape}; }
inline constexpr int64_t N = graph::kBatch;

// "f32[N,64,112,112], f32[64]" for output types, or the status ("INVALID_ARGUMENT: ...").
std::string Render(const absl::StatusOr<std::vector<graph::TensorType>>& result);

// Matches a Render()ed InvalidArgument whose message contains `substring`.
::testing::Matcher<std::string> IsInvalid(std::string substring);

// The standard schema of `op` at version 1; aborts when there is none (a typo in a test).
const graph::OpSchema& Schema(std::string_view op);

// Output types of a node of `op` with these attributes and input types, as loading computes
// them: attributes validated first, then InferNodeOutputs on a node listing `num_outputs`.
absl::StatusOr<std::vector<graph::TensorType>> Infer(std::string_view op,
                                                     std::vector<graph::TensorType> inputs,
                                                     graph::AttrMap attrs = {},
                                                     int num_outputs = 1);

// Cost of a node of `op` whose input shapes are fully bound; outputs come from Infer.
graph::OpCost Cost(std::string_view op, std::vector<graph::TensorType> inputs,
                   graph::AttrMap attrs = {}, int num_outputs = 1);

// A GradContext over a one-node graph that records what the rule does. Emit runs the emitted
// op's real shape function, so a rule that emits an inconsistent backward node fails.
class RecordingGradContext final : public graph::GradContext {
 public:
  struct Emitted {
    std::string op;
    std::vector<int32_t> inputs;
    graph::AttrMap attrs;
    std::string suffix;
    std::vector<int32_t> outputs;
  };

  // A node of `op` reading tensors of `inputs` (marked parameters when `needs` says so) and
  // writing `outputs` (from Infer). Gradients named "<output>.grad" flow into the outputs listed
  // in `grads_into`; `loss_output` marks an output as the graph's loss (-1: none).
  RecordingGradContext(std::string_view op, std::vector<graph::TensorType> inputs,
                       graph::AttrMap attrs, std::vector<bool> needs, int num_outputs,
                       std::vector<int> grads_into, int loss_output = -1);

  const graph::Node& node() const override { return graph_.nodes[0]; }
  const graph::Attrs& attrs() const override { return attrs_; }
  const graph::Graph& graph() const override { return graph_; }
  int32_t output_grad(int i) const override { return output_grads_.at(i); }
  bool is_loss_output(int i) const override { return output(i) == graph_.loss; }
  bool needs_input_grad(int i) const override { return needs_.at(i); }
  absl::StatusOr<std::vector<int32_t>> Emit(std::string_view op, std::vector<int32_t> inputs,
                                            graph::AttrMap attrs, std::string_view suffix) override;
  void SetInputGrad(int i, int32_t grad) override { input_grads_.at(i) = grad; }

  // Runs the forward op's gradient rule.
  absl::Status RunGradient();
  const std::vector<Emitted>& emitted() const { return emitted_; }
  const std::vector<int32_t>& input_grads() const { return input_grads_; }
  graph::TensorType TypeOf(int32_t tensor) const {
    return {graph_.tensors[tensor].dtype, graph_.tensors[tensor].shape};
  }

 private:
  graph::Graph graph_;  // nodes never change after construction: attrs_ refers to nodes[0]
  const graph::OpSchema& schema_;
  graph::Attrs attrs_;
  std::vector<bool> needs_;
  std::vector<int32_t> output_grads_;
  std::vector<int32_t> input_grads_;
  std::vector<Emitted> emitted_;
};

}  // namespace gradflow::ops::testing
