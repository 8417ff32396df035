// `runtime bench-allreduce`: times the real Gloo allreduce between N local processes over
// loopback and fits the cost model's latency and bandwidth to it, so `runtime project` can be
// checked against runs on this machine. Without --rendezvous the command starts the N processes
// itself (launch::Supervise), each re-running it with --node-rank and a private FileStore.
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "runtime/cli/flags.h"
#include "runtime/dist/gloo_collectives.h"
#include "runtime/dist/rendezvous.h"
#include "runtime/dist/store.h"
#include "runtime/launch/private_dir.h"
#include "runtime/launch/supervise.h"
#include "runtime/project/cost_model.h"
#include "runtime/project/link_fit.h"
#include "runtime/project/project_main.h"

namespace gradflow::runtime::project {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

struct BenchOptions {
  int64_t nodes = 0;
  std::string sizes = "256K,1M,4M,16M,64M";
  std::string algo = "ring";
  int64_t iters = 10;
  int64_t warmup = 2;
  double timeout_seconds = 120;
  std::string out_path;
  int64_t node_rank = -1;
  std::string rendezvous;
  std::string job_id = "bench-allreduce";
  std::string result_path;
};

// "64K", "1M", "4096": bytes, a multiple of 4 (float elements).
absl::StatusOr<std::vector<int64_t>> ParseSizes(const std::string& text) {
  std::vector<int64_t> sizes;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int64_t scale = 1;
    if (!part.empty() && (part.back() == 'K' || part.back() == 'k')) scale = int64_t{1} << 10;
    if (!part.empty() && (part.back() == 'M' || part.back() == 'm')) scale = int64_t{1} << 20;
    if (scale != 1) part.remove_suffix(1);
    int64_t value = 0;
    if (!absl::SimpleAtoi(part, &value) || value < 1 || value > (int64_t{1} << 30) / scale) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--sizes: expected sizes like 64K,1M,4096 (bytes, at most 1024M), got '", text, "'"));
    }
    sizes.push_back(std::max<int64_t>(4, value * scale / 4 * 4));
  }
  if (sizes.size() < 2) return absl::InvalidArgumentError("--sizes: give at least two sizes");
  return sizes;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// CPU time of this whole process: every thread (the caller's reduction, Gloo's I/O thread) and
// the kernel's work on their behalf (the TCP copies out of and into their buffers).
double ProcessCpuSeconds() {
  timespec t{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// Busy CPU time of the whole host so far (user, nice, system, irq and softirq from /proc/stat), or
// a negative number when it cannot be read. A process's own CPU time leaves out the softirq work
// of loopback TCP (the receive path runs there, charged to no process), which a rank's allreduce
// costs the host all the same: on a quiet host the busy time during an allreduce is its cost.
double HostBusySeconds() {
  std::ifstream stat("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0;
  if (!(stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq) ||
      cpu != "cpu") {
    return -1;
  }
  return (user + nice + system + irq + softirq) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// One node of the benchmark: meets the others, times each size, and (rank 0) writes
// "bytes seconds process_cpu_seconds host_cpu_seconds" lines to the result file: the median
// time and process CPU time of one allreduce, and the host's busy time during the timed
// allreduces per allreduce and rank (-1 without /proc/stat). The host's is summed over the
// iterations because /proc/stat counts in clock ticks (10 ms), longer than small allreduces.
absl::Status RunNode(const BenchOptions& o, const std::vector<int64_t>& sizes) {
  absl::StatusOr<dist::RendezvousSpec> spec = dist::ParseRendezvous(o.rendezvous);
  if (!spec.ok())
    return absl::InvalidArgumentError(absl::StrCat("--rendezvous: ", spec.status().message()));
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(o.timeout_seconds * 1000));
  absl::StatusOr<std::unique_ptr<dist::Store>> store = dist::Store::Open(*spec, o.job_id, timeout);
  if (!store.ok()) return store.status();
  dist::GlooOptions gloo{.lanes = 1,
                         .timeout = timeout,
                         .algorithm = o.algo,
                         .transport = "tcp",
                         .hostname = "127.0.0.1"};
  absl::StatusOr<std::unique_ptr<dist::Collectives>> collectives = dist::CreateGlooCollectives(
      **store, static_cast<int>(o.node_rank), static_cast<int>(o.nodes), gloo);
  if (!collectives.ok()) return collectives.status();
  // Buffers stay alive to the end: Gloo keeps the algorithm set up per buffer address.
  std::vector<std::vector<float>> buffers;
  std::string results;
  for (int64_t bytes : sizes) {
    buffers.emplace_back(static_cast<size_t>(bytes / 4), 1.0f);
    std::span<float> data(buffers.back());
    std::vector<double> seconds;
    std::vector<double> cpu_seconds;
    double host_busy = 0;
    for (int64_t i = 0; i < o.warmup + o.iters; ++i) {
      if (absl::Status s = dist::BarrierSync(**collectives); !s.ok()) return s;
      const double host_start = HostBusySeconds();
      const double cpu_start = ProcessCpuSeconds();
      const auto start = std::chrono::steady_clock::now();
      if (absl::Status s = dist::AllreduceSumRepeatedSync(**collectives, data, 0); !s.ok())
        return s;
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double cpu = ProcessCpuSeconds() - cpu_start;
      const double host_end = HostBusySeconds();
      if (i >= o.warmup) {
        seconds.push_back(elapsed);
        cpu_seconds.push_back(cpu);
        host_busy = host_start < 0 || host_end < 0 || host_busy < 0
                        ? -1
                        : host_busy + (host_end - host_start);
      }
    }
    const double host_per_rank =
        host_busy < 0 ? -1 : host_busy / static_cast<double>(o.iters * o.nodes);
    absl::StrAppend(&results, bytes, " ", absl::StrFormat("%.9g", Median(seconds)), " ",
                    absl::StrFormat("%.9g", Median(cpu_seconds)), " ",
                    absl::StrFormat("%.9g", host_per_rank), "\n");
  }
  if (o.node_rank == 0 && !o.result_path.empty()) {
    std::ofstream out(o.result_path, std::ios::trunc);
    out << results;
    out.close();
    if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", o.result_path));
  }
  return absl::OkStatus();
}

// One size's results; sample.cpu_seconds is the process's CPU time.
struct BenchRow {
  AllreduceSample sample;
  double host_cpu_seconds = -1;  // the host's busy time per allreduce and rank
};

absl::StatusOr<std::vector<BenchRow>> ReadResults(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("node 0 left no results in ", path));
  std::vector<BenchRow> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    AllreduceSample s;
    double host_cpu = -1;
    if (words.size() != 4 || !absl::SimpleAtod(words[0], &s.bytes) ||
        !absl::SimpleAtod(words[1], &s.seconds) || !absl::SimpleAtod(words[2], &s.cpu_seconds) ||
        !absl::SimpleAtod(words[3], &host_cpu)) {
      return absl::DataLossError(absl::StrCat(path, ": malformed line '", line, "'"));
    }
    rows.push_back({.sample = s, .host_cpu_seconds = host_cpu});
  }
  return rows;
}

}  // namespace

