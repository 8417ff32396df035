#include "runtime/data/idx_file.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace gradflow::runtime::data {
namespace {

// No MNIST-family file comes near this; it stops a corrupt header from asking for terabytes.
constexpr int64_t kMaxIdxBytes = int64_t{1} << 32;

struct GzCloser {
  void operator()(gzFile_s* file) const { gzclose(file); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

uint32_t BigEndian32(const unsigned char* bytes) {
  return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) |
         uint32_t{bytes[3]};
}

// Reads up to `size` bytes; returns how many arrived, or an error if zlib reports corruption
// (a truncated gzip stream also surfaces here, as "unexpected end of file").
absl::StatusOr<int64_t> ReadBytes(gzFile file, const std::string& path, unsigned char* out,
                                  int64_t size) {
  int64_t done = 0;
  while (done < size) {
    const unsigned chunk = static_cast<unsigned>(std::min<int64_t>(size - done, 1 << 30));
    const int got = gzread(file, out + done, chunk);
    if (got < 0) {
      int code = Z_OK;
      const char* message = gzerror(file, &code);
      return absl::DataLossError(absl::StrCat(path, ": corrupt gzip data (", message, ")"));
    }
    if (got == 0) break;
    done += got;
  }
  int code = Z_OK;
  const char* message = gzerror(file, &code);
  if (code != Z_OK && code != Z_STREAM_END) {
    return absl::DataLossError(absl::StrCat(path, ": corrupt gzip data (", message, ")"));
  }
  return done;
}

}  // namespace

absl::StatusOr<IdxArray> ReadIdxFile(const std::string& path, int expected_rank) {
  errno = 0;
  GzFile file(gzopen(path.c_str(), "rb"));
  if (file == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        path, ": cannot open (", errno != 0 ? std::strerror(errno) : "out of memory", ")"));
  }
  gzbuffer(file.get(), 1 << 17);

  unsigned char magic[4];
  absl::StatusOr<int64_t> got = ReadBytes(file.get(), path, magic, 4);
  if (!got.ok()) return got.status();
  const uint32_t expected_magic = 0x800u | static_cast<uint32_t>(expected_rank);
  if (*got < 4) {
    return absl::DataLossError(
        absl::StrCat(path, ": truncated IDX file (", *got, " bytes, no complete header)"));
  }
  if (BigEndian32(magic) != expected_magic) {
    return absl::DataLossError(
        absl::StrFormat("%s: bad IDX magic 0x%08x, expected 0x%08x (unsigned bytes, %d dimensions)",
                        path, BigEndian32(magic), expected_magic, expected_rank));
  }

  IdxArray array;
  std::vector<unsigned char> header(4 * static_cast<size_t>(expected_rank));
  got = ReadBytes(file.get(), path, header.data(), static_cast<int64_t>(header.size()));
  if (!got.ok()) return got.status();
  if (*got < static_cast<int64_t>(header.size())) {
    return absl::DataLossError(absl::StrCat(path, ": truncated IDX header (", 4 + *got, " of ",
                                            4 + header.size(), " bytes)"));
  }
  int64_t total = 1;
  for (int d = 0; d < expected_rank; ++d) {
    const int64_t size = BigEndian32(header.data() + 4 * d);
    array.dims.push_back(size);
    total = size == 0 ? 0 : (total > kMaxIdxBytes / size ? kMaxIdxBytes + 1 : total * size);
  }
  if (total > kMaxIdxBytes) {
    return absl::DataLossError(
        absl::StrCat(path, ": IDX header promises more than ", kMaxIdxBytes, " bytes"));
  }

  array.values.resize(static_cast<size_t>(total));
  got = ReadBytes(file.get(), path, array.values.data(), total);
  if (!got.ok()) return got.status();
  if (*got < total) {
    return absl::DataLossError(absl::StrCat(path, ": truncated IDX data: header promises ", total,
                                            " bytes, file holds ", *got));
  }
  unsigned char extra;
  got = ReadBytes(file.get(), path, &extra, 1);
  if (!got.ok()) return got.status();
  if (*got != 0) {
    return absl::DataLossError(
        absl::StrCat(path, ": IDX file holds more bytes than its header promises (", total, ")"));
  }
  return array;
}

}  // namespace gradflow::runtime::data
