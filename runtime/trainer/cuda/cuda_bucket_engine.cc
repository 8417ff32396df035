#include "runtime/trainer/cuda/cuda_bucket_engine.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_stream.h"
#include "ops/cuda/launch.h"
#include "ops/cuda/sgd.h"
#include "runtime/dist/nccl_collectives.h"
#include "runtime/trainer/cuda/cuda_train_device.h"

namespace gradflow::runtime {
namespace {

using ops::cuda::CudaEvent;
using ops::cuda::CudaStatus;

enum class Reduction { kNone, kNccl, kStagedGloo };

// The SGD segments inside [begin, end) of the flat buffer, cut at its ends: a bucket may start
// or end inside a parameter.
std::vector<ops::SgdSegment> SegmentsWithin(std::span<const ops::SgdSegment> segments,
                                            int64_t begin, int64_t end) {
  std::vector<ops::SgdSegment> inside;
  for (const ops::SgdSegment& s : segments) {
    const int64_t from = std::max(begin, s.offset);
    const int64_t to = std::min(end, s.offset + s.count);
    if (from < to)
      inside.push_back({.offset = from, .count = to - from, .weight_decay = s.weight_decay});
  }
  return inside;
}

class CudaBucketEngine final : public BucketEngine {
 public:
  CudaBucketEngine(TrainDevice& device, ops::cuda::CudaContext& cuda, DeviceGraph& graph,
                   Optimizer& optimizer, Reduction reduction, int lanes)
      : device_(device),
        cuda_(cuda),
        graph_(graph),
        optimizer_(optimizer),
        reduction_(reduction),
        lanes_(lanes) {}

  ~CudaBucketEngine() override {
    if (staging_stream_ != nullptr) (void)staging_stream_->Synchronize();
    (void)cuda_.compute_stream().Synchronize();
    for (float* block : {momentum_, accumulated_}) {
      if (block != nullptr) (void)cuda_.allocator().Free(block);
    }
    if (pinned_ != nullptr) cudaFreeHost(pinned_);
  }

  absl::Status Init(ReplicaGroup& group, const CudaBucketEngineOptions& options) {
    elements_ = static_cast<int64_t>(graph_.Floats(sched::BufferKind::kGradients).size());
    absl::StatusOr<float*> momentum = AllocateZeroed(elements_);
    if (!momentum.ok()) return momentum.status();
    momentum_ = *momentum;
    if (options.nccl != nullptr) {
      nccl_ = options.nccl;
      lanes_ = nccl_->lanes();
    } else if (reduction_ == Reduction::kNccl) {
      absl::StatusOr<std::unique_ptr<dist::NcclCollectives>> nccl =
          dist::CreateNcclCollectives(*group.store(), group.rank(), group.size(), cuda_.device(),
                                      {.lanes = dist::kGradientNcclLanes,
                                       .timeout = options.timeout,
                                       .key_prefix = "nccl/gradients"});
      if (!nccl.ok()) return nccl.status();
      own_nccl_ = *std::move(nccl);
      nccl_ = own_nccl_.get();
      lanes_ = nccl_->lanes();
    } else if (reduction_ == Reduction::kStagedGloo) {
      gloo_ = &group.collectives();
      lanes_ = gloo_->lanes();
      absl::StatusOr<std::unique_ptr<ops::cuda::CudaStream>> stream = ops::cuda::CudaStream::Create(
          {.device = cuda_.device(), .callback_thread_name = "gf-stage-cb"});
      if (!stream.ok()) return stream.status();
      staging_stream_ = *std::move(stream);
      GF_CUDA_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(cuda_.device()), "cudaSetDevice"));
      GF_CUDA_RETURN_IF_ERROR(CudaStatus(
          cudaHostAlloc(reinterpret_cast<void**>(&pinned_),
                        std::max<size_t>(1, static_cast<size_t>(elements_) * sizeof(float)),
                        cudaHostAllocDefault),
          "cudaHostAlloc (pinned gradient staging)"));
    }
    return absl::OkStatus();
  }

  absl::Status Prepare(std::span<const sched::Bucket> buckets) override {
    buckets_.assign(buckets.begin(), buckets.end());
    for (const sched::Bucket& b : buckets_) {
      absl::StatusOr<std::unique_ptr<ops::cuda::CudaSgdUpdate>> update =
          ops::cuda::CudaSgdUpdate::Prepare(cuda_, elements_,
                                            SegmentsWithin(optimizer_.segments(), b.begin, b.end));
      if (!update.ok()) return update.status();
      updates_.push_back(*std::move(update));
      ready_.push_back(std::make_unique<CudaEvent>(cuda_.device()));
      reduced_.push_back(std::make_unique<CudaEvent>(cuda_.device()));
      for (const auto* event : {ready_.back().get(), reduced_.back().get()}) {
        if (!event->creation_status().ok()) return event->creation_status();
      }
    }
    return absl::OkStatus();
  }

