// Reader of the fixture files that tests/fixtures/make_fixtures.py writes: named, typed arrays.
//
// Format (all integers little-endian):
//   magic    4 bytes  "GFXT"
//   version  u32      1
//   count    u32      number of records
//   record   u16 name length, name bytes (UTF-8),
//            u8 dtype (0 f32, 1 f64, 2 i32, 3 i64, 4 u8),
//            u8 rank, rank x i64 dimensions,
//            the elements in row-major order, packed.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/types.h"

namespace gradflow::test_support {

enum class FixtureDType : uint8_t { kF32 = 0, kF64 = 1, kI32 = 2, kI64 = 3, kU8 = 4 };

struct FixtureRecord {
  FixtureDType dtype = FixtureDType::kF32;
  graph::Shape shape;
  // Every numeric dtype widened to double (i64 values in fixtures stay far below 2^53).
  std::vector<double> values;
  // The raw elements of a kU8 record (a text blob such as a list of names).
  std::string bytes;
};

class FixtureFile {
 public:
  // Errors name the file and, for a damaged record, its index and name.
  static absl::StatusOr<FixtureFile> Load(const std::string& path);

  bool Has(std::string_view name) const;
  // NotFound names the record and the file.
  absl::StatusOr<const FixtureRecord*> Get(std::string_view name) const;
  const std::map<std::string, FixtureRecord, std::less<>>& records() const { return records_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::map<std::string, FixtureRecord, std::less<>> records_;
};

}  // namespace gradflow::test_support
