// The named models modelc can build, each a verified training graph.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "graph/ir.h"
#include "graph/op_schema.h"

namespace gradflow::models {

// What a user may change; unset fields take the model's defaults.
struct ModelOptions {
  std::optional<int64_t> classes;
  std::optional<int64_t> image_size;  // square inputs: height = width
  std::optional<int64_t> channels;
  bool zero_gamma = true;  // gamma = 0 for the last batch norm of each residual block
};

// Options with every field decided.
struct ModelConfig {
  int64_t classes = 0;
  int64_t image_size = 0;
  int64_t channels = 0;
  bool zero_gamma = true;
};

using ModelBuildFn = absl::StatusOr<graph::Graph> (*)(const ModelConfig& config,
                                                      const graph::OpRegistry& registry);

struct ZooModel {
  std::string_view name;
  std::string_view description;  // one line
  ModelConfig defaults;
  // The product of the model's spatial downsamplings: a smaller input would leave less than one
  // pixel per position of the last feature map.
  int64_t min_image_size = 1;
  ModelBuildFn build = nullptr;
};

// Bounds that keep every shape and count far from overflow; real models sit well inside them.
inline constexpr int64_t kMaxClasses = int64_t{1} << 20;
inline constexpr int64_t kMaxImageSize = 8192;
inline constexpr int64_t kMaxChannels = 4096;

// Every model, sorted by name.
std::span<const ZooModel> Zoo();
// Null when no model has that name.
const ZooModel* FindModel(std::string_view name);

// The model's defaults overridden by `options`; an InvalidArgument names the model and the
// option that makes no sense for it.
absl::StatusOr<ModelConfig> ResolveOptions(const ZooModel& model, const ModelOptions& options);

// Resolves the options and builds the training graph (NotFound for an unknown model).
absl::StatusOr<graph::Graph> BuildModel(std::string_view name, const ModelOptions& options,
                                        const graph::OpRegistry& registry);

}  // namespace gradflow::models
