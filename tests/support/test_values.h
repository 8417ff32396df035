// Small helpers the numeric tests share: seeds, float rounding, and the relative error measure.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace gradflow::test_support {

// A fresh seed for each test run (std::random_device), or GRADFLOW_TEST_SEED when set, so that a
// failure printed with its seed can be replayed.
uint64_t TestSeed();
// "seed 1234 (replay with GRADFLOW_TEST_SEED=1234)", for SCOPED_TRACE.
std::string SeedTrace(uint64_t seed);

std::vector<float> ToFloat(std::span<const double> values);
std::vector<double> ToDouble(std::span<const float> values);
// Each value rounded to the nearest float: what a kernel actually receives.
std::vector<double> RoundedToFloat(std::span<const double> values);

// max|actual - expected| / max|expected|: one number per tensor, insensitive to elements that
// are tiny only by cancellation. Infinity when the sizes differ or `actual` holds a NaN or an
// infinity (an unwritten, poisoned element); 0 for two all-zero tensors.
double RelativeError(std::span<const double> actual, std::span<const double> expected);
double RelativeError(std::span<const float> actual, std::span<const double> expected);

// Where two tensors differ most, for failure messages: "element 17 of 60: got 0.5, expected
// 0.25 (max |expected| 1.2)".
std::string WorstElement(std::span<const double> actual, std::span<const double> expected);
std::string WorstElement(std::span<const float> actual, std::span<const double> expected);

}  // namespace gradflow::test_support
