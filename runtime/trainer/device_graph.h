// One graph made runnable on one CPU device: bound to a batch size, planned, kernels prepared,
// buffers allocated, and an executor over its steps. The trainer makes one for training and one
// for evaluation.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/ir.h"
#include "ops/cpu/cpu_context.h"
#include "scheduler/buffers.h"
#include "scheduler/cpu_stream.h"
#include "scheduler/executor.h"
#include "scheduler/plan.h"
#include "scheduler/prepare_kernels.h"

namespace gradflow::runtime {

struct DeviceGraphOptions {
  int64_t batch = 1;
  bool channels_last = true;
  bool poison_arena = false;
};

class DeviceGraph {
 public:
  // `graph` is the unbound graph as loaded; `device` must outlive this object and `stream` is
  // its compute stream (the thread of its OpenMP team).
  static absl::StatusOr<std::unique_ptr<DeviceGraph>> Create(const graph::Graph& graph,
                                                             const DeviceGraphOptions& options,
                                                             ops::cpu::CpuContext& device,
                                                             sched::CpuStream& stream);

  // Before Start: more work for every iteration, e.g. the optimizer update on the compute stream
  // after the last step. Returns the task node id.
  int32_t AddWork(std::string name, int32_t stream, sched::NodeWork work,
                  std::span<const int32_t> after, std::span<const int32_t> before = {});
  int32_t last_step_node() const { return static_cast<int32_t>(plan_.steps.size()) - 1; }
  // Creates the executor; the task graph is fixed from here on.
  absl::Status Start();
  // One iteration: every step (and added work) once.
  absl::Status Run();
  // Runs `work` on the compute stream, outside any iteration, and waits for it: host-side work
  // that uses the device's OpenMP team (e.g. applying the last updates) must run there.
  absl::Status RunOnComputeStream(std::function<absl::Status()> work);

  const graph::Graph& graph() const { return bound_; }
  const sched::Plan& plan() const { return plan_; }
  sched::Buffers& buffers() { return *buffers_; }
  sched::Executor& executor() { return *executor_; }
  // A placed tensor by name; NotFound names it.
  absl::StatusOr<ops::TensorRef> Tensor(const std::string& name) const;
  std::span<float> Floats(sched::BufferKind kind) const;

 private:
  DeviceGraph() = default;

  graph::Graph bound_;
  sched::Plan plan_;
  sched::PreparedKernels kernels_;
  std::unique_ptr<sched::Buffers> buffers_;
  std::unique_ptr<sched::TaskGraph> tasks_;
  std::unique_ptr<sched::Executor> executor_;
  sched::CpuStream* stream_ = nullptr;
};

}  // namespace gradflow::runtime
