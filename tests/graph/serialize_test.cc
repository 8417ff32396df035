#include "graph/serialize.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "flatbuffers/flatbuffers.h"
#include "gmock/gmock.h"
#include "graph/graph_generated.h"
#include "gtest/gtest.h"
#include "ops/registry.h"
#include "tests/graph/test_graphs.h"

namespace gradflow::graph {
namespace {

using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("GRADFLOW_TEST_TMPDIR");
  std::filesystem::path base = dir != nullptr ? dir : std::filesystem::temp_directory_path();
  std::filesystem::create_directories(base);
  return (base / (name + "." + std::to_string(::getpid()))).string();
}

Graph GraphWithEverything() {
  Graph g = testing::ResidualTraining();
  g.metadata = {{"model", "residual"}, {"classes", "3"}};
  g.buffers.push_back(Buffer{std::vector<uint8_t>(4 * 3, 7)});
  g.tensors[g.FindTensor("fc.bias")].buffer = 0;
  return g;
}

TEST(SerializeTest, RoundTripIsIdentical) {
  const Graph g = GraphWithEverything();
  const std::vector<uint8_t> bytes = Serialize(g);
  absl::StatusOr<Graph> back = ParseGraph(bytes, "memory", ops::StandardOps());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, g);
}

TEST(SerializeTest, EveryAttributeTypeSurvives) {
  Graph g;
  g.AddTensor(Tensor{.name = "t", .shape = {2}});
  g.AddNode(Node{.name = "n",
                 .op = "Anything",
                 .outputs = {0},
                 .attrs = {{"i", int64_t{-5}},
                           {"f", 0.25f},
                           {"ints", std::vector<int64_t>{1, -1, 1LL << 40}},
                           {"floats", std::vector<float>{1.5f, -2.0f}},
                           {"s", std::string("hello")}},
                 .phase = Phase::kBackward});
  absl::StatusOr<Graph> back = Deserialize(Serialize(g), "memory");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, g);
}

TEST(SerializeTest, BuffersAreSixteenByteAligned) {
  Graph g;
  for (size_t size : {1, 3, 17, 64}) g.buffers.push_back(Buffer{std::vector<uint8_t>(size, 1)});
  const std::vector<uint8_t> bytes = Serialize(g);
  const auto* root = fb::GetGraph(bytes.data());
  ASSERT_EQ(root->buffers()->size(), 4u);
  for (const fb::Buffer* b : *root->buffers()) {
    const auto offset = b->data()->data() - bytes.data();
    EXPECT_EQ(offset % 16, 0) << "buffer data at offset " << offset;
  }
}

TEST(SerializeTest, SaveAndLoadFile) {
  const Graph g = GraphWithEverything();
  const std::string path = TempPath("roundtrip.fb");
  ASSERT_TRUE(SaveGraph(g, path).ok());
  absl::StatusOr<Graph> back = LoadGraph(path, ops::StandardOps());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, g);
  std::remove(path.c_str());
}

TEST(SerializeTest, SaveIntoMissingDirectoryFailsAndNamesPath) {
  absl::Status s = SaveGraph(testing::ResidualForward(), "/nonexistent-dir/x.fb");
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("/nonexistent-dir/x.fb"));
}

TEST(SerializeTest, FailedSaveKeepsThePreviousFile) {
  const std::string path = TempPath("keep.fb");
  ASSERT_TRUE(SaveGraph(testing::ResidualForward(), path).ok());
  const auto before = std::filesystem::file_size(path);
  // A directory where the temporary file would go makes the save fail before the rename.
  const std::string blocker = path + ".tmp." + std::to_string(::getpid());
  std::filesystem::create_directory(blocker);
  EXPECT_FALSE(SaveGraph(testing::ResidualTraining(), path).ok());
  std::filesystem::remove(blocker);
  EXPECT_EQ(std::filesystem::file_size(path), before);
  EXPECT_TRUE(LoadGraph(path, ops::StandardOps()).ok());
  std::remove(path.c_str());
}

TEST(LoadTest, MissingFileNamesThePath) {
  absl::StatusOr<Graph> g = LoadGraph("/no/such/graph.fb", ops::StandardOps());
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(g.status().message(), HasSubstr("/no/such/graph.fb"));
}

TEST(LoadTest, DirectoryIsRefused) {
  absl::StatusOr<Graph> g = LoadGraph("/tmp", ops::StandardOps());
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(g.status().message(), HasSubstr("/tmp"));
}

TEST(LoadTest, EmptyFile) {
  absl::StatusOr<Graph> g = ParseGraph({}, "empty.fb", ops::StandardOps());
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(g.status().message(), HasSubstr("empty.fb: file is empty"));
}

TEST(LoadTest, RandomBytesAreRefused) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<uint8_t> bytes(rng() % 4096);
    for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
    EXPECT_FALSE(ParseGraph(bytes, "random.fb", ops::StandardOps()).ok());
  }
}

TEST(LoadTest, EveryTruncationIsRefused) {
  const std::vector<uint8_t> bytes = Serialize(testing::ResidualTraining());
  for (size_t len = 0; len < bytes.size(); len += 1 + len / 64) {
    absl::StatusOr<Graph> g =
        ParseGraph(std::span(bytes.data(), len), "truncated.fb", ops::StandardOps());
    EXPECT_FALSE(g.ok()) << "prefix of " << len << " bytes loaded";
  }
}

TEST(LoadTest, WrongFileIdentifier) {
  std::vector<uint8_t> bytes = Serialize(testing::ResidualForward());
  std::copy_n("ONNX", 4, bytes.begin() + 4);
  absl::StatusOr<Graph> g = ParseGraph(bytes, "other.fb", ops::StandardOps());
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(g.status().message(), HasSubstr("file identifier"));
}

std::vector<uint8_t> GraphWithFormatVersion(uint32_t version) {
  flatbuffers::FlatBufferBuilder fbb;
  fb::FinishGraphBuffer(fbb, fb::CreateGraph(fbb, version, fbb.CreateString("future")));
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

TEST(LoadTest, NewerFormatVersion) {
  absl::StatusOr<Graph> g =
      ParseGraph(GraphWithFormatVersion(kFormatVersion + 1), "new.fb", ops::StandardOps());
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(g.status().message(), HasSubstr("format version 2 is newer"));
}

TEST(LoadTest, MissingFormatVersion) {
  absl::StatusOr<Graph> g = ParseGraph(GraphWithFormatVersion(0), "old.fb", ops::StandardOps());
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(g.status().message(), HasSubstr("no format version"));
}

TEST(LoadTest, UnknownEnumValueNamesTheTensor) {
  flatbuffers::FlatBufferBuilder fbb;
  auto tensor = fb::CreateTensor(fbb, fbb.CreateString("weird"), static_cast<fb::DType>(42));
  auto tensors = fbb.CreateVector(std::vector{tensor});
  fb::FinishGraphBuffer(fbb, fb::CreateGraph(fbb, kFormatVersion, 0, 0, tensors));
  absl::StatusOr<Graph> g = Deserialize(
      std::span(fbb.GetBufferPointer(), fbb.GetSize()), "enum.fb");
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(g.status().message(), HasSubstr("'weird' has unknown dtype 42"));
}

}  // namespace
}  // namespace gradflow::graph
