#include "runtime/launch/line_forwarder.h"

#include <unistd.h>

#include <cerrno>

#include "runtime/launch/fd_util.h"

namespace gradflow::runtime::launch {

void LineForwarder::AppendLine(absl::string_view line, std::string& out) const {
  out.append(prefix_);
  out.append(line.data(), line.size());
  out.push_back('\n');
}

void LineForwarder::Append(absl::string_view data) {
  std::string out;
  size_t line_begin = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    const char c = data[i];
    if (c == '\n' && after_carriage_return_) {
      after_carriage_return_ = false;
      line_begin = i + 1;
      continue;
    }
    after_carriage_return_ = false;
    if (c != '\n' && c != '\r') continue;
    const absl::string_view piece = data.substr(line_begin, i - line_begin);
    if (partial_line_.empty()) {
      AppendLine(piece, out);
    } else {
      partial_line_.append(piece.data(), piece.size());
      AppendLine(partial_line_, out);
      partial_line_.clear();
    }
    after_carriage_return_ = c == '\r';
    line_begin = i + 1;
  }
  const absl::string_view rest = data.substr(line_begin);
  partial_line_.append(rest.data(), rest.size());
  while (partial_line_.size() >= kMaxLineBytes) {
    AppendLine(absl::string_view(partial_line_).substr(0, kMaxLineBytes), out);
    partial_line_.erase(0, kMaxLineBytes);
  }
  if (!out.empty()) WriteFully(out_fd_, out);
}

LineForwarder::StreamState LineForwarder::Pump(int fd, size_t max_bytes) {
  char buffer[64 * 1024];
  size_t total = 0;
  while (total < max_bytes) {
    const ssize_t got = ::read(fd, buffer, sizeof(buffer));
    if (got > 0) {
      Append(absl::string_view(buffer, static_cast<size_t>(got)));
      total += static_cast<size_t>(got);
      continue;
    }
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return StreamState::kOpen;
    return StreamState::kEnded;
  }
  return StreamState::kOpen;
}

void LineForwarder::Finish() {
  after_carriage_return_ = false;
  if (partial_line_.empty()) return;
  std::string out;
  AppendLine(partial_line_, out);
  partial_line_.clear();
  WriteFully(out_fd_, out);
}

}  // namespace gradflow::runtime::launch
