#include "runtime/project/link_fit.h"

#include <gtest/gtest.h>

namespace gradflow::runtime::project {
namespace {

std::vector<AllreduceSample> Synthetic(AllreduceAlgorithm algorithm, int64_t ranks,
                                       const LinkParams& link) {
  std::vector<AllreduceSample> samples;
  for (double bytes : {256e3, 1e6, 4e6, 16e6}) {
    samples.push_back({bytes, Allreduce(algorithm, ranks, bytes, link).Seconds(link)});
  }
  return samples;
}

TEST(LinkFitTest, RecoversTheLinkThatMadeTheTimings) {
  const LinkParams truth{.latency_seconds = 40e-6, .bytes_per_second = 2.5e9};
  for (int64_t ranks : {2, 3, 4, 6}) {
    for (AllreduceAlgorithm a : {AllreduceAlgorithm::kRing, AllreduceAlgorithm::kHalvingDoubling}) {
      absl::StatusOr<LinkParams> fit = FitLink(a, ranks, Synthetic(a, ranks, truth));
      ASSERT_TRUE(fit.ok()) << fit.status();
      EXPECT_NEAR(fit->latency_seconds, truth.latency_seconds, 1e-9) << ranks;
      EXPECT_NEAR(fit->bytes_per_second / truth.bytes_per_second, 1.0, 1e-9) << ranks;
    }
  }
}

TEST(LinkFitTest, RefusesTimingsThatCannotBeFitted) {
  EXPECT_FALSE(FitLink(AllreduceAlgorithm::kRing, 1, {{1e6, 1e-3}, {2e6, 2e-3}}).ok());
  EXPECT_FALSE(FitLink(AllreduceAlgorithm::kRing, 2, {{1e6, 1e-3}, {1e6, 2e-3}}).ok());
  // Larger messages faster than small ones: no positive bandwidth.
  EXPECT_FALSE(FitLink(AllreduceAlgorithm::kRing, 2, {{1e6, 2e-3}, {4e6, 1e-3}}).ok());
}

TEST(LinkFitTest, LinkFileRoundTripsAndNamesBadLines) {
  const LinkParams link = LinkParams::FromGbpsAndMicros(12.5, 35);
  absl::StatusOr<MeasuredLink> back = ParseLinkFile(FormatLinkFile({.link = link}, "m"), "l.txt");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_NEAR(back->link.gbps(), 12.5, 1e-9);
  EXPECT_NEAR(back->link.latency_seconds, 35e-6, 1e-12);
  EXPECT_LT(back->cpu_seconds_per_sent_byte, 0);  // not measured: not written, not invented
  // 850 us per MB (2^20 bytes) sent.
  const double cpu_per_byte = 850e-6 / (1 << 20);
  back = ParseLinkFile(
      FormatLinkFile({.link = link, .cpu_seconds_per_sent_byte = cpu_per_byte}, "m"), "l.txt");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_NEAR(back->cpu_seconds_per_sent_byte / cpu_per_byte, 1.0, 1e-6);
  absl::StatusOr<MeasuredLink> bad = ParseLinkFile("latency_us 5\nlink_gbps fast\n", "l.txt");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("l.txt: line 2"), absl::string_view::npos);
  EXPECT_FALSE(ParseLinkFile("latency_us 5\n", "l.txt").ok());
  bad = ParseLinkFile("latency_us 5\nlink_gbps 1\ncpu_us_per_mb -3\n", "l.txt");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("l.txt: line 3"), absl::string_view::npos);
}

// Ring between 2 ranks: each sends the whole bucket once. 1 MB costing 1 ms of CPU and 4 MB
// costing 3 ms: 4 ms over 5 MB sent, whatever the link.
TEST(LinkFitTest, CpuPerByteIsTotalCpuOverTotalBytesSent) {
  const LinkParams link = LinkParams::FromGbpsAndMicros(10, 50);
  absl::StatusOr<double> c =
      FitCpuPerSentByte(AllreduceAlgorithm::kRing, 2, link,
                        {{.bytes = 1e6, .seconds = 2e-3, .cpu_seconds = 1e-3},
                         {.bytes = 4e6, .seconds = 5e-3, .cpu_seconds = 3e-3}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_NEAR(*c, 4e-3 / 5e6, 1e-18);
  // Between 4 ranks a rank sends 2 x 3/4 of the bucket: 1.5 MB for a 1 MB bucket.
  c = FitCpuPerSentByte(AllreduceAlgorithm::kRing, 4, link,
                        {{.bytes = 1e6, .seconds = 2e-3, .cpu_seconds = 3e-3}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_NEAR(*c, 3e-3 / 1.5e6, 1e-18);
  EXPECT_FALSE(FitCpuPerSentByte(AllreduceAlgorithm::kRing, 2, link, {{1e6, 1e-3}}).ok());
}

}  // namespace
}  // namespace gradflow::runtime::project
