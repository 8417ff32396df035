#include "runtime/project/step_profile.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace gradflow::runtime::project {
namespace {

// Far above any real per-device batch, and far from overflowing shapes once bound.
constexpr int64_t kMaxBatch = int64_t{1} << 24;

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  const size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid), values.end());
  const double upper = values[mid];
  if (values.size() % 2 == 1) return upper;
  return (*std::max_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid)) +
          upper) /
         2;
}

// A number member, or nullopt when absent or not a number.
std::optional<double> NumberAt(const JsonValue& object, std::string_view key) {
  const JsonValue* v = object.Find(key);
  if (v == nullptr || !v->is_number()) return std::nullopt;
  return v->number();
}

std::optional<int64_t> IntegerAt(const JsonValue& object, std::string_view key) {
  std::optional<double> v = NumberAt(object, key);
  if (!v || *v != std::floor(*v) || std::fabs(*v) > 9e15) return std::nullopt;
  return static_cast<int64_t>(*v);
}

std::string StringAt(const JsonValue& object, std::string_view key) {
  const JsonValue* v = object.Find(key);
  return v != nullptr && v->is_string() ? v->string() : std::string();
}

absl::StatusOr<const std::vector<JsonValue>*> TraceEvents(const JsonValue& trace,
                                                          std::string_view source) {
  if (trace.is_array()) return &trace.items();
  const JsonValue* events = trace.is_object() ? trace.Find("traceEvents") : nullptr;
  if (events == nullptr || !events->is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(source), ": not a Chrome trace (no \"traceEvents\" array)"));
  }
  return &events->items();
}

const JsonValue* GradflowData(const JsonValue& trace) {
  const JsonValue* other = trace.is_object() ? trace.Find("otherData") : nullptr;
  return other != nullptr ? other->Find("gradflow") : nullptr;
}

}  // namespace

absl::StatusOr<TraceHeader> ReadTraceHeader(const JsonValue& trace, std::string_view source) {
  absl::StatusOr<const std::vector<JsonValue>*> events = TraceEvents(trace, source);
  if (!events.ok()) return events.status();
  TraceHeader header;
  if (const JsonValue* data = GradflowData(trace); data != nullptr) {
    header.batch_per_node = IntegerAt(*data, "batch_per_node").value_or(0);
    if (header.batch_per_node < 0 || header.batch_per_node > kMaxBatch) {
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(source), ": otherData.gradflow.batch_per_node ",
                       header.batch_per_node, " is outside [1, ", kMaxBatch, "]"));
    }
    header.nodes = IntegerAt(*data, "nodes").value_or(0);
    header.steps = IntegerAt(*data, "steps").value_or(0);
  }
  return header;
}

