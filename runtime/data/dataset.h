// The interface every data source implements: sizes, shape and one example at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "runtime/data/rng.h"

namespace gradflow::runtime::data {

enum class Split { kTrain, kEval };

const char* SplitName(Split split);

// One example after preprocessing, channels first.
struct ExampleShape {
  int64_t channels = 0;
  int64_t height = 0;
  int64_t width = 0;

  int64_t Elements() const { return channels * height * width; }
  bool operator==(const ExampleShape&) const = default;
};

std::string ShapeString(const ExampleShape& shape);

// Where a dataset sends one-line notices about bad input it skips (corrupt images, ignored
// files). The trainer routes them into its own log; the default writes to stderr.
using ReportFn = std::function<void(const std::string& message)>;

ReportFn StderrReporter();

class Dataset {
 public:
  virtual ~Dataset() = default;

  // Kind and location, e.g. "fashion-mnist:/usr/share/datasets/fashion-mnist".
  virtual std::string Describe() const = 0;
  virtual int64_t NumExamples(Split split) const = 0;
  virtual int32_t NumClasses() const = 0;
  virtual ExampleShape Shape() const = 0;

  // Writes example `index` of `split` as Shape() floats (CHW, normalized) and its label in
  // [0, NumClasses()). `rng` drives the augmentation, so the caller decides what is reproducible.
  // Thread-safe: the batch loader calls it from several decode threads at once.
  // Returns DataLossError for an example that cannot be read (a corrupt or unreadable file): the
  // caller skips it and takes another. Any other error is a caller bug (index out of range).
  virtual absl::Status LoadExample(Split split, int64_t index, Rng& rng, float* out_chw,
                                   int32_t* label) const = 0;
};

}  // namespace gradflow::runtime::data
