#include "runtime/project/project_main.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "graph/serialize.h"
#include "ops/registry.h"
#include "runtime/cli/flags.h"
#include "runtime/json/json.h"
#include "runtime/project/cost_model.h"
#include "runtime/project/link_fit.h"
#include "runtime/project/planned_graph.h"
#include "runtime/project/replay.h"
#include "runtime/project/step_profile.h"

namespace gradflow::runtime::project {
namespace {

using json::ReadJsonFile;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

absl::StatusOr<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read ", path));
  return text.str();
}

absl::Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

struct Options {
  std::string graph_path;
  std::string trace_path;
  std::string table_path;
  bool from_flops = false;
  double forward_ms = 0;
  double backward_ms = 0;
  int64_t trace_node = 0;
  std::vector<int64_t> nodes = {1, 2, 4, 8, 16, 32};
  int64_t devices_per_node = 8;
  double link_gbps = 50;
  double latency_us = 5;
  std::string link_file;
  std::string intra_node = "nvlink";
  std::string algo = "auto";
  double bucket_mb = 25;
  double first_layers_bucket_mb = 1;
  int64_t lanes = 2;
  double scale_compute = 1;
  double compute_jitter = 0;
  double host_cores = 0;
  int64_t nodes_per_host = 1;
  int64_t compute_threads = 0;
  double cpu_us_per_mb = -1;
  double latency_loaded_us = -1;
  double cpu_us_per_mb_loaded = -1;
  int64_t batch_per_device = 0;
  std::string write_table;
  std::string json_path;
};

std::string Mb(double bytes) { return absl::StrFormat("%.1f", bytes / (1 << 20)); }

std::string SizeName(double bytes) {
  if (bytes >= (1 << 20)) return absl::StrFormat("%g MiB", bytes / (1 << 20));
  return absl::StrFormat("%g KiB", bytes / (1 << 10));
}

}  // namespace

