// What equivalence tests of whole training runs compare: the parameters a run's last checkpoint
// holds, and how far two such vectors are apart.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/train/checkpoint.h"

namespace gradflow::testing {

inline std::vector<float> FinalParameters(const std::string& checkpoint_dir, int64_t iteration) {
  absl::StatusOr<runtime::Checkpoint> c =
      runtime::ReadCheckpoint(checkpoint_dir + "/ckpt-" + std::to_string(iteration) + ".gfck");
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? c->parameters : std::vector<float>{};
}

// ||a - b|| / ||b||; infinite for empty or mismatched vectors, so that a missing checkpoint
// cannot pass as "close".
inline double RelativeError(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.empty() || a.size() != b.size()) return INFINITY;
  double diff = 0;
  double norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    norm += static_cast<double>(b[i]) * b[i];
  }
  return norm > 0 ? std::sqrt(diff / norm) : INFINITY;
}

}  // namespace gradflow::testing
