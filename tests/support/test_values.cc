#include "tests/support/test_values.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace gradflow::test_support {

uint64_t TestSeed() {
  if (const char* fixed = std::getenv("GRADFLOW_TEST_SEED"); fixed != nullptr) {
    uint64_t seed = 0;
    if (absl::SimpleAtoi(fixed, &seed)) return seed;
  }
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) | device();
}

std::string SeedTrace(uint64_t seed) {
  return absl::StrCat("seed ", seed, " (replay with GRADFLOW_TEST_SEED=", seed, ")");
}

std::vector<float> ToFloat(std::span<const double> values) {
  return std::vector<float>(values.begin(), values.end());
}

std::vector<double> ToDouble(std::span<const float> values) {
  return std::vector<double>(values.begin(), values.end());
}

std::vector<double> RoundedToFloat(std::span<const double> values) {
  std::vector<double> rounded(values.size());
  for (size_t i = 0; i < values.size(); ++i) rounded[i] = static_cast<float>(values[i]);
  return rounded;
}

double RelativeError(std::span<const double> actual, std::span<const double> expected) {
  constexpr double kInfinity = std::numeric_limits<double>::infinity();
  if (actual.size() != expected.size()) return kInfinity;
  double max_diff = 0;
  double max_ref = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    if (!std::isfinite(actual[i])) return kInfinity;
    max_diff = std::max(max_diff, std::abs(actual[i] - expected[i]));
    max_ref = std::max(max_ref, std::abs(expected[i]));
  }
  if (max_diff == 0) return 0;
  return max_ref == 0 ? kInfinity : max_diff / max_ref;
}

double RelativeError(std::span<const float> actual, std::span<const double> expected) {
  const std::vector<double> widened = ToDouble(actual);
  return RelativeError(widened, expected);
}

std::string WorstElement(std::span<const double> actual, std::span<const double> expected) {
  if (actual.size() != expected.size()) {
    return absl::StrCat(actual.size(), " values, expected ", expected.size());
  }
  size_t worst = 0;
  double worst_diff = -1;
  double max_ref = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    // A NaN compares false with everything: rank it above any finite difference.
    const double diff = std::isfinite(actual[i]) ? std::abs(actual[i] - expected[i])
                                                 : std::numeric_limits<double>::infinity();
    if (diff > worst_diff) {
      worst_diff = diff;
      worst = i;
    }
    max_ref = std::max(max_ref, std::abs(expected[i]));
  }
  if (actual.empty()) return "no elements";
  return absl::StrCat("element ", worst, " of ", actual.size(), ": got ", actual[worst],
                      ", expected ", expected[worst], " (max |expected| ", max_ref, ")");
}

std::string WorstElement(std::span<const float> actual, std::span<const double> expected) {
  const std::vector<double> widened = ToDouble(actual);
  return WorstElement(widened, expected);
}

}  // namespace gradflow::test_support
