// The single-node training loop: data -> forward, loss, backward -> SGD update, with the paper's
// learning-rate recipe, evaluation, checkpoints and a progress display.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/train/lr_schedule.h"
#include "runtime/train/optimizer.h"
#include "runtime/trainer/gradient_sync.h"
#include "runtime/trainer/replica_group.h"

namespace gradflow::runtime {

struct TrainerConfig {
  std::string graph_path;
  std::string data = "synthetic";
  int64_t batch = 32;   // per replica
  // Virtual replicas: micro-batches of `batch` run one after another per step, each with its own
  // BN statistics, their gradients summed before the allreduce (global batch = nodes x K x batch).
  int64_t replicas_per_node = 1;
  // Replicas of this node process, each on its own device (GPUs local_rank x K ... + K-1; on the
  // CPU K replicas sharing `threads`): buckets are summed over them, then across the nodes.
  int64_t devices_per_node = 1;
  int64_t epochs = 90;  // the paper's schedule length
  int64_t iters = 0;    // > 0: stop after this many iterations in all (the schedule still spans epochs)
  int64_t threads = 0;  // 0: every core
  // auto | cpu | cuda (runtime/trainer/train_device.h). On a GPU, node processes on one host take
  // GPU local_rank % GPUs (-1: the node rank).
  std::string device = "auto";
  int64_t local_rank = -1;
  // GPU replicas: auto | nccl | gloo (host-staged); see runtime/trainer/cuda/cuda_bucket_engine.h.
  std::string gpu_collectives = "auto";
  // Node processes on this host (0: all of dist.nodes, as when `runtime --nodes N` starts them).
  int64_t local_nodes = 0;
  bool tf32 = true;
  // Fetch and stage batch i+1 on the device while iteration i runs: auto (GPUs) | on | off.
  std::string stage_ahead = "auto";  // GPU convolutions and matrix products in TF32 (as PyTorch's convolutions)
  int64_t decode_threads = 1;
  int64_t prefetch = 2;
  uint64_t seed = 1;
  bool channels_last = true;
  LrScheduleConfig lr;
  OptimizerConfig optimizer;
  std::string checkpoint_dir;
  std::string resume_dir;
  int64_t keep_checkpoints = 3;
  int64_t checkpoint_every = 0;  // iterations; 0: at the end of every epoch and of the run
  int64_t eval_every = 1;        // epochs; 0: only at the end of the run
  int64_t log_every = 0;         // iterations between progress lines; 0: about 20 per epoch
  DistributedConfig dist;        // this node's place in a data-parallel job (one node by default)
  // Chrome trace of executor iterations [trace_first, trace_last] (counted from 1), written by
  // node 0 with every node's events; empty: no tracing, and no cost.
  std::string trace_path;
  int64_t trace_first = 1;
  int64_t trace_last = 0;  // 0: to the end
};

struct EvalResult {
  int64_t examples = 0;
  double loss = 0;
  double top1 = 0;  // fraction correct
  double top5 = 0;
};

struct TrainSummary {
  int64_t iterations = 0;        // run by this process (after a resume: since the resume)
  int64_t last_iteration = 0;    // iterations completed in all
  double seconds = 0;            // training loop wall time, evaluation excluded
  double images_per_second = 0;  // training images over training time
  double final_loss = 0;         // mean loss of the last epoch's iterations run
  EvalResult eval;               // the last evaluation
  int64_t unreadable_examples = 0;
  double data_wait_seconds = 0;
  std::string last_checkpoint;
  // Data parallelism (also filled for one node, where nothing is communicated).
  int nodes = 1;
  int rank = 0;
  int64_t buckets = 0;
  int64_t gradient_bytes = 0;
  CommunicationStats communication;
  std::vector<double> iteration_seconds;  // wall time of each iteration this process ran
  uint64_t parameter_checksum = 0;        // identical on every node at the end (checked)
  int64_t device_peak_bytes = -1;         // a GPU's peak allocation; -1 on the CPU
};

// Progress goes to `out` (a live line on a terminal, plain lines otherwise; node 0 only), notices
// to stderr.
absl::StatusOr<TrainSummary> Train(const TrainerConfig& config, std::ostream& out);

}  // namespace gradflow::runtime
