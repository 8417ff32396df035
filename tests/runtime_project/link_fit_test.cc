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

TEST(LinkFitTest, LoadedLatencyAndItsLoadRoundTripTogether) {
  const LinkParams link = LinkParams::FromGbpsAndMicros(6.5, 380);
  absl::StatusOr<MeasuredLink> back = ParseLinkFile(
      FormatLinkFile({.link = link, .loaded_latency_seconds = 2.1e-3, .busy_threads = 1}, "m"),
      "l.txt");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_NEAR(back->loaded_latency_seconds, 2.1e-3, 1e-12);
  EXPECT_EQ(back->busy_threads, 1);
  EXPECT_NEAR(back->link.latency_seconds, 380e-6, 1e-12);  // the idle fit stays as it was
  // Not measured: neither key written, nothing invented on reading.
  back = ParseLinkFile(FormatLinkFile({.link = link}, "m"), "l.txt");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_LT(back->loaded_latency_seconds, 0);
  EXPECT_EQ(back->busy_threads, 0);
  // A loaded latency without the load it was measured under (or the reverse) is refused, and
  // so is a thread count that is not a whole number.
  for (const char* text : {"latency_us 5\nlink_gbps 1\nlatency_loaded_us 900\n",
                           "latency_us 5\nlink_gbps 1\nbusy_threads 2\n"}) {
    absl::StatusOr<MeasuredLink> bad = ParseLinkFile(text, "l.txt");
    ASSERT_FALSE(bad.ok()) << text;
    EXPECT_NE(bad.status().message().find("go together"), absl::string_view::npos);
  }
  // The loaded CPU per byte rides along with the loaded latency.
  back = ParseLinkFile(FormatLinkFile({.link = link,
                                       .cpu_seconds_per_sent_byte = 700e-6 / (1 << 20),
                                       .loaded_latency_seconds = 2.1e-3,
                                       .busy_threads = 1,
                                       .loaded_cpu_seconds_per_sent_byte = 990e-6 / (1 << 20)},
                                      "m"),
                       "l.txt");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_NEAR(back->loaded_cpu_seconds_per_sent_byte * (1 << 20), 990e-6, 1e-12);
  EXPECT_NEAR(back->cpu_seconds_per_sent_byte * (1 << 20), 700e-6, 1e-12);
  EXPECT_FALSE(
      ParseLinkFile("latency_us 5\nlink_gbps 1\ncpu_us_per_mb_loaded 900\n", "l.txt").ok());
  absl::StatusOr<MeasuredLink> bad = ParseLinkFile(
      "latency_us 5\nlink_gbps 1\nlatency_loaded_us 900\nbusy_threads 1.5\n", "l.txt");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("l.txt: line 4"), absl::string_view::npos);
}

// The loaded benchmark's host: 2 cores, 2 ranks of one busy thread each (one core per rank).
// Idle link: 0.1 ms per round, 1 GB/s; a ring between 2 is 2 rounds and sends the whole bucket.
// At 1.5 ns of CPU per byte sent a transfer asks for 1.5 cores; beside the busy thread it gets
// half of the rank's core, a third of its speed: 1 MB takes 3 ms instead of 1, 4 MB 12 ms.
HostSharing LoadedHost(double cpu_seconds_per_sent_byte) {
  return {.host_cores = 2,
          .nodes_per_host = 2,
          .compute_threads = 1,
          .cpu_seconds_per_sent_byte = cpu_seconds_per_sent_byte};
}

TEST(LinkFitTest, LoadedLatencyIsWhatCoreSharingLeavesUnexplainedPerRound) {
  const LinkParams idle{.latency_seconds = 0.1e-3, .bytes_per_second = 1e9};
  const AllreduceAlgorithm ring = AllreduceAlgorithm::kRing;
  // Timings made with 2 ms per round: 2 x 2 + 3 = 7 ms and 2 x 2 + 12 = 16 ms.
  EXPECT_NEAR(LoadedAllreduceSeconds(ring, 2, 1e6, idle, LoadedHost(1.5e-9), 2e-3), 7e-3, 1e-15);
  absl::StatusOr<double> alpha =
      FitLoadedLatency(ring, 2, idle, LoadedHost(1.5e-9), {{1e6, 7e-3}, {4e6, 16e-3}});
  ASSERT_TRUE(alpha.ok()) << alpha.status();
  EXPECT_NEAR(*alpha, 2e-3, 1e-12);
  // Residuals per round of 2 and 4 ms (7 - 3 and 20 - 12, over 2 rounds), weighed by relative
  // error: (2*4/7^2 + 2*8/20^2) / (2^2/7^2 + 2^2/20^2) = 9.96 / 4.49 ms.
  alpha = FitLoadedLatency(ring, 2, idle, LoadedHost(1.5e-9), {{1e6, 7e-3}, {4e6, 20e-3}});
  ASSERT_TRUE(alpha.ok()) << alpha.status();
  EXPECT_NEAR(*alpha, 9.96 / 4.49 * 1e-3, 1e-12);
  // The loaded CPU per byte, where known, is what slows the bytes: the same 1.5 ns as above.
  HostSharing loaded_cpu = LoadedHost(0.5e-9);
  loaded_cpu.loaded_cpu_seconds_per_sent_byte = 1.5e-9;
  alpha = FitLoadedLatency(ring, 2, idle, loaded_cpu, {{1e6, 7e-3}, {4e6, 16e-3}});
  ASSERT_TRUE(alpha.ok()) << alpha.status();
  EXPECT_NEAR(*alpha, 2e-3, 1e-12);
  // Without communication CPU the bytes keep the idle speed: (5 - 1) / 2 rounds.
  alpha = FitLoadedLatency(ring, 2, idle, LoadedHost(0), {{1e6, 5e-3}});
  ASSERT_TRUE(alpha.ok()) << alpha.status();
  EXPECT_NEAR(*alpha, 2e-3, 1e-12);
  // Faster than the sharing alone explains: no negative latency.
  alpha = FitLoadedLatency(ring, 2, idle, LoadedHost(1.5e-9), {{1e6, 2e-3}});
  ASSERT_TRUE(alpha.ok()) << alpha.status();
  EXPECT_EQ(*alpha, 0);
  EXPECT_FALSE(FitLoadedLatency(ring, 2, idle, LoadedHost(1.5e-9), {}).ok());
  EXPECT_FALSE(FitLoadedLatency(ring, 2, idle, LoadedHost(1.5e-9), {{1e6, -1}}).ok());
  EXPECT_FALSE(FitLoadedLatency(ring, 1, idle, LoadedHost(1.5e-9), {{1e6, 7e-3}}).ok());
}

}  // namespace
}  // namespace gradflow::runtime::project
