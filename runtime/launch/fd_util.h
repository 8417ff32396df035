// File-descriptor plumbing shared by the launcher: an owning handle and writes that survive
// EINTR, short writes and non-blocking outputs.
#pragma once

#include <utility>

#include "absl/strings/string_view.h"

namespace gradflow::runtime::launch {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) Reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Writes all of `data`. Output that cannot be written (a closed pipe, a full disk) is dropped:
// a supervisor whose console went away must still stop and reap its nodes.
void WriteFully(int fd, absl::string_view data);

// Returns false (errno set) when fcntl fails.
bool SetNonBlocking(int fd);

}  // namespace gradflow::runtime::launch
