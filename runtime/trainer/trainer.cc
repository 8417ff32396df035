#include "runtime/trainer/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <ostream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "graph/serialize.h"
#include "ops/inference_graph.h"
#include "ops/registry.h"
#include "runtime/data/batch_loader.h"
#include "runtime/data/data_spec.h"
#include "runtime/train/checkpoint.h"
#include "runtime/trainer/device_graph.h"
#include "runtime/trainer/initialize.h"
#include "runtime/trainer/local_reduce.h"
#include "runtime/launch/private_dir.h"
#include "runtime/dist/rendezvous.h"
#include "runtime/trainer/train_device.h"
#include "runtime/trace/gather.h"
#include "runtime/trace/task_description.h"
#include "runtime/trace/tracer.h"

#ifdef GRADFLOW_HAVE_CUDA
#include "runtime/dist/nccl_collectives.h"
#include "runtime/trainer/cuda/cuda_bucket_engine.h"
#include "runtime/trainer/cuda/cuda_train_device.h"
#endif

namespace gradflow::runtime {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Where the trainer reads and writes one graph's host-visible tensors (device memory on a GPU),
// and the host copies of the outputs it reads after each run.
struct Io {
  ops::TensorRef input;
  ops::TensorRef labels;
  ops::TensorRef loss;
  ops::TensorRef probs;
  float host_loss = 0;
  std::vector<float> host_probs;
};

absl::StatusOr<Io> FindIo(const DeviceGraph& g) {
  const graph::Graph& graph = g.graph();
  if (graph.inputs.size() != 1 || graph.labels.size() != 1 || graph.loss == graph::kNoTensor) {
    return absl::InvalidArgumentError(absl::StrCat(
        "graph '", graph.name, "' must have one input, one label tensor and a loss (has ",
        graph.inputs.size(), ", ", graph.labels.size(), ", ",
        graph.loss == graph::kNoTensor ? "no loss" : "a loss", ")"));
  }
  const graph::Node* loss_node = nullptr;
  for (const graph::Node& n : graph.nodes) {
    if (std::find(n.outputs.begin(), n.outputs.end(), graph.loss) != n.outputs.end()) loss_node = &n;
  }
  if (loss_node == nullptr || loss_node->op != "SoftmaxCrossEntropy") {
    return absl::InvalidArgumentError(
        absl::StrCat("graph '", graph.name, "': the loss must come from SoftmaxCrossEntropy"));
  }
  Io io;
  auto ref = [&](int32_t t) { return g.Tensor(graph.tensors[t].name); };
  absl::StatusOr<ops::TensorRef> input = ref(graph.inputs[0]);
  absl::StatusOr<ops::TensorRef> labels = ref(graph.labels[0]);
  absl::StatusOr<ops::TensorRef> loss = ref(graph.loss);
  absl::StatusOr<ops::TensorRef> probs = ref(loss_node->outputs[1]);
  for (const auto* r : {&input, &labels, &loss, &probs}) {
    if (!r->ok()) return r->status();
  }
  io.input = *input;
  io.labels = *labels;
  io.loss = *loss;
  io.probs = *probs;
  io.host_probs.resize(static_cast<size_t>(io.probs.num_elements()));
  if (io.input.dtype != graph::DType::kFloat32 || io.input.shape.size() != 4 ||
      io.input.layout != ops::Layout::kRowMajor || io.labels.dtype != graph::DType::kInt32) {
    return absl::InvalidArgumentError(absl::StrCat(
        "graph '", graph.name, "': the input must be f32 NCHW and the labels i32, got ",
        graph::DTypeName(io.input.dtype), graph::ShapeToString(io.input.shape), " and ",
        graph::DTypeName(io.labels.dtype)));
  }
  return io;
}

// Copies a batch into the graph's input tensors; examples past batch.size (the last eval batch)
// are zeros, and the caller ignores their outputs.
absl::Status Feed(const data::Batch& batch, const Io& io, TrainDevice& device) {
  const size_t image_bytes = io.input.bytes() / io.input.shape[0] * batch.size;
  const size_t label_bytes = sizeof(int32_t) * batch.size;
  for (absl::Status s : {device.Upload(io.input.data, batch.images, image_bytes),
                         device.Zero(io.input.as<std::byte>() + image_bytes, io.input.bytes() - image_bytes),
                         device.Upload(io.labels.data, batch.labels, label_bytes),
                         device.Zero(io.labels.as<std::byte>() + label_bytes, io.labels.bytes() - label_bytes)}) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

// After a run: the loss and probabilities to the host, and whatever bad data the device met.
absl::Status ReadOutputs(Io& io, TrainDevice& device) {
  if (absl::Status s = device.Download(&io.host_loss, io.loss.data, sizeof(float)); !s.ok()) return s;
  if (absl::Status s = device.Download(io.host_probs.data(), io.probs.data, io.probs.bytes()); !s.ok()) {
    return s;
  }
  return device.TakeDeviceError();
}

struct Correct {
  int64_t top1 = 0;
  int64_t top5 = 0;
};

Correct CountCorrect(const Io& io, const int32_t* labels, int64_t count) {
  Correct c;
  const int64_t classes = io.probs.shape[1];
  const float* probs = io.host_probs.data();
  for (int64_t i = 0; i < count; ++i) {
    const float* row = probs + i * classes;
    const float truth = row[labels[i]];
    int64_t higher = 0;  // classes ranked strictly above the true one
    for (int64_t k = 0; k < classes; ++k) higher += row[k] > truth;
    c.top1 += higher < 1;
    c.top5 += higher < 5;
  }
  return c;
}

std::string Duration(double seconds) {
  const int64_t s = static_cast<int64_t>(std::max(0.0, seconds));
  return absl::StrFormat("%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
}

absl::StatusOr<std::vector<uint8_t>> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<uint8_t> EncodeLoaderState(const data::LoaderState& s) {
  std::vector<uint8_t> bytes(sizeof(int64_t) * 2 + sizeof(uint64_t));
  std::memcpy(bytes.data(), &s.epoch, 8);
  std::memcpy(bytes.data() + 8, &s.next_iteration, 8);
  std::memcpy(bytes.data() + 16, &s.seed, 8);
  return bytes;
}

absl::StatusOr<data::LoaderState> DecodeLoaderState(const std::vector<uint8_t>& bytes) {
  if (bytes.size() != 24) return absl::DataLossError("checkpoint's data-loader state is malformed");
  data::LoaderState s;
  std::memcpy(&s.epoch, bytes.data(), 8);
  std::memcpy(&s.next_iteration, bytes.data() + 8, 8);
  std::memcpy(&s.seed, bytes.data() + 16, 8);
  return s;
}

// What every node of a job must agree on: the graph and every flag that changes the arithmetic or
// the data order. Threads and paths may differ between nodes.
std::string Fingerprint(const TrainerConfig& c, uint64_t graph_hash, ops::DeviceType device) {
  const LrScheduleConfig& lr = c.lr;
  const OptimizerConfig& o = c.optimizer;
  const DistributedConfig& d = c.dist;
  return absl::StrFormat(
      "graph=%016x nodes=%d devices_per_node=%d replicas_per_node=%d batch=%d epochs=%d iters=%d seed=%d data=%s channels_last=%d "
      "lr=%g lr_reference_batch=%d lr_scaling=%d warmup=%d warmup_epochs=%g warmup_start_lr=%g "
      "lr_decay=%d lr_decay_factor=%g lr_milestones=%s momentum=%g nesterov=%d weight_decay=%g "
      "momentum_correction=%d bucket_mb=%g first_layers_bucket_mb=%g lanes=%d allreduce_algorithm=%s timeout=%g tf32=%d "
      "checkpoints=%d checkpoint_every=%d eval_every=%d trace=%d trace_iters=%d:%d device=%s "
      "gpu_collectives=%s",
      graph_hash, d.nodes, c.devices_per_node, c.replicas_per_node, c.batch, c.epochs, c.iters, c.seed, c.data, c.channels_last,
      lr.base_lr, lr.reference_batch, static_cast<int>(lr.scaling), static_cast<int>(lr.warmup),
      lr.warmup_epochs, lr.warmup_start_lr, static_cast<int>(lr.decay), lr.decay_factor,
      absl::StrJoin(lr.milestones, ","), o.momentum, o.nesterov, o.weight_decay,
      o.momentum_correction, d.bucket_mb, d.first_layers_bucket_mb, d.lanes, d.algorithm, d.timeout_seconds, c.tf32,
      !c.checkpoint_dir.empty(), c.checkpoint_every, c.eval_every, !c.trace_path.empty(),
      c.trace_first, c.trace_last, ops::DeviceTypeName(device), c.gpu_collectives);
}

class Trainer {
 public:
  Trainer(const TrainerConfig& config, std::ostream& out) : config_(config), out_(out) {}
  absl::StatusOr<TrainSummary> Run();

 private:
  absl::Status Setup();
  absl::Status InitializeOrResume();
  absl::Status Resume();
  absl::StatusOr<EvalResult> Evaluate();
  absl::Status SaveCheckpoint(int64_t completed);
  // Applies the updates still in flight and makes the BN statistics the replicas' mean, so that
  // evaluation and checkpoints see one model. Collective: every node calls it at the same point.
  absl::Status Settle();
  bool root() const { return config_.dist.rank == 0; }
  int64_t Devices() const { return config_.devices_per_node; }
  std::vector<TrainDevice*> AllDevices() {
    std::vector<TrainDevice*> all = {device_.get()};
    for (Replica& r : others_) all.push_back(r.device.get());
    return all;
  }
  int64_t GlobalBatch() const {
    return config_.batch * config_.replicas_per_node * Devices() * config_.dist.nodes;
  }
  // Replica 0's parameters, BN statistics and momentum into every other replica of this process.
  absl::Status CopyToLocalReplicas();
  // One micro-batch on every device of this process at once; the first error wins.
  absl::Status RunAllDevices();
  // The next training batch, fetched while an iteration runs: its inputs staged on the device,
  // its labels copied (the loader's view ends at the next Next()), and the loader's position
  // after it. Errors are kept for the iteration that would have used it.
  struct Prefetched {
    bool ready = false;
    absl::Status status;
    data::Batch batch;
    std::vector<int32_t> labels;
    data::LoaderState after;
  };
  Prefetched FetchAhead();
#ifdef GRADFLOW_HAVE_CUDA
  // --devices-per-node > 1 on GPUs: one NCCL rank per device (node x K + k of nodes x K),
  // created together as NCCL requires of one process driving several GPUs.
  absl::Status ConnectLocalGpus();
#endif
  void Progress(int64_t iteration, int64_t epoch, double loss, double top1, double images_per_s,
                double lr, bool final_line);

  const TrainerConfig config_;
  std::ostream& out_;
  bool live_ = false;
  std::vector<uint8_t> graph_bytes_;
  // Declared before what it observes, so that it is destroyed after them.
  std::unique_ptr<trace::Tracer> tracer_;
  double clock_offset_us_ = 0;
  graph::Graph graph_;
  std::shared_ptr<const data::Dataset> dataset_;
  std::unique_ptr<TrainDevice> device_;
  std::unique_ptr<DeviceGraph> train_;
  std::unique_ptr<DeviceGraph> eval_;
  Io train_io_;
  Io eval_io_;
  std::unique_ptr<data::BatchLoader> loader_;
  std::unique_ptr<ReplicaGroup> group_;
  // --devices-per-node > 1: what reduces the replicas' buckets together (CPU) or the NCCL
  // communicators of every device (GPU). Declared before the syncs that use them.
  std::unique_ptr<LocalReducer> local_reducer_;
  std::unique_ptr<dist::Store> device_store_;
#ifdef GRADFLOW_HAVE_CUDA
  std::vector<std::unique_ptr<dist::NcclCollectives>> nccl_;
#endif
  std::unique_ptr<GradientSync> sync_;
  // Replicas 1.. of this process; replica 0 is the members above.
  struct Replica {
    std::unique_ptr<TrainDevice> device;
    std::unique_ptr<DeviceGraph> train;
    Io io;
    std::optional<Optimizer> optimizer;
    std::unique_ptr<GradientSync> sync;
  };
  std::vector<Replica> others_;
  bool settled_ = true;  // no update pending and BN statistics averaged since the last iteration
  std::optional<LrSchedule> schedule_;
  std::optional<Optimizer> optimizer_;
  int64_t start_iteration_ = 0;
  data::LoaderState position_;  // the loader after the last batch trained on (checkpoints)
  std::string last_checkpoint_;
};

absl::Status Trainer::Setup() {
  absl::StatusOr<std::vector<uint8_t>> bytes = ReadFile(config_.graph_path);
  if (!bytes.ok()) return bytes.status();
  graph_bytes_ = *std::move(bytes);
  absl::StatusOr<graph::Graph> graph = graph::ParseGraph(graph_bytes_, config_.graph_path, ops::StandardOps());
  if (!graph.ok()) return graph.status();
  graph_ = *std::move(graph);
  if (graph_.param_grads.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        config_.graph_path, ": not a training graph (no gradients); compile it with modelc"));
  }

  const int all_threads = config_.threads > 0 ? static_cast<int>(config_.threads)
                                              : static_cast<int>(std::thread::hardware_concurrency());
  // Replicas on the CPU share the node's cores.
  const int threads = std::max(1, all_threads / static_cast<int>(Devices()));
  absl::StatusOr<DeviceChoice> choice = ParseDeviceChoice(config_.device);
  if (!choice.ok()) return choice.status();
  // One GPU per node process: a launcher's local rank picks it, or the node rank on one host.
  const int gpus = UsableGpus();
  const int64_t local = config_.local_rank >= 0 ? config_.local_rank : config_.dist.rank;
  // One GPU per replica: a node process with K devices takes GPUs local x K .. local x K + K-1.
  auto gpu_of = [&](int64_t k) {
    return gpus > 0 ? static_cast<int>((local * Devices() + k) % gpus) : 0;
  };
  absl::StatusOr<std::unique_ptr<TrainDevice>> device =
      CreateTrainDevice(*choice, threads, gpu_of(0), config_.tf32);
  if (!device.ok()) return device.status();
  device_ = *std::move(device);

  DeviceGraphOptions options{.batch = config_.batch, .channels_last = config_.channels_last};
  absl::StatusOr<std::unique_ptr<DeviceGraph>> train = DeviceGraph::Create(graph_, options, *device_);
  if (!train.ok()) return train.status();
  train_ = *std::move(train);
  absl::StatusOr<graph::Graph> inference = ops::InferenceGraph(graph_);
  if (!inference.ok()) return inference.status();
  absl::StatusOr<std::unique_ptr<DeviceGraph>> eval = DeviceGraph::Create(*inference, options, *device_);
  if (!eval.ok()) return eval.status();
  eval_ = *std::move(eval);
  absl::StatusOr<Io> train_io = FindIo(*train_);
  if (!train_io.ok()) return train_io.status();
  train_io_ = *train_io;
  absl::StatusOr<Io> eval_io = FindIo(*eval_);
  if (!eval_io.ok()) return eval_io.status();
  eval_io_ = *eval_io;
  for (int64_t k = 1; k < Devices(); ++k) {
    Replica r;
    absl::StatusOr<std::unique_ptr<TrainDevice>> other =
        CreateTrainDevice(*choice, threads, gpu_of(k), config_.tf32);
    if (!other.ok()) return other.status();
    r.device = *std::move(other);
    absl::StatusOr<std::unique_ptr<DeviceGraph>> graph_k = DeviceGraph::Create(graph_, options, *r.device);
    if (!graph_k.ok()) return graph_k.status();
    r.train = *std::move(graph_k);
    absl::StatusOr<Io> io = FindIo(*r.train);
    if (!io.ok()) return io.status();
    r.io = *io;
    others_.push_back(std::move(r));
  }

  const graph::Shape& in = train_io_.input.shape;
  data::DataSpecOptions spec{.graph_input = {in[1], in[2], in[3]},
                             .graph_classes = static_cast<int32_t>(train_io_.probs.shape[1]),
                             .seed = config_.seed};
  absl::StatusOr<std::shared_ptr<const data::Dataset>> dataset = data::ParseDataSpec(config_.data, spec);
  if (!dataset.ok()) return dataset.status();
  dataset_ = *std::move(dataset);
  const data::ExampleShape shape = dataset_->Shape();
  if (shape.channels != in[1] || shape.height != in[2] || shape.width != in[3] ||
      dataset_->NumClasses() > train_io_.probs.shape[1]) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--data ", config_.data, " gives ", data::ShapeString(shape), " images of ",
        dataset_->NumClasses(), " classes, but ", config_.graph_path, " takes ", in[1], "x", in[2],
        "x", in[3], " and ", train_io_.probs.shape[1],
        " classes (compile the model with matching --image-size/--channels/--classes)"));
  }
  absl::StatusOr<std::unique_ptr<data::BatchLoader>> loader = data::BatchLoader::Create(
      dataset_, {.split = data::Split::kTrain,
                 .world_size = static_cast<int32_t>(config_.dist.nodes),
                 .rank = static_cast<int32_t>(config_.dist.rank),
                 .per_replica_batch = config_.batch * config_.replicas_per_node * Devices(),
                 .seed = config_.seed,
                 .decode_threads = static_cast<int>(config_.decode_threads),
                 .prefetch_batches = static_cast<int>(config_.prefetch)});
  if (!loader.ok()) return loader.status();
  loader_ = *std::move(loader);

  LrScheduleConfig lr = config_.lr;
  lr.global_batch = GlobalBatch();  // the linear scaling rule's kn
  lr.total_epochs = static_cast<double>(config_.epochs);
  absl::StatusOr<LrSchedule> schedule = LrSchedule::Create(lr);
  if (!schedule.ok()) return schedule.status();
  schedule_ = *std::move(schedule);
  // The allreduce sums the replicas' mean gradients; 1/n makes that the global batch's mean, so the
  // loss is normalized by the global batch (sec. 2.2 of the paper).
  OptimizerConfig optimizer_config = config_.optimizer;
  optimizer_config.grad_scale /=
      static_cast<float>(config_.dist.nodes * config_.replicas_per_node * Devices());
  absl::StatusOr<Optimizer> optimizer = Optimizer::Create(
      optimizer_config, static_cast<int64_t>(train_->Floats(sched::BufferKind::kParameters).size()),
      train_->plan().sgd_segments);
  if (!optimizer.ok()) return optimizer.status();
  optimizer_ = *std::move(optimizer);
  for (Replica& r : others_) r.optimizer = *optimizer_;  // each replica updates its own momentum

  // The nodes meet only now, after the slow part of the setup (kernel preparation), so that the
  // first collectives do not wait out a slower node's setup against the collective timeout.
  // Before anything is communicated, every node's graph and flags must agree.
  absl::StatusOr<std::unique_ptr<ReplicaGroup>> group =
      ReplicaGroup::Join(config_.dist, Fingerprint(config_, GraphHash(graph_bytes_), device_->type()));
  if (!group.ok()) return group.status();
  group_ = *std::move(group);

  // Per bucket an allreduce and an SGD update, in the task graph (see gradient_sync.h). The
  // updates run on the compute stream: on the CPU they are OpenMP work, and the stream's thread
  // owns the device's only OpenMP team; on a GPU they are launches ordered after backward.
  const GradientSyncOptions sync_options{
      .bucket_bytes = std::max<int64_t>(1, static_cast<int64_t>(config_.dist.bucket_mb * (1 << 20))),
      .first_layers_bucket_bytes =
          static_cast<int64_t>(config_.dist.first_layers_bucket_mb * (1 << 20))};
  if (device_->type() == ops::DeviceType::kCpu && Devices() > 1) {
    local_reducer_ = std::make_unique<LocalReducer>(static_cast<int>(Devices()), group_->collectives());
  }
