#include "runtime/launch/line_forwarder.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "runtime/launch/fd_util.h"
#include "tests/runtime_launch/test_processes.h"

namespace gradflow::runtime::launch {
namespace {

using testing::CreateOutputFile;
using testing::FreshTempDir;
using testing::ReadFile;

class LineForwarderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = FreshTempDir("forwarder") + "/out.txt";
    out_ = UniqueFd(CreateOutputFile(path_));
  }
  std::string Output() const { return ReadFile(path_); }

  std::string path_;
  UniqueFd out_;
};

TEST_F(LineForwarderTest, PrefixesEachCompleteLineAndKeepsThePartialOne) {
  LineForwarder forwarder("[node 1] ", out_.get());
  forwarder.Append("alpha\nbe");
  EXPECT_EQ(Output(), "[node 1] alpha\n");
  forwarder.Append("ta\n\ngam");
  EXPECT_EQ(Output(), "[node 1] alpha\n[node 1] beta\n[node 1] \n");
  forwarder.Finish();
  EXPECT_EQ(Output(), "[node 1] alpha\n[node 1] beta\n[node 1] \n[node 1] gam\n");
  forwarder.Finish();  // nothing left: no empty line
  EXPECT_EQ(Output(), "[node 1] alpha\n[node 1] beta\n[node 1] \n[node 1] gam\n");
}

TEST_F(LineForwarderTest, CarriageReturnsEndLinesAndCrLfEndsOnlyOne) {
  LineForwarder forwarder("[n 0] ", out_.get());
  forwarder.Append("10%\r20%\r");
  forwarder.Append("\ndone\r\nnext\n");  // the '\n' of a "\r\n" cut between two reads
  EXPECT_EQ(Output(), "[n 0] 10%\n[n 0] 20%\n[n 0] done\n[n 0] next\n");
}

TEST_F(LineForwarderTest, CutsLinesThatNeverEnd) {
  LineForwarder forwarder("> ", out_.get());
  const std::string chunk(LineForwarder::kMaxLineBytes / 2 + 1, 'x');
  forwarder.Append(chunk);
  EXPECT_EQ(Output(), "");
  forwarder.Append(chunk);
  EXPECT_EQ(Output(), "> " + std::string(LineForwarder::kMaxLineBytes, 'x') + "\n");
  forwarder.Finish();
  EXPECT_EQ(Output(), "> " + std::string(LineForwarder::kMaxLineBytes, 'x') + "\n> xx\n");
}

TEST_F(LineForwarderTest, PumpReadsUntilTheWriterCloses) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_NONBLOCK), 0);
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  LineForwarder forwarder("[x] ", out_.get());
  EXPECT_EQ(forwarder.Pump(read_end.get(), 1 << 20), LineForwarder::StreamState::kOpen);
  WriteFully(write_end.get(), "one\ntw");
  EXPECT_EQ(forwarder.Pump(read_end.get(), 1 << 20), LineForwarder::StreamState::kOpen);
  EXPECT_EQ(Output(), "[x] one\n");
  write_end.Reset();
  EXPECT_EQ(forwarder.Pump(read_end.get(), 1 << 20), LineForwarder::StreamState::kEnded);
  forwarder.Finish();
  EXPECT_EQ(Output(), "[x] one\n[x] tw\n");
}

}  // namespace
}  // namespace gradflow::runtime::launch
