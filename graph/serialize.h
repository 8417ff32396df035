// Reading and writing .fb files. Loading checks everything: a file that loads is safe to run.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "graph/ir.h"
#include "graph/op_schema.h"

namespace gradflow::graph {

// The flatbuffer bytes of a graph (file identifier "GFLW", current format version).
std::vector<uint8_t> Serialize(const Graph& graph);

// Flatbuffers verifier, file identifier, format version, then conversion to the IR. Structural
// only: no op knowledge. `source` names the bytes in error messages (usually the file path).
absl::StatusOr<Graph> Deserialize(std::span<const uint8_t> bytes, std::string_view source);

// Deserialize followed by VerifyGraph: what every tool uses to read an untrusted graph.
absl::StatusOr<Graph> ParseGraph(std::span<const uint8_t> bytes, std::string_view source,
                                 const OpRegistry& registry);

absl::StatusOr<Graph> LoadGraph(const std::string& path, const OpRegistry& registry);

// Writes to a temporary file beside `path`, then renames it, so a failed save never leaves a
// half-written graph where a good one was.
absl::Status SaveGraph(const Graph& graph, const std::string& path);

}  // namespace gradflow::graph
