#include "runtime/dist/rendezvous.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gradflow::runtime::dist {
namespace {

using ::testing::HasSubstr;

TEST(ParseRendezvousTest, FileUriGivesAbsoluteDirectory) {
  auto spec = ParseRendezvous("file:///shared/jobs/");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->kind, RendezvousSpec::Kind::kFile);
  EXPECT_EQ(spec->path, "/shared/jobs");
  EXPECT_EQ(spec->ToString(), "file:///shared/jobs");
}

TEST(ParseRendezvousTest, RedisUriGivesHostAndPort) {
  auto spec = ParseRendezvous("redis://head-node:6380");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->kind, RendezvousSpec::Kind::kRedis);
  EXPECT_EQ(spec->host, "head-node");
  EXPECT_EQ(spec->port, 6380);
  EXPECT_EQ(spec->ToString(), "redis://head-node:6380");
}

TEST(ParseRendezvousTest, BadUrisQuoteTheValueAndTheAcceptedForms) {
  for (const char* bad :
       {"file://relative/dir", "file://", "redis://host", "redis://:6379", "redis://host:port",
        "redis://host:70000", "tcp://host:1", "/tmp/x", ""}) {
    auto spec = ParseRendezvous(bad);
    ASSERT_FALSE(spec.ok()) << bad;
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(spec.status().message(), HasSubstr(std::string("'") + bad + "'"));
    EXPECT_THAT(spec.status().message(), HasSubstr("file:///absolute/dir or redis://host:port"));
  }
}

}  // namespace
}  // namespace gradflow::runtime::dist