#ifdef GRADFLOW_HAVE_CUDA
  if (device_->type() == ops::DeviceType::kCuda && Devices() > 1) {
    if (absl::Status s = ConnectLocalGpus(); !s.ok()) return s;
  }
#endif
  auto attach = [&](int64_t k, TrainDevice& on, DeviceGraph& graph_k,
                    Optimizer& optimizer_k) -> absl::StatusOr<std::unique_ptr<GradientSync>> {
    if (on.type() == ops::DeviceType::kCpu) {
      return GradientSync::Attach(
          graph_k,
          CreateHostBucketEngine(graph_k, group_->collectives(), optimizer_k, local_reducer_.get(),
                                 static_cast<int>(k)),
          optimizer_k, sync_options);
    }
#ifdef GRADFLOW_HAVE_CUDA
    absl::StatusOr<std::unique_ptr<BucketEngine>> engine = CreateCudaBucketEngine(
        on, graph_k, *group_, optimizer_k,
        {.collectives = config_.gpu_collectives,
         .local_nodes = static_cast<int>(config_.local_nodes > 0 ? config_.local_nodes : config_.dist.nodes),
         .lanes = static_cast<int>(config_.dist.lanes),
         .timeout = std::chrono::milliseconds(
             static_cast<int64_t>(config_.dist.timeout_seconds * 1000)),
         .nccl = nccl_.empty() ? nullptr : nccl_[k].get()});
    if (!engine.ok()) return engine.status();
    return GradientSync::Attach(graph_k, *std::move(engine), optimizer_k, sync_options);
#else
    (void)k;
    return absl::InternalError("a GPU device in a build without CUDA");
#endif
  };
  absl::StatusOr<std::unique_ptr<GradientSync>> sync = attach(0, *device_, *train_, *optimizer_);
  if (!sync.ok()) return sync.status();
  sync_ = *std::move(sync);
  if (absl::Status s = train_->Start(); !s.ok()) return s;
  sync_->ObserveExecutor();
  for (size_t k = 0; k < others_.size(); ++k) {
    Replica& r = others_[k];
    absl::StatusOr<std::unique_ptr<GradientSync>> sync_k =
        attach(static_cast<int64_t>(k + 1), *r.device, *r.train, *r.optimizer);
    if (!sync_k.ok()) return sync_k.status();
    r.sync = *std::move(sync_k);
    if (absl::Status s = r.train->Start(); !s.ok()) return s;
  }
  if (!config_.trace_path.empty()) {
    absl::StatusOr<trace::TaskGraphDescription> description =
        trace::DescribeTaskGraph(*train_, sync_.get());
    if (!description.ok()) return description.status();
    tracer_ = std::make_unique<trace::Tracer>(
        trace::TracerOptions{.rank = group_->rank(),
                             .first_iteration = config_.trace_first,
                             .last_iteration = config_.trace_last > 0
                                                   ? config_.trace_last
                                                   : std::numeric_limits<int64_t>::max(),
                             .lanes = sync_->engine().lanes(),
                             .device_times = device_->type() != ops::DeviceType::kCpu},
        *std::move(description));
    train_->executor().AddObserver(tracer_.get());
    group_->collectives().AddObserver(tracer_.get());
    if (dist::Collectives* lanes = sync_->engine().device_collectives(); lanes != nullptr) {
      lanes->AddObserver(tracer_.get());
    }
    sync_->AddBucketObserver(tracer_.get());
    // Collective: every node measures its clock against node 0's, so the merged trace lines up.
    absl::StatusOr<double> offset = trace::MeasureClockOffsetMicros(group_->collectives());
    if (!offset.ok()) return offset.status();
    clock_offset_us_ = *offset;
  }
  return eval_->Start();
}

