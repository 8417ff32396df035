#include "runtime/data/idx_file.h"

#include <filesystem>
#include <fstream>
#include <numeric>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/runtime_data/test_files.h"

namespace gradflow::runtime::data {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::IdxBytes;
using testing::WriteBytes;
using testing::WriteGzip;

class IdxFileTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::FreshTempDir("idx_file_test"); }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

TEST_F(IdxFileTest, ReadsGzippedImages) {
  std::vector<uint8_t> values(2 * 3 * 4);
  std::iota(values.begin(), values.end(), uint8_t{0});
  WriteGzip(Path("images.gz"), IdxBytes({2, 3, 4}, values));
  absl::StatusOr<IdxArray> array = ReadIdxFile(Path("images.gz"), 3);
  ASSERT_TRUE(array.ok()) << array.status();
  EXPECT_THAT(array->dims, ElementsAre(2, 3, 4));
  EXPECT_EQ(array->values, values);
}

TEST_F(IdxFileTest, ReadsUncompressedLabels) {
  WriteBytes(Path("labels"), IdxBytes({3}, {7, 0, 9}));
  absl::StatusOr<IdxArray> array = ReadIdxFile(Path("labels"), 1);
  ASSERT_TRUE(array.ok()) << array.status();
  EXPECT_THAT(array->dims, ElementsAre(3));
  EXPECT_THAT(array->values, ElementsAre(7, 0, 9));
}

TEST_F(IdxFileTest, ReadsEmptyArray) {
  WriteGzip(Path("empty.gz"), IdxBytes({0}, {}));
  absl::StatusOr<IdxArray> array = ReadIdxFile(Path("empty.gz"), 1);
  ASSERT_TRUE(array.ok()) << array.status();
  EXPECT_TRUE(array->values.empty());
}

TEST_F(IdxFileTest, MissingFileIsNotFoundAndNamed) {
  absl::StatusOr<IdxArray> array = ReadIdxFile(Path("absent.gz"), 3);
  EXPECT_TRUE(absl::IsNotFound(array.status())) << array.status();
  EXPECT_THAT(array.status().message(), HasSubstr(Path("absent.gz")));
}

TEST_F(IdxFileTest, LabelsWhereImagesExpectedIsBadMagic) {
  WriteGzip(Path("labels.gz"), IdxBytes({2}, {1, 2}));
  absl::StatusOr<IdxArray> array = ReadIdxFile(Path("labels.gz"), 3);
  EXPECT_TRUE(absl::IsDataLoss(array.status())) << array.status();
  EXPECT_THAT(array.status().message(),
              AllOf(HasSubstr(Path("labels.gz")), HasSubstr("bad IDX magic 0x00000801"),
                    HasSubstr("expected 0x00000803")));
}

TEST_F(IdxFileTest, NonByteElementTypeIsBadMagic) {
  std::vector<uint8_t> bytes = IdxBytes({1}, {0, 0, 0, 0});
  bytes[2] = 0x0C;  // int32 elements
  WriteGzip(Path("ints.gz"), bytes);
  absl::StatusOr<IdxArray> array = ReadIdxFile(Path("ints.gz"), 1);
  EXPECT_THAT(array.status().message(), HasSubstr("bad IDX magic 0x00000c01"));
}

TEST_F(IdxFileTest, EmptyFileIsTruncated) {
  WriteGzip(Path("nothing.gz"), {});
  absl::StatusOr<IdxArray> array = ReadIdxFile(Path("nothing.gz"), 1);
  EXPECT_TRUE(absl::IsDataLoss(array.status()));
  EXPECT_THAT(array.status().message(),
              AllOf(HasSubstr(Path("nothing.gz")), HasSubstr("no complete header")));
}

TEST_F(IdxFileTest, TruncatedHeaderIsNamed) {
  std::vector<uint8_t> bytes = IdxBytes({5, 28, 28}, {});
  bytes.resize(9);  // magic and one and a quarter sizes
  WriteGzip(Path("header.gz"), bytes);
  absl::StatusOr<IdxArray> array = ReadIdxFile(Path("header.gz"), 3);
  EXPECT_THAT(array.status().message(),
              AllOf(HasSubstr(Path("header.gz")), HasSubstr("truncated IDX header (9 of 16")));
}

TEST_F(IdxFileTest, TruncatedDataSaysHowMuchIsMissing) {
  WriteGzip(Path("short.gz"), IdxBytes({3, 2, 2}, std::vector<uint8_t>(10, 1)));
  absl::StatusOr<IdxArray> array = ReadIdxFile(Path("short.gz"), 3);
  EXPECT_TRUE(absl::IsDataLoss(array.status()));
  EXPECT_THAT(array.status().message(),
              AllOf(HasSubstr(Path("short.gz")), HasSubstr("promises 12 bytes, file holds 10")));
}

TEST_F(IdxFileTest, TrailingBytesAreRejected) {
  WriteGzip(Path("long.gz"), IdxBytes({2}, {1, 2, 3}));
  absl::StatusOr<IdxArray> array = ReadIdxFile(Path("long.gz"), 1);
  EXPECT_THAT(array.status().message(),
              AllOf(HasSubstr(Path("long.gz")), HasSubstr("more bytes than its header")));
}

TEST_F(IdxFileTest, TruncatedGzipStreamIsNamed) {
  std::vector<uint8_t> values(4000);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<uint8_t>((i * 7919) >> 3);
  WriteGzip(Path("full.gz"), IdxBytes({4000}, values));
  std::ifstream in(Path("full.gz"), std::ios::binary);
  std::vector<uint8_t> compressed((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
  ASSERT_GT(compressed.size(), 100u);
  compressed.resize(compressed.size() / 2);
  WriteBytes(Path("cut.gz"), compressed);
  absl::StatusOr<IdxArray> array = ReadIdxFile(Path("cut.gz"), 1);
  EXPECT_TRUE(absl::IsDataLoss(array.status())) << array.status();
  EXPECT_THAT(array.status().message(), HasSubstr(Path("cut.gz")));
}

TEST_F(IdxFileTest, HugeHeaderIsRefusedBeforeAllocating) {
  WriteGzip(Path("huge.gz"), IdxBytes({0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}, {}));
  absl::StatusOr<IdxArray> array = ReadIdxFile(Path("huge.gz"), 3);
  EXPECT_THAT(array.status().message(),
              AllOf(HasSubstr(Path("huge.gz")), HasSubstr("promises more than")));
}

}  // namespace
}  // namespace gradflow::runtime::data
