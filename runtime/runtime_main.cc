// runtime: trains a graph compiled by modelc on this node.
//
// Exit codes: 0 success, 1 failure (unreadable graph or data, divergence, a kernel error),
// 2 usage error (unknown flag, malformed value).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/cli/flags.h"
#include "runtime/launch/private_dir.h"
#include "runtime/launch/supervise.h"
#include "runtime/project/project_main.h"
#include "runtime/trace/summary.h"
#include "runtime/trainer/summary_json.h"
#include "runtime/trainer/train_device.h"
#include "runtime/trainer/trainer.h"

namespace gradflow::runtime {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

int Fail(int code, absl::string_view message) {
  std::fprintf(stderr, "runtime: %.*s\n", static_cast<int>(message.size()), message.data());
  return code;
}

// The first of `names` set to a non-negative integer (a cluster launcher's word: Slurm, Open MPI,
// torchrun), or -1.
int64_t IntFromEnvironment(std::initializer_list<const char*> names) {
  for (const char* name : names) {
    if (const char* value = std::getenv(name); value != nullptr && *value != '\0') {
      char* end = nullptr;
      const long long number = std::strtoll(value, &end, 10);
      if (*end == '\0' && number >= 0) return number;
    }
  }
  return -1;
}

// The rank of this node when the cluster's launcher says it rather than --node-rank.
int64_t RankFromEnvironment() {
  return IntFromEnvironment({"SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK"});
}

// `runtime --nodes N` without a rendezvous: this process starts the N nodes on this machine and
// supervises them (launch/supervise.h); they meet through a private FileStore directory.
int SuperviseLocalNodes(const std::vector<std::string>& args, const TrainerConfig& config,
                        bool threads_set) {
  absl::StatusOr<std::string> dir = launch::MakePrivateDirectory("gradflow-rendezvous");
  if (!dir.ok()) return Fail(kExitFailure, dir.status().message());
  char self[4096];
  const ssize_t length = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (length <= 0) return Fail(kExitFailure, "cannot find this program's path in /proc/self/exe");
  launch::SuperviseOptions options;
  // Nodes notice a dead peer within the collective timeout; give them that long to exit on their
  // own, with their own message, before they are stopped.
  options.grace = std::chrono::milliseconds(static_cast<int64_t>(config.dist.timeout_seconds * 1000) + 10000);
  // Unless told otherwise, the nodes share this machine's cores instead of each taking all.
  const int64_t threads = std::max<int64_t>(
      1, static_cast<int64_t>(std::thread::hardware_concurrency()) / config.dist.nodes);
  for (int64_t rank = 0; rank < config.dist.nodes; ++rank) {
    launch::NodeCommand node{.program = std::string(self, static_cast<size_t>(length)), .args = args};
    // All N share this host (and its GPUs: --local-rank picks one each).
    for (std::string extra : {std::string("--node-rank"), absl::StrCat(rank), std::string("--rendezvous"),
                              absl::StrCat("file://", *dir), std::string("--job-id"), std::string("local"),
                              std::string("--local-rank"), absl::StrCat(rank),
                              std::string("--local-nodes"), absl::StrCat(config.dist.nodes)}) {
      node.args.push_back(std::move(extra));
    }
    if (!threads_set) {
      node.args.push_back("--threads");
      node.args.push_back(absl::StrCat(threads));
    }
    options.nodes.push_back(std::move(node));
  }
  absl::StatusOr<launch::SuperviseResult> result = launch::Supervise(options);
  (void)launch::RemoveTree(*dir);
  if (!result.ok()) return Fail(kExitFailure, result.status().message());
  if (result->exit_code != 0) {
    std::fprintf(stderr, "runtime: %s\n", result->summary.c_str());
  }
  return result->exit_code;
}

int Main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "trace-summary") return trace::TraceSummaryMain({argv + 2, argv + argc}, std::cout, std::cerr);
  if (argc >= 2 && std::string(argv[1]) == "project") return project::ProjectMain({argv + 2, argv + argc}, std::cout, std::cerr);
  if (argc >= 2 && std::string(argv[1]) == "bench-allreduce") return project::BenchAllreduceMain({argv + 2, argv + argc}, std::cout, std::cerr);
  TrainerConfig config;
  config.threads = static_cast<int64_t>(std::thread::hardware_concurrency());
  std::string scaling = "linear";
  std::string warmup = "gradual";
  std::string decay = "step";
  double momentum = config.optimizer.momentum;
  double weight_decay = config.optimizer.weight_decay;
  int64_t seed = static_cast<int64_t>(config.seed);

  FlagSet flags("runtime --graph FILE.fb");
  flags.String("graph", &config.graph_path, "training graph compiled by modelc (required)", "FILE");
  flags.String("data", &config.data,
               "synthetic | fashion-mnist[:DIR] | imagefolder:DIR (train/ and val/ inside)", "SPEC");
  flags.Int("batch", &config.batch, "images per iteration on this replica");
  flags.Int("replicas-per-node", &config.replicas_per_node,
            "virtual replicas: micro-batches of --batch per step on this node, each with its own "
            "batch-norm statistics, gradients summed before the allreduce");
  flags.Int("devices-per-node", &config.devices_per_node,
            "replicas this node process drives, each on its own device: GPUs local-rank x K .. "
            "+ K-1 (NCCL between all), or K CPU replicas sharing --threads");
  flags.Int("epochs", &config.epochs, "length of the schedule in epochs");
  flags.Int("iters", &config.iters, "stop after this many iterations in all (0: run every epoch)");
  flags.Int("threads", &config.threads, "cores for compute (oneDNN's OpenMP team); default all");
  flags.Int("decode-threads", &config.decode_threads, "threads decoding images");
  flags.Int("prefetch", &config.prefetch, "batches decoded ahead of compute");
  flags.Int("seed", &seed, "seed of initialization, shuffling and augmentation");
  flags.Bool("channels-last", &config.channels_last,
             "store activations NHWC (oneDNN and cuDNN are fastest so)");
  flags.String("device", &config.device, "auto (a GPU when present) | cpu | cuda", "KIND");
  flags.Bool("tf32", &config.tf32, "GPU: convolutions and matrix products in TF32");
  flags.String("stage-ahead", &config.stage_ahead,
               "fetch and stage the next batch on the device while an iteration runs: auto (on "
               "GPUs) | on | off",
               "WHEN");
  flags.String("gpu-collectives", &config.gpu_collectives,
               "GPU gradients: auto | nccl | gloo (staged through host memory, for node processes "
               "sharing a GPU)",
               "KIND");
  flags.Int("local-rank", &config.local_rank,
            "this node's index on its host, picks its GPU (default: LOCAL_RANK, SLURM_LOCALID or "
            "OMPI_COMM_WORLD_LOCAL_RANK, else the node rank)");
  flags.Int("local-nodes", &config.local_nodes,
            "node processes on this host (default: LOCAL_WORLD_SIZE, SLURM_NTASKS_PER_NODE or "
            "OMPI_COMM_WORLD_LOCAL_SIZE, else 1 with --rendezvous)");
  flags.Double("lr", &config.lr.base_lr, "learning rate per reference batch (the paper: 0.1 per 256)");
  flags.Int("lr-reference-batch", &config.lr.reference_batch, "images the base lr is given for");
  flags.String("lr-scaling", &scaling, "linear (the paper's rule) | sqrt | none", "RULE");
  flags.String("warmup", &warmup, "gradual (per iteration) | constant | none", "KIND");
  flags.Double("warmup-epochs", &config.lr.warmup_epochs,
               "epochs of warmup (default: 5 of 90, scaled to --epochs)");
  flags.Double("warmup-start-lr", &config.lr.warmup_start_lr,
               "lr at the start of warmup (default: the reference batch's lr)");
  flags.String("lr-decay", &decay, "step | cosine", "KIND");
  flags.Double("lr-decay-factor", &config.lr.decay_factor, "lr multiplier at each milestone");
  std::vector<int64_t> milestones = {30, 60, 80};
  flags.IntList("lr-milestones", &milestones,
                "epochs where step decay divides the lr (default: 30,60,80 of 90, scaled)");
  flags.Double("momentum", &momentum, "SGD momentum");
  flags.Bool("nesterov", &config.optimizer.nesterov, "Nesterov momentum");
  flags.Double("weight-decay", &weight_decay, "L2 weight decay (not on batch-norm or biases)");
  flags.Bool("momentum-correction", &config.optimizer.momentum_correction,
             "rescale momentum when the lr changes (the paper, sec. 2.4)");
  flags.String("checkpoint-dir", &config.checkpoint_dir, "write checkpoints here", "DIR");
  flags.Int("checkpoint-every", &config.checkpoint_every,
            "iterations between checkpoints (0: each epoch and the end)");
  flags.Int("keep-checkpoints", &config.keep_checkpoints, "checkpoints kept");
  flags.String("resume", &config.resume_dir, "continue from the newest checkpoint in DIR", "DIR");
  flags.Int("eval-every", &config.eval_every, "epochs between evaluations (0: only at the end)");
  flags.Int("log-every", &config.log_every, "iterations between progress lines (0: ~20/epoch)");
  DistributedConfig& dist = config.dist;
  int64_t node_rank = -1;
  flags.Int("nodes", &dist.nodes,
            "nodes (replicas) in the job; without --rendezvous all are started on this machine");
  flags.Int("node-rank", &node_rank,
            "this node's rank in [0, nodes) (default: SLURM_PROCID or OMPI_COMM_WORLD_RANK)");
  flags.String("rendezvous", &dist.rendezvous,
               "where the nodes meet: file:///shared/dir | redis://host:port", "URI");
  flags.String("job-id", &dist.job_id, "names this run in the rendezvous store (fresh per run)", "ID");
  flags.Double("timeout", &dist.timeout_seconds,
               "seconds any collective may take before the job fails (a dead or stalled node)");
  flags.Double("bucket-mb", &dist.bucket_mb, "gradient bucket size cap in MB (allreduce unit)");
  flags.Double("first-layers-bucket-mb", &dist.first_layers_bucket_mb,
               "cap of the first layers' own last bucket in MB, whose allreduce cannot overlap "
               "backward (0: no such bucket)");
  flags.Int(
      "comm-lanes", &dist.lanes,
      "buckets reduced at once, each on its own Gloo context (NCCL: one communicator per GPU)");
  flags.String("allreduce-algo", &dist.algorithm, "auto | ring | halving-doubling", "ALGO");
  flags.String("transport", &dist.transport, "auto | tcp | ibverbs", "KIND");
  std::string trace_iters;
  flags.String("trace", &config.trace_path,
               "write a Chrome trace (chrome://tracing, Perfetto) of every node here", "FILE");
  flags.String("trace-iters", &trace_iters,
               "iterations A to B (from 1) to trace; default: all", "A:B");
  std::string summary_json;
  flags.String("summary-json", &summary_json, "node 0 writes the run's summary here as JSON", "FILE");

  std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<FlagSet::Outcome> outcome = flags.Parse(args);
  if (!outcome.ok()) return Fail(kExitUsage, outcome.status().message());
  if (*outcome == FlagSet::Outcome::kHelp) {
    std::cout << "Trains a graph compiled by modelc on this node, with the recipe of Goyal et al.\n"
                 "2017: lr = base lr x batch / 256, gradual warmup, step decay, SGD with momentum.\n\n"
              << flags.Help();
    return 0;
  }
  if (config.graph_path.empty()) return Fail(kExitUsage, "--graph is required (see --help)");
  for (auto [name, value] : {std::pair{"batch", config.batch}, {"replicas-per-node", config.replicas_per_node}, {"devices-per-node", config.devices_per_node},
                             {"epochs", config.epochs},
                             {"threads", config.threads}, {"decode-threads", config.decode_threads}}) {
    if (value < 1) return Fail(kExitUsage, absl::StrCat("--", name, " must be at least 1, got ", value));
  }
  for (auto [name, value] : {std::pair{"iters", config.iters}, {"prefetch", config.prefetch},
                             {"checkpoint-every", config.checkpoint_every},
                             {"eval-every", config.eval_every}, {"log-every", config.log_every}}) {
    if (value < 0) return Fail(kExitUsage, absl::StrCat("--", name, " must not be negative, got ", value));
  }
  if (config.keep_checkpoints < 1) return Fail(kExitUsage, "--keep-checkpoints must be at least 1");
  if (!trace_iters.empty()) {
    const size_t colon = trace_iters.find(':');
    char* end = nullptr;
    const long long first = std::strtoll(trace_iters.c_str(), &end, 10);
    const bool first_ok = colon != std::string::npos && end == trace_iters.c_str() + colon;
    const char* second_text = colon == std::string::npos ? "" : trace_iters.c_str() + colon + 1;
    const long long last = std::strtoll(second_text, &end, 10);
    if (!first_ok || *end != '\0' || *second_text == '\0' || first < 1 || last < first) {
      return Fail(kExitUsage, absl::StrCat("--trace-iters: expected A:B with 1 <= A <= B, got '",
                                           trace_iters, "'"));
    }
    if (config.trace_path.empty()) return Fail(kExitUsage, "--trace-iters needs --trace FILE");
    config.trace_first = first;
    config.trace_last = last;
  }
  if (dist.nodes < 1) return Fail(kExitUsage, absl::StrCat("--nodes must be at least 1, got ", dist.nodes));
  if (dist.lanes < 1) return Fail(kExitUsage, absl::StrCat("--comm-lanes must be at least 1, got ", dist.lanes));
  if (!(dist.timeout_seconds > 0)) return Fail(kExitUsage, "--timeout must be positive");
  if (!(dist.bucket_mb > 0)) return Fail(kExitUsage, "--bucket-mb must be positive");
  if (!(dist.first_layers_bucket_mb >= 0)) {
    return Fail(kExitUsage, "--first-layers-bucket-mb must be 0 or more");
  }
  if (dist.algorithm != "auto" && dist.algorithm != "ring" && dist.algorithm != "halving-doubling") {
    return Fail(kExitUsage, absl::StrCat("--allreduce-algo: expected auto, ring or halving-doubling, got '",
                                         dist.algorithm, "'"));
  }
  if (absl::StatusOr<DeviceChoice> device = ParseDeviceChoice(config.device); !device.ok()) {
    return Fail(kExitUsage, device.status().message());
  }
  if (config.stage_ahead != "auto" && config.stage_ahead != "on" && config.stage_ahead != "off") {
    return Fail(kExitUsage, absl::StrCat("--stage-ahead: expected auto, on or off, got '",
                                         config.stage_ahead, "'"));
  }
  if (config.gpu_collectives != "auto" && config.gpu_collectives != "nccl" &&
      config.gpu_collectives != "gloo") {
    return Fail(kExitUsage, absl::StrCat("--gpu-collectives: expected auto, nccl or gloo, got '",
                                         config.gpu_collectives, "'"));
  }
  if (config.local_rank < 0) {
    config.local_rank = IntFromEnvironment({"LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK"});
  }
  if (config.local_nodes <= 0) {
    const int64_t local = IntFromEnvironment({"LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE", "OMPI_COMM_WORLD_LOCAL_SIZE"});
    config.local_nodes = local > 0 ? local : 1;
  }
  if (dist.transport != "auto" && dist.transport != "tcp" && dist.transport != "ibverbs") {
    return Fail(kExitUsage,
                absl::StrCat("--transport: expected auto, tcp or ibverbs, got '", dist.transport, "'"));
  }
  config.seed = static_cast<uint64_t>(seed);
  config.optimizer.momentum = static_cast<float>(momentum);
  config.optimizer.weight_decay = static_cast<float>(weight_decay);
  // The paper's schedule is 90 epochs long: a shorter run keeps its shape unless told otherwise,
  // with milestones at 30/90, 60/90 and 80/90 of the run and warmup over 5/90 of it.
  const double stretch = static_cast<double>(config.epochs) / 90.0;
  config.lr.milestones.assign(milestones.begin(), milestones.end());
  if (!flags.WasSet("lr-milestones")) {
    for (double& m : config.lr.milestones) m *= stretch;
  }
  if (!flags.WasSet("warmup-epochs")) config.lr.warmup_epochs *= stretch;
  absl::StatusOr<LrScaling> s = ParseLrScaling(scaling);
  if (!s.ok()) return Fail(kExitUsage, absl::StrCat("--lr-scaling: ", s.status().message()));
  config.lr.scaling = *s;
  absl::StatusOr<LrWarmup> w = ParseLrWarmup(warmup);
  if (!w.ok()) return Fail(kExitUsage, absl::StrCat("--warmup: ", w.status().message()));
  config.lr.warmup = *w;
  absl::StatusOr<LrDecay> d = ParseLrDecay(decay);
  if (!d.ok()) return Fail(kExitUsage, absl::StrCat("--lr-decay: ", d.status().message()));
  config.lr.decay = *d;
  if (!flags.WasSet("warmup-start-lr")) {
    // Warmup starts at the reference batch's lr and never ramps down to a smaller target.
    const double ratio = static_cast<double>(config.batch * config.replicas_per_node * dist.nodes) /
                         config.lr.reference_batch;
    const double target = config.lr.base_lr * (config.lr.scaling == LrScaling::kLinear ? ratio
                                               : config.lr.scaling == LrScaling::kSqrt
                                                   ? std::sqrt(ratio)
                                                   : 1.0);
    config.lr.warmup_start_lr = std::min(config.lr.base_lr, target);
  }

  if (dist.nodes > 1 && dist.rendezvous.empty()) {
    if (node_rank >= 0) return Fail(kExitUsage, "--node-rank needs --rendezvous");
    return SuperviseLocalNodes(args, config, flags.WasSet("threads"));
  }
  dist.rank = node_rank >= 0 ? node_rank : RankFromEnvironment();
  if (dist.nodes == 1 && dist.rank < 0) dist.rank = 0;
  if (dist.rank < 0) {
    return Fail(kExitUsage, "--node-rank is required with --rendezvous (or set SLURM_PROCID or "
                            "OMPI_COMM_WORLD_RANK)");
  }
  if (dist.rank >= dist.nodes) {
    return Fail(kExitUsage, absl::StrCat("--node-rank ", dist.rank, " is not below --nodes ", dist.nodes));
  }

  absl::StatusOr<TrainSummary> summary = Train(config, std::cout);
  if (!summary.ok()) {
    if (dist.nodes > 1) {
      // Peers may be gone: leave without waiting on connections that will never answer.
      std::fprintf(stderr, "runtime: node %lld: %.*s\n", static_cast<long long>(dist.rank),
                   static_cast<int>(summary.status().message().size()), summary.status().message().data());
      std::fflush(nullptr);
      ::_exit(kExitFailure);
    }
    return Fail(kExitFailure, summary.status().message());
  }
  if (!summary_json.empty() && summary->rank == 0) {
    if (absl::Status written = WriteSummaryJson(summary_json, config, *summary); !written.ok()) {
      return Fail(kExitFailure, written.message());
    }
  }
  const CommunicationStats& comm = summary->communication;
  if (summary->nodes > 1) {
    const double per_iteration = summary->iterations > 0 ? 1.0 / summary->iterations : 0;
    const std::string exposed =
        comm.exposure_measured
            ? absl::StrFormat("%.3f s exposed (%.0f%% hidden)", comm.exposed_seconds * per_iteration,
                              comm.communication_seconds > 0
                                  ? 100 * (1 - comm.exposed_seconds / comm.communication_seconds)
                                  : 100.0)
            : std::string("exposure ordered on the device (see --trace)");
    std::cout << absl::StrFormat(
        "node %d: per iteration %.3f s compute, %.3f s communication, %s; %d bucket%s, %d of %d "
        "allreduces started during backward; parameters identical on all %d nodes (checksum "
        "%016x)\n",
        summary->rank, (summary->seconds - comm.exposed_seconds) * per_iteration,
        comm.communication_seconds * per_iteration, exposed,
        summary->buckets, summary->buckets > 1 ? "s" : "", comm.allreduces_started_during_backward,
        comm.allreduces, summary->nodes, summary->parameter_checksum);
  }
  std::cout << absl::StrFormat(
      "done: %d iterations in %.1f s, %.1f img/s%s (data waits %.1f s), last epoch loss %.4f, "
      "eval top-1 %.2f%% top-5 %.2f%% on %d images, %d unreadable examples skipped%s\n",
      summary->iterations, summary->seconds, summary->images_per_second,
      summary->nodes > 1 ? absl::StrFormat(" on this node, %.1f in all",
                                           summary->images_per_second * summary->nodes)
                         : std::string(),
      summary->data_wait_seconds, summary->final_loss, 100 * summary->eval.top1,
      100 * summary->eval.top5, summary->eval.examples, summary->unreadable_examples,
      summary->last_checkpoint.empty() ? "" : absl::StrCat(", checkpoint ", summary->last_checkpoint));
  if (summary->device_peak_bytes >= 0) {
    std::cout << absl::StrFormat(
        "device memory: peak %.0f MiB allocated (plan buffers, workspaces, momentum)\n",
        summary->device_peak_bytes / 1048576.0);
  }
  return 0;
}

}  // namespace
}  // namespace gradflow::runtime

int main(int argc, char** argv) { return gradflow::runtime::Main(argc, argv); }
