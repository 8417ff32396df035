#include "runtime/project/step_profile.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/runtime_project/test_plans.h"

namespace gradflow::runtime::project {
namespace {

using testing::FourStepPlan;

std::string Op(int pid, int iteration, int step, double ts, double dur) {
  return absl::StrFormat(
      R"({"ph": "X", "cat": "op", "name": "n%d", "pid": %d, "tid": 1, "ts": %g, "dur": %g,
          "args": {"op": "MatMul", "step": %d, "phase": "forward", "iteration": %d,
                   "inputs": "[8,4]", "flops": 1, "bytes": 1}})",
      step, pid, ts, dur, step, iteration);
}

// Node 0, three iterations of 10 ms each starting every 10 ms. Steps take 1, 2, 3, 1 ms in
// iteration 1 and more or less in the others; the medians are 1, 2, 3, 1 ms. Each iteration has
// two updates of 0.5 ms (0.25 ms of it waiting): 7 ms of steps + 1 ms of updates leaves 2 ms of
// host overhead. Node 1's events (slower) are ignored.
std::string HandTrace() {
  std::string events;
  const double step_ms[3][4] = {{1, 2, 3, 1}, {1.2, 1.8, 3.5, 0.9}, {0.8, 2.4, 2.9, 1.1}};
  for (int it = 0; it < 3; ++it) {
    const double start = 1000 + it * 10000;
    absl::StrAppend(
        &events, absl::StrFormat(
                     R"({"ph": "X", "cat": "iteration", "name": "iteration %d", "pid": 0, "tid": 0,
            "ts": %g, "dur": 10000, "args": {"iteration": %d, "images": 8}},)",
                     it, start, it));
    double ts = start + 100;
    for (int s = 0; s < 4; ++s) {
      absl::StrAppend(&events, Op(0, it, s, ts, step_ms[it][s] * 1000), ",", Op(1, it, s, ts, 9000),
                      ",");
      ts += step_ms[it][s] * 1000;
    }
    for (int b = 0; b < 2; ++b) {
      absl::StrAppend(
          &events,
          absl::StrFormat(
              R"({"ph": "X", "cat": "update", "name": "sgd_update:bucket%d", "pid": 0, "tid": 1,
              "ts": %g, "dur": 500, "args": {"bucket": %d, "iteration": %d, "wait_us": 250}},)",
              b, ts, b, it));
    }
  }
  events += R"({"ph": "M", "name": "process_name", "pid": 0, "args": {"name": "node 0"}})";
  return absl::StrCat(R"({"traceEvents": [)", events, R"(], "displayTimeUnit": "ms",
      "otherData": {"gradflow": {"graph": "four", "nodes": 2, "batch_per_node": 8, "steps": 4,
        "buckets": [{"index": 0, "bytes": 1000000, "ready_step": 2, "first_reader_step": 1,
                     "params": 1},
                    {"index": 1, "bytes": 1500000, "ready_step": 3, "first_reader_step": 0,
                     "params": 1}]}}})");
}

TEST(StepProfileTest, TraceGivesMediansPerStepOverheadAndUpdateRate) {
  absl::StatusOr<JsonValue> trace = json::ParseJson(HandTrace(), "hand.json");
  ASSERT_TRUE(trace.ok()) << trace.status();
  absl::StatusOr<TraceHeader> header = ReadTraceHeader(*trace, "hand.json");
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->batch_per_node, 8);
  EXPECT_EQ(header->nodes, 2);
  absl::StatusOr<StepProfile> p = ProfileFromTrace(*trace, "hand.json", FourStepPlan(1, 1), 0);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->step_seconds.size(), 4u);
  EXPECT_NEAR(p->step_seconds[0], 1e-3, 1e-12);
  EXPECT_NEAR(p->step_seconds[1], 2e-3, 1e-12);
  EXPECT_NEAR(p->step_seconds[2], 3e-3, 1e-12);
  EXPECT_NEAR(p->step_seconds[3], 1e-3, 1e-12);
  EXPECT_EQ(p->iterations, 3);
  EXPECT_EQ(p->batch, 8);
  // The iterations' steps sum to 7, 7.4 and 7.2 ms: overheads 2, 1.6, 1.8 ms, median 1.8 ms.
  EXPECT_NEAR(p->overhead_seconds, 1.8e-3, 1e-9);
  // Per-iteration op time 7, 7.4, 7.2 ms: sample std 0.2 ms over a mean of 7.2 ms.
  EXPECT_NEAR(p->compute_cv, 0.2 / 7.2, 1e-9);
  // 0.25 ms of work per update on 1 MB and 1.5 MB, three times: 1.5 ms for 7.5 MB.
  EXPECT_NEAR(p->update_seconds_per_byte, 1.5e-3 / 7.5e6, 1e-18);
  // Node 1's steps took 9 ms each.
  absl::StatusOr<StepProfile> node1 = ProfileFromTrace(*trace, "hand.json", FourStepPlan(1, 1), 1);
  ASSERT_TRUE(node1.ok()) << node1.status();
  EXPECT_NEAR(node1->step_seconds[2], 9e-3, 1e-12);
}

