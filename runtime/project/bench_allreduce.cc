// `runtime bench-allreduce`: times the real Gloo allreduce between N local processes over
// loopback and fits the cost model's latency and bandwidth to it, so `runtime project` can be
// checked against runs on this machine. Without --rendezvous the command starts the N processes
// itself (launch::Supervise), each re-running it with --node-rank and a private FileStore.
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>

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
  int64_t busy_threads = 0;
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

// Cores this process may run on, as `nproc` counts them (the validation passes nproc as
// --host-cores).
int64_t UsableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) {
    return CPU_COUNT(&set);
  }
  return std::max<int64_t>(1, ::sysconf(_SC_NPROCESSORS_ONLN));
}

// Threads that keep a core busy with float arithmetic for as long as they live, at the nice level
// the process has (training's): the load a node's compute threads put on the host while its
// allreduces run. What they compute does not matter to the scheduler, only that they are always
// runnable; a multiply-add loop over a small array keeps a core as busy as a convolution does
// (not its memory bandwidth: see bench/README.md).
class BusyThreads {
 public:
  explicit BusyThreads(int64_t count) {
    for (int64_t i = 0; i < count; ++i) threads_.emplace_back([this] { Spin(); });
  }
  ~BusyThreads() {
    stop_.store(true, std::memory_order_relaxed);
    for (std::thread& t : threads_) t.join();
  }
  BusyThreads(const BusyThreads&) = delete;
  BusyThreads& operator=(const BusyThreads&) = delete;

  // CPU time the busy threads have had so far: subtracted from the process's, it leaves what
  // the allreduce's own threads cost beside them.
  double CpuSeconds() {
    double total = 0;
    for (std::thread& t : threads_) {
      clockid_t clock;
      timespec used{};
      if (::pthread_getcpuclockid(t.native_handle(), &clock) == 0 &&
          ::clock_gettime(clock, &used) == 0) {
        total += static_cast<double>(used.tv_sec) + static_cast<double>(used.tv_nsec) * 1e-9;
      }
    }
    return total;
  }

 private:
  void Spin() {
    std::vector<float> values(256, 0.5f);
    while (!stop_.load(std::memory_order_relaxed)) {
      // A few microseconds per round; x -> 0.999 x + 0.001 stays near 1 (no denormals).
      for (int round = 0; round < 64; ++round) {
        for (float& x : values) x = x * 0.999f + 0.001f;
      }
      sink_.store(values[0], std::memory_order_relaxed);  // the loop's result is used
    }
  }

  std::atomic<bool> stop_{false};
  std::atomic<float> sink_{0};
  std::vector<std::thread> threads_;
};