  // Runs inside compute-stream node work (the stream's issue lock is held): launches go straight
  // to cuda_.stream(), never through the CudaStream's own Enqueue/Record/Wait.
  absl::StatusOr<bool> Accumulate(size_t bucket, int micro, int count) override {
    if (count <= 1) return true;
    if (accumulated_ == nullptr) {
      absl::StatusOr<void*> block =
          cuda_.allocator().Allocate(static_cast<size_t>(elements_) * sizeof(float));
      if (!block.ok()) return block.status();
      accumulated_ = static_cast<float*>(*block);
    }
    const sched::Bucket& b = buckets_[bucket];
    float* sum = accumulated_ + b.begin;
    float* g = graph_.Floats(sched::BufferKind::kGradients).data() + b.begin;
    const int64_t n = b.end - b.begin;
    if (micro == 0) {
      GF_CUDA_RETURN_IF_ERROR(CudaStatus(
          cudaMemcpyAsync(sum, g, n * sizeof(float), cudaMemcpyDeviceToDevice, cuda_.stream()),
          "cudaMemcpyAsync (gradient accumulator)"));
      return false;
    }
    // The last micro-batch leaves the sum in the gradients, the others in the accumulator; the
    // additions are the CPU engine's, in its order.
    const bool last = micro + 1 == count;
    GF_CUDA_RETURN_IF_ERROR(
        CudaStatus(ops::cuda::launch::Add(sum, g, last ? g : sum, n, cuda_.stream()),
                   "Add (gradient accumulator)"));
    return last;
  }

  void StartAllreduce(size_t bucket, Done done) override {
    if (reduction_ == Reduction::kNone) {
      done(absl::OkStatus());
      return;
    }
    const sched::Bucket& b = buckets_[bucket];
    float* grads = graph_.Floats(sched::BufferKind::kGradients).data() + b.begin;
    const size_t n = static_cast<size_t>(b.end - b.begin);
    const int lane = static_cast<int>(bucket % lanes_);
    CudaEvent& ready = *ready_[bucket];
    if (absl::Status s =
            CudaStatus(cudaEventRecord(ready.handle(), cuda_.stream()), "cudaEventRecord");
        !s.ok()) {
      done(s);
      return;
    }
    if (reduction_ == Reduction::kNccl) {
      nccl_->AllreduceSumAfter({grads, n}, lane, &ready, std::move(done));
      // The update of this bucket waits on the device for the end of everything on its lane.
      if (absl::Status s = nccl_->RecordCompletion(lane, *reduced_[bucket]); !s.ok()) {
        Fail(s);
      }
      return;
    }
    // Host-staged: device -> pinned host after `ready`, Gloo between hosts, and back.
    float* host = pinned_ + b.begin;
    if (absl::Status s = staging_stream_->Wait(ready); !s.ok()) {
      done(s);
      return;
    }
    absl::Status copy;
    staging_stream_->Enqueue([&] {
      copy = CudaStatus(cudaMemcpyAsync(host, grads, n * sizeof(float), cudaMemcpyDeviceToHost,
                                        staging_stream_->handle()),
                        "cudaMemcpyAsync (gradient bucket to host)");
    });
    if (!copy.ok()) {
      done(copy);
      return;
    }
    staging_stream_->EnqueueHostCallback([this, bucket, host, grads, n, lane, done]() mutable {
      gloo_->AllreduceSumRepeated({host, n}, lane,
                                  [this, bucket, host, grads, n, done](absl::Status status) {
                                    if (status.ok()) status = CopyBack(bucket, grads, host, n);
                                    done(status);
                                  });
    });
  }

  bool update_waits_on_host() const override { return reduction_ == Reduction::kStagedGloo; }

  absl::Status Update(size_t bucket, const ops::SgdHyper& hyper) override {
    if (reduction_ != Reduction::kNone) {
      GF_CUDA_RETURN_IF_ERROR(
          CudaStatus(cudaStreamWaitEvent(cuda_.stream(), reduced_[bucket]->handle(), 0),
                     "cudaStreamWaitEvent (bucket reduced)"));
    }
    {
      std::lock_guard lock(failure_mutex_);
      if (!failure_.ok()) return failure_;
    }
    return updates_[bucket]->Run(graph_.Floats(sched::BufferKind::kParameters).data(),
                                 graph_.Floats(sched::BufferKind::kGradients).data(), momentum_,
                                 hyper, cuda_.stream());
  }