#ifdef GRADFLOW_HAVE_CUDA
absl::Status Trainer::ConnectLocalGpus() {
  dist::Store* store = group_->store();
  if (store == nullptr) {
    // One node: its GPUs still need a place to exchange NCCL's unique ids.
    absl::StatusOr<std::string> dir = launch::MakePrivateDirectory("gradflow-gpus");
    if (!dir.ok()) return dir.status();
    absl::StatusOr<dist::RendezvousSpec> spec = dist::ParseRendezvous(absl::StrCat("file://", *dir));
    if (!spec.ok()) return spec.status();
    absl::StatusOr<std::unique_ptr<dist::Store>> opened = dist::Store::Open(
        *spec, "gpus",
        std::chrono::milliseconds(static_cast<int64_t>(config_.dist.timeout_seconds * 1000)));
    if (!opened.ok()) return opened.status();
    device_store_ = *std::move(opened);
    store = device_store_.get();
  }
  std::vector<int> gpus;
  for (TrainDevice* d : AllDevices()) gpus.push_back(CudaContextOf(*d)->device());
  absl::StatusOr<std::vector<std::unique_ptr<dist::NcclCollectives>>> nccl =
      dist::CreateNcclCollectivesForDevices(
          *store, static_cast<int>(config_.dist.rank * Devices()),
          static_cast<int>(config_.dist.nodes * Devices()), gpus,
          {.lanes = dist::kGradientNcclLanes,
           .timeout =
               std::chrono::milliseconds(static_cast<int64_t>(config_.dist.timeout_seconds * 1000)),
           .key_prefix = "nccl/devices"});
  if (!nccl.ok()) return nccl.status();
  nccl_ = *std::move(nccl);
  return absl::OkStatus();
}
#endif

