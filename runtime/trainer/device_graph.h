// One graph made runnable on one device (the CPU or a GPU): bound to a batch size, planned,
// kernels prepared, buffers allocated in the device's memory, and an executor over its steps.
// The trainer makes one for training and one for evaluation.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/ir.h"
#include "runtime/trainer/train_device.h"
#include "scheduler/buffers.h"
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
  // `graph` is the unbound graph as loaded; `device` must outlive this object.
  static absl::StatusOr<std::unique_ptr<DeviceGraph>> Create(const graph::Graph& graph,
                                                             const DeviceGraphOptions& options,
                                                             TrainDevice& device);

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
  // that uses the device's OpenMP team (e.g. applying the last updates) must run there, and a
  // GPU's launches are ordered there.
  absl::Status RunOnComputeStream(std::function<absl::Status()> work);

  const graph::Graph& graph() const { return bound_; }
  const sched::Plan& plan() const { return plan_; }
  sched::Buffers& buffers() { return *buffers_; }
  sched::Executor& executor() { return *executor_; }
  // A placed tensor by name; NotFound names it. Its data is device memory on a GPU.
  absl::StatusOr<ops::TensorRef> Tensor(const std::string& name) const;
  // A whole buffer as floats, in the device's memory (host memory only on the CPU).
  std::span<float> Floats(sched::BufferKind kind) const;
  // Host copies of a buffer or tensor, and back (start state, checkpoints, evaluation).
  absl::StatusOr<std::vector<float>> Download(sched::BufferKind kind) const;
  absl::Status Upload(sched::BufferKind kind, std::span<const float> values);
  absl::Status Download(const ops::TensorRef& tensor, std::span<float> values) const;
  absl::Status Upload(const ops::TensorRef& tensor, std::span<const float> values);
  TrainDevice& device() const { return *device_; }

 private:
  DeviceGraph() = default;

  graph::Graph bound_;
  sched::Plan plan_;
  sched::PreparedKernels kernels_;
  std::unique_ptr<sched::Buffers> buffers_;
  std::unique_ptr<sched::TaskGraph> tasks_;
  std::unique_ptr<sched::Executor> executor_;
  TrainDevice* device_ = nullptr;
};

}  // namespace gradflow::runtime
