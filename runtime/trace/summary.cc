#include "runtime/trace/summary.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/json/json.h"

namespace gradflow::runtime::trace {
namespace {

constexpr const char* kUsage =
    "usage: runtime trace-summary FILE.json\n"
    "Summarizes a trace written by `runtime --trace`: time per op type, the top ops, compute vs\n"
    "communication vs exposed communication per iteration, and data-loader stalls.\n";

struct OpTotals {
  std::string op;
  int64_t count = 0;
  double total_us = 0;
};

// One node's iteration, in microseconds.
struct IterationTotals {
  double wall_us = 0;
  double compute_us = 0;
  double exposed_us = 0;
  double data_wait_us = 0;
  std::vector<std::pair<double, double>> allreduce;  // [begin, end) of its bucket allreduces
};

double UnionLength(std::vector<std::pair<double, double>> intervals) {
  std::sort(intervals.begin(), intervals.end());
  double total = 0;
  double begin = 0;
  double end = -1;
  bool open = false;
  for (const auto& [b, e] : intervals) {
    if (!open || b > end) {
      if (open) total += end - begin;
      begin = b;
      end = e;
      open = true;
    } else {
      end = std::max(end, e);
    }
  }
  if (open) total += end - begin;
  return total;
}

// Sorted, disjoint intervals covering the same points as `intervals`.
std::vector<std::pair<double, double>> Merged(std::vector<std::pair<double, double>> intervals) {
  std::sort(intervals.begin(), intervals.end());
  std::vector<std::pair<double, double>> merged;
  for (const auto& [b, e] : intervals) {
    if (!merged.empty() && b <= merged.back().second) {
      merged.back().second = std::max(merged.back().second, e);
    } else {
      merged.push_back({b, e});
    }
  }
  return merged;
}

// How much of [begin, end) the sorted disjoint `cover` covers.
double CoveredLength(const std::vector<std::pair<double, double>>& cover, double begin,
                     double end) {
  double covered = 0;
  auto it = std::lower_bound(cover.begin(), cover.end(), std::make_pair(begin, begin));
  if (it != cover.begin()) --it;
  for (; it != cover.end() && it->first < end; ++it) {
    covered += std::max(0.0, std::min(end, it->second) - std::max(begin, it->first));
  }
  return covered;
}

// A node's allreduce operations on its collective lanes, and its backward ops.
struct LaneOverlap {
  std::vector<std::pair<double, double>> backward;
  std::vector<std::pair<double, double>> allreduces;
  std::set<int64_t> lane_tids;
};

std::string Percent(double part, double whole) {
  return whole > 0 ? absl::StrFormat("%5.1f%%", 100 * part / whole) : std::string("    - ");
}

}  // namespace

absl::StatusOr<std::string> SummarizeTrace(const std::string& json, const std::string& source) {
  absl::StatusOr<json::JsonValue> parsed = json::ParseJson(json, source);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid JSON: ", parsed.status().message()));
  }
  const json::JsonValue* events = parsed->Find("traceEvents");
  if (events == nullptr || !events->is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": not a Chrome trace (no \"traceEvents\" array at the top level)"));
  }

  std::map<std::string, OpTotals> by_type;
  std::map<std::string, OpTotals> by_node;  // per graph node name
  double op_total_us = 0;
  std::map<std::pair<int64_t, int64_t>, IterationTotals> iterations;  // (pid, iteration)
  std::map<int64_t, std::string> process_names;
  // Async allreduces: begin by (pid, id) until the end arrives.
  std::map<std::pair<int64_t, std::string>, std::pair<double, int64_t>> open_allreduces;
  struct Stall {
    int64_t pid;
    int64_t iteration;
    double wait_us;
  };
  std::vector<Stall> stalls;
  std::map<int64_t, LaneOverlap> overlap;                          // per pid
  std::map<std::pair<int64_t, int64_t>, std::string> track_names;  // (pid, tid)

  for (size_t i = 0; i < events->items().size(); ++i) {
    const json::JsonValue& e = events->items()[i];
    if (!e.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": traceEvents[", i, "] is not an object"));
    }
    const std::string ph = e.StringOr("ph", "");
    const std::string cat = e.StringOr("cat", "");
    const std::string name = e.StringOr("name", "");
    const int64_t pid = static_cast<int64_t>(e.NumberOr("pid", 0));
    const double ts = e.NumberOr("ts", 0);
    const double dur = std::max(0.0, e.NumberOr("dur", 0));
    static const json::JsonValue kNoArgs;
    const json::JsonValue* args_value = e.Find("args");
    const json::JsonValue& args = args_value != nullptr ? *args_value : kNoArgs;
    const int64_t iteration = static_cast<int64_t>(args.NumberOr("iteration", -1));

    if (ph == "M" && name == "process_name") {
      process_names[pid] = args.StringOr("name", "");
    } else if (ph == "M" && name == "thread_name") {
      track_names[{pid, static_cast<int64_t>(e.NumberOr("tid", 0))}] = args.StringOr("name", "");
    } else if (ph == "X" && cat == "collective" && name == "allreduce") {
      LaneOverlap& o = overlap[pid];
      o.allreduces.push_back({ts, ts + dur});
      o.lane_tids.insert(static_cast<int64_t>(e.NumberOr("tid", 0)));
    } else if (ph == "X" && cat == "op") {
      if (args.StringOr("phase", "") == "backward") overlap[pid].backward.push_back({ts, ts + dur});
      const std::string op = args.StringOr("op", "?");
      OpTotals& t = by_type[op];
      t.op = op;
      ++t.count;
      t.total_us += dur;
      OpTotals& n = by_node[name];
      n.op = op;
      ++n.count;
      n.total_us += dur;
      op_total_us += dur;
      if (iteration >= 0) iterations[{pid, iteration}].compute_us += dur;
    } else if (ph == "X" && cat == "update") {
      const double wait = std::max(0.0, args.NumberOr("wait_us", 0));
      if (iteration >= 0) {
        IterationTotals& it = iterations[{pid, iteration}];
        it.compute_us += std::max(0.0, dur - wait);
        it.exposed_us += wait;
      }
    } else if (ph == "X" && cat == "iteration") {
      if (iteration >= 0) iterations[{pid, iteration}].wall_us += dur;
    } else if (ph == "X" && cat == "data") {
      const double wait = std::max(0.0, args.NumberOr("wait_us", 0));
      if (iteration >= 0) iterations[{pid, iteration}].data_wait_us += wait;
      stalls.push_back({pid, iteration, wait});
    } else if (cat == "allreduce" && (ph == "b" || ph == "e")) {
      const json::JsonValue* id = e.Find("id");
      const std::string key =
          id == nullptr
              ? name
              : (id->is_string() ? id->string() : absl::StrCat(id->number()));
      if (ph == "b") {
        open_allreduces[{pid, key}] = {ts, iteration};
      } else if (auto it = open_allreduces.find({pid, key}); it != open_allreduces.end()) {
        if (it->second.second >= 0) {
          iterations[{pid, it->second.second}].allreduce.push_back({it->second.first, ts});
        }
        open_allreduces.erase(it);
      }
    }
  }

  std::string out;
  absl::StrAppend(&out, "trace ", source, ": ", events->items().size(), " events, ",
                  process_names.empty() ? size_t{1} : process_names.size(), " node(s)\n\n");

  // Time per op type.
  std::vector<OpTotals> types;
  for (auto& [op, t] : by_type) types.push_back(t);
  std::sort(types.begin(), types.end(),
            [](const OpTotals& a, const OpTotals& b) { return a.total_us > b.total_us; });
  absl::StrAppend(&out, "Time per op type (all nodes, all traced iterations)\n");
  absl::StrAppend(&out, absl::StrFormat("  %-28s %8s %12s %11s %7s\n", "op", "count", "total ms",
                                        "mean ms", "share"));
  for (const OpTotals& t : types) {
    absl::StrAppend(
        &out, absl::StrFormat("  %-28s %8d %12.3f %11.4f %7s\n", t.op, t.count, t.total_us / 1000,
                              t.total_us / 1000 / t.count, Percent(t.total_us, op_total_us)));
  }
  if (types.empty()) absl::StrAppend(&out, "  (no op events)\n");
  absl::StrAppend(&out, absl::StrFormat("  %-28s %8s %12.3f\n\n", "total", "", op_total_us / 1000));

  // Top ops.
  std::vector<std::pair<std::string, OpTotals>> nodes(by_node.begin(), by_node.end());
  std::sort(nodes.begin(), nodes.end(),
            [](const auto& a, const auto& b) { return a.second.total_us > b.second.total_us; });
  absl::StrAppend(&out, "Top ops by total time\n");
  absl::StrAppend(&out, absl::StrFormat("  %-32s %-30s %6s %11s %10s %7s\n", "node", "op", "count",
                                        "total ms", "mean ms", "share"));
  for (size_t i = 0; i < nodes.size() && i < 10; ++i) {
    const OpTotals& t = nodes[i].second;
    absl::StrAppend(&out,
                    absl::StrFormat("  %-32s %-30s %6d %11.3f %10.4f %7s\n", nodes[i].first, t.op,
                                    t.count, t.total_us / 1000, t.total_us / 1000 / t.count,
                                    Percent(t.total_us, op_total_us)));
  }
  if (nodes.empty()) absl::StrAppend(&out, "  (no op events)\n");

  // Per iteration.
  absl::StrAppend(&out,
                  "\nPer iteration (ms): compute = ops + SGD updates without their waits; "
                  "communication = time\nwith one of the iteration's bucket allreduces in flight; "
                  "exposed = update waits for\nallreduces; data = data-loader wait\n");
  absl::StrAppend(&out, absl::StrFormat("  %-5s %9s %9s %9s %13s %9s %9s\n", "node", "iteration",
                                        "wall", "compute", "communication", "exposed", "data"));
  for (const auto& [key, it] : iterations) {
    absl::StrAppend(&out, absl::StrFormat("  %-5d %9d %9.3f %9.3f %13.3f %9.3f %9.3f\n", key.first,
                                          key.second, it.wall_us / 1000, it.compute_us / 1000,
                                          UnionLength(it.allreduce) / 1000, it.exposed_us / 1000,
                                          it.data_wait_us / 1000));
  }
  if (iterations.empty()) absl::StrAppend(&out, "  (no iterations)\n");

  // The overlap the data-parallel design is for: allreduces running while backward computes.
  absl::StrAppend(&out,
                  "\nAllreduces on the collective lanes while backward ops ran (GPU lanes and "
                  "streams: device times)\n");
  bool any_lane = false;
  for (auto& [pid, o] : overlap) {
    if (o.allreduces.empty()) continue;
    any_lane = true;
    const std::vector<std::pair<double, double>> backward = Merged(std::move(o.backward));
    double lane_us = 0;
    double during_backward_us = 0;
    int64_t overlapping = 0;
    for (const auto& [b, e] : o.allreduces) {
      lane_us += e - b;
      const double covered = CoveredLength(backward, b, e);
      during_backward_us += covered;
      overlapping += covered > 0;
    }
    bool device_lanes = false;
    for (int64_t tid : o.lane_tids) {
      device_lanes |= track_names[{pid, tid}].rfind("GPU ", 0) == 0;
    }
    absl::StrAppend(
        &out, absl::StrFormat("  node %d: %d allreduces on %s lanes, %.3f ms; %.3f ms (%s) while "
                              "backward ops ran; %d of them overlapped backward\n",
                              pid, o.allreduces.size(), device_lanes ? "GPU" : "host",
                              lane_us / 1000, during_backward_us / 1000,
                              Percent(during_backward_us, lane_us), overlapping));
  }
  if (!any_lane) absl::StrAppend(&out, "  (no allreduces on collective lanes)\n");

  // Data-loader stalls.
  absl::StrAppend(&out, "\nData-loader stalls\n");
  if (stalls.empty()) {
    absl::StrAppend(&out, "  (no data batch events)\n");
  } else {
    std::map<int64_t, std::vector<double>> per_node;
    for (const Stall& s : stalls) per_node[s.pid].push_back(s.wait_us);
    for (const auto& [pid, waits] : per_node) {
      double total = 0;
      double worst = 0;
      int64_t over_ms = 0;
      for (double w : waits) {
        total += w;
        worst = std::max(worst, w);
        over_ms += w >= 1000;
      }
      double wall = 0;
      for (const auto& [key, it] : iterations) {
        if (key.first == pid) wall += it.wall_us;
      }
      absl::StrAppend(
          &out,
          absl::StrFormat("  node %d: %d batches, waited %.3f ms in all (%s of iteration "
                          "time), mean %.3f ms, worst %.3f ms, %d batches waited >= 1 ms\n",
                          pid, waits.size(), total / 1000, Percent(total, wall),
                          total / 1000 / static_cast<double>(waits.size()), worst / 1000, over_ms));
    }
    std::sort(stalls.begin(), stalls.end(),
              [](const Stall& a, const Stall& b) { return a.wait_us > b.wait_us; });
    for (size_t i = 0; i < stalls.size() && i < 3 && stalls[i].wait_us > 0; ++i) {
      absl::StrAppend(
          &out, absl::StrFormat("  longest: node %d iteration %d waited %.3f ms\n", stalls[i].pid,
                                stalls[i].iteration, stalls[i].wait_us / 1000));
    }
  }
  return out;
}

int TraceSummaryMain(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    out << kUsage;
    return 0;
  }
  if (args.size() != 1 || args[0].empty() || args[0][0] == '-') {
    err << "runtime trace-summary: expected one trace file\n" << kUsage;
    return 2;
  }
  const std::string& path = args[0];
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    err << "runtime trace-summary: cannot open " << path << "\n";
    return 1;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) {
    err << "runtime trace-summary: cannot read " << path << "\n";
    return 1;
  }
  absl::StatusOr<std::string> report = SummarizeTrace(buffer.str(), path);
  if (!report.ok()) {
    err << "runtime trace-summary: " << report.status().message() << "\n";
    return 1;
  }
  out << *report;
  return 0;
}

}  // namespace gradflow::runtime::trace