TEST(StepProfileTest, TraceFromAnotherGraphOrNodeIsRefused) {
  absl::StatusOr<JsonValue> trace = json::ParseJson(HandTrace(), "hand.json");
  ASSERT_TRUE(trace.ok());
  PlannedGraph five = FourStepPlan(1, 1);
  five.steps.push_back(five.steps.back());
  absl::StatusOr<StepProfile> p = ProfileFromTrace(*trace, "hand.json", five, 0);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("hand.json: the trace's plan has 4 steps"),
            absl::string_view::npos);
  p = ProfileFromTrace(*trace, "hand.json", FourStepPlan(1, 1), 7);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("no op events"), absl::string_view::npos);
  absl::StatusOr<JsonValue> not_trace = json::ParseJson(R"({"events": []})", "x.json");
  ASSERT_TRUE(not_trace.ok());
  EXPECT_FALSE(ProfileFromTrace(*not_trace, "x.json", FourStepPlan(1, 1), 0).ok());
  absl::StatusOr<JsonValue> bad_step =
      json::ParseJson(absl::StrCat(R"({"traceEvents": [)", Op(0, 0, 9, 0, 5), "]}"), "bad.json");
  ASSERT_TRUE(bad_step.ok());
  p = ProfileFromTrace(*bad_step, "bad.json", FourStepPlan(1, 1), 0);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("has step 9"), absl::string_view::npos);
}

TEST(StepProfileTest, TableRoundTripsAndErrorsNameTheLine) {
  StepProfile profile;
  profile.step_seconds = {1e-3, 2e-3, 3e-3, 0.5e-3};
  profile.batch = 8;
  profile.overhead_seconds = 0.25e-3;
  profile.update_seconds_per_byte = 0.04e-3 / 1e6;
  profile.source = "test";
  const PlannedGraph plan = FourStepPlan(1, 1);
  const std::string text = FormatTable(profile, plan);
  absl::StatusOr<StepProfile> back = ProfileFromTable(text, "t.txt", plan);
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << text;
  EXPECT_EQ(back->batch, 8);
  EXPECT_NEAR(back->step_seconds[3], 0.5e-3, 1e-12);
  EXPECT_NEAR(back->overhead_seconds, 0.25e-3, 1e-12);
  EXPECT_NEAR(back->update_seconds_per_byte, 0.04e-9, 1e-18);

  struct Case {
    std::string text;
    std::string error;
  };
  for (const Case& c : std::vector<Case>{
           {"step 0 1\n", "no 'batch N' line"},
           {"batch 8\nstep 0 1\nstep 1 1\nstep 2 1\n", "step 3 ('b3') has no time"},
           {"batch 8\nstep 0 1\nstep 0 1\n", "line 3: step 0 is listed twice"},
           {"batch 8\nstep 4 1\n", "line 2: step 4 is outside"},
           {"batch 8\nstep 0 -1\n", "line 2: expected a time in ms"},
           {"batch 8\nstep 0 1 f9\n", "line 2: step 0 is 'f0' in the graph's plan, not 'f9'"},
           {"batch 8\nwarp 9\n", "line 2: unknown item 'warp'"},
       }) {
    absl::StatusOr<StepProfile> p = ProfileFromTable(c.text, "t.txt", plan);
    ASSERT_FALSE(p.ok()) << c.text;
    EXPECT_NE(p.status().message().find(c.error), absl::string_view::npos) << p.status();
  }
}

TEST(StepProfileTest, FlopsSpreadTheTotalsByPhase) {
  // Forward FLOPs 100 and 300, backward 600 and 200.
  absl::StatusOr<StepProfile> p = ProfileFromFlops(FourStepPlan(1, 1), 0.04, 0.08);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_NEAR(p->step_seconds[0], 0.01, 1e-12);
  EXPECT_NEAR(p->step_seconds[1], 0.03, 1e-12);
  EXPECT_NEAR(p->step_seconds[2], 0.06, 1e-12);
  EXPECT_NEAR(p->step_seconds[3], 0.02, 1e-12);
  EXPECT_FALSE(ProfileFromFlops(FourStepPlan(1, 1), 0, 0.08).ok());
}

}  // namespace
}  // namespace gradflow::runtime::project
