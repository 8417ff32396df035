// The plan: how one device runs a batch-bound training graph, as plain data. Pure (no threads,
// no memory allocated for tensors), so every decision here is unit-testable.
//
// Planning is split in two because kernel workspace sizes depend on the layouts chosen here and
// are only known once the kernels are prepared:
//   Plan plan = PlanLayouts(graph, options)       order, dependencies, streams, layouts, and the
//                                                 fixed buffers (parameters, gradients, state,
//                                                 inputs)
//   ... prepare each step's kernel with plan.layouts (scheduler/prepare_kernels.h) ...
//   PlanMemory(graph, workspace_bytes, plan)      arena offsets of temporaries and workspaces
// BuildPlan does both with a callback that returns the workspace bytes of each step.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "graph/ir.h"
#include "ops/kernel.h"
#include "ops/sgd.h"
#include "scheduler/memory_plan.h"

namespace gradflow::sched {

// Every kernel runs on the device's one in-order compute stream for now; other streams (copies,
// collectives) get other ids.
inline constexpr int32_t kComputeStream = 0;

// Where a tensor's bytes live. Each kind is one flat allocation per device (see Buffers).
enum class BufferKind : int8_t {
  kNone = 0,    // never read or written by any node: not allocated
  kParameters,  // trained weights, in graph.param_grads order
  kGradients,   // parameter gradients, at the same offsets as their parameters
  kState,       // persistent, not trained: batch-norm running statistics, constants
  kInputs,      // inputs and labels, written by the data loader before each iteration
  kArena,       // activations, other gradients and kernel workspaces, reused by liveness
};
inline constexpr int kNumBufferKinds = 6;
const char* BufferKindName(BufferKind kind);

struct Placement {
  BufferKind buffer = BufferKind::kNone;
  int64_t offset = 0;  // bytes from the buffer's start, a multiple of PlanOptions::alignment
  int64_t bytes = 0;
};

struct PlanOptions {
  ops::DeviceType device = ops::DeviceType::kCpu;
  // Rank-4 activations and their gradients are stored NHWC: oneDNN's direct convolutions are
  // fastest there, and cuDNN's tensor-core convolutions run NHWC natively (NCHW costs them
  // transposes). Weights, their gradients and inputs stay row-major.
  bool channels_last = true;
  int64_t alignment = 64;  // a cache line, and what AVX-512 loads like
  // Tensors the host reads after an iteration, kept live to the last step (in addition to the
  // loss and the loss node's inputs and outputs, which are always kept).
  std::vector<int32_t> keep_live;
};

// One node as the executor runs it.
struct PlanStep {
  int32_t node = 0;  // index into graph.nodes
  int32_t stream = kComputeStream;
  int32_t predecessors = 0;  // size of the set of steps that must finish first
  // Steps that wait for this one: readers of its outputs, and the next step on the same stream
  // (so the stream runs steps exactly in plan order, which the arena's liveness relies on).
  // Ascending, no duplicates.
  std::vector<int32_t> successors;
};

struct BufferSizes {
  int64_t parameters = 0;
  int64_t gradients = 0;
  int64_t state = 0;
  int64_t inputs = 0;
  int64_t arena = 0;
  int64_t of(BufferKind kind) const;
};

// A block of the arena and what it holds: a tensor, or the workspace of one step.
struct ArenaBlock {
  LiveRange range;
  int32_t tensor = -1;          // or -1
  int32_t workspace_step = -1;  // or -1
};

struct Plan {
  PlanOptions options;
  std::vector<PlanStep> steps;         // in execution order
  std::vector<int32_t> step_of_node;   // inverse of steps[i].node
  std::vector<int32_t> producer_step;  // per tensor: the step that writes it, or -1
  std::vector<ops::Layout> layouts;    // per tensor
  std::vector<Placement> tensors;      // per tensor; arena ones are set by PlanMemory
  std::vector<Placement> workspaces;   // per step; set by PlanMemory
  // The SGD segments of the parameter buffer (elements, not bytes), one per parameter that has a
  // gradient, in param_grads order; they apply to the gradient buffer too.
  std::vector<ops::SgdSegment> sgd_segments;
  graph::DType parameter_dtype = graph::DType::kFloat32;
  BufferSizes sizes;

  // Set by PlanMemory.
  bool memory_planned = false;
  std::vector<ArenaBlock> arena_blocks;
  int64_t peak_live_bytes = 0;     // lower bound for any arena (sched::PeakLiveBytes)
  int64_t arena_sum_of_bytes = 0;  // what the arena would need without reuse
};

// Step 1. The graph must be batch-bound (graph::BindBatchSize) and verified (graph::VerifyGraph):
// this checks only what it relies on (indices in range, bound shapes, parameters of one dtype)
// and names the node or tensor at fault.
absl::StatusOr<Plan> PlanLayouts(const graph::Graph& graph, const PlanOptions& options = {});

// Step 2. `workspace_bytes` holds one entry per step (what each prepared kernel reports). Places
// every arena tensor live over [producer step, last reader step] and each workspace over its own
// step, with sched::PlanMemory, and checks the result with CheckPlan.
absl::Status PlanMemory(const graph::Graph& graph, std::span<const int64_t> workspace_bytes,
                        Plan& plan);

// Both steps; `workspace_bytes(plan, step)` gives a step's workspace once layouts are chosen.
using WorkspaceFn = std::function<absl::StatusOr<int64_t>(const Plan& plan, int32_t step)>;
absl::StatusOr<Plan> BuildPlan(const graph::Graph& graph, const PlanOptions& options,
                               const WorkspaceFn& workspace_bytes);

// Re-derives what the plan must satisfy from the graph alone and checks it: steps in a
// topological order with consistent predecessor counts, every tensor a node reads or writes
// placed inside its buffer and aligned, parameters and gradients at identical offsets in
// param_grads order without overlap, and the arena (liveness recomputed here) free of conflicts
// per sched::CheckMemoryPlan. InternalError names what is wrong.
absl::Status CheckPlan(const graph::Graph& graph, const Plan& plan);

// What a plan costs, for logs: each buffer's size, and the arena against its lower bound
// (peak live bytes) and against no reuse at all.
std::string DescribePlan(const Plan& plan);

}  // namespace gradflow::sched
