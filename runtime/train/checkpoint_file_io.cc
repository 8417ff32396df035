#include "runtime/train/checkpoint_file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace gradflow::runtime::checkpoint_io {
namespace {

// Large enough that syscalls cost nothing next to the bytes, small enough that a progress hook
// fires many times while a ResNet-50 checkpoint (~200 MB) is written.
constexpr size_t kChunkBytes = size_t{4} << 20;

absl::Status ErrnoError(int error, const std::string& call, const std::string& path) {
  return absl::ErrnoToStatus(error, absl::StrCat(call, " '", path, "'"));
}

uint32_t UpdateCrc(uint32_t crc, const void* data, size_t size) {
  // zlib reads a null buffer as "give me the initial value" and returns 0 whatever `crc` was:
  // an empty section (a model without batch norm has no running statistics, and an empty
  // vector's data() may be null) would silently restart the checksum.
  if (size == 0) return crc;
  return static_cast<uint32_t>(crc32_z(crc, static_cast<const Bytef*>(data), size));
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.Release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

int UniqueFd::Release() { return std::exchange(fd_, -1); }

absl::Status UniqueFd::Close(const std::string& path) {
  // Linux releases the descriptor even when close fails, so it is never retried.
  if (fd_ >= 0 && ::close(Release()) != 0) return ErrnoError(errno, "close", path);
  return absl::OkStatus();
}

absl::StatusOr<CrcFileWriter> CrcFileWriter::Create(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoError(errno, "unlink", path);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(errno, "create", path);
  return CrcFileWriter(path, UniqueFd(fd));
}

CrcFileWriter::CrcFileWriter(std::string path, UniqueFd fd)
    : path_(std::move(path)),
      fd_(std::move(fd)),
      buffer_(kChunkBytes),
      crc_(UpdateCrc(0, nullptr, 0)) {}

absl::Status CrcFileWriter::Write(const void* data, size_t size) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  crc_ = UpdateCrc(crc_, bytes, size);
  while (size > 0) {
    if (buffered_ == 0 && size >= kChunkBytes) {
      // Whole chunks go out directly, without a copy into the buffer.
      if (absl::Status s = WriteOut(bytes, kChunkBytes); !s.ok()) return s;
      bytes += kChunkBytes;
      size -= kChunkBytes;
      continue;
    }
    const size_t take = std::min(size, kChunkBytes - buffered_);
    std::memcpy(buffer_.data() + buffered_, bytes, take);
    buffered_ += take;
    bytes += take;
    size -= take;
    if (buffered_ == kChunkBytes) {
      if (absl::Status s = Flush(); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::Status CrcFileWriter::Flush() {
  if (buffered_ == 0) return absl::OkStatus();
  const size_t size = std::exchange(buffered_, 0);
  return WriteOut(buffer_.data(), size);
}

absl::Status CrcFileWriter::WriteOut(const uint8_t* data, size_t size) {
  while (size > 0) {
    const ssize_t written = ::write(fd_.get(), data, size);
    if (written < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "write", path_);
    }
    data += written;
    size -= static_cast<size_t>(written);
    bytes_written_ += written;
  }
  if (after_chunk_) return after_chunk_(bytes_written_);
  return absl::OkStatus();
}

absl::Status CrcFileWriter::SyncAndClose() {
  if (absl::Status s = Flush(); !s.ok()) return s;
  if (::fsync(fd_.get()) != 0) return ErrnoError(errno, "fsync", path_);
  return fd_.Close(path_);
}

absl::StatusOr<CrcFileReader> CrcFileReader::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "open", path);
  UniqueFd owned(fd);
  struct stat info {};
  if (::fstat(fd, &info) != 0) return ErrnoError(errno, "stat", path);
  if (!S_ISREG(info.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("'", path, "' is not a regular file"));
  }
  return CrcFileReader(path, std::move(owned), static_cast<int64_t>(info.st_size));
}

CrcFileReader::CrcFileReader(std::string path, UniqueFd fd, int64_t file_size)
    : path_(std::move(path)),
      fd_(std::move(fd)),
      file_size_(file_size),
      crc_(UpdateCrc(0, nullptr, 0)) {}

absl::Status CrcFileReader::Read(void* data, size_t size) {
  if (static_cast<int64_t>(size) > remaining()) {
    return absl::DataLossError(absl::StrCat("checkpoint '", path_, "' is truncated: needs ", size,
                                            " more bytes at offset ", position_, " of ",
                                            file_size_));
  }
  auto* bytes = static_cast<uint8_t*>(data);
  size_t left = size;
  while (left > 0) {
    const ssize_t got = ::read(fd_.get(), bytes, std::min(left, kChunkBytes));
    if (got < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "read", path_);
    }
    if (got == 0) {
      return absl::DataLossError(absl::StrCat(
          "checkpoint '", path_, "' shrank while being read (at offset ", position_, ")"));
    }
    crc_ = UpdateCrc(crc_, bytes, static_cast<size_t>(got));
    bytes += got;
    left -= static_cast<size_t>(got);
    position_ += got;
  }
  return absl::OkStatus();
}

absl::Status CrcFileReader::Skip(int64_t size) {
  std::vector<uint8_t> scratch(static_cast<size_t>(std::min<int64_t>(size, kChunkBytes)));
  while (size > 0) {
    const size_t take = static_cast<size_t>(std::min<int64_t>(size, kChunkBytes));
    if (absl::Status s = Read(scratch.data(), take); !s.ok()) return s;
    size -= static_cast<int64_t>(take);
  }
  return absl::OkStatus();
}

absl::Status SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "open directory", dir);
  UniqueFd owned(fd);
  if (::fsync(fd) != 0) return ErrnoError(errno, "fsync directory", dir);
  return owned.Close(dir);
}

absl::Status DurableRename(const std::string& from, const std::string& to, const std::string& dir) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoError(errno, "rename", absl::StrCat(from, "' to '", to));
  }
  return SyncDirectory(dir);
}

}  // namespace gradflow::runtime::checkpoint_io