int ProjectMain(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Options o;
  FlagSet flags(
      "runtime project --graph FILE.fb (--from TRACE.json | --table FILE | --from-flops)");
  flags.String("graph", &o.graph_path, "training graph compiled by modelc (required)", "FILE");
  flags.String("from", &o.trace_path,
               "Chrome trace of a run (`runtime --trace`) to take step times from", "TRACE.json");
  flags.String("table", &o.table_path,
               "per-step time table (format: runtime/project/step_profile.h)", "FILE");
  flags.Bool("from-flops", &o.from_flops,
             "spread --forward-ms and --backward-ms over the steps by their FLOPs");
  flags.Double("forward-ms", &o.forward_ms,
               "with --from-flops: forward (and loss) time per iteration");
  flags.Double("backward-ms", &o.backward_ms, "with --from-flops: backward time per iteration");
  flags.Int("trace-node", &o.trace_node, "which node (pid) of the trace to take times from");
  flags.IntList("nodes", &o.nodes, "node (server) counts to project");
  flags.Int("devices-per-node", &o.devices_per_node, "devices (replicas) per node");
  flags.Double("link-gbps", &o.link_gbps, "network bandwidth per server, Gbit/s per direction");
  flags.Double("latency-us", &o.latency_us, "network latency per message round, microseconds");
  flags.String("link-file", &o.link_file,
               "latency and bandwidth measured by `runtime bench-allreduce --out FILE`", "FILE");
  flags.String("intra-node", &o.intra_node, "link between a node's devices: nvlink | pcie | none",
               "LINK");
  flags.String("algo", &o.algo,
               "allreduce between nodes: ring | halving-doubling | auto (the runtime's rule: "
               "ring from 256 KiB)",
               "ALGO");
  flags.Double("bucket-mb", &o.bucket_mb,
               "gradient bucket size cap in MB, as `runtime --bucket-mb`");
  flags.Double("first-layers-bucket-mb", &o.first_layers_bucket_mb,
               "the first layers' own last bucket in MB, as `runtime --first-layers-bucket-mb`");
  flags.Int("lanes", &o.lanes, "buckets reduced at once, as `runtime --comm-lanes`");
  flags.Double("scale-compute", &o.scale_compute,
               "model a device this many times faster (step and update times divided by it)");
  flags.Double("compute-jitter", &o.compute_jitter,
               "coefficient of variation of a device's compute per iteration: each iteration "
               "waits for the slowest device (0: all equally fast)");
  flags.Double("host-cores", &o.host_cores,
               "cores of one host that its nodes' compute and communication share (a CPU-only "
               "host with no cores to spare: the allreduces' CPU time is taken from compute; "
               "0: off, communication has cores of its own)");
  flags.Int("nodes-per-host", &o.nodes_per_host,
            "with --host-cores: nodes (processes) on one host, e.g. N for N local nodes");
  flags.Int("compute-threads", &o.compute_threads,
            "with --host-cores: threads one node computes on (`runtime --threads`; default: "
            "host cores / nodes per host, at least 1)");
  flags.Double("cpu-us-per-mb", &o.cpu_us_per_mb,
               "with --host-cores: CPU microseconds a node spends per MB it sends in an "
               "allreduce (default: the --link-file's cpu_us_per_mb)");
  flags.Double("latency-loaded-us", &o.latency_loaded_us,
               "with --host-cores: latency per message round while compute fills the node's "
               "cores (the scheduler's wake-up delay; default: the --link-file's "
               "latency_loaded_us, else the idle latency throughout)");
  flags.Double("cpu-us-per-mb-loaded", &o.cpu_us_per_mb_loaded,
               "with --host-cores: CPU microseconds per MB sent while compute fills the node's "
               "cores (default: the --link-file's cpu_us_per_mb_loaded, else --cpu-us-per-mb "
               "throughout)");
  flags.Int("batch-per-device", &o.batch_per_device,
            "images per device per iteration (default: the trace's or table's; 32 with "
            "--from-flops)");
  flags.String("write-table", &o.write_table, "also write the step times used as a time table",
               "FILE");
  flags.String("json", &o.json_path, "also write the projections as JSON", "FILE");

  auto usage = [&err](absl::string_view message) {
    err << "runtime project: " << message << "\n";
    return kExitUsage;
  };
  auto failure = [&err](absl::string_view message) {
    err << "runtime project: " << message << "\n";
    return kExitFailure;
  };
  absl::StatusOr<FlagSet::Outcome> outcome = flags.Parse(args);
  if (!outcome.ok()) return usage(outcome.status().message());
  if (*outcome == FlagSet::Outcome::kHelp) {
    out << "Projects how a training graph scales over many nodes: replays one node's step times\n"
           "through the runtime's bucket plan and schedule with an alpha-beta model of each\n"
           "allreduce (bench/README.md, \"Scaling projection\").\n\n"
        << flags.Help();
    return 0;
  }
  if (o.graph_path.empty()) return usage("--graph is required (see --help)");
  const int sources =
      (o.trace_path.empty() ? 0 : 1) + (o.table_path.empty() ? 0 : 1) + (o.from_flops ? 1 : 0);
  if (sources != 1) {
    return usage("give exactly one of --from TRACE.json, --table FILE or --from-flops");
  }
  if (!o.from_flops && (flags.WasSet("forward-ms") || flags.WasSet("backward-ms"))) {
    return usage("--forward-ms and --backward-ms go with --from-flops");
  }
  if (o.from_flops && (!(o.forward_ms > 0) || !(o.backward_ms > 0))) {
    return usage("--from-flops needs positive --forward-ms and --backward-ms");
  }
  if (o.nodes.empty()) return usage("--nodes needs at least one count");
  for (int64_t n : o.nodes) {
    if (n < 1 || n > (int64_t{1} << 20)) {
      return usage(absl::StrCat("--nodes: counts must be in [1, 1048576], got ", n));
    }
  }
  if (o.devices_per_node < 1 || o.devices_per_node > 4096) {
    return usage(absl::StrCat("--devices-per-node must be in [1, 4096], got ", o.devices_per_node));
  }
  if (!(o.bucket_mb > 0) || o.bucket_mb > 1e6) return usage("--bucket-mb must be in (0, 1e6]");
  if (!(o.first_layers_bucket_mb >= 0) || o.first_layers_bucket_mb > 1e6) {
    return usage("--first-layers-bucket-mb must be in [0, 1e6]");
  }
  if (o.lanes < 1 || o.lanes > 64)
    return usage(absl::StrCat("--lanes must be in [1, 64], got ", o.lanes));
  if (!(o.scale_compute > 0) || !std::isfinite(o.scale_compute)) {
    return usage("--scale-compute must be a positive number");
  }
  if (!(o.compute_jitter >= 0) || o.compute_jitter > 10) {
    return usage("--compute-jitter must be in [0, 10]");
  }
  if (flags.WasSet("batch-per-device") &&
      (o.batch_per_device < 1 || o.batch_per_device > (1 << 24))) {
    return usage(absl::StrCat("--batch-per-device must be at least 1, got ", o.batch_per_device));
  }
  if (o.trace_node < 0) return usage("--trace-node must not be negative");
  absl::StatusOr<AlgorithmChoice> algo = ParseAlgorithmChoice(o.algo);
  if (!algo.ok()) return usage(absl::StrCat("--algo: ", algo.status().message()));
  absl::StatusOr<IntraNodeLink> intra = ParseIntraNodeLink(o.intra_node);
  if (!intra.ok()) return usage(absl::StrCat("--intra-node: ", intra.status().message()));
  LinkParams network;
  double link_file_cpu_per_byte = -1;
  double link_file_loaded_latency = -1;
  double link_file_loaded_cpu_per_byte = -1;
  int64_t link_file_busy_threads = 0;
  if (!o.link_file.empty()) {
    if (flags.WasSet("link-gbps") || flags.WasSet("latency-us")) {
      return usage("--link-file replaces --link-gbps and --latency-us: give one or the other");
    }
    absl::StatusOr<std::string> text = ReadText(o.link_file);
    if (!text.ok()) return failure(absl::StrCat("--link-file: ", text.status().message()));
    absl::StatusOr<MeasuredLink> parsed = ParseLinkFile(*text, o.link_file);
    if (!parsed.ok()) return failure(parsed.status().message());
    network = parsed->link;
    link_file_cpu_per_byte = parsed->cpu_seconds_per_sent_byte;
    link_file_loaded_latency = parsed->loaded_latency_seconds;
    link_file_loaded_cpu_per_byte = parsed->loaded_cpu_seconds_per_sent_byte;
    link_file_busy_threads = parsed->busy_threads;
  } else {
    if (!(o.link_gbps > 0) || !std::isfinite(o.link_gbps))
      return usage("--link-gbps must be positive");
    if (!(o.latency_us >= 0) || !std::isfinite(o.latency_us)) {
      return usage("--latency-us must not be negative");
    }
    network = LinkParams::FromGbpsAndMicros(o.link_gbps, o.latency_us);
  }
  Topology topology{.servers = 1,
                    .devices_per_server = o.devices_per_node,
                    .network = network,
                    .intra_node = *intra,
                    .algorithm = *algo};
  if (absl::Status s = CheckTopology(topology); !s.ok()) return usage(s.message());
  HostSharing host;
  if (!(o.host_cores >= 0) || o.host_cores > 1e6) return usage("--host-cores must be in [0, 1e6]");
  if (o.host_cores == 0 && (flags.WasSet("nodes-per-host") || flags.WasSet("compute-threads") ||
                            flags.WasSet("cpu-us-per-mb") || flags.WasSet("latency-loaded-us") ||
                            flags.WasSet("cpu-us-per-mb-loaded"))) {
    return usage(
        "--nodes-per-host, --compute-threads, --cpu-us-per-mb, --latency-loaded-us and "
        "--cpu-us-per-mb-loaded go with --host-cores");
  }
  if (o.host_cores > 0) {
    if (o.devices_per_node != 1) {
      return usage(absl::StrCat(
          "--host-cores models nodes that compute on the host's cores (one CPU device per node), "
          "but --devices-per-node is ",
          o.devices_per_node));
    }
    if (o.nodes_per_host < 1 || o.nodes_per_host > 4096) {
      return usage(absl::StrCat("--nodes-per-host must be in [1, 4096], got ", o.nodes_per_host));
    }
    if (flags.WasSet("compute-threads") && (o.compute_threads < 1 || o.compute_threads > 4096)) {
      return usage(absl::StrCat("--compute-threads must be in [1, 4096], got ", o.compute_threads));
    }
    double cpu_per_byte = link_file_cpu_per_byte;
    if (flags.WasSet("cpu-us-per-mb")) {
      if (!(o.cpu_us_per_mb >= 0) || !std::isfinite(o.cpu_us_per_mb)) {
        return usage("--cpu-us-per-mb must be a number >= 0");
      }
      cpu_per_byte = o.cpu_us_per_mb * 1e-6 / (1 << 20);
    }
    if (cpu_per_byte < 0) {
      return usage(
          "--host-cores needs the allreduce's CPU time per byte: give --cpu-us-per-mb or a "
          "--link-file with cpu_us_per_mb (runtime bench-allreduce --out writes it)");
    }
    double loaded_latency = link_file_loaded_latency;
    if (flags.WasSet("latency-loaded-us")) {
      if (!(o.latency_loaded_us >= 0) || !std::isfinite(o.latency_loaded_us)) {
        return usage("--latency-loaded-us must be a number >= 0");
      }
      loaded_latency = o.latency_loaded_us * 1e-6;
      link_file_busy_threads = 0;  // not the link file's measurement
    }
    double loaded_cpu_per_byte = link_file_loaded_cpu_per_byte;
    if (flags.WasSet("cpu-us-per-mb-loaded")) {
      if (!(o.cpu_us_per_mb_loaded >= 0) || !std::isfinite(o.cpu_us_per_mb_loaded)) {
        return usage("--cpu-us-per-mb-loaded must be a number >= 0");
      }
      loaded_cpu_per_byte = o.cpu_us_per_mb_loaded * 1e-6 / (1 << 20);
    }
    host = {.host_cores = o.host_cores,
            .nodes_per_host = o.nodes_per_host,
            .compute_threads =
                flags.WasSet("compute-threads")
                    ? o.compute_threads
                    : std::max<int64_t>(1, static_cast<int64_t>(o.host_cores) / o.nodes_per_host),
            .cpu_seconds_per_sent_byte = cpu_per_byte,
            .loaded_latency_seconds = loaded_latency,
            .loaded_cpu_seconds_per_sent_byte = loaded_cpu_per_byte};
  }

  absl::StatusOr<graph::Graph> graph = graph::LoadGraph(o.graph_path, ops::StandardOps());
  if (!graph.ok()) return failure(absl::StrCat("--graph: ", graph.status().message()));

  // The batch to plan at: the one the times were measured at.
  std::optional<JsonValue> trace;
  std::string table_text;
  int64_t measured_batch = 0;
  if (!o.trace_path.empty()) {
    absl::StatusOr<JsonValue> parsed = ReadJsonFile(o.trace_path);
    if (!parsed.ok()) return failure(absl::StrCat("--from: ", parsed.status().message()));
    trace = *std::move(parsed);
    absl::StatusOr<TraceHeader> header = ReadTraceHeader(*trace, o.trace_path);
    if (!header.ok()) return failure(header.status().message());
    measured_batch = header->batch_per_node;
    if (measured_batch == 0 && !flags.WasSet("batch-per-device")) {
      return failure(absl::StrCat(
          o.trace_path, ": no otherData.gradflow.batch_per_node: give --batch-per-device"));
    }
  } else if (!o.table_path.empty()) {
    absl::StatusOr<std::string> text = ReadText(o.table_path);
    if (!text.ok()) return failure(absl::StrCat("--table: ", text.status().message()));
    table_text = *std::move(text);
    absl::StatusOr<int64_t> batch = ReadTableBatch(table_text, o.table_path);
    if (!batch.ok()) return failure(batch.status().message());
    measured_batch = *batch;
  }
  int64_t batch = o.from_flops ? 32 : measured_batch;
  if (flags.WasSet("batch-per-device")) {
    if (measured_batch > 0 && o.batch_per_device != measured_batch) {
      return usage(absl::StrCat(
          "--batch-per-device ", o.batch_per_device, ": the step times were measured at batch ",
          measured_batch, "; times at another batch would be a guess (measure at that batch)"));
    }
    batch = o.batch_per_device;
  }
  const int64_t bucket_bytes = std::max<int64_t>(1, static_cast<int64_t>(o.bucket_mb * (1 << 20)));
  absl::StatusOr<PlannedGraph> plan = PlanForProjection(
      *graph, batch, bucket_bytes, static_cast<int64_t>(o.first_layers_bucket_mb * (1 << 20)));
  if (!plan.ok()) return failure(absl::StrCat(o.graph_path, ": ", plan.status().message()));

  absl::StatusOr<StepProfile> profile =
      trace          ? ProfileFromTrace(*trace, o.trace_path, *plan, o.trace_node)
      : o.from_flops ? ProfileFromFlops(*plan, o.forward_ms * 1e-3, o.backward_ms * 1e-3)
                     : ProfileFromTable(table_text, o.table_path, *plan);
  if (!profile.ok()) return failure(profile.status().message());
  if (profile->batch == 0) profile->batch = batch;
  if (!o.write_table.empty()) {
    if (absl::Status s = WriteText(o.write_table, FormatTable(*profile, *plan)); !s.ok()) {
      return failure(absl::StrCat("--write-table: ", s.message()));
    }
  }

  const ReplayOptions replay{.lanes = o.lanes,
                             .scale_compute = o.scale_compute,
                             .compute_jitter = o.compute_jitter,
                             .host = host};
  std::vector<int64_t> counts = o.nodes;
  if (std::find(counts.begin(), counts.end(), 1) == counts.end()) counts.insert(counts.begin(), 1);
  std::vector<Projection> projections;
  for (int64_t n : counts) {
    topology.servers = n;
    absl::StatusOr<Projection> p = Replay(*plan, *profile, topology, replay);
    if (!p.ok()) return failure(p.status().message());
    projections.push_back(*p);
  }
  const Projection& base = projections.front();

  double forward = 0, backward = 0;
  for (size_t s = 0; s < plan->steps.size(); ++s) {
    (plan->steps[s].phase == graph::Phase::kBackward ? backward : forward) +=
        profile->step_seconds[s] / o.scale_compute;
  }
  std::vector<std::string> bucket_sizes;
  for (const PlannedBucket& b : plan->buckets) bucket_sizes.push_back(Mb(b.bytes));
  const LinkParams intra_link = IntraNodeLinkParams(*intra);
  out << absl::StrFormat("graph '%s', %d steps, batch %d per device\n", plan->graph_name,
                         plan->steps.size(), batch);
  out << absl::StrFormat(
      "step times: %s%s\n  forward+loss %.1f ms, backward %.1f ms, host overhead %.1f ms, "
      "updates %.2f ms per iteration\n",
      profile->source,
      o.scale_compute != 1 ? absl::StrFormat(", divided by %g (--scale-compute)", o.scale_compute)
                           : std::string(),
      forward * 1e3, backward * 1e3, profile->overhead_seconds * 1e3,
      plan->gradient_bytes * profile->update_seconds_per_byte / o.scale_compute * 1e3);
  if (profile->compute_cv >= 0) {
    out << absl::StrFormat(
        "  the traced node's compute per iteration varied by %.1f%% (std/mean)\n",
        100 * profile->compute_cv);
  }
  if (o.compute_jitter > 0) {
    out << absl::StrFormat(
        "stragglers: compute varies by %.3g%% per device and iteration; each iteration waits for "
        "the slowest device\n  (compute ms is the slowest device's)\n",
        100 * o.compute_jitter);
  }
  out << absl::StrFormat(
      "gradients: %s MB in %d bucket%s of at most %g MB (MB = 2^20 bytes): %s; "
      "%d lane%s\n",
      Mb(plan->gradient_bytes), plan->buckets.size(), plan->buckets.size() == 1 ? "" : "s",
      o.bucket_mb, absl::StrJoin(bucket_sizes, ", "), o.lanes, o.lanes == 1 ? "" : "s");
  out << absl::StrFormat(
      "network: %.4g Gbit/s, %.4g us per message round, %s between nodes\n", network.gbps(),
      network.latency_seconds * 1e6,
      o.algo == "auto" ? "auto (ring from 256 KiB, halving-doubling below)" : o.algo);
  if (o.devices_per_node > 1) {
    out << absl::StrFormat(
        "inside a node: %d devices over %s (%.4g GB/s, %.4g us per step): reduce, allreduce "
        "between nodes, broadcast\n",
        o.devices_per_node, IntraNodeLinkName(*intra), intra_link.bytes_per_second / 1e9,
        intra_link.latency_seconds * 1e6);
  }
  if (host.enabled()) {
    out << absl::StrFormat(
        "host: %g cores shared by up to %d node%s x %d compute thread%s and their allreduces "
        "(%.4g us CPU per MB sent);\n  compute ms is the compute stream's busy time, stretched "
        "where it shares cores\n",
        host.host_cores, host.nodes_per_host, host.nodes_per_host == 1 ? "" : "s",
        host.compute_threads, host.compute_threads == 1 ? "" : "s",
        host.cpu_seconds_per_sent_byte * 1e6 * (1 << 20));
    if (host.loaded_latency_seconds >= 0) {
      out << absl::StrFormat(
          "  %.5g us per message round while compute fills the cores (%s), %.5g us otherwise\n",
          host.loaded_latency_seconds * 1e6,
          link_file_busy_threads > 0
              ? absl::StrFormat(
                    "measured beside %d busy thread%s per rank%s", link_file_busy_threads,
                    link_file_busy_threads == 1 ? "" : "s",
                    link_file_busy_threads == host.compute_threads
                        ? ""
                        : absl::StrFormat(", not the %d computing here", host.compute_threads))
              : std::string("--latency-loaded-us"),
          network.latency_seconds * 1e6);
    }
    if (host.loaded_cpu_seconds_per_sent_byte >= 0) {
      out << absl::StrFormat("  %.5g us CPU per MB sent while compute fills the cores (%s)\n",
                             host.loaded_cpu_seconds_per_sent_byte * 1e6 * (1 << 20),
                             flags.WasSet("cpu-us-per-mb-loaded")
                                 ? "--cpu-us-per-mb-loaded"
                                 : "the link file's cpu_us_per_mb_loaded");
    }
  }
  out << "\n"
      << absl::StrFormat("%6s %8s %9s %10s %10s %10s %10s %9s %9s %9s\n", "nodes", "devices",
                         "iter ms", "compute ms", "exposed ms", "efficiency", "images/s",
                         "peak Gb/s", "bwd Gb/s", "mean Gb/s");
  std::string json = "{\"projections\": [";
  bool first = true;
  for (const Projection& p : projections) {
    if (std::find(o.nodes.begin(), o.nodes.end(), p.servers) == o.nodes.end()) continue;
    const double efficiency = base.iteration_seconds / p.iteration_seconds;
    const double images = static_cast<double>(p.devices * batch) / p.iteration_seconds;
    out << absl::StrFormat(
        "%6d %8d %9.1f %10.1f %10.1f %9.1f%% %10.1f %9.2f %9.2f %9.2f\n", p.servers, p.devices,
        p.iteration_seconds * 1e3, p.compute_seconds * 1e3, p.exposed_seconds * 1e3,
        100 * efficiency, images, p.peak_network_bytes_per_second * 8 / 1e9,
        p.backward_network_bytes_per_second * 8 / 1e9, p.mean_network_bytes_per_second * 8 / 1e9);
    absl::StrAppend(
        &json, first ? "" : ",",
        absl::StrFormat(
            "\n  {\"nodes\": %d, \"devices\": %d, \"iteration_seconds\": %.9g, "
            "\"compute_seconds\": %.9g, \"exposed_seconds\": %.9g, \"efficiency\": %.6g, "
            "\"images_per_second\": %.6g, \"peak_gbps\": %.6g, \"backward_gbps\": %.6g, "
            "\"mean_gbps\": %.6g, \"communication_cpu_seconds\": %.9g}",
            p.servers, p.devices, p.iteration_seconds, p.compute_seconds, p.exposed_seconds,
            efficiency, images, p.peak_network_bytes_per_second * 8 / 1e9,
            p.backward_network_bytes_per_second * 8 / 1e9,
            p.mean_network_bytes_per_second * 8 / 1e9, p.communication_cpu_seconds));
    first = false;
  }
  absl::StrAppend(&json, "\n]}\n");
  out << "efficiency: images/s per device against 1 node. Network traffic sent per node: peak: "
         "the most that\nbackward releases within a tenth of its time; bwd: all of it over the "
         "backward pass; mean: over the iteration\n";

  const int64_t most = *std::max_element(o.nodes.begin(), o.nodes.end());
  if (most > 1) {
    out << absl::StrFormat("\none allreduce between %d nodes on this network (no overlap):\n",
                           most);
    out << absl::StrFormat("%10s %10s %20s\n", "size", "ring ms", "halving-doubling ms");
    for (double size : {64.0 * 1024, 256.0 * 1024, 1024.0 * 1024, 4.0 * (1 << 20), 25.0 * (1 << 20),
                        100.0 * (1 << 20)}) {
      out << absl::StrFormat("%10s %10.3f %20.3f\n", SizeName(size),
                             RingAllreduce(most, size).Seconds(network) * 1e3,
                             HalvingDoublingAllreduce(most, size, network).Seconds(network) * 1e3);
    }
  }
  if (!o.json_path.empty()) {
    if (absl::Status s = WriteText(o.json_path, json); !s.ok()) {
      return failure(absl::StrCat("--json: ", s.message()));
    }
  }
  return 0;
}

}  // namespace gradflow::runtime::project
