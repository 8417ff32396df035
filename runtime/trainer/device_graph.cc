#include "runtime/trainer/device_graph.h"

#include "absl/strings/str_cat.h"
#include "graph/shape_inference.h"
#include "ops/kernels.h"
#include "ops/registry.h"
#include "scheduler/plan_tasks.h"

namespace gradflow::runtime {

absl::StatusOr<std::unique_ptr<DeviceGraph>> DeviceGraph::Create(const graph::Graph& graph,
                                                                 const DeviceGraphOptions& options,
                                                                 TrainDevice& device) {
  if (options.batch < 1) {
    return absl::InvalidArgumentError(absl::StrCat("batch must be at least 1, got ", options.batch));
  }
  std::unique_ptr<DeviceGraph> g(new DeviceGraph);
  g->device_ = &device;
  g->bound_ = graph::BindBatchSize(graph, options.batch);
  sched::PlanOptions plan_options{.device = device.type(),
                                  .channels_last = options.channels_last};
  absl::StatusOr<sched::Plan> plan = sched::PlanLayouts(g->bound_, plan_options);
  if (!plan.ok()) return plan.status();
  g->plan_ = *std::move(plan);
  absl::StatusOr<sched::PreparedKernels> kernels = sched::PrepareKernels(
      g->bound_, g->plan_, ops::StandardOps(), ops::StandardKernels(), device.context());
  if (!kernels.ok()) return kernels.status();
  g->kernels_ = *std::move(kernels);
  if (absl::Status s = sched::PlanMemory(g->bound_, g->kernels_.workspace_bytes, g->plan_);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::unique_ptr<sched::Buffers>> buffers =
      sched::Buffers::Allocate(g->plan_.sizes, {.poison_arena = options.poison_arena, .memory = &device.memory()});
  if (!buffers.ok()) return buffers.status();
  g->buffers_ = *std::move(buffers);
  absl::StatusOr<sched::TaskGraph> tasks =
      sched::BuildTaskGraph(g->bound_, g->plan_, g->kernels_.kernels, *g->buffers_);
  if (!tasks.ok()) return tasks.status();
  g->tasks_ = std::make_unique<sched::TaskGraph>(*std::move(tasks));
  return g;
}

int32_t DeviceGraph::AddWork(std::string name, int32_t stream, sched::NodeWork work,
                             std::span<const int32_t> after, std::span<const int32_t> before) {
  const int32_t id = tasks_->AddNode(std::move(name), stream, std::move(work));
  for (int32_t from : after) tasks_->AddEdge(from, id);
  for (int32_t to : before) tasks_->AddEdge(id, to);
  return id;
}

absl::Status DeviceGraph::RunOnComputeStream(std::function<absl::Status()> work) {
  absl::Status status;
  sched::Stream& stream = device_->compute_stream();
  stream.Enqueue([&status, &work]() mutable { status = work(); });
  if (absl::Status s = stream.Synchronize(); !s.ok()) return s;
  return status;
}

absl::Status DeviceGraph::Start() {
  absl::StatusOr<std::unique_ptr<sched::Executor>> executor =
      sched::Executor::Create(std::move(*tasks_), {&device_->compute_stream()});
  if (!executor.ok()) return executor.status();
  executor_ = *std::move(executor);
  return absl::OkStatus();
}

absl::Status DeviceGraph::Run() {
  if (executor_ == nullptr) return absl::FailedPreconditionError("DeviceGraph::Run before Start");
  return executor_->Run();
}

absl::StatusOr<ops::TensorRef> DeviceGraph::Tensor(const std::string& name) const {
  const int32_t id = bound_.FindTensor(name);
  if (id == graph::kNoTensor) {
    return absl::NotFoundError(absl::StrCat("graph '", bound_.name, "' has no tensor '", name, "'"));
  }
  if (plan_.tensors[id].buffer == sched::BufferKind::kNone) {
    return absl::NotFoundError(absl::StrCat("tensor '", name, "' is not used by any node"));
  }
  return sched::TensorRefOf(bound_, plan_, *buffers_, id);
}

std::span<float> DeviceGraph::Floats(sched::BufferKind kind) const {
  return {reinterpret_cast<float*>(buffers_->base(kind)),
          static_cast<size_t>(buffers_->size(kind)) / sizeof(float)};
}

}  // namespace gradflow::runtime

namespace gradflow::runtime {

absl::StatusOr<std::vector<float>> DeviceGraph::Download(sched::BufferKind kind) const {
  const std::span<float> floats = Floats(kind);
  std::vector<float> host(floats.size());
  if (absl::Status s = device_->Download(host.data(), floats.data(), floats.size_bytes()); !s.ok()) {
    return s;
  }
  return host;
}

absl::Status DeviceGraph::Upload(sched::BufferKind kind, std::span<const float> values) {
  const std::span<float> floats = Floats(kind);
  if (values.size() != floats.size()) {
    return absl::InvalidArgumentError(absl::StrCat("the ", sched::BufferKindName(kind), " buffer holds ",
                                                   floats.size(), " floats, not ", values.size()));
  }
  return device_->Upload(floats.data(), values.data(), values.size_bytes());
}

absl::Status DeviceGraph::Download(const ops::TensorRef& tensor, std::span<float> values) const {
  if (values.size_bytes() != tensor.bytes()) {
    return absl::InvalidArgumentError(absl::StrCat("a tensor of ", tensor.bytes(), " bytes read into ",
                                                   values.size_bytes()));
  }
  return device_->Download(values.data(), tensor.data, values.size_bytes());
}

absl::Status DeviceGraph::Upload(const ops::TensorRef& tensor, std::span<const float> values) {
  if (values.size_bytes() != tensor.bytes()) {
    return absl::InvalidArgumentError(absl::StrCat("a tensor of ", tensor.bytes(),
                                                   " bytes written from ", values.size_bytes()));
  }
  return device_->Upload(tensor.data, values.data(), values.size_bytes());
}

}  // namespace gradflow::runtime
