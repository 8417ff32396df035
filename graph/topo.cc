#include "graph/topo.h"

#include <algorithm>
#include <functional>
#include <queue>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace gradflow::graph {

std::vector<std::vector<int32_t>> NodePredecessors(const Graph& graph) {
  const std::vector<int32_t> producer = graph.ProducerOfEachTensor();
  std::vector<std::vector<int32_t>> preds(graph.nodes.size());
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    for (int32_t in : graph.nodes[n].inputs) {
      if (in < 0 || static_cast<size_t>(in) >= producer.size() || producer[in] < 0) continue;
      preds[n].push_back(producer[in]);
    }
    std::sort(preds[n].begin(), preds[n].end());
    preds[n].erase(std::unique(preds[n].begin(), preds[n].end()), preds[n].end());
  }
  return preds;
}

absl::StatusOr<std::vector<int32_t>> TopologicalOrder(const Graph& graph) {
  const auto preds = NodePredecessors(graph);
  const size_t n = graph.nodes.size();
  std::vector<std::vector<int32_t>> succs(n);
  std::vector<int32_t> pending(n, 0);
  for (size_t i = 0; i < n; ++i) {
    pending[i] = static_cast<int32_t>(preds[i].size());
    for (int32_t p : preds[i]) succs[p].push_back(static_cast<int32_t>(i));
  }
  // Lowest index first keeps a valid order as it is and stays deterministic.
  std::priority_queue<int32_t, std::vector<int32_t>, std::greater<>> ready;
  for (size_t i = 0; i < n; ++i) {
    if (pending[i] == 0) ready.push(static_cast<int32_t>(i));
  }
  std::vector<int32_t> order;
  order.reserve(n);
  while (!ready.empty()) {
    const int32_t node = ready.top();
    ready.pop();
    order.push_back(node);
    for (int32_t s : succs[node]) {
      if (--pending[s] == 0) ready.push(s);
    }
  }
  if (order.size() == n) return order;

  // Every node left has a predecessor that is also left, so walking predecessors must revisit a
  // node: the walk from there is a cycle.
  int32_t start = 0;
  while (pending[start] == 0) ++start;
  std::vector<int32_t> seen_at(n, -1);
  std::vector<int32_t> walk;
  int32_t node = start;
  while (seen_at[node] < 0) {
    seen_at[node] = static_cast<int32_t>(walk.size());
    walk.push_back(node);
    int32_t next = -1;
    for (int32_t p : preds[node]) {
      if (pending[p] > 0) {
        next = p;
        break;
      }
    }
    node = next;
  }
  std::vector<std::string> names;
  for (size_t i = walk.size(); i-- > static_cast<size_t>(seen_at[node]);) {
    names.push_back(absl::StrCat("'", graph.nodes[walk[i]].name, "'"));
  }
  names.push_back(names.front());
  return absl::InvalidArgumentError(
      absl::StrCat("the graph has a cycle: ", absl::StrJoin(names, " -> ")));
}

}  // namespace gradflow::graph
