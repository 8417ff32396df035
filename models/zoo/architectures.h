// The build functions behind the zoo's table (models/zoo/zoo.cc), one file per family.
#pragma once

#include "absl/status/statusor.h"
#include "graph/ir.h"
#include "graph/op_schema.h"
#include "models/zoo.h"

namespace gradflow::models::zoo {

absl::StatusOr<graph::Graph> BuildResNet18(const ModelConfig& config,
                                           const graph::OpRegistry& registry);
absl::StatusOr<graph::Graph> BuildResNet34(const ModelConfig& config,
                                           const graph::OpRegistry& registry);
absl::StatusOr<graph::Graph> BuildResNet50(const ModelConfig& config,
                                           const graph::OpRegistry& registry);
absl::StatusOr<graph::Graph> BuildResNet101(const ModelConfig& config,
                                            const graph::OpRegistry& registry);
absl::StatusOr<graph::Graph> BuildResNet152(const ModelConfig& config,
                                            const graph::OpRegistry& registry);
absl::StatusOr<graph::Graph> BuildResNetFashionMnist(const ModelConfig& config,
                                                     const graph::OpRegistry& registry);
absl::StatusOr<graph::Graph> BuildMlp(const ModelConfig& config, const graph::OpRegistry& registry);
absl::StatusOr<graph::Graph> BuildFashionMnistCnn(const ModelConfig& config,
                                                  const graph::OpRegistry& registry);

}  // namespace gradflow::models::zoo
