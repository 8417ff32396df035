// runtime: trains a graph compiled by modelc on this node.
//
// Exit codes: 0 success, 1 failure (unreadable graph or data, divergence, a kernel error),
// 2 usage error (unknown flag, malformed value).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/cli/flags.h"
#include "runtime/trainer/trainer.h"

namespace gradflow::runtime {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

int Fail(int code, absl::string_view message) {
  std::fprintf(stderr, "runtime: %.*s\n", static_cast<int>(message.size()), message.data());
  return code;
}

int Main(int argc, char** argv) {
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
  flags.Int("epochs", &config.epochs, "length of the schedule in epochs");
  flags.Int("iters", &config.iters, "stop after this many iterations in all (0: run every epoch)");
  flags.Int("threads", &config.threads, "cores for compute (oneDNN's OpenMP team); default all");
  flags.Int("decode-threads", &config.decode_threads, "threads decoding images");
  flags.Int("prefetch", &config.prefetch, "batches decoded ahead of compute");
  flags.Int("seed", &seed, "seed of initialization, shuffling and augmentation");
  flags.Bool("channels-last", &config.channels_last, "store activations NHWC (fastest on CPU)");
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
  for (auto [name, value] : {std::pair{"batch", config.batch}, {"epochs", config.epochs},
                             {"threads", config.threads}, {"decode-threads", config.decode_threads}}) {
    if (value < 1) return Fail(kExitUsage, absl::StrCat("--", name, " must be at least 1, got ", value));
  }
  for (auto [name, value] : {std::pair{"iters", config.iters}, {"prefetch", config.prefetch},
                             {"checkpoint-every", config.checkpoint_every},
                             {"eval-every", config.eval_every}, {"log-every", config.log_every}}) {
    if (value < 0) return Fail(kExitUsage, absl::StrCat("--", name, " must not be negative, got ", value));
  }
  if (config.keep_checkpoints < 1) return Fail(kExitUsage, "--keep-checkpoints must be at least 1");
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
    const double ratio = static_cast<double>(config.batch) / config.lr.reference_batch;
    const double target = config.lr.base_lr * (config.lr.scaling == LrScaling::kLinear ? ratio
                                               : config.lr.scaling == LrScaling::kSqrt
                                                   ? std::sqrt(ratio)
                                                   : 1.0);
    config.lr.warmup_start_lr = std::min(config.lr.base_lr, target);
  }

  absl::StatusOr<TrainSummary> summary = Train(config, std::cout);
  if (!summary.ok()) return Fail(kExitFailure, summary.status().message());
  std::cout << absl::StrFormat(
      "done: %d iterations in %.1f s, %.1f img/s (data waits %.1f s), last epoch loss %.4f, "
      "eval top-1 %.2f%% top-5 %.2f%% on %d images, %d unreadable examples skipped%s\n",
      summary->iterations, summary->seconds, summary->images_per_second,
      summary->data_wait_seconds, summary->final_loss, 100 * summary->eval.top1,
      100 * summary->eval.top5, summary->eval.examples, summary->unreadable_examples,
      summary->last_checkpoint.empty() ? "" : absl::StrCat(", checkpoint ", summary->last_checkpoint));
  return 0;
}

}  // namespace
}  // namespace gradflow::runtime

int main(int argc, char** argv) { return gradflow::runtime::Main(argc, argv); }
