// Shared pieces of the checkpoint tests: fresh directories, training states to save, and
// byte-level surgery on checkpoint files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/train/checkpoint.h"

namespace gradflow::runtime::testing {

// A new empty directory for one test (under GRADFLOW_TEST_TMPDIR when set).
std::string FreshDirectory(const std::string& name);

// An owning training state; View() points into it.
struct TrainingState {
  uint64_t graph_hash = 0;
  std::vector<float> parameters, momentum, bn_state;
  int64_t epoch = 0, iteration = 0;
  double previous_lr = 0;
  std::vector<uint8_t> rng, loader;

  CheckpointView View() const;
  CheckpointExpectation Expectation() const;
};

// Random contents (seeded) with parameter_count floats of parameters and momentum.
TrainingState MakeState(int64_t parameter_count, int64_t iteration, uint32_t seed);

std::vector<uint8_t> ReadBytes(const std::string& path);
void WriteBytes(const std::string& path, const std::vector<uint8_t>& bytes);
// Recomputes the CRC trailer after a deliberate edit, so only the edit itself is judged.
void FixCrc(std::vector<uint8_t>& bytes);
// File names (not paths) in `dir`, sorted.
std::vector<std::string> FileNames(const std::string& dir);

}  // namespace gradflow::runtime::testing
