#include "scheduler/buckets.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace gradflow::sched {
namespace {

// Per tensor: the first plan step that reads it, or -1.
std::vector<int32_t> FirstReaderSteps(const graph::Graph& graph, const Plan& plan) {
  std::vector<int32_t> first(graph.tensors.size(), -1);
  for (size_t s = 0; s < plan.steps.size(); ++s) {
    for (int32_t t : graph.nodes[plan.steps[s].node].inputs) {
      if (first[t] < 0) first[t] = static_cast<int32_t>(s);
    }
  }
  return first;
}

int64_t ElementSize(const Plan& plan) {
  return static_cast<int64_t>(graph::DTypeSize(plan.parameter_dtype));
}

}  // namespace

absl::StatusOr<std::vector<Bucket>> PlanBuckets(const graph::Graph& graph, const Plan& plan,
                                                int64_t cap_bytes, int64_t first_layers_cap_bytes) {
  if (cap_bytes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the bucket size cap must be positive, got ", cap_bytes, " bytes"));
  }
  const std::vector<int32_t> first_reader = FirstReaderSteps(graph, plan);
  const int64_t element = ElementSize(plan);
  const size_t count = graph.param_grads.size();
  auto range_of = [&](size_t i) {
    const Placement& p = plan.tensors[graph.param_grads[i].param];
    return std::pair<int64_t, int64_t>(p.offset / element, (p.offset + p.bytes) / element);
  };
  // The first layers' bucket: the longest tail of backward order within its cap, one parameter
  // at least.
  size_t tail = count;
  first_layers_cap_bytes = std::min(first_layers_cap_bytes, cap_bytes);
  if (first_layers_cap_bytes > 0 && count > 0) {
    const int64_t tail_end = range_of(count - 1).second;
    tail = count - 1;
    while (tail > 0 && (tail_end - range_of(tail - 1).first) * element <= first_layers_cap_bytes) {
      --tail;
    }
  }
  std::vector<Bucket> buckets;
  for (size_t i = 0; i < count; ++i) {
    const graph::ParamGrad& pg = graph.param_grads[i];
    const auto [begin, end] = range_of(i);
    const bool fits = !buckets.empty() && i != tail &&
                      (end - buckets.back().begin) * element <= (i > tail ? first_layers_cap_bytes
                                                                           : cap_bytes);
    if (!fits) buckets.push_back(Bucket{.begin = begin, .end = end, .ready_step = -1,
                                        .first_reader_step = -1});
    Bucket& b = buckets.back();
    b.end = end;
    b.param_grads.push_back(static_cast<int32_t>(i));
    b.ready_step = std::max(b.ready_step, plan.producer_step[pg.grad]);
    const int32_t reader = first_reader[pg.param];
    if (reader >= 0 && (b.first_reader_step < 0 || reader < b.first_reader_step)) {
      b.first_reader_step = reader;
    }
  }
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (buckets[i].first_reader_step < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "no node reads the parameters of gradient bucket ", i, " (first parameter '",
          graph.tensors[graph.param_grads[buckets[i].param_grads.front()].param].name, "')"));
    }
  }
  if (absl::Status s = CheckBuckets(graph, plan, buckets); !s.ok()) return s;
  return buckets;
}

absl::Status CheckBuckets(const graph::Graph& graph, const Plan& plan,
                          const std::vector<Bucket>& buckets) {
  const std::vector<int32_t> first_reader = FirstReaderSteps(graph, plan);
  const int64_t element = ElementSize(plan);
  auto fail = [](size_t b, const std::string& what) {
    return absl::InternalError(absl::StrCat("gradient bucket ", b, ": ", what));
  };
  size_t next_param = 0;
  int64_t previous_end = 0;
  for (size_t b = 0; b < buckets.size(); ++b) {
    const Bucket& bucket = buckets[b];
    if (bucket.param_grads.empty()) return fail(b, "holds no parameter");
    if (bucket.begin < previous_end || bucket.end <= bucket.begin) {
      return fail(b, absl::StrCat("range [", bucket.begin, ", ", bucket.end,
                                  ") is empty or overlaps the previous bucket"));
    }
    previous_end = bucket.end;
    int32_t last_write = -1;
    int32_t first_read = -1;
    for (int32_t i : bucket.param_grads) {
      if (i != static_cast<int32_t>(next_param)) {
        return fail(b, absl::StrCat("holds parameter ", i, " where ", next_param,
                                    " comes next in backward order"));
      }
      ++next_param;
      const graph::ParamGrad& pg = graph.param_grads[i];
      const Placement& p = plan.tensors[pg.param];
      const Placement& g = plan.tensors[pg.grad];
      if (p.buffer != BufferKind::kParameters || g.buffer != BufferKind::kGradients ||
          p.offset != g.offset || p.offset / element < bucket.begin ||
          (p.offset + p.bytes) / element > bucket.end) {
        return fail(b, absl::StrCat("parameter '", graph.tensors[pg.param].name,
                                    "' or its gradient lies outside the bucket's range"));
      }
      last_write = std::max(last_write, plan.producer_step[pg.grad]);
      const int32_t reader = first_reader[pg.param];
      if (reader >= 0 && (first_read < 0 || reader < first_read)) first_read = reader;
    }
    if (bucket.ready_step != last_write) {
      return fail(b, absl::StrCat("ready at step ", bucket.ready_step,
                                  " but its last gradient is written at step ", last_write));
    }
    if (bucket.first_reader_step != first_read) {
      return fail(b, absl::StrCat("first read at step ", bucket.first_reader_step,
                                  " but its parameters are first read at step ", first_read));
    }
    if (bucket.first_reader_step >= bucket.ready_step) {
      return fail(b, "its parameters are first read after its gradients are final");
    }
  }
  if (next_param != graph.param_grads.size()) {
    return absl::InternalError(absl::StrCat("gradient buckets cover ", next_param, " of ",
                                            graph.param_grads.size(), " parameters"));
  }
  return absl::OkStatus();
}

}  // namespace gradflow::sched