absl::StatusOr<StepProfile> ProfileFromTrace(const JsonValue& trace, std::string_view source,
                                             const PlannedGraph& plan, int64_t node) {
  const std::string where(source);
  absl::StatusOr<const std::vector<JsonValue>*> events = TraceEvents(trace, source);
  if (!events.ok()) return events.status();
  absl::StatusOr<TraceHeader> header = ReadTraceHeader(trace, source);
  if (!header.ok()) return header.status();
  const int64_t num_steps = static_cast<int64_t>(plan.steps.size());
  if (header->steps > 0 && header->steps != num_steps) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": the trace's plan has ", header->steps,
                                                   " steps but the graph's has ", num_steps,
                                                   ": was the trace recorded with this graph?"));
  }
  std::vector<double> bucket_bytes;
  if (const JsonValue* data = GradflowData(trace);
      data != nullptr && data->Find("buckets") != nullptr && data->Find("buckets")->is_array()) {
    for (const JsonValue& b : data->Find("buckets")->items()) {
      const std::optional<int64_t> index = IntegerAt(b, "index");
      const std::optional<double> bytes = NumberAt(b, "bytes");
      if (!index || *index < 0 || *index > 1000000 || !bytes) continue;
      if (bucket_bytes.size() <= static_cast<size_t>(*index)) bucket_bytes.resize(*index + 1, 0);
      bucket_bytes[*index] = *bytes;
    }
  }

  struct Iteration {
    std::vector<double> steps;  // summed durations per step, seconds; -1 when absent
    double op_seconds = 0;
    double update_seconds = 0;  // including waits
    std::optional<double> start;
    std::optional<double> duration;
  };
  std::map<int64_t, Iteration> iterations;
  auto iteration = [&](int64_t n) -> Iteration& {
    Iteration& it = iterations[n];
    if (it.steps.empty()) it.steps.assign(num_steps, -1);
    return it;
  };
  double update_compute_seconds = 0;
  double updated_bytes = 0;
  for (size_t e = 0; e < (*events)->size(); ++e) {
    const JsonValue& event = (**events)[e];
    if (!event.is_object() || StringAt(event, "ph") != "X") continue;
    if (IntegerAt(event, "pid").value_or(-1) != node) continue;
    const std::string cat = StringAt(event, "cat");
    if (cat != "op" && cat != "update" && cat != "iteration") continue;
    const JsonValue* args = event.Find("args");
    const std::optional<double> dur = NumberAt(event, "dur");
    // Plain values, not optionals: GCC 12 warns spuriously about optional<int64_t> here.
    const int64_t n = args != nullptr ? IntegerAt(*args, "iteration").value_or(-1) : -1;
    if (!dur || *dur < 0 || n < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": event ", e, " (", cat, " '", StringAt(event, "name"),
                       "') lacks a non-negative \"dur\" or an integer args.iteration >= 0"));
    }
    const double seconds = *dur * 1e-6;
    if (cat == "op") {
      const std::optional<int64_t> step = IntegerAt(*args, "step");
      if (!step || *step < 0 || *step >= num_steps) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": op event ", e, " ('", StringAt(event, "name"), "') has step ",
            step ? absl::StrCat(*step) : std::string("(missing)"), " but the graph's plan has ",
            num_steps, " steps: was the trace recorded with this graph?"));
      }
      Iteration& it = iteration(n);
      it.steps[*step] = std::max(it.steps[*step], 0.0) + seconds;
      it.op_seconds += seconds;
    } else if (cat == "update") {
      Iteration& it = iteration(n);
      it.update_seconds += seconds;
      const double wait = NumberAt(*args, "wait_us").value_or(0) * 1e-6;
      const std::optional<int64_t> bucket = IntegerAt(*args, "bucket");
      if (bucket && *bucket >= 0 && static_cast<size_t>(*bucket) < bucket_bytes.size() &&
          bucket_bytes[*bucket] > 0) {
        update_compute_seconds += std::max(0.0, seconds - wait);
        updated_bytes += bucket_bytes[*bucket];
      }
    } else {
      Iteration& it = iteration(n);
      it.start = NumberAt(event, "ts").value_or(0) * 1e-6;
      it.duration = seconds;
    }
  }

  StepProfile profile;
  profile.batch = header->batch_per_node;
  profile.step_seconds.assign(num_steps, 0);
  int64_t traced = 0;
  for (const auto& [n, it] : iterations) traced += it.op_seconds > 0 ? 1 : 0;
  if (traced == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": no op events (ph \"X\", cat \"op\") for node ", node,
                     " (pid): was it traced with `runtime --trace`?"));
  }
  for (int64_t s = 0; s < num_steps; ++s) {
    std::vector<double> samples;
    for (const auto& [n, it] : iterations) {
      if (it.steps[s] >= 0) samples.push_back(it.steps[s]);
    }
    if (samples.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": no op event for step ", s, " ('",
                                                     plan.steps[s].name, "') on node ", node));
    }
    profile.step_seconds[s] = Median(std::move(samples));
  }
  std::vector<double> overheads;
  for (auto it = iterations.begin(); it != iterations.end(); ++it) {
    if (!it->second.start || it->second.op_seconds <= 0) continue;
    double period = *it->second.duration;
    if (auto next = std::next(it);
        next != iterations.end() && next->first == it->first + 1 && next->second.start) {
      period = *next->second.start - *it->second.start;
    }
    overheads.push_back(std::max(0.0, period - it->second.op_seconds - it->second.update_seconds));
  }
  profile.overhead_seconds = Median(std::move(overheads));
  profile.update_seconds_per_byte = updated_bytes > 0 ? update_compute_seconds / updated_bytes : 0;
  std::vector<double> totals;
  for (const auto& [n, it] : iterations) {
    if (it.op_seconds > 0) totals.push_back(it.op_seconds);
  }
  if (totals.size() >= 3) {
    double mean = 0;
    for (double t : totals) mean += t / static_cast<double>(totals.size());
    double variance = 0;
    for (double t : totals)
      variance += (t - mean) * (t - mean) / static_cast<double>(totals.size() - 1);
    profile.compute_cv = mean > 0 ? std::sqrt(variance) / mean : -1;
  }
  profile.iterations = traced;
  profile.source = absl::StrCat("trace ", where, ", node ", node, ", medians of ", traced,
                                " iteration", traced == 1 ? "" : "s");
  return profile;
}

