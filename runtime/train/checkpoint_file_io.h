// POSIX file plumbing for checkpoints: whole writes and reads that keep a running zlib CRC-32,
// durable renames. Errors are absl::Status naming the file and the failing call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace gradflow::runtime::checkpoint_io {

// Owns a file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const { return fd_; }
  int Release();
  // close(2) with its error reported (it can carry a deferred write error).
  absl::Status Close(const std::string& path);

 private:
  int fd_ = -1;
};

// Buffered writer over a new file; every byte passes through the CRC.
class CrcFileWriter {
 public:
  // Creates `path` exclusively (replacing a stale file of that name first).
  static absl::StatusOr<CrcFileWriter> Create(const std::string& path);

  absl::Status Write(const void* data, size_t size);
  // Writes the buffer out; `after_chunk` (may be empty) is called with the bytes written so far.
  absl::Status Flush();
  // Flush, fsync, close.
  absl::Status SyncAndClose();

  uint32_t crc() const { return crc_; }
  int64_t bytes_written() const { return bytes_written_; }
  void set_after_chunk(std::function<absl::Status(int64_t)> after_chunk) {
    after_chunk_ = std::move(after_chunk);
  }

 private:
  CrcFileWriter(std::string path, UniqueFd fd);
  absl::Status WriteOut(const uint8_t* data, size_t size);

  std::string path_;
  UniqueFd fd_;
  std::vector<uint8_t> buffer_;
  size_t buffered_ = 0;
  uint32_t crc_ = 0;
  int64_t bytes_written_ = 0;
  std::function<absl::Status(int64_t)> after_chunk_;
};

// Unbuffered reader; every byte read passes through the CRC. Reading past the end is DataLoss
// ("truncated").
class CrcFileReader {
 public:
  static absl::StatusOr<CrcFileReader> Open(const std::string& path);

  absl::Status Read(void* data, size_t size);
  // Reads `size` bytes into the CRC only.
  absl::Status Skip(int64_t size);

  int64_t file_size() const { return file_size_; }
  int64_t remaining() const { return file_size_ - position_; }
  uint32_t crc() const { return crc_; }
  const std::string& path() const { return path_; }

 private:
  CrcFileReader(std::string path, UniqueFd fd, int64_t file_size);

  std::string path_;
  UniqueFd fd_;
  int64_t file_size_ = 0;
  int64_t position_ = 0;
  uint32_t crc_ = 0;
};

// fsync of a directory, so that a rename or unlink inside it is durable.
absl::Status SyncDirectory(const std::string& dir);

// rename(2) then SyncDirectory(dir).
absl::Status DurableRename(const std::string& from, const std::string& to, const std::string& dir);

}  // namespace gradflow::runtime::checkpoint_io
