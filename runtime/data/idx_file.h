// Reader for IDX files (the MNIST family's format), gzipped or plain: a big-endian header
// (magic 0x0000 08 NN: unsigned bytes, NN dimensions; then NN uint32 sizes) and the raw bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace gradflow::runtime::data {

struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> values;  // row-major, product(dims) bytes
};

// Reads `path` and checks that it holds unsigned bytes with `expected_rank` dimensions (magic
// 0x801 for labels, 0x803 for images) and exactly as many values as the header promises. Every
// error names the file: NotFound when it cannot be opened, DataLoss for a bad magic, a truncated
// or corrupt gzip stream, missing or trailing bytes.
absl::StatusOr<IdxArray> ReadIdxFile(const std::string& path, int expected_rank);

}  // namespace gradflow::runtime::data