namespace {

absl::Status TableError(std::string_view source, int64_t line, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(std::string(source), ": line ", line, ": ", std::string(what)));
}

absl::StatusOr<double> Milliseconds(std::string_view source, int64_t line, absl::string_view text) {
  double value = 0;
  if (!absl::SimpleAtod(text, &value) || !std::isfinite(value) || value < 0) {
    return TableError(source, line,
                      absl::StrCat("expected a time in ms (>= 0), got '", std::string(text), "'"));
  }
  return value;
}

}  // namespace

absl::StatusOr<int64_t> ReadTableBatch(std::string_view text, std::string_view source) {
  int64_t line_number = 0;
  for (absl::string_view line : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    ++line_number;
    std::vector<absl::string_view> words =
        absl::StrSplit(line.substr(0, line.find('#')), absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (words.size() >= 1 && words[0] == "batch") {
      int64_t batch = 0;
      if (words.size() != 2 || !absl::SimpleAtoi(words[1], &batch) || batch < 1 ||
          batch > kMaxBatch) {
        return TableError(source, line_number,
                          absl::StrCat("expected 'batch N' with N in [1, ", kMaxBatch, "]"));
      }
      return batch;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat(std::string(source), ": no 'batch N' line (the batch the times are for)"));
}

absl::StatusOr<StepProfile> ProfileFromTable(std::string_view text, std::string_view source,
                                             const PlannedGraph& plan) {
  absl::StatusOr<int64_t> batch = ReadTableBatch(text, source);
  if (!batch.ok()) return batch.status();
  StepProfile profile;
  profile.batch = *batch;
  const size_t num_steps = plan.steps.size();
  profile.step_seconds.assign(num_steps, 0);
  std::vector<bool> seen(num_steps, false);
  int64_t line_number = 0;
  for (absl::string_view line : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    ++line_number;
    std::vector<absl::string_view> words =
        absl::StrSplit(line.substr(0, line.find('#')), absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (words.empty() || words[0] == "batch") continue;
    const std::string key(words[0]);
    if (key == "overhead_ms" || key == "update_ms_per_mb") {
      if (words.size() != 2) return TableError(source, line_number, "expected '" + key + " MS'");
      absl::StatusOr<double> ms = Milliseconds(source, line_number, words[1]);
      if (!ms.ok()) return ms.status();
      if (key == "overhead_ms") {
        profile.overhead_seconds = *ms * 1e-3;
      } else {
        profile.update_seconds_per_byte = *ms * 1e-3 / 1e6;
      }
      continue;
    }
    if (key != "step") {
      return TableError(source, line_number,
                        absl::StrCat("unknown item '", key,
                                     "' (expected batch, overhead_ms, update_ms_per_mb or step)"));
    }
    int64_t index = 0;
    if (words.size() < 3 || words.size() > 4 || !absl::SimpleAtoi(words[1], &index)) {
      return TableError(source, line_number, "expected 'step INDEX MS [NODE-NAME]'");
    }
    if (index < 0 || static_cast<size_t>(index) >= num_steps) {
      return TableError(
          source, line_number,
          absl::StrCat("step ", index, " is outside the graph's plan (", num_steps, " steps)"));
    }
    if (seen[index]) {
      return TableError(source, line_number, absl::StrCat("step ", index, " is listed twice"));
    }
    if (words.size() == 4 && words[3] != plan.steps[index].name) {
      return TableError(source, line_number,
                        absl::StrCat("step ", index, " is '", plan.steps[index].name,
                                     "' in the graph's plan, not '", std::string(words[3]), "'"));
    }
    absl::StatusOr<double> ms = Milliseconds(source, line_number, words[2]);
    if (!ms.ok()) return ms.status();
    profile.step_seconds[index] = *ms * 1e-3;
    seen[index] = true;
  }
  for (size_t s = 0; s < num_steps; ++s) {
    if (!seen[s]) {
      return absl::InvalidArgumentError(absl::StrCat(std::string(source), ": step ", s, " ('",
                                                     plan.steps[s].name, "') has no time"));
    }
  }
  profile.source = absl::StrCat("time table ", std::string(source));
  return profile;
}

std::string FormatTable(const StepProfile& profile, const PlannedGraph& plan) {
  std::string out = absl::StrCat("# gradflow per-step time table (", profile.source, ")\n",
                                 "# step INDEX MS NODE-NAME; see runtime/project/step_profile.h\n");
  absl::StrAppend(&out, "batch ", profile.batch, "\n");
  absl::StrAppend(&out, absl::StrFormat("overhead_ms %.6g\n", profile.overhead_seconds * 1e3));
  absl::StrAppend(
      &out, absl::StrFormat("update_ms_per_mb %.6g\n", profile.update_seconds_per_byte * 1e9));
  for (size_t s = 0; s < profile.step_seconds.size() && s < plan.steps.size(); ++s) {
    absl::StrAppend(&out, absl::StrFormat("step %d %.6g %s\n", s, profile.step_seconds[s] * 1e3,
                                          plan.steps[s].name));
  }
  return out;
}

absl::StatusOr<StepProfile> ProfileFromFlops(const PlannedGraph& plan, double forward_seconds,
                                             double backward_seconds) {
  if (!(forward_seconds > 0) || !(backward_seconds > 0)) {
    return absl::InvalidArgumentError("--forward-ms and --backward-ms must be positive");
  }
  double forward_flops = 0;
  double backward_flops = 0;
  for (const PlannedStep& step : plan.steps) {
    (step.phase == graph::Phase::kBackward ? backward_flops : forward_flops) += step.flops;
  }
  if (!(forward_flops > 0) || !(backward_flops > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("graph '", plan.graph_name, "' has no FLOPs in its ",
                     forward_flops > 0 ? "backward" : "forward", " steps to spread the time over"));
  }
  StepProfile profile;
  profile.batch = plan.batch;
  for (const PlannedStep& step : plan.steps) {
    profile.step_seconds.push_back(step.phase == graph::Phase::kBackward
                                       ? backward_seconds * step.flops / backward_flops
                                       : forward_seconds * step.flops / forward_flops);
  }
  profile.source = absl::StrFormat("FLOP shares of %.4g ms forward and %.4g ms backward",
                                   forward_seconds * 1e3, backward_seconds * 1e3);
  return profile;
}

}  // namespace gradflow::runtime::project
