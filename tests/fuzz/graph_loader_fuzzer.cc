// libFuzzer target for the graph loader, the code that reads untrusted .fb files. Properties
// checked on every input (a violation aborts, which libFuzzer reports as a crash):
//  - ParseGraph never crashes, hangs or trips a sanitizer, whatever the bytes;
//  - a rejected input gets an error that names its source, as every tool relies on;
//  - a graph that loads survives Serialize + ParseGraph unchanged, and serializes to the same
//    bytes again (saving is deterministic).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/ir.h"
#include "graph/serialize.h"
#include "ops/registry.h"

namespace {

using gradflow::graph::Graph;

constexpr std::string_view kSource = "fuzz-input";

[[noreturn]] void Fail(std::string_view what, std::string_view detail) {
  std::fprintf(stderr, "graph_loader_fuzzer: %.*s: %.*s\n", static_cast<int>(what.size()),
               what.data(), static_cast<int>(detail.size()), detail.data());
  std::abort();
}

// NaN != NaN, so a graph holding a NaN float never compares equal to itself; its round trip is
// then checked through the serialized bytes alone.
bool HoldsNaN(const Graph& graph) {
  for (const auto& tensor : graph.tensors) {
    if (std::isnan(tensor.init.value)) return true;
  }
  for (const auto& node : graph.nodes) {
    for (const auto& [name, value] : node.attrs) {
      if (const float* f = std::get_if<float>(&value); f != nullptr && std::isnan(*f)) return true;
      if (const auto* floats = std::get_if<std::vector<float>>(&value)) {
        for (float element : *floats) {
          if (std::isnan(element)) return true;
        }
      }
    }
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& registry = gradflow::ops::StandardOps();
  const absl::StatusOr<Graph> loaded =
      gradflow::graph::ParseGraph(std::span<const uint8_t>(data, size), kSource, registry);
  if (!loaded.ok()) {
    // absl::string_view is not std::string_view in this Abseil: compare as std::string.
    if (std::string(loaded.status().message()).find(kSource) == std::string::npos) {
      Fail("error does not name the input", loaded.status().ToString());
    }
    return 0;
  }

  const std::vector<uint8_t> saved = gradflow::graph::Serialize(*loaded);
  const absl::StatusOr<Graph> reloaded =
      gradflow::graph::ParseGraph(saved, "fuzz-input (saved again)", registry);
  if (!reloaded.ok()) {
    Fail("a graph that loaded does not load after saving", reloaded.status().ToString());
  }
  if (!(*reloaded == *loaded) && !HoldsNaN(*loaded)) {
    Fail("round trip changed the graph", loaded->name);
  }
  if (gradflow::graph::Serialize(*reloaded) != saved) {
    Fail("saving the reloaded graph gave different bytes", loaded->name);
  }
  return 0;
}
