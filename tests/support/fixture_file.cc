#include "tests/support/fixture_file.h"

#include <bit>
#include <cstring>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"

namespace gradflow::test_support {
namespace {

static_assert(std::endian::native == std::endian::little,
              "fixture files are little-endian and read by plain memcpy");

constexpr char kMagic[4] = {'G', 'F', 'X', 'T'};
constexpr uint32_t kVersion = 1;
constexpr uint8_t kMaxRank = 8;

// Sequential reads over the file's bytes that fail instead of running past the end.
class Cursor {
 public:
  explicit Cursor(const std::string& bytes) : bytes_(bytes) {}

  template <typename T>
  bool Read(T& value) {
    if (remaining() < sizeof(T)) return false;
    std::memcpy(&value, bytes_.data() + offset_, sizeof(T));
    offset_ += sizeof(T);
    return true;
  }
  bool ReadBytes(size_t count, std::string& out) {
    if (remaining() < count) return false;
    out.assign(bytes_.data() + offset_, count);
    offset_ += count;
    return true;
  }
  size_t remaining() const { return bytes_.size() - offset_; }
  size_t offset() const { return offset_; }

 private:
  const std::string& bytes_;
  size_t offset_ = 0;
};

size_t ElementSize(FixtureDType dtype) {
  switch (dtype) {
    case FixtureDType::kF32:
    case FixtureDType::kI32:
      return 4;
    case FixtureDType::kF64:
    case FixtureDType::kI64:
      return 8;
    case FixtureDType::kU8:
      return 1;
  }
  return 0;
}

template <typename T>
void Widen(const std::string& raw, std::vector<double>& values) {
  const size_t count = raw.size() / sizeof(T);
  values.resize(count);
  for (size_t i = 0; i < count; ++i) {
    T element;
    std::memcpy(&element, raw.data() + i * sizeof(T), sizeof(T));
    values[i] = static_cast<double>(element);
  }
}

absl::Status ReadRecord(Cursor& cursor, std::string& name, FixtureRecord& record) {
  uint16_t name_length = 0;
  if (!cursor.Read(name_length) || !cursor.ReadBytes(name_length, name)) {
    return absl::DataLossError("truncated record name");
  }
  uint8_t dtype = 0;
  uint8_t rank = 0;
  if (!cursor.Read(dtype) || !cursor.Read(rank)) {
    return absl::DataLossError(absl::StrCat("record '", name, "': truncated header"));
  }
  if (dtype > static_cast<uint8_t>(FixtureDType::kU8)) {
    return absl::DataLossError(absl::StrCat("record '", name, "': unknown dtype ", dtype));
  }
  if (rank > kMaxRank) {
    return absl::DataLossError(
        absl::StrCat("record '", name, "': rank ", rank, " exceeds ", kMaxRank));
  }
  record.dtype = static_cast<FixtureDType>(dtype);
  uint64_t count = 1;
  for (uint8_t d = 0; d < rank; ++d) {
    int64_t dim = 0;
    if (!cursor.Read(dim))
      return absl::DataLossError(absl::StrCat("record '", name, "': truncated shape"));
    if (dim < 0 || dim > (int64_t{1} << 32)) {
      return absl::DataLossError(absl::StrCat("record '", name, "': bad dimension ", dim));
    }
    record.shape.push_back(dim);
    count *= static_cast<uint64_t>(dim);
    if (count > cursor.remaining()) {
      return absl::DataLossError(absl::StrCat("record '", name, "': shape ",
                                              graph::ShapeToString(record.shape),
                                              " is larger than the rest of the file"));
    }
  }
  std::string raw;
  if (!cursor.ReadBytes(count * ElementSize(record.dtype), raw)) {
    return absl::DataLossError(absl::StrCat("record '", name, "': truncated data (", count,
                                            " elements of shape ",
                                            graph::ShapeToString(record.shape), ")"));
  }
  switch (record.dtype) {
    case FixtureDType::kF32:
      Widen<float>(raw, record.values);
      break;
    case FixtureDType::kF64:
      Widen<double>(raw, record.values);
      break;
    case FixtureDType::kI32:
      Widen<int32_t>(raw, record.values);
      break;
    case FixtureDType::kI64:
      Widen<int64_t>(raw, record.values);
      break;
    case FixtureDType::kU8:
      record.bytes = std::move(raw);
      break;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<FixtureFile> FixtureFile::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot open fixture file '", path,
                     "' (generate it with tests/fixtures/make_fixtures.py)"));
  }
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Cursor cursor(bytes);
  char magic[4];
  uint32_t version = 0;
  uint32_t count = 0;
  if (!cursor.Read(magic) || std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) {
    return absl::DataLossError(absl::StrCat("'", path, "' is not a fixture file (bad magic)"));
  }
  if (!cursor.Read(version) || version != kVersion) {
    return absl::DataLossError(absl::StrCat("'", path, "' has fixture format version ", version,
                                            ", this reader knows ", kVersion));
  }
  if (!cursor.Read(count))
    return absl::DataLossError(absl::StrCat("'", path, "': truncated header"));
  FixtureFile file;
  file.path_ = path;
  for (uint32_t r = 0; r < count; ++r) {
    std::string name;
    FixtureRecord record;
    if (absl::Status s = ReadRecord(cursor, name, record); !s.ok()) {
      return absl::DataLossError(absl::StrCat("'", path, "' record ", r, ": ", s.message()));
    }
    if (!file.records_.emplace(name, std::move(record)).second) {
      return absl::DataLossError(absl::StrCat("'", path, "' has two records named '", name, "'"));
    }
  }
  if (cursor.remaining() != 0) {
    return absl::DataLossError(
        absl::StrCat("'", path, "' has ", cursor.remaining(), " bytes after its last record"));
  }
  return file;
}

bool FixtureFile::Has(std::string_view name) const { return records_.find(name) != records_.end(); }

absl::StatusOr<const FixtureRecord*> FixtureFile::Get(std::string_view name) const {
  auto it = records_.find(name);
  if (it == records_.end()) {
    return absl::NotFoundError(
        absl::StrCat("fixture file '", path_, "' has no record '", std::string(name), "'"));
  }
  return &it->second;
}

}  // namespace gradflow::test_support