absl::Status Trainer::CopyToLocalReplicas() {
  if (others_.empty()) return absl::OkStatus();
  if (absl::Status s = sync_->engine().MomentumToHost(*optimizer_); !s.ok()) return s;
  for (sched::BufferKind kind : {sched::BufferKind::kParameters, sched::BufferKind::kState}) {
    absl::StatusOr<std::vector<float>> values = train_->Download(kind);
    if (!values.ok()) return values.status();
    for (Replica& r : others_) {
      if (absl::Status s = r.train->Upload(kind, *values); !s.ok()) return s;
    }
  }
  for (Replica& r : others_) {
    if (absl::Status s = r.optimizer->Restore(optimizer_->momentum(), optimizer_->previous_lr());
        !s.ok()) {
      return s;
    }
    if (absl::Status s = r.sync->engine().MomentumFromHost(*r.optimizer); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Trainer::RunAllDevices() {
  if (others_.empty()) return train_->Run();
  std::vector<absl::Status> statuses(others_.size());
  std::vector<std::thread> threads;
  for (size_t k = 0; k < others_.size(); ++k) {
    threads.emplace_back([this, k, &statuses] { statuses[k] = others_[k].train->Run(); });
  }
  absl::Status first = train_->Run();
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : statuses) {
    if (first.ok() && !s.ok()) first = s;
  }
  return first;
}

Trainer::Prefetched Trainer::FetchAhead() {
  Prefetched p;
  p.ready = true;
  absl::StatusOr<data::Batch> next = loader_->Next();
  if (!next.ok()) {
    p.status = next.status();
    return p;
  }
  p.batch = *next;
  p.after = loader_->State();
  p.labels.assign(next->labels, next->labels + next->size);
  const size_t image_bytes = train_io_.input.bytes() / train_io_.input.shape[0] * next->size;
  const size_t label_bytes = sizeof(int32_t) * next->size;
  if (image_bytes != train_io_.input.bytes() || label_bytes != train_io_.labels.bytes()) {
    p.status = absl::InternalError(absl::StrCat("a training batch of ", next->size, " images for a graph of ",
                                                train_io_.input.shape[0]));
    return p;
  }
  p.status = device_->Stage(0, next->images, image_bytes);
  if (p.status.ok()) p.status = device_->Stage(1, next->labels, label_bytes);
  return p;
}

absl::Status Trainer::InitializeOrResume() {
  const graph::Graph& g = train_->graph();
  for (const graph::Tensor& t : g.tensors) {
    if (t.role != graph::TensorRole::kParameter && t.role != graph::TensorRole::kState) continue;
    absl::StatusOr<ops::TensorRef> ref = train_->Tensor(t.name);
    if (!ref.ok()) continue;  // unused by any node
    std::vector<float> values(static_cast<size_t>(ref->num_elements()));
    if (absl::Status s = InitializeTensor(g, t, config_.seed, values); !s.ok()) return s;
    if (absl::Status s = train_->Upload(*ref, values); !s.ok()) return s;
  }
  if (absl::Status s = Resume(); !s.ok()) return s;
  // Every replica starts from node 0's state, whatever each one initialized or read.
  for (sched::BufferKind kind : {sched::BufferKind::kParameters, sched::BufferKind::kState}) {
    absl::StatusOr<std::vector<float>> values = train_->Download(kind);
    if (!values.ok()) return values.status();
    if (absl::Status s = group_->BroadcastFromRoot(*values); !s.ok()) return s;
    if (absl::Status s = train_->Upload(kind, *values); !s.ok()) return s;
  }
  if (absl::Status s = group_->BroadcastFromRoot(optimizer_->mutable_momentum()); !s.ok()) return s;
  if (absl::Status s = sync_->engine().MomentumFromHost(*optimizer_); !s.ok()) return s;
  return CopyToLocalReplicas();
}

absl::Status Trainer::Resume() {
  if (config_.resume_dir.empty()) return absl::OkStatus();
  const CheckpointExpectation expected{
      .graph_hash = GraphHash(graph_bytes_),
      .parameter_count = static_cast<int64_t>(train_->Floats(sched::BufferKind::kParameters).size()),
      .bn_state_count = static_cast<int64_t>(train_->Floats(sched::BufferKind::kState).size())};
  absl::StatusOr<ResumePoint> resume = ResumeFromDirectory(config_.resume_dir, expected);
  if (!resume.ok()) return resume.status();
  for (const std::string& warning : resume->warnings) std::cerr << "runtime: " << warning << "\n";
  if (!resume->checkpoint) {
    std::cerr << "runtime: no checkpoint in " << config_.resume_dir << ", starting afresh\n";
    return absl::OkStatus();
  }
  const Checkpoint& ckpt = *resume->checkpoint;
  if (absl::Status s = train_->Upload(sched::BufferKind::kParameters, ckpt.parameters); !s.ok()) {
    return s;
  }
  if (absl::Status s = train_->Upload(sched::BufferKind::kState, ckpt.bn_state); !s.ok()) return s;
  if (absl::Status s = optimizer_->Restore(ckpt.momentum, ckpt.previous_lr); !s.ok()) return s;
  auto blob = ckpt.blobs.find("data_loader");
  if (blob == ckpt.blobs.end()) {
    return absl::DataLossError(absl::StrCat(resume->path, ": no data-loader state"));
  }
  absl::StatusOr<data::LoaderState> state = DecodeLoaderState(blob->second);
  if (!state.ok()) return state.status();
  if (absl::Status s = loader_->Restore(*state); !s.ok()) return s;
  start_iteration_ = ckpt.iteration;
  if (root()) out_ << "resumed from " << resume->path << " at iteration " << ckpt.iteration << "\n";
  return absl::OkStatus();
}

absl::Status Trainer::Settle() {
  if (settled_) return absl::OkStatus();
  if (absl::Status s = sync_->Flush(); !s.ok()) return s;
  for (Replica& r : others_) {
    if (absl::Status s = r.sync->Flush(); !s.ok()) return s;
  }
  // The mean over this process's replicas, then over the nodes (every node has as many).
  const graph::Graph& g = train_->graph();
  for (const graph::Tensor& t : g.tensors) {
    if (t.role != graph::TensorRole::kState) continue;
    absl::StatusOr<ops::TensorRef> ref = train_->Tensor(t.name);
    if (!ref.ok()) continue;
    std::vector<float> values(static_cast<size_t>(ref->num_elements()));
    if (absl::Status s = train_->Download(*ref, values); !s.ok()) return s;
    std::vector<float> other(values.size());
    for (Replica& r : others_) {
      absl::StatusOr<ops::TensorRef> ref_k = r.train->Tensor(t.name);
      if (!ref_k.ok()) return ref_k.status();
      if (absl::Status s = r.train->Download(*ref_k, other); !s.ok()) return s;
      for (size_t i = 0; i < values.size(); ++i) values[i] += other[i];
    }
    for (float& v : values) v /= static_cast<float>(Devices());
    if (absl::Status s = group_->Average(values); !s.ok()) return s;
    if (absl::Status s = train_->Upload(*ref, values); !s.ok()) return s;
    for (Replica& r : others_) {
      absl::StatusOr<ops::TensorRef> ref_k = r.train->Tensor(t.name);
      if (!ref_k.ok()) return ref_k.status();
      if (absl::Status s = r.train->Upload(*ref_k, values); !s.ok()) return s;
    }
  }
  settled_ = true;
  return absl::OkStatus();
}

absl::Status Trainer::SaveCheckpoint(int64_t completed) {
  if (config_.checkpoint_dir.empty()) return absl::OkStatus();
  if (absl::Status s = Settle(); !s.ok()) return s;
  if (!root()) return absl::OkStatus();  // one writer; every node holds the same model now
  // The position after the last batch trained on, not after one fetched ahead.
  const std::vector<uint8_t> loader_state = EncodeLoaderState(position_);
  absl::StatusOr<std::vector<float>> parameters = train_->Download(sched::BufferKind::kParameters);
  if (!parameters.ok()) return parameters.status();
  absl::StatusOr<std::vector<float>> bn_state = train_->Download(sched::BufferKind::kState);
  if (!bn_state.ok()) return bn_state.status();
  if (absl::Status s = sync_->engine().MomentumToHost(*optimizer_); !s.ok()) return s;
  CheckpointView view{.graph_hash = GraphHash(graph_bytes_),
                      .parameters = *parameters,
                      .momentum = optimizer_->momentum(),
                      .bn_state = *bn_state,
                      .epoch = completed / loader_->IterationsPerEpoch(),
                      .iteration = completed,
                      .previous_lr = optimizer_->previous_lr(),
                      .blobs = {{"data_loader", loader_state}}};
  absl::StatusOr<WrittenCheckpoint> written = WriteCheckpoint(
      config_.checkpoint_dir, view, {.keep_last = static_cast<int>(config_.keep_checkpoints)});
  if (!written.ok()) return written.status();
  for (const std::string& warning : written->warnings) std::cerr << "runtime: " << warning << "\n";
  last_checkpoint_ = written->path;
  return absl::OkStatus();
}

absl::StatusOr<EvalResult> Trainer::Evaluate() {
  if (absl::Status s = Settle(); !s.ok()) return s;
  // The evaluation graph has its own buffers: copy the trained parameters and statistics in.
  const graph::Graph& g = eval_->graph();
  for (const graph::Tensor& t : g.tensors) {
    if (t.role != graph::TensorRole::kParameter && t.role != graph::TensorRole::kState) continue;
    absl::StatusOr<ops::TensorRef> to = eval_->Tensor(t.name);
    absl::StatusOr<ops::TensorRef> from = train_->Tensor(t.name);
    if (!to.ok()) continue;
    if (!from.ok()) return from.status();
    if (absl::Status s = device_->CopyOnDevice(to->data, from->data, to->bytes()); !s.ok()) return s;
  }
  absl::StatusOr<std::unique_ptr<data::BatchLoader>> loader = data::BatchLoader::Create(
      dataset_, {.split = data::Split::kEval,
                 .world_size = group_->size(),
                 .rank = group_->rank(),
                 .per_replica_batch = config_.batch,
                 .seed = config_.seed,
                 .decode_threads = static_cast<int>(config_.decode_threads),
                 .prefetch_batches = static_cast<int>(config_.prefetch),
                 .epochs = 1});
  if (!loader.ok()) return loader.status();
  EvalResult result;
  double loss_sum = 0;
  Correct correct;
  for (;;) {
    absl::StatusOr<data::Batch> batch = (*loader)->Next();
    if (absl::IsOutOfRange(batch.status())) break;
    if (!batch.ok()) return batch.status();
    if (batch->size == 0) continue;  // this replica's share of the last partial batch
    if (absl::Status s = Feed(*batch, eval_io_, *device_); !s.ok()) return s;
    if (absl::Status s = eval_->Run(); !s.ok()) return s;
    if (absl::Status s = ReadOutputs(eval_io_, *device_); !s.ok()) return s;
    const Correct c = CountCorrect(eval_io_, batch->labels, batch->size);
    correct.top1 += c.top1;
    correct.top5 += c.top5;
    // The graph's loss is the mean over the whole bound batch, padding included; recompute the
    // mean over real examples from the probabilities.
    const int64_t classes = eval_io_.probs.shape[1];
    for (int64_t i = 0; i < batch->size; ++i) {
      loss_sum -= std::log(std::max(eval_io_.host_probs[i * classes + batch->labels[i]], 1e-30f));
    }
    result.examples += batch->size;
  }
  // Each node evaluated its share of the split: add the shares up.
  float totals[4] = {static_cast<float>(result.examples), static_cast<float>(loss_sum),
                     static_cast<float>(correct.top1), static_cast<float>(correct.top5)};
  if (absl::Status s = group_->Sum(totals); !s.ok()) return s;
  result.examples = static_cast<int64_t>(totals[0]);
  loss_sum = totals[1];
  correct.top1 = static_cast<int64_t>(totals[2]);
  correct.top5 = static_cast<int64_t>(totals[3]);
  if (result.examples > 0) {
    result.loss = loss_sum / result.examples;
    result.top1 = static_cast<double>(correct.top1) / result.examples;
    result.top5 = static_cast<double>(correct.top5) / result.examples;
  }
  return result;
}

void Trainer::Progress(int64_t iteration, int64_t epoch, double loss, double top1,
                       double images_per_s, double lr, bool final_line) {
  if (!root()) return;
  const int64_t ipe = loader_->IterationsPerEpoch();
  const int64_t total = config_.iters > 0 ? config_.iters : config_.epochs * ipe;
  const double eta =
      images_per_s > 0 ? (total - iteration) * GlobalBatch() / images_per_s : 0;
  std::string line = absl::StrFormat(
      "epoch %d/%d  iter %d/%d  loss %.4f  top-1 %5.1f%%  %.1f img/s  lr %.5f  ETA %s",
      epoch + 1, config_.epochs, iteration, total, loss, 100 * top1, images_per_s, lr, Duration(eta));
  if (live_) {
    const int width = 24;
    const int filled = total > 0 ? static_cast<int>(width * iteration / total) : 0;
    out_ << "\r[" << std::string(filled, '#') << std::string(width - filled, '.') << "] " << line
         << "\x1b[K";
    if (final_line) out_ << "\n";
    out_.flush();
  } else {
    out_ << line << std::endl;  // flushed: logs of long runs are read while they grow
  }
}

absl::StatusOr<TrainSummary> Trainer::Run() {
  live_ = &out_ == &std::cout && ::isatty(STDOUT_FILENO);
  if (absl::Status s = Setup(); !s.ok()) return s;
  if (absl::Status s = InitializeOrResume(); !s.ok()) return s;

  const int64_t ipe = loader_->IterationsPerEpoch();
  const int64_t total = config_.iters > 0 ? config_.iters : config_.epochs * ipe;
  const int64_t log_every = config_.log_every > 0 ? config_.log_every : std::max<int64_t>(1, ipe / 20);
  if (root()) {
    out_ << absl::StrFormat("training %s on %s: %d iterations/epoch of %d images, %s, %s\n",
                            graph_.name, dataset_->Describe(), ipe, GlobalBatch(),
                            device_->Describe(), schedule_->Describe());
    const int64_t gradient_bytes = train_->Floats(sched::BufferKind::kGradients).size_bytes();
    out_ << absl::StrFormat(
        "data-parallel: %d node%s x %s%d replica%s x batch %d, %d gradient bucket%s (%.1f MB of "
        "%.1f MB each at most)\n",
        group_->size(), group_->size() > 1 ? "s" : "",
        Devices() > 1 ? absl::StrCat(Devices(), " devices x ") : std::string(),
        config_.replicas_per_node,
        config_.replicas_per_node > 1 ? "s" : "", config_.batch, sync_->buckets().size(),
        sync_->buckets().size() > 1 ? "s" : "", gradient_bytes / 1048576.0, config_.dist.bucket_mb);
  }
  TrainSummary summary;
  double window_loss = 0;
  int64_t window_top1 = 0;
  int64_t window_examples = 0;
  int64_t window_iters = 0;
  Clock::time_point window_start = Clock::now();
  double train_seconds = 0;
  int64_t images = 0;
  double epoch_loss = 0;
  int64_t epoch_iters = 0;

  // One device and no virtual replicas (the common case): while iteration i runs, batch i+1 is
  // fetched and its inputs staged on the device (TrainDevice::Stage), so that a GPU does not wait
  // for the host's copy between iterations. A CPU gains nothing (the copy is the same work,
  // moved into the iteration, where it competes with compute and Gloo for the cores): there it
  // runs only when asked for (tests).
  const bool prefetch =
      Devices() == 1 && config_.replicas_per_node == 1 &&
      (config_.stage_ahead == "on" ||
       (config_.stage_ahead == "auto" && device_->type() != ops::DeviceType::kCpu));
  Prefetched ahead;
  std::vector<int32_t> labels;  // the batch's labels outlive the loader's view (see FetchAhead)
  position_ = loader_->State();
  for (int64_t it = start_iteration_; it < total; ++it) {
    const Clock::time_point step_start = Clock::now();
    data::Batch current;
    const bool staged = ahead.ready;
    if (staged) {
      if (!ahead.status.ok()) return ahead.status;
      current = ahead.batch;
      labels = std::move(ahead.labels);
      position_ = ahead.after;
      ahead = Prefetched();
    } else {
      absl::StatusOr<data::Batch> fetched = loader_->Next();
      if (!fetched.ok()) return fetched.status();
      current = *fetched;
      labels.assign(current.labels, current.labels + current.size);
      position_ = loader_->State();
    }
    current.labels = labels.data();
    const data::Batch* batch = &current;
    if (tracer_ != nullptr) {
      tracer_->OnDataBatch(train_->executor().iterations() + 1, step_start, Clock::now(),
                           batch->wait_seconds);
    }
    const double lr = schedule_->LrAt(it, ipe);
    if (absl::Status s = optimizer_->BeginStep(lr); !s.ok()) return s;
    // This node's share of the global batch is K replicas' shares in a row; each runs as its own
    // micro-batch (its own BN statistics), and the last one's run reduces the summed gradients.
    double loss = 0;
    Correct c;
    // With several devices, device k takes the next K x b images of the node's share.
    for (Replica& r : others_) {
      if (absl::Status s = r.optimizer->BeginStep(lr); !s.ok()) return s;
    }
    const int replicas = static_cast<int>(config_.replicas_per_node);
    const int64_t per_example = train_io_.input.num_elements() / config_.batch;
    for (int micro = 0; micro < replicas; ++micro) {
      std::vector<data::Batch> parts;
      for (int64_t k = 0; k < Devices(); ++k) {
        data::Batch part = *batch;
        const int64_t first = (k * replicas + micro) * config_.batch;
        part.size = config_.batch;
        part.images = staged ? nullptr : batch->images + first * per_example;
        part.labels = batch->labels + first;
        parts.push_back(part);
      }
      if (staged) {
        if (absl::Status s = device_->ConsumeStaged(0, train_io_.input.data, train_io_.input.bytes());
            !s.ok()) {
          return s;
        }
        if (absl::Status s = device_->ConsumeStaged(1, train_io_.labels.data, train_io_.labels.bytes());
            !s.ok()) {
          return s;
        }
      } else if (absl::Status s = Feed(parts[0], train_io_, *device_); !s.ok()) {
        return s;
      }
      sync_->SetMicroBatch(micro, replicas);
      for (size_t k = 0; k < others_.size(); ++k) {
        Replica& r = others_[k];
        if (absl::Status s = Feed(parts[k + 1], r.io, *r.device); !s.ok()) return s;
        r.sync->SetMicroBatch(micro, replicas);
      }
      if (prefetch && it + 1 < total) {
        // The executor runs on its own thread while this one fetches and stages the next batch.
        absl::Status run_status;
        std::thread runner([this, &run_status] { run_status = RunAllDevices(); });
        ahead = FetchAhead();
        runner.join();
        if (!run_status.ok()) return run_status;
      } else if (absl::Status s = RunAllDevices(); !s.ok()) {
        return s;
      }
      settled_ = false;
      for (int64_t k = 0; k < Devices(); ++k) {
        Io& io = k == 0 ? train_io_ : others_[k - 1].io;
        if (absl::Status s = ReadOutputs(io, k == 0 ? *device_ : *others_[k - 1].device); !s.ok()) {
          return s;
        }
        const double part_loss = io.host_loss;
        if (!std::isfinite(part_loss)) {
          return absl::InternalError(absl::StrCat("loss is ", part_loss, " at iteration ", it,
                                                  " (lr ", lr, "): training diverged"));
        }
        loss += part_loss / (replicas * Devices());
        const Correct part_correct = CountCorrect(io, parts[k].labels, parts[k].size);
        c.top1 += part_correct.top1;
        c.top5 += part_correct.top5;
      }
    }
    if (tracer_ != nullptr) {
      tracer_->OnIteration(train_->executor().iterations(), step_start, Clock::now(), batch->size);
    }
    const double step_seconds = Seconds(Clock::now() - step_start);
    train_seconds += step_seconds;
    summary.iteration_seconds.push_back(step_seconds);
    images += batch->size;
    summary.data_wait_seconds += batch->wait_seconds;
    summary.unreadable_examples += batch->replaced;
    ++summary.iterations;
    window_loss += loss;
    window_top1 += c.top1;
    window_examples += batch->size;
    ++window_iters;
    epoch_loss += loss;
    ++epoch_iters;

    const int64_t done = it + 1;
    const bool epoch_end = done % ipe == 0;
    const bool run_end = done == total;
    if (done % log_every == 0 || epoch_end || run_end) {
      const double elapsed = Seconds(Clock::now() - window_start);
      Progress(done, it / ipe, window_loss / window_iters,
               static_cast<double>(window_top1) / window_examples,
               elapsed > 0 ? window_examples * group_->size() / elapsed : 0, lr,
               epoch_end || run_end);
      window_loss = 0;
      window_top1 = window_examples = window_iters = 0;
      window_start = Clock::now();
    }
    if (epoch_end || run_end) summary.final_loss = epoch_loss / epoch_iters;
    if (epoch_end) {
      const data::EpochStats stats = loader_->StatsOfEpoch(it / ipe);
      if (stats.replaced > 0 && root()) {
        out_ << "epoch " << it / ipe + 1 << ": " << stats.replaced
             << " unreadable examples were skipped\n";
      }
      epoch_loss = 0;
      epoch_iters = 0;
    }
    const bool eval_now = run_end || (epoch_end && config_.eval_every > 0 &&
                                      (it / ipe + 1) % config_.eval_every == 0);
    if (eval_now) {
      absl::StatusOr<EvalResult> eval = Evaluate();
      if (!eval.ok()) return eval.status();
      summary.eval = *eval;
      if (root()) out_ << absl::StrFormat("eval after iteration %d: loss %.4f  top-1 %.2f%%  top-5 %.2f%%  (%d images)\n",
                              done, eval->loss, 100 * eval->top1, 100 * eval->top5, eval->examples)
           << std::flush;
      window_start = Clock::now();
    }
    const bool checkpoint_now = config_.checkpoint_every > 0
                                    ? done % config_.checkpoint_every == 0 || run_end
                                    : epoch_end || run_end;
    if (checkpoint_now) {
      if (absl::Status s = SaveCheckpoint(done); !s.ok()) return s;
    }
  }
  // The last iteration's updates are still in flight, and every replica must end identical.
  if (absl::Status s = Settle(); !s.ok()) return s;
  absl::StatusOr<std::vector<float>> parameters = train_->Download(sched::BufferKind::kParameters);
  if (!parameters.ok()) return parameters.status();
  if (absl::Status s = group_->CheckIdenticalToRoot(*parameters, "parameters"); !s.ok()) return s;
  for (size_t k = 0; k < others_.size(); ++k) {
    absl::StatusOr<std::vector<float>> mine = others_[k].train->Download(sched::BufferKind::kParameters);
    if (!mine.ok()) return mine.status();
    if (Checksum(*mine) != Checksum(*parameters)) {
      return absl::InternalError(absl::StrCat("device ", k + 1, " of node ", group_->rank(),
                                              " ended with other parameters than device 0"));
    }
  }
  summary.parameter_checksum = Checksum(*parameters);
  if (tracer_ != nullptr) {
    if (absl::Status s = trace::WriteMergedTrace(group_->collectives(), *tracer_, clock_offset_us_,
                                                 config_.trace_path);
        !s.ok()) {
      return s;
    }
    if (root()) out_ << "trace written to " << config_.trace_path << "\n";
  }
  summary.nodes = group_->size();
  summary.rank = group_->rank();
  summary.buckets = static_cast<int64_t>(sync_->buckets().size());
  summary.gradient_bytes = static_cast<int64_t>(parameters->size() * sizeof(float));
  summary.communication = sync_->stats();
  summary.last_iteration = total;
  summary.seconds = train_seconds;
  summary.images_per_second = train_seconds > 0 ? images / train_seconds : 0;
  summary.last_checkpoint = last_checkpoint_;
  summary.device_peak_bytes = device_->peak_memory_bytes();
  return summary;
}

}  // namespace

absl::StatusOr<TrainSummary> Train(const TrainerConfig& config, std::ostream& out) {
  Trainer trainer(config, out);
  return trainer.Run();
}

}  // namespace gradflow::runtime