  int lanes() const override { return lanes_; }
  dist::Collectives* device_collectives() override {
    return reduction_ == Reduction::kNccl ? nccl_ : nullptr;
  }

  absl::Status MomentumToHost(Optimizer& optimizer) override {
    std::span<float> host = optimizer.mutable_momentum();
    return device_.Download(host.data(), momentum_, host.size_bytes());
  }
  absl::Status MomentumFromHost(const Optimizer& optimizer) override {
    std::span<const float> host = optimizer.momentum();
    return device_.Upload(momentum_, host.data(), host.size_bytes());
  }

 private:
  absl::StatusOr<float*> AllocateZeroed(int64_t count) {
    absl::StatusOr<void*> block =
        cuda_.allocator().Allocate(static_cast<size_t>(count) * sizeof(float));
    if (!block.ok()) return block.status();
    if (absl::Status s = device_.Zero(*block, static_cast<size_t>(count) * sizeof(float));
        !s.ok()) {
      return s;
    }
    return static_cast<float*>(*block);
  }

  // On a Gloo thread: the reduced bucket back to the device, then the event its update waits on.
  absl::Status CopyBack(size_t bucket, float* grads, const float* host, size_t n) {
    absl::Status status;
    staging_stream_->Enqueue([&] {
      status = CudaStatus(cudaMemcpyAsync(grads, host, n * sizeof(float), cudaMemcpyHostToDevice,
                                          staging_stream_->handle()),
                          "cudaMemcpyAsync (reduced gradient bucket to the device)");
    });
    if (!status.ok()) return status;
    return staging_stream_->Record(*reduced_[bucket]);
  }

  void Fail(const absl::Status& status) {
    std::lock_guard lock(failure_mutex_);
    if (failure_.ok()) failure_ = status;
  }

  TrainDevice& device_;
  ops::cuda::CudaContext& cuda_;
  DeviceGraph& graph_;
  Optimizer& optimizer_;
  const Reduction reduction_;
  int lanes_;
  int64_t elements_ = 0;
  std::vector<sched::Bucket> buckets_;
  std::vector<std::unique_ptr<ops::cuda::CudaSgdUpdate>> updates_;
  std::vector<std::unique_ptr<CudaEvent>> ready_;    // compute stream: the bucket's gradients exist
  std::vector<std::unique_ptr<CudaEvent>> reduced_;  // the bucket's sum is in the gradients
  float* momentum_ = nullptr;                        // device, the whole flat buffer
  float* accumulated_ = nullptr;                     // device, virtual replicas only
  std::unique_ptr<dist::NcclCollectives> own_nccl_;
  dist::NcclCollectives* nccl_ = nullptr;  // own_nccl_ or the caller's
  dist::Collectives* gloo_ = nullptr;
  std::unique_ptr<ops::cuda::CudaStream> staging_stream_;
  float* pinned_ = nullptr;  // host-staged buckets, at their offsets in the flat buffer
  std::mutex failure_mutex_;
  absl::Status failure_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<BucketEngine>> CreateCudaBucketEngine(
    TrainDevice& device, DeviceGraph& graph, ReplicaGroup& group, Optimizer& optimizer,
    const CudaBucketEngineOptions& options) {
  ops::cuda::CudaContext* cuda = CudaContextOf(device);
  if (cuda == nullptr) {
    return absl::InvalidArgumentError("the CUDA bucket engine needs a CUDA device");
  }
  Reduction reduction = Reduction::kNone;
  if (options.nccl != nullptr) {
    if (options.collectives == "gloo") {
      return absl::InvalidArgumentError(
          "--gpu-collectives gloo serves one GPU per node process; with --devices-per-node > 1 "
          "the GPUs reduce through NCCL");
    }
    reduction = Reduction::kNccl;
  } else if (group.size() > 1) {
    if (options.collectives == "nccl") {
      reduction = Reduction::kNccl;
    } else if (options.collectives == "gloo") {
      reduction = Reduction::kStagedGloo;
    } else if (options.collectives == "auto") {
      reduction = options.local_nodes <= UsableGpus() ? Reduction::kNccl : Reduction::kStagedGloo;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "--gpu-collectives: expected auto, nccl or gloo, got '", options.collectives, "'"));
    }
    if (reduction == Reduction::kNccl && group.store() == nullptr) {
      return absl::FailedPreconditionError("NCCL needs the rendezvous store of a multi-node job");
    }
  }
  auto engine =
      std::make_unique<CudaBucketEngine>(device, *cuda, graph, optimizer, reduction, options.lanes);
  if (absl::Status s = engine->Init(group, options); !s.ok()) return s;
  return engine;
}

}  // namespace gradflow::runtime
