// The bucket engine of GPU replicas (runtime/trainer/bucket_engine.h). Gradients, parameters and
// momentum stay in device memory; the update is the fused CUDA SGD kernel over the bucket's range
// (ops/cuda/sgd.h), bit for bit the CPU's. A bucket is summed across replicas in one of three
// ways:
//   nccl   ncclAllReduce on a lane's communication stream, after an event the compute stream
//          records when the bucket's last gradient is written; the update waits on the device
//          for an event recorded after it. The host never waits inside an iteration.
//   gloo   host-staged, where NCCL cannot serve (two node processes sharing one GPU): a staging
//          stream copies the bucket to pinned host memory after the same event, Gloo reduces
//          it between the hosts, the staging stream copies it back and records the event the
//          update waits for.
//   (one replica) nothing to reduce; the update follows backward on the compute stream.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/dist/nccl_collectives.h"
#include "runtime/train/optimizer.h"
#include "runtime/trainer/bucket_engine.h"
#include "runtime/trainer/device_graph.h"
#include "runtime/trainer/replica_group.h"
#include "runtime/trainer/train_device.h"

namespace gradflow::runtime {

struct CudaBucketEngineOptions {
  // auto | nccl | gloo. auto: NCCL when every node process of this host has a GPU of its own
  // (local_nodes <= the GPUs present), else host-staged Gloo.
  std::string collectives = "auto";
  int local_nodes = 1;
  int lanes = 2;
  std::chrono::milliseconds timeout{300000};
  // Several GPUs in this process (--devices-per-node): this device's NCCL rank among all of the
  // job's GPUs, made by the caller with the others (not owned). Null: one GPU per process.
  dist::NcclCollectives* nccl = nullptr;
};

// `device` must be a CUDA device (CreateCudaTrainDevice) and `graph` made on it; the group's
// store carries NCCL's unique ids. Everything must outlive the engine. InvalidArgument names the
// flag for a bad choice.
absl::StatusOr<std::unique_ptr<BucketEngine>> CreateCudaBucketEngine(
    TrainDevice& device, DeviceGraph& graph, ReplicaGroup& group, Optimizer& optimizer,
    const CudaBucketEngineOptions& options);

}  // namespace gradflow::runtime
