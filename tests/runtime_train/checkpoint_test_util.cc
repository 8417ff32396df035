#include "tests/runtime_train/checkpoint_test_util.h"

#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include "gtest/gtest.h"

namespace gradflow::runtime::testing {

namespace fs = std::filesystem;

std::string FreshDirectory(const std::string& name) {
  const char* root = std::getenv("GRADFLOW_TEST_TMPDIR");
  const fs::path dir = fs::path(root != nullptr ? root : fs::temp_directory_path().string()) /
                       "runtime_train" / name;
  std::error_code error;
  fs::remove_all(dir, error);
  fs::create_directories(dir, error);
  EXPECT_FALSE(error) << dir << ": " << error.message();
  return dir.string();
}

CheckpointView TrainingState::View() const {
  return CheckpointView{.graph_hash = graph_hash,
                        .parameters = parameters,
                        .momentum = momentum,
                        .bn_state = bn_state,
                        .epoch = epoch,
                        .iteration = iteration,
                        .previous_lr = previous_lr,
                        .blobs = {{"rng", rng}, {"data_loader", loader}}};
}

CheckpointExpectation TrainingState::Expectation() const {
  return CheckpointExpectation{.graph_hash = graph_hash,
                               .parameter_count = static_cast<int64_t>(parameters.size()),
                               .bn_state_count = static_cast<int64_t>(bn_state.size())};
}

TrainingState MakeState(int64_t parameter_count, int64_t iteration, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  TrainingState state;
  state.graph_hash = GraphHash(std::vector<uint8_t>{'g', 'r', 'a', 'p', 'h'});
  state.parameters.resize(parameter_count);
  state.momentum.resize(parameter_count);
  for (float& v : state.parameters) v = normal(rng);
  for (float& v : state.momentum) v = normal(rng);
  state.bn_state = {0.5f, -0.0f, std::numeric_limits<float>::denorm_min(),
                    std::numeric_limits<float>::infinity(), 1e30f};
  // A NaN with a payload: bit-exact means its bits survive too.
  uint32_t nan_bits = 0x7fc01234u;
  float nan;
  std::memcpy(&nan, &nan_bits, sizeof(nan));
  state.bn_state.push_back(nan);
  state.epoch = iteration / 10;
  state.iteration = iteration;
  state.previous_lr = 0.1 + 1e-3 * static_cast<double>(seed);
  for (int i = 0; i < 40; ++i) state.rng.push_back(static_cast<uint8_t>(rng()));
  state.loader = {'e', 'p', 'o', 'c', 'h', 0, 1, 2};
  return state;
}

std::vector<uint8_t> ReadBytes(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  EXPECT_TRUE(file) << path;
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(file)),
                              std::istreambuf_iterator<char>());
}

void WriteBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  EXPECT_TRUE(file) << path;
}

void FixCrc(std::vector<uint8_t>& bytes) {
  ASSERT_GE(bytes.size(), 4u);
  const uint32_t crc = static_cast<uint32_t>(crc32_z(0, bytes.data(), bytes.size() - 4));
  std::memcpy(bytes.data() + bytes.size() - 4, &crc, 4);
}

std::vector<std::string> FileNames(const std::string& dir) {
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace gradflow::runtime::testing
