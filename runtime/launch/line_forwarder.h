// Turns one stream of a node (its stdout or stderr) into whole, prefixed lines on our own output.
// Every complete line goes out in the same write() as its prefix, and one thread forwards all
// nodes, so two nodes never share a line however their writes were cut by the pipes.
#pragma once

#include <cstddef>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace gradflow::runtime::launch {

class LineForwarder {
 public:
  // A line longer than this is cut: a node that never writes '\n' must not grow our memory.
  static constexpr size_t kMaxLineBytes = 64 * 1024;

  LineForwarder(std::string prefix, int out_fd) : prefix_(std::move(prefix)), out_fd_(out_fd) {}

  // Forwards the complete lines in `data`; keeps an unfinished last line for later. '\n', '\r'
  // and "\r\n" all end a line, so live progress lines ("\r 42%") become separate lines rather
  // than overwriting another node's output on the terminal.
  void Append(absl::string_view data);

  enum class StreamState { kOpen, kEnded };
  // Reads what `fd` (non-blocking) has now, at most `max_bytes`, and forwards it. kEnded at EOF
  // or a read error; then the caller calls Finish() and closes the fd.
  StreamState Pump(int fd, size_t max_bytes);

  // Forwards an unfinished last line, terminated with '\n'.
  void Finish();

 private:
  void AppendLine(absl::string_view line, std::string& out) const;

  std::string prefix_;
  int out_fd_;
  std::string partial_line_;
  bool after_carriage_return_ = false;  // so that the '\n' of "\r\n" ends no second line
};

}  // namespace gradflow::runtime::launch
