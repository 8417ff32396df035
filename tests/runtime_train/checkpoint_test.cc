// Checkpoint round trip, rotation, and every way a file can be refused (each naming the file).
#include "runtime/train/checkpoint.h"

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/runtime_train/checkpoint_test_util.h"

namespace gradflow::runtime {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using testing::FileNames;
using testing::FixCrc;
using testing::FreshDirectory;
using ::testing::HasSubstr;
using testing::MakeState;
using testing::ReadBytes;
using testing::TrainingState;
using testing::WriteBytes;

// Header: magic 4, version 4, graph hash 8, section count 4.
constexpr size_t kVersionOffset = 4;
constexpr size_t kFirstSectionOffset = 20;

std::string Write(const std::string& dir, const TrainingState& state, int keep_last = 3) {
  absl::StatusOr<WrittenCheckpoint> written =
      WriteCheckpoint(dir, state.View(), {.keep_last = keep_last});
  EXPECT_TRUE(written.ok()) << written.status();
  return written.ok() ? written->path : "";
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

void ExpectEqualsState(const Checkpoint& checkpoint, const TrainingState& state) {
  EXPECT_EQ(checkpoint.format_version, kCheckpointFormatVersion);
  EXPECT_EQ(checkpoint.graph_hash, state.graph_hash);
  EXPECT_TRUE(SameBits(checkpoint.parameters, state.parameters));
  EXPECT_TRUE(SameBits(checkpoint.momentum, state.momentum));
  EXPECT_TRUE(SameBits(checkpoint.bn_state, state.bn_state));
  EXPECT_EQ(checkpoint.epoch, state.epoch);
  EXPECT_EQ(checkpoint.iteration, state.iteration);
  EXPECT_EQ(checkpoint.previous_lr, state.previous_lr);
  EXPECT_EQ(checkpoint.blobs.size(), 2u);
  EXPECT_EQ(checkpoint.blobs.at("rng"), state.rng);
  EXPECT_EQ(checkpoint.blobs.at("data_loader"), state.loader);
}

TEST(CheckpointTest, RoundTripIsBitExact) {
  const std::string dir = FreshDirectory("round_trip");
  const TrainingState state = MakeState(1000, 120, 1);
  const std::string path = Write(dir, state);
  EXPECT_EQ(path, (std::filesystem::path(dir) / "ckpt-120.gfck").string());
  EXPECT_THAT(FileNames(dir), ElementsAre("ckpt-120.gfck"));  // no temporary left
  absl::StatusOr<Checkpoint> checkpoint = LoadCheckpoint(path, state.Expectation());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  ExpectEqualsState(*checkpoint, state);
}

TEST(CheckpointTest, EmptySectionsWithoutStorageRoundTrip) {
  // A model without batch norm: no running statistics, and the empty span has no storage at
  // all. zlib restarts its checksum on a null buffer; the writer must not let it.
  const std::string dir = FreshDirectory("empty_sections");
  TrainingState state = MakeState(1000, 7, 1);
  state.bn_state.clear();
  state.bn_state.shrink_to_fit();
  CheckpointView view = state.View();
  view.bn_state = std::span<const float>();
  ASSERT_EQ(view.bn_state.data(), nullptr);
  absl::StatusOr<WrittenCheckpoint> written = WriteCheckpoint(dir, view, {});
  ASSERT_TRUE(written.ok()) << written.status();
  absl::StatusOr<Checkpoint> checkpoint = ReadCheckpoint(written->path);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_TRUE(checkpoint->bn_state.empty());
  EXPECT_TRUE(SameBits(checkpoint->parameters, state.parameters));
}

TEST(CheckpointTest, CreatesMissingDirectories) {
  const std::string dir = FreshDirectory("nested") + "/runs/first/";
  const TrainingState state = MakeState(10, 3, 1);
  const std::string path = Write(dir, state);
  EXPECT_THAT(path, ::testing::EndsWith("/runs/first/ckpt-3.gfck"));
  EXPECT_TRUE(LoadCheckpoint(path, state.Expectation()).ok());
}

TEST(CheckpointTest, LargeBuffersSpanManyChunks) {
  const std::string dir = FreshDirectory("large");
  const TrainingState state = MakeState(3'000'001, 7, 2);  // ~24 MB: several 4 MiB chunks
  int chunks = 0;
  absl::StatusOr<WrittenCheckpoint> written =
      WriteCheckpoint(dir, state.View(), {.after_chunk = [&chunks](int64_t) {
                        ++chunks;
                        return absl::OkStatus();
                      }});
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_GE(chunks, 5);
  absl::StatusOr<Checkpoint> checkpoint = LoadCheckpoint(written->path, state.Expectation());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  ExpectEqualsState(*checkpoint, state);
}

TEST(CheckpointTest, GraphHashIsFnv1a64) {
  EXPECT_EQ(GraphHash({}), 0xcbf29ce484222325ull);
  const std::vector<uint8_t> a = {'a'};
  EXPECT_EQ(GraphHash(a), 0xaf63dc4c8601ec8cull);
  const std::string dir = FreshDirectory("graph_hash");
  const std::vector<uint8_t> graph = {1, 2, 3, 4, 5};
  WriteBytes(dir + "/g.fb", graph);
  absl::StatusOr<uint64_t> hash = GraphFileHash(dir + "/g.fb");
  ASSERT_TRUE(hash.ok());
  EXPECT_EQ(*hash, GraphHash(graph));
  // Larger than the 1 MiB pieces the file is hashed in.
  std::vector<uint8_t> big(3'000'000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 7 + i / 1000);
  WriteBytes(dir + "/big.fb", big);
  hash = GraphFileHash(dir + "/big.fb");
  ASSERT_TRUE(hash.ok());
  EXPECT_EQ(*hash, GraphHash(big));
  EXPECT_THAT(GraphFileHash(dir + "/missing.fb").status().message(),
              HasSubstr("cannot open graph file '" + dir + "/missing.fb'"));
}

TEST(CheckpointTest, KeepsTheLastK) {
  const std::string dir = FreshDirectory("keep_last");
  for (int64_t iteration : {10, 20, 30, 40, 50}) Write(dir, MakeState(10, iteration, 3));
  EXPECT_THAT(FileNames(dir), ElementsAre("ckpt-30.gfck", "ckpt-40.gfck", "ckpt-50.gfck"));
  Write(dir, MakeState(10, 100, 3), /*keep_last=*/1);
  EXPECT_THAT(FileNames(dir), ElementsAre("ckpt-100.gfck"));
  // Numeric, not lexicographic, order: 100 is newer than 99.
  Write(dir, MakeState(10, 99, 3), /*keep_last=*/2);
  absl::StatusOr<std::vector<std::string>> listed = ListCheckpoints(dir);
  ASSERT_TRUE(listed.ok());
  EXPECT_THAT(*listed, ElementsAre(dir + "/ckpt-100.gfck", dir + "/ckpt-99.gfck"));
}

TEST(CheckpointTest, NewerNumberedCheckpointIsLeftWithAWarning) {
  const std::string dir = FreshDirectory("newer_left");
  Write(dir, MakeState(10, 500, 4));
  absl::StatusOr<WrittenCheckpoint> written =
      WriteCheckpoint(dir, MakeState(10, 100, 4).View(), {.keep_last = 1});
  ASSERT_TRUE(written.ok());
  ASSERT_EQ(written->warnings.size(), 1u);
  EXPECT_THAT(written->warnings[0], HasSubstr("ckpt-500.gfck, newer than the one just written"));
  EXPECT_THAT(FileNames(dir), ElementsAre("ckpt-100.gfck", "ckpt-500.gfck"));
}

TEST(CheckpointTest, CorruptByteIsRefusedNamingTheFile) {
  const std::string dir = FreshDirectory("corrupt_byte");
  const std::string path = Write(dir, MakeState(1000, 10, 5));
  const std::vector<uint8_t> good = ReadBytes(path);
  for (size_t offset : {size_t{0}, kVersionOffset, size_t{9}, kFirstSectionOffset + 2,
                        good.size() / 2, good.size() - 30, good.size() - 1}) {
    SCOPED_TRACE(::testing::Message() << "byte " << offset);
    std::vector<uint8_t> bad = good;
    bad[offset] ^= 0x10;
    WriteBytes(path, bad);
    absl::Status status = ReadCheckpoint(path).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
    EXPECT_THAT(status.message(), HasSubstr("checkpoint '" + path + "' is corrupt"));
  }
  std::vector<uint8_t> bad = good;
  bad[good.size() / 2] ^= 0x01;
  WriteBytes(path, bad);
  EXPECT_THAT(ReadCheckpoint(path).status().message(), HasSubstr("CRC-32 is"));
}

TEST(CheckpointTest, TruncatedFileIsRefused) {
  const std::string dir = FreshDirectory("truncated");
  const std::string path = Write(dir, MakeState(1000, 10, 6));
  const std::vector<uint8_t> good = ReadBytes(path);
  for (size_t size : {size_t{0}, size_t{10}, size_t{24}, good.size() / 2, good.size() - 1}) {
    SCOPED_TRACE(::testing::Message() << "size " << size);
    WriteBytes(path, std::vector<uint8_t>(good.begin(), good.begin() + size));
    absl::Status status = ReadCheckpoint(path).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
    EXPECT_THAT(status.message(), HasSubstr("'" + path + "'"));
  }
}

TEST(CheckpointTest, WrongMagicIsRefusedEvenWithAValidCrc) {
  const std::string dir = FreshDirectory("magic");
  const std::string path = Write(dir, MakeState(10, 10, 7));
  std::vector<uint8_t> bytes = ReadBytes(path);
  bytes[3] = 'X';
  FixCrc(bytes);
  WriteBytes(path, bytes);
  EXPECT_THAT(ReadCheckpoint(path).status().message(),
              AllOf(HasSubstr(path), HasSubstr("magic is GFCX, not \"GFCK\"")));
}

TEST(CheckpointTest, NewerFormatVersionIsRefused) {
  const std::string dir = FreshDirectory("version");
  const std::string path = Write(dir, MakeState(10, 10, 8));
  std::vector<uint8_t> bytes = ReadBytes(path);
  bytes[kVersionOffset] = kCheckpointFormatVersion + 1;
  FixCrc(bytes);
  WriteBytes(path, bytes);
  absl::Status status = ReadCheckpoint(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(status.message(), AllOf(HasSubstr(path), HasSubstr("has format version 2; this "
                                                                 "gradflow reads up to 1")));
}

TEST(CheckpointTest, UnknownSectionIsRefused) {
  const std::string dir = FreshDirectory("unknown_section");
  const std::string path = Write(dir, MakeState(10, 10, 9));
  std::vector<uint8_t> bytes = ReadBytes(path);
  // The first section is "parameters"; rename it to a same-length unknown name.
  ASSERT_EQ(std::memcmp(bytes.data() + kFirstSectionOffset + 4, "parameters", 10), 0);
  std::memcpy(bytes.data() + kFirstSectionOffset + 4, "parametres", 10);
  FixCrc(bytes);
  WriteBytes(path, bytes);
  EXPECT_THAT(ReadCheckpoint(path).status().message(),
              AllOf(HasSubstr(path), HasSubstr("unknown section 'parametres'")));
}

TEST(CheckpointTest, OtherGraphIsRefused) {
  const std::string dir = FreshDirectory("other_graph");
  const TrainingState state = MakeState(10, 10, 10);
  const std::string path = Write(dir, state);
  CheckpointExpectation expected = state.Expectation();
  expected.graph_hash ^= 1;
  absl::Status status = LoadCheckpoint(path, expected).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr(path), HasSubstr("was written for another training graph")));
}

TEST(CheckpointTest, MismatchedBufferSizesAreRefused) {
  const std::string dir = FreshDirectory("sizes");
  const TrainingState state = MakeState(10, 10, 11);
  const std::string path = Write(dir, state);
  CheckpointExpectation expected = state.Expectation();
  expected.parameter_count = 11;
  EXPECT_THAT(LoadCheckpoint(path, expected).status().message(),
              AllOf(HasSubstr(path), HasSubstr("holds 10 parameter floats, this run has 11")));
  expected = state.Expectation();
  expected.bn_state_count = 0;
  EXPECT_THAT(LoadCheckpoint(path, expected).status().message(),
              HasSubstr("batch-norm state floats"));
}

TEST(CheckpointTest, BadWriteRequestsAreRefused) {
  const std::string dir = FreshDirectory("bad_requests");
  TrainingState state = MakeState(10, 10, 12);
  EXPECT_THAT(WriteCheckpoint(dir, state.View(), {.keep_last = 0}).status().message(),
              HasSubstr("keep_last must be >= 1"));
  CheckpointView view = state.View();
  view.momentum = view.momentum.subspan(1);
  EXPECT_THAT(WriteCheckpoint(dir, view).status().message(),
              HasSubstr("momentum has 9 floats, parameters 10"));
  view = state.View();
  view.blobs.push_back(view.blobs[0]);
  EXPECT_THAT(WriteCheckpoint(dir, view).status().message(), HasSubstr("blob 'rng' given twice"));
  view = state.View();
  view.iteration = -1;
  EXPECT_FALSE(WriteCheckpoint(dir, view).ok());
  EXPECT_TRUE(FileNames(dir).empty());
}

TEST(CheckpointTest, FailedWriteLeavesThePreviousCheckpoint) {
  const std::string dir = FreshDirectory("failed_write");
  const TrainingState previous = MakeState(10, 10, 13);
  Write(dir, previous);
  const TrainingState next = MakeState(3'000'000, 20, 14);
  absl::StatusOr<WrittenCheckpoint> written =
      WriteCheckpoint(dir, next.View(), {.after_chunk = [](int64_t bytes) {
                        return bytes > (int64_t{8} << 20) ? absl::UnavailableError("disk unplugged")
                                                          : absl::OkStatus();
                      }});
  EXPECT_THAT(written.status().message(),
              AllOf(HasSubstr("ckpt-20.gfck"), HasSubstr("disk unplugged")));
  EXPECT_THAT(FileNames(dir), ElementsAre("ckpt-10.gfck"));
  absl::StatusOr<std::optional<std::string>> latest = LatestCheckpoint(dir);
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ(**latest, dir + "/ckpt-10.gfck");
}

TEST(CheckpointTest, LatestSkipsCorruptNewerFiles) {
  const std::string dir = FreshDirectory("latest");
  absl::StatusOr<std::optional<std::string>> latest = LatestCheckpoint(dir + "/absent");
  ASSERT_TRUE(latest.ok());
  EXPECT_FALSE(latest->has_value());
  for (int64_t iteration : {10, 20}) Write(dir, MakeState(10, iteration, 15));
  WriteBytes(dir + "/ckpt-30.gfck", {'G', 'F', 'C', 'K', 1});
  WriteBytes(dir + "/ckpt-x.gfck", {});
  WriteBytes(dir + "/.ckpt-40.gfck.tmp-1", {'G', 'F'});
  latest = LatestCheckpoint(dir);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(**latest, dir + "/ckpt-20.gfck");
}

TEST(CheckpointTest, ResumeFallsBackAndMovesCorruptFilesAside) {
  const std::string dir = FreshDirectory("resume_fallback");
  const TrainingState older = MakeState(100, 20, 16);
  Write(dir, MakeState(100, 10, 16));
  Write(dir, older);
  const std::string newest = Write(dir, MakeState(100, 30, 17));
  std::vector<uint8_t> bytes = ReadBytes(newest);
  bytes[bytes.size() / 2] ^= 0xff;
  WriteBytes(newest, bytes);

  absl::StatusOr<ResumePoint> resume = ResumeFromDirectory(dir, older.Expectation());
  ASSERT_TRUE(resume.ok()) << resume.status();
  ASSERT_TRUE(resume->checkpoint.has_value());
  EXPECT_EQ(resume->path, dir + "/ckpt-20.gfck");
  ExpectEqualsState(*resume->checkpoint, older);
  ASSERT_EQ(resume->warnings.size(), 1u);
  EXPECT_THAT(resume->warnings[0],
              AllOf(HasSubstr(newest), HasSubstr("is corrupt"), HasSubstr("moved aside")));
  EXPECT_THAT(FileNames(dir), ElementsAre("ckpt-10.gfck", "ckpt-20.gfck", "ckpt-30.gfck.corrupt"));
  // The resumed run's checkpoints rotate normally: the corrupt one no longer outranks them.
  for (int64_t iteration : {21, 22, 23}) Write(dir, MakeState(100, iteration, 18));
  EXPECT_THAT(FileNames(dir),
              ElementsAre("ckpt-21.gfck", "ckpt-22.gfck", "ckpt-23.gfck", "ckpt-30.gfck.corrupt"));
}

TEST(CheckpointTest, ResumeRefusesWhenEveryCheckpointIsCorrupt) {
  const std::string dir = FreshDirectory("resume_all_corrupt");
  const TrainingState state = MakeState(100, 10, 19);
  const std::string path = Write(dir, state);
  std::vector<uint8_t> bytes = ReadBytes(path);
  bytes.resize(bytes.size() - 100);
  WriteBytes(path, bytes);
  absl::Status status = ResumeFromDirectory(dir, state.Expectation()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("every checkpoint there is corrupt"), HasSubstr(path)));
  // Nothing moved: a retry must not mistake the directory for a fresh start.
  EXPECT_THAT(FileNames(dir), ElementsAre("ckpt-10.gfck"));
  EXPECT_EQ(LatestCheckpoint(dir).status().code(), absl::StatusCode::kDataLoss);
}

TEST(CheckpointTest, ResumeRefusesAnotherGraphWithoutFallingBack) {
  const std::string dir = FreshDirectory("resume_other_graph");
  const TrainingState state = MakeState(100, 10, 20);
  const std::string path = Write(dir, state);
  CheckpointExpectation expected = state.Expectation();
  expected.graph_hash += 1;
  EXPECT_THAT(ResumeFromDirectory(dir, expected).status().message(),
              AllOf(HasSubstr(path), HasSubstr("another training graph")));
}

TEST(CheckpointTest, ResumeFromEmptyDirectoryStartsFresh) {
  const std::string dir = FreshDirectory("resume_empty");
  absl::StatusOr<ResumePoint> resume = ResumeFromDirectory(dir, {});
  ASSERT_TRUE(resume.ok());
  EXPECT_FALSE(resume->checkpoint.has_value());
  EXPECT_TRUE(resume->warnings.empty());
}

}  // namespace
}  // namespace gradflow::runtime
