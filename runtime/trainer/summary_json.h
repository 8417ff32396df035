// The end-of-run summary as JSON (`runtime --summary-json FILE`), for benchmarks and scripts.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "runtime/trainer/trainer.h"

namespace gradflow::runtime {

// Writes atomically (a temporary file renamed over `path`); errors name the path.
absl::Status WriteSummaryJson(const std::string& path, const TrainerConfig& config,
                              const TrainSummary& summary);

}  // namespace gradflow::runtime