int BenchAllreduceMain(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  BenchOptions o;
  FlagSet flags("runtime bench-allreduce --nodes N");
  flags.Int("nodes", &o.nodes, "processes (ranks) to run the allreduce between (required, >= 2)");
  flags.String("sizes", &o.sizes, "message sizes in bytes (K = 2^10, M = 2^20)", "LIST");
  flags.String("algo", &o.algo, "ring | halving-doubling (the model is fitted to this one)",
               "ALGO");
  flags.Int("iters", &o.iters, "timed allreduces per size (the median is kept)");
  flags.Int("warmup", &o.warmup, "untimed allreduces per size first");
  flags.Double("timeout", &o.timeout_seconds, "seconds any wait on a peer may take");
  flags.String("out", &o.out_path, "write the fitted link for `runtime project --link-file`",
               "FILE");
  flags.Int("node-rank", &o.node_rank, "(set by the launcher) this process's rank");
  flags.String("rendezvous", &o.rendezvous, "(set by the launcher) file:///dir", "URI");
  flags.String("job-id", &o.job_id, "(set by the launcher) rendezvous job id", "ID");
  flags.String("result", &o.result_path, "(set by the launcher) where rank 0 writes timings",
               "FILE");
  auto usage = [&err](absl::string_view message) {
    err << "runtime bench-allreduce: " << message << "\n";
    return kExitUsage;
  };
  auto failure = [&err](absl::string_view message) {
    err << "runtime bench-allreduce: " << message << "\n";
    return kExitFailure;
  };
  absl::StatusOr<FlagSet::Outcome> outcome = flags.Parse(args);
  if (!outcome.ok()) return usage(outcome.status().message());
  if (*outcome == FlagSet::Outcome::kHelp) {
    out << "Measures Gloo's allreduce between N local processes over loopback and fits latency\n"
           "and bandwidth (alpha, beta) for `runtime project`.\n\n"
        << flags.Help();
    return 0;
  }
  if (o.nodes < 2 || o.nodes > 64)
    return usage(absl::StrCat("--nodes must be in [2, 64], got ", o.nodes));
  if (o.algo != "ring" && o.algo != "halving-doubling") {
    return usage(absl::StrCat("--algo: expected ring or halving-doubling, got '", o.algo, "'"));
  }
  if (o.iters < 1 || o.iters > 100000) return usage("--iters must be in [1, 100000]");
  if (o.warmup < 0 || o.warmup > 100000) return usage("--warmup must be in [0, 100000]");
  if (!(o.timeout_seconds > 0) || o.timeout_seconds > 86400)
    return usage("--timeout must be in (0, 86400]");
  absl::StatusOr<std::vector<int64_t>> sizes = ParseSizes(o.sizes);
  if (!sizes.ok()) return usage(sizes.status().message());

  if (!o.rendezvous.empty()) {
    if (o.node_rank < 0 || o.node_rank >= o.nodes) {
      return usage(absl::StrCat("--node-rank must be in [0, ", o.nodes, ") with --rendezvous"));
    }
    if (absl::Status s = RunNode(o, *sizes); !s.ok()) {
      err << "runtime bench-allreduce: node " << o.node_rank << ": " << s.message() << "\n";
      err.flush();
      ::_exit(kExitFailure);  // peers may be gone: do not wait on their connections
    }
    return 0;
  }
  if (o.node_rank >= 0) return usage("--node-rank needs --rendezvous");

  absl::StatusOr<std::string> dir = launch::MakePrivateDirectory("gradflow-bench-allreduce");
  if (!dir.ok()) return failure(dir.status().message());
  char self[4096];
  const ssize_t length = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (length <= 0) return failure("cannot find this program's path in /proc/self/exe");
  const std::string result_path = absl::StrCat(*dir, "/result.txt");
  launch::SuperviseOptions supervise;
  supervise.label = "bench";
  for (int64_t rank = 0; rank < o.nodes; ++rank) {
    launch::NodeCommand node{.program = std::string(self, static_cast<size_t>(length))};
    node.args = {"bench-allreduce",
                 "--nodes",
                 absl::StrCat(o.nodes),
                 "--sizes",
                 o.sizes,
                 "--algo",
                 o.algo,
                 "--iters",
                 absl::StrCat(o.iters),
                 "--warmup",
                 absl::StrCat(o.warmup),
                 "--timeout",
                 absl::StrCat(o.timeout_seconds),
                 "--node-rank",
                 absl::StrCat(rank),
                 "--rendezvous",
                 absl::StrCat("file://", *dir),
                 "--result",
                 result_path};
    supervise.nodes.push_back(std::move(node));
  }
  absl::StatusOr<launch::SuperviseResult> result = launch::Supervise(supervise);
  absl::StatusOr<std::vector<BenchRow>> rows =
      result.ok() && result->exit_code == 0
          ? ReadResults(result_path)
          : absl::StatusOr<std::vector<BenchRow>>(absl::InternalError(""));
  (void)launch::RemoveTree(*dir);
  if (!result.ok()) return failure(result.status().message());
  if (result->exit_code != 0) return failure(result->summary);
  if (!rows.ok()) return failure(rows.status().message());
  // The CPU cost charged to compute: the host's busy time when /proc/stat was readable (it
  // includes the loopback's softirq work), else the process's own.
  bool host_cpu = true;
  for (const BenchRow& r : *rows) host_cpu = host_cpu && r.host_cpu_seconds >= 0;
  std::vector<AllreduceSample> samples;
  for (const BenchRow& r : *rows) {
    samples.push_back(r.sample);
    if (host_cpu) samples.back().cpu_seconds = r.host_cpu_seconds;
  }

  const AllreduceAlgorithm algorithm =
      o.algo == "ring" ? AllreduceAlgorithm::kRing : AllreduceAlgorithm::kHalvingDoubling;
  absl::StatusOr<LinkParams> link = FitLink(algorithm, o.nodes, samples);
  if (!link.ok()) return failure(link.status().message());
  absl::StatusOr<double> cpu_per_byte = FitCpuPerSentByte(algorithm, o.nodes, *link, samples);
  if (!cpu_per_byte.ok()) return failure(cpu_per_byte.status().message());
  out << absl::StrFormat(
      "Gloo %s allreduce between %d local processes (loopback, TCP), median of %d; CPU per rank: "
      "the process's, and the host's busy time over the ranks (/proc/stat, with softirq)\n%12s "
      "%12s %12s %10s %13s %13s %12s\n",
      o.algo, o.nodes, o.iters, "bytes", "measured ms", "model ms", "GB/s", "proc cpu ms",
      "host cpu ms", "cpu us/MB");
  for (size_t i = 0; i < samples.size(); ++i) {
    const AllreduceSample& s = samples[i];
    const CollectiveCost cost = Allreduce(algorithm, o.nodes, s.bytes, *link);
    out << absl::StrFormat("%12.0f %12.3f %12.3f %10.2f %13.3f %13.3f %12.1f\n", s.bytes,
                           s.seconds * 1e3, cost.Seconds(*link) * 1e3, s.bytes / s.seconds / 1e9,
                           (*rows)[i].sample.cpu_seconds * 1e3, (*rows)[i].host_cpu_seconds * 1e3,
                           s.cpu_seconds / cost.sent_bytes * 1e6 * (1 << 20));
  }
  out << absl::StrFormat(
      "fit: --latency-us %.4g --link-gbps %.4g; CPU per MB a rank sends: %.4g us "
      "(cpu_us_per_mb, from the %s CPU time)\n",
      link->latency_seconds * 1e6, link->gbps(), *cpu_per_byte * 1e6 * (1 << 20),
      host_cpu ? "host's busy" : "process's");
  if (!o.out_path.empty()) {
    std::ofstream file(o.out_path, std::ios::trunc);
    file << FormatLinkFile({.link = *link, .cpu_seconds_per_sent_byte = *cpu_per_byte},
                           absl::StrFormat("runtime bench-allreduce: Gloo %s, %d local "
                                           "processes over loopback",
                                           o.algo, o.nodes));
    file.close();
    if (!file) return failure(absl::StrCat("--out: cannot write ", o.out_path));
  }
  return 0;
}

}  // namespace gradflow::runtime::project
