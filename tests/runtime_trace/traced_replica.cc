#include "tests/runtime_trace/traced_replica.h"

#include <chrono>
#include <thread>
#include <utility>

#include "models/zoo.h"
#include "ops/registry.h"

namespace gradflow::runtime::trace::testing {

TracedReplica::~TracedReplica() {
  // The sync waits for allreduces in flight; the graph's executor must outlive both observers'
  // last calls, and the tracer every observed object.
  sync_.reset();
  graph_.reset();
}

absl::StatusOr<std::unique_ptr<TracedReplica>> TracedReplica::Create(
    dist::Collectives& collectives, const ReplicaOptions& options) {
  std::unique_ptr<TracedReplica> r(new TracedReplica());
  r->options_ = options;
  absl::StatusOr<graph::Graph> model = models::BuildModel("fmnist-cnn", {}, ops::StandardOps());
  if (!model.ok()) return model.status();
  absl::StatusOr<std::unique_ptr<TrainDevice>> device = CreateCpuTrainDevice(1);
  if (!device.ok()) return device.status();
  r->device_ = *std::move(device);
  absl::StatusOr<std::unique_ptr<DeviceGraph>> graph =
      DeviceGraph::Create(*model, {.batch = options.batch}, *r->device_);
  if (!graph.ok()) return graph.status();
  r->graph_ = *std::move(graph);

  OptimizerConfig config;
  config.grad_scale = 1.0f / static_cast<float>(collectives.size());
  absl::StatusOr<Optimizer> optimizer = Optimizer::Create(
      config, static_cast<int64_t>(r->graph_->Floats(sched::BufferKind::kParameters).size()),
      r->graph_->plan().sgd_segments);
  if (!optimizer.ok()) return optimizer.status();
  r->optimizer_ = std::make_unique<Optimizer>(*std::move(optimizer));
  absl::StatusOr<std::unique_ptr<GradientSync>> sync = GradientSync::Attach(
      *r->graph_, collectives, *r->optimizer_, {.bucket_bytes = options.bucket_bytes});
  if (!sync.ok()) return sync.status();
  r->sync_ = *std::move(sync);
  if (absl::Status s = r->graph_->Start(); !s.ok()) return s;
  r->sync_->ObserveExecutor();

  absl::StatusOr<TaskGraphDescription> description = DescribeTaskGraph(*r->graph_, r->sync_.get());
  if (!description.ok()) return description.status();
  r->tracer_ = std::make_unique<Tracer>(TracerOptions{.rank = options.rank,
                                                      .first_iteration = options.first_iteration,
                                                      .last_iteration = options.last_iteration,
                                                      .lanes = collectives.lanes(),
                                                      .device_times = options.device_times},
                                        *std::move(description));
  r->graph_->executor().AddObserver(r->tracer_.get());
  collectives.AddObserver(r->tracer_.get());
  r->sync_->AddBucketObserver(r->tracer_.get());
  return r;
}

absl::Status TracedReplica::Train(int count) {
  using Clock = std::chrono::steady_clock;
  const graph::Graph& g = graph_->graph();
  absl::StatusOr<ops::TensorRef> input = graph_->Tensor(g.tensors[g.inputs[0]].name);
  absl::StatusOr<ops::TensorRef> labels = graph_->Tensor(g.tensors[g.labels[0]].name);
  if (!input.ok()) return input.status();
  if (!labels.ok()) return labels.status();
  for (int i = 0; i < count; ++i) {
    const int64_t iteration = graph_->executor().iterations() + 1;
    const Clock::time_point start = Clock::now();
    // The "data loader": a fresh batch, with a short stall every other iteration.
    if (i % 2 == 1) std::this_thread::sleep_for(std::chrono::microseconds(300));
    float* x = input->as<float>();
    for (int64_t k = 0; k < input->num_elements(); ++k) {
      x[k] = static_cast<float>((k * 7 + i * 13 + options_.rank) % 17) / 17.0f;
    }
    int32_t* y = labels->as<int32_t>();
    for (int64_t k = 0; k < labels->num_elements(); ++k) y[k] = static_cast<int32_t>((k + i) % 10);
    const Clock::time_point fed = Clock::now();
    tracer_->OnDataBatch(iteration, start, fed, i % 2 == 1 ? 300e-6 : 0.0);
    if (absl::Status s = optimizer_->BeginStep(0.01); !s.ok()) return s;
    if (absl::Status s = graph_->Run(); !s.ok()) return s;
    const Clock::time_point end = Clock::now();
    tracer_->OnIteration(graph_->executor().iterations(), start, end, options_.batch);
    tracer_->Counter("arena bytes", end, static_cast<double>(graph_->plan().sizes.arena));
  }
  return sync_->Flush();
}

}  // namespace gradflow::runtime::trace::testing
