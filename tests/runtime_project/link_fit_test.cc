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
  absl::StatusOr<LinkParams> back = ParseLinkFile(FormatLinkFile(link, "measured"), "l.txt");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_NEAR(back->gbps(), 12.5, 1e-9);
  EXPECT_NEAR(back->latency_seconds, 35e-6, 1e-12);
  absl::StatusOr<LinkParams> bad = ParseLinkFile("latency_us 5\nlink_gbps fast\n", "l.txt");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("l.txt: line 2"), absl::string_view::npos);
  EXPECT_FALSE(ParseLinkFile("latency_us 5\n", "l.txt").ok());
}

}  // namespace
}  // namespace gradflow::runtime::project