// One node of the benchmark: meets the others, times each size, and (rank 0) writes
// "bytes seconds process_cpu_seconds host_cpu_seconds loaded_seconds loaded_cpu_seconds" lines
// to the result file: the median time and process CPU time of one allreduce, the host's busy
// time during the timed allreduces per allreduce and rank (-1 without /proc/stat), and with
// --busy-threads the median time and process CPU time (less the busy threads') of one allreduce
// while every rank also runs that many busy threads (-1 without). The
// host's is summed over the iterations because /proc/stat counts in clock ticks (10 ms), longer
// than small allreduces.
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
  std::vector<std::string> rows;
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
    rows.push_back(absl::StrCat(bytes, " ", absl::StrFormat("%.9g", Median(seconds)), " ",
                                absl::StrFormat("%.9g", Median(cpu_seconds)), " ",
                                absl::StrFormat("%.9g", host_per_rank)));
  }
  // The same allreduces again (the same buffers: nothing new to set up), now beside busy threads
  // in every rank. Their CPU time is not measured: the busy threads would be counted in it.
  std::vector<double> loaded(sizes.size(), -1);
  std::vector<double> loaded_cpu(sizes.size(), -1);  // the process's CPU less the busy threads'
  if (o.busy_threads > 0) {
    BusyThreads busy(o.busy_threads);
    for (size_t k = 0; k < sizes.size(); ++k) {
      std::fill(buffers[k].begin(), buffers[k].end(), 1.0f);  // sums stay far from overflow
      std::vector<double> seconds;
      std::vector<double> cpu_seconds;
      for (int64_t i = 0; i < o.warmup + o.iters; ++i) {
        if (absl::Status s = dist::BarrierSync(**collectives); !s.ok()) return s;
        const double cpu_start = ProcessCpuSeconds() - busy.CpuSeconds();
        const auto start = std::chrono::steady_clock::now();
        if (absl::Status s = dist::AllreduceSumRepeatedSync(**collectives, buffers[k], 0); !s.ok())
          return s;
        const double elapsed =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const double cpu = ProcessCpuSeconds() - busy.CpuSeconds() - cpu_start;
        if (i >= o.warmup) {
          seconds.push_back(elapsed);
          cpu_seconds.push_back(cpu);
        }
      }
      loaded[k] = Median(seconds);
      loaded_cpu[k] = Median(cpu_seconds);
    }
  }
  std::string results;
  for (size_t k = 0; k < rows.size(); ++k) {
    absl::StrAppend(&results, rows[k], " ", absl::StrFormat("%.9g", loaded[k]), " ",
                    absl::StrFormat("%.9g", loaded_cpu[k]), "\n");
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
  double host_cpu_seconds = -1;    // the host's busy time per allreduce and rank
  double loaded_seconds = -1;      // beside --busy-threads; -1: not measured
  double loaded_cpu_seconds = -1;  // the process's CPU then, less the busy threads'
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
    double loaded = -1;
    double loaded_cpu = -1;
    if (words.size() != 6 || !absl::SimpleAtod(words[0], &s.bytes) ||
        !absl::SimpleAtod(words[1], &s.seconds) || !absl::SimpleAtod(words[2], &s.cpu_seconds) ||
        !absl::SimpleAtod(words[3], &host_cpu) || !absl::SimpleAtod(words[4], &loaded) ||
        !absl::SimpleAtod(words[5], &loaded_cpu)) {
      return absl::DataLossError(absl::StrCat(path, ": malformed line '", line, "'"));
    }
    rows.push_back({.sample = s,
                    .host_cpu_seconds = host_cpu,
                    .loaded_seconds = loaded,
                    .loaded_cpu_seconds = loaded_cpu});
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
  flags.Int("busy-threads", &o.busy_threads,
            "then time the same allreduces again while each rank also runs this many threads of "
            "float arithmetic (training's compute threads per node, e.g. cores / N), and fit "
            "the latency per round and the CPU per byte under that load (latency_loaded_us, "
            "cpu_us_per_mb_loaded; 0: idle only)");
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
           "and bandwidth (alpha, beta) for `runtime project`, and the CPU time per byte sent.\n"
           "With --busy-threads T it times the allreduces again while each rank computes on T\n"
           "busy threads, as training does, and fits the latency per round under that load with\n"
           "the bandwidth term fixed (the idle beta, slowed by the host's core sharing as\n"
           "`runtime project --host-cores` charges it): the wake-up delay a ring step waits for\n"
           "when the peer's core is busy computing (latency_loaded_us, busy_threads), and the\n"
           "CPU per byte beside that compute (cpu_us_per_mb_loaded).\n\n"
        << flags.Help();
    return 0;
  }
  if (o.nodes < 2 || o.nodes > 64)
    return usage(absl::StrCat("--nodes must be in [2, 64], got ", o.nodes));
  if (o.algo != "ring" && o.algo != "halving-doubling") {
    return usage(absl::StrCat("--algo: expected ring or halving-doubling, got '", o.algo, "'"));
  }
  if (o.iters < 1 || o.iters > 100000) return usage("--iters must be in [1, 100000]");
  if (o.busy_threads < 0 || o.busy_threads > 256)
    return usage(absl::StrCat("--busy-threads must be in [0, 256], got ", o.busy_threads));
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
                 "--busy-threads",
                 absl::StrCat(o.busy_threads),
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
  MeasuredLink measured{.link = *link, .cpu_seconds_per_sent_byte = *cpu_per_byte};
  std::string load_comment;
  if (o.busy_threads > 0) {
    // The allreduce's CPU per byte beside compute: the process's CPU less the busy threads', the
    // softirq work /proc/stat cannot separate from theirs scaled alike. So the figure stays on
    // the idle one's footing (the host's busy time): idle x loaded process CPU / idle process CPU.
    std::vector<AllreduceSample> idle_process, loaded_process;
    for (const BenchRow& r : *rows) {
      idle_process.push_back(r.sample);
      loaded_process.push_back({.bytes = r.sample.bytes,
                                .seconds = r.loaded_seconds,
                                .cpu_seconds = r.loaded_cpu_seconds});
    }
    absl::StatusOr<double> idle_process_cpu =
        FitCpuPerSentByte(algorithm, o.nodes, *link, idle_process);
    absl::StatusOr<double> loaded_process_cpu =
        FitCpuPerSentByte(algorithm, o.nodes, *link, loaded_process);
    if (!idle_process_cpu.ok() || !loaded_process_cpu.ok() || !(*idle_process_cpu > 0)) {
      return failure("the allreduce's CPU time could not be measured beside the busy threads");
    }
    const double loaded_cpu_per_byte = *cpu_per_byte * *loaded_process_cpu / *idle_process_cpu;
    // The ranks all run on this host, as the local nodes of the validation do.
    const HostSharing load{.host_cores = static_cast<double>(UsableCores()),
                           .nodes_per_host = o.nodes,
                           .compute_threads = o.busy_threads,
                           .cpu_seconds_per_sent_byte = *cpu_per_byte,
                           .loaded_cpu_seconds_per_sent_byte = loaded_cpu_per_byte};
    std::vector<AllreduceSample> loaded;
    for (const BenchRow& r : *rows) {
      loaded.push_back({.bytes = r.sample.bytes, .seconds = r.loaded_seconds});
    }
    absl::StatusOr<double> alpha = FitLoadedLatency(algorithm, o.nodes, *link, load, loaded);
    if (!alpha.ok()) return failure(absl::StrCat("loaded fit: ", alpha.status().message()));
    measured.loaded_latency_seconds = *alpha;
    measured.busy_threads = o.busy_threads;
    measured.loaded_cpu_seconds_per_sent_byte = loaded_cpu_per_byte;
    load_comment = absl::StrFormat("; loaded: %d busy thread%s per rank on %g cores",
                                   o.busy_threads, o.busy_threads == 1 ? "" : "s", load.host_cores);
    out << absl::StrFormat(
        "\nthe same beside %d busy thread%s per rank (%g cores): model = rounds x loaded latency "
        "+ idle bandwidth time slowed by core sharing at the loaded CPU per byte; CPU: the "
        "process's (not the host's), idle and loaded (less the busy threads')\n"
        "%12s %12s %12s %12s %12s %13s %13s\n",
        o.busy_threads, o.busy_threads == 1 ? "" : "s", load.host_cores, "bytes", "idle ms",
        "loaded ms", "model ms", "shared bw ms", "proc cpu ms", "loaded cpu ms");
    for (size_t i = 0; i < loaded.size(); ++i) {
      const double bytes = loaded[i].bytes;
      out << absl::StrFormat(
          "%12.0f %12.3f %12.3f %12.3f %12.3f %13.3f %13.3f\n", bytes, samples[i].seconds * 1e3,
          loaded[i].seconds * 1e3,
          LoadedAllreduceSeconds(algorithm, o.nodes, bytes, *link, load, *alpha) * 1e3,
          LoadedAllreduceSeconds(algorithm, o.nodes, bytes, *link, load, 0) * 1e3,
          (*rows)[i].sample.cpu_seconds * 1e3, (*rows)[i].loaded_cpu_seconds * 1e3);
    }
    out << absl::StrFormat(
        "loaded fit: --latency-loaded-us %.4g per round (idle: %.4g; bandwidth fixed from the "
        "idle fit); --cpu-us-per-mb-loaded %.4g (idle: %.4g; process CPU %.4g against %.4g us "
        "idle)\n",
        *alpha * 1e6, link->latency_seconds * 1e6, loaded_cpu_per_byte * 1e6 * (1 << 20),
        *cpu_per_byte * 1e6 * (1 << 20), *loaded_process_cpu * 1e6 * (1 << 20),
        *idle_process_cpu * 1e6 * (1 << 20));
  }
  if (!o.out_path.empty()) {
    std::ofstream file(o.out_path, std::ios::trunc);
    file << FormatLinkFile(measured, absl::StrFormat("runtime bench-allreduce: Gloo %s, %d local "
                                                     "processes over loopback%s",
                                                     o.algo, o.nodes, load_comment));
    file.close();
    if (!file) return failure(absl::StrCat("--out: cannot write ", o.out_path));
  }
  return 0;
}

}  // namespace gradflow::runtime::project
