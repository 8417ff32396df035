// Gradient buckets: how one replica's gradients are grouped for allreduce, fixed at plan time.
//
// Goyal et al. (sec. 4) and DDP alike reduce gradients in buckets, in the order backward produces
// them, so the first buckets are reduced while backward is still computing the rest. Because the
// plan lays parameters and gradients out at identical offsets in param_grads (= backward) order,
// a bucket is one contiguous range of the flat gradient buffer: the gradients are written
// straight into it and the allreduce and the SGD update work on that range with no copy.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/ir.h"
#include "scheduler/plan.h"

namespace gradflow::sched {

struct Bucket {
  // Elements [begin, end) of the flat parameter and gradient buffers (alignment padding between
  // parameters included: it is zero in both and harmless to reduce).
  int64_t begin = 0;
  int64_t end = 0;
  std::vector<int32_t> param_grads;  // indices into graph.param_grads, in backward order
  // The step whose completion makes every gradient of the bucket final: its allreduce may start.
  int32_t ready_step = 0;
  // The first step that reads one of the bucket's parameters (a forward step): the next
  // iteration's update of this bucket must have finished before it runs.
  int32_t first_reader_step = 0;

  int64_t bytes(int64_t element_size) const { return (end - begin) * element_size; }
};

// Groups the plan's parameters into buckets in backward order: a bucket takes whole parameters
// while it stays within `cap_bytes` (a parameter larger than the cap gets a bucket of its own).
//
// `first_layers_cap_bytes` > 0 gives the first layers' parameters (the last ones backward
// produces) a final bucket of their own of at most that size (at least one parameter). That
// bucket's allreduce starts only when backward has ended, and its update is the first the next
// forward needs, so nothing can hide it: keeping it small keeps the exposed communication small,
// while the bucket before it is reduced during the next forward's first layers. It is never
// larger than `cap_bytes`.
//
// cap_bytes <= 0 is InvalidArgument. The plan must come from PlanLayouts on `graph`.
absl::StatusOr<std::vector<Bucket>> PlanBuckets(const graph::Graph& graph, const Plan& plan,
                                                int64_t cap_bytes,
                                                int64_t first_layers_cap_bytes = 0);

// Checks what the trainer relies on: buckets cover every parameter exactly once, in backward
// order, as disjoint increasing ranges; each ready step writes one of the bucket's gradients and
// no gradient is written later; the first reader reads one of its parameters, no earlier step
// does, and it runs before the ready step. InternalError says what is wrong.
absl::Status CheckBuckets(const graph::Graph& graph, const Plan& plan,
                          const std::vector<Bucket>& buckets);

}  // namespace gradflow::sched
