// Traces of real training iterations (fmnist-cnn, one node and two Gloo nodes as threads),
// checked with Python's json module by check_trace.py; the clock offset and gather functions;
// and trace-summary on a generated trace and on malformed files.
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/json/json.h"
#include "runtime/trace/chrome_json.h"
#include "runtime/trace/gather.h"
#include "runtime/trace/summary.h"
#include "tests/runtime_dist/dist_test_util.h"
#include "tests/runtime_trace/traced_replica.h"
#include "tests/support/assert_ok.h"
#include "tests/support/subprocess.h"

namespace gradflow::runtime::trace {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::ReplicaOptions;
using testing::TracedReplica;

std::string TempPath(const std::string& name) {
  const std::string dir = dist::testing::MakeTempDir();
  return absl::StrCat(dir, "/", name);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteAll(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// Runs the Python checker; the test fails with its output unless every check passed.
void ExpectValidTrace(const std::string& path, int nodes, const std::string& iterations) {
  const gradflow::testing::ProcessResult result = gradflow::testing::RunProcess(
      PYTHON3_PATH,
      {CHECK_TRACE_PY, path, "--nodes", absl::StrCat(nodes), "--iterations", iterations});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_THAT(result.out, HasSubstr("OK:"));
}

// One node: train, write, check.
std::string TraceOneNode(int iterations, int64_t first, int64_t last, bool device_times = false) {
  std::unique_ptr<dist::Collectives> solo = dist::CreateSoloCollectives(2);
  absl::StatusOr<std::unique_ptr<TracedReplica>> replica =
      TracedReplica::Create(*solo, ReplicaOptions{.rank = 0,
                                                  .first_iteration = first,
                                                  .last_iteration = last,
                                                  .device_times = device_times});
  EXPECT_TRUE(replica.ok()) << replica.status();
  if (!replica.ok()) return "";
  EXPECT_TRUE((*replica)->Train(iterations).ok());
  EXPECT_GT((*replica)->sync().buckets().size(), 1u) << "the test wants several buckets";
  const std::string path = TempPath("trace.json");
  const absl::Status written = WriteMergedTrace(*solo, (*replica)->tracer(), 0.0, path);
  EXPECT_TRUE(written.ok()) << written;
  EXPECT_EQ((*replica)->tracer().dropped(), 0);
  return path;
}

TEST(TraceTest, OneNodeTraceIsValidChromeJson) {
  const std::string path = TraceOneNode(4, 1, 4);
  ExpectValidTrace(path, 1, "1:4");
  const std::string text = ReadAll(path);
  EXPECT_THAT(text, HasSubstr("\"op\":\"Conv2D\""));
  EXPECT_THAT(text, HasSubstr("\"cat\":\"update\""));
  EXPECT_THAT(text, HasSubstr("\"name\":\"arena MB in use\""));
  EXPECT_THAT(text, HasSubstr("\"name\":\"images/s\""));
  EXPECT_THAT(text, HasSubstr("\"name\":\"data batch 2\""));
  EXPECT_THAT(text, HasSubstr("\"graph\":\"fmnist-cnn\""));
}

// The GPU layout, on the CPU stream (whose MarkTime is the host clock): ops and updates on a
// device track with the executor's device spans, and the host's launches on the issuing thread.
TEST(TraceTest, DeviceTimedStreamsGetATrackOfTheirOwnBesideTheLaunches) {
  const std::string path = TraceOneNode(4, 2, 3, /*device_times=*/true);
  ExpectValidTrace(path, 1, "2:3");
  absl::StatusOr<json::JsonValue> doc = json::ParseJson(ReadAll(path), path);
  ASSERT_TRUE(doc.ok()) << doc.status();
  std::map<double, std::string> thread_names;
  for (const json::JsonValue& e : doc->Find("traceEvents")->items()) {
    if (e.StringOr("ph", "") == "M" && e.StringOr("name", "") == "thread_name") {
      thread_names[e.NumberOr("tid", -1)] = e.Find("args")->StringOr("name", "");
    }
  }
  std::map<std::string, int> ops_on, launches_on, updates_on;
  std::map<std::pair<double, std::string>, int> launched;  // (iteration, name)
  std::map<std::pair<double, std::string>, int> ran;
  for (const json::JsonValue& e : doc->Find("traceEvents")->items()) {
    if (e.StringOr("ph", "") != "X") continue;
    const std::string cat = e.StringOr("cat", "");
    const std::string track = thread_names[e.NumberOr("tid", -1)];
    const double iteration = e.Find("args")->NumberOr("iteration", -1);
    if (cat == "op") {
      ++ops_on[track];
      ++ran[{iteration, e.StringOr("name", "")}];
    } else if (cat == "update") {
      ++updates_on[track];
      ++ran[{iteration, e.StringOr("name", "")}];
    } else if (cat == "launch") {
      ++launches_on[track];
      ++launched[{iteration, e.StringOr("name", "")}];
    }
  }
  ASSERT_EQ(ops_on.size(), 1u);
  EXPECT_EQ(ops_on.begin()->first, "GPU compute stream");
  ASSERT_EQ(updates_on.size(), 1u);
  EXPECT_EQ(updates_on.begin()->first, "GPU compute stream");
  EXPECT_EQ(launches_on.count("GPU compute stream"), 0u);
  // Every op and update that ran on the device was launched once, in the same iteration.
  for (const auto& [key, count] : ran) {
    EXPECT_EQ(count, 1) << key.second;
    EXPECT_EQ(launched[key], 1) << key.second << " in iteration " << key.first;
  }
}

// An X event starting inside the first op of the trace and ending after it, on its thread.
std::string OverlappingOp(const std::string& trace) {
  absl::StatusOr<json::JsonValue> doc = json::ParseJson(trace, "trace");
  EXPECT_TRUE(doc.ok()) << doc.status();
  if (!doc.ok()) return "";
  for (const json::JsonValue& e : doc->Find("traceEvents")->items()) {
    if (e.StringOr("cat", "") != "op") continue;
    const double ts = e.NumberOr("ts", 0);
    const double dur = e.NumberOr("dur", 0);
    return absl::StrCat(
        "\"traceEvents\":[\n{\"name\":\"overlap\",\"ph\":\"X\",\"ts\":", ts + dur / 2,
        ",\"dur\":1e9,\"pid\":0,\"tid\":", e.NumberOr("tid", 0), "},\n");
  }
  ADD_FAILURE() << "no op event";
  return "";
}

// The checker is only worth something if it rejects broken traces.
TEST(TraceTest, CheckerRejectsBrokenTraces) {
  const std::string path = TraceOneNode(2, 1, 2);
  const std::string text = ReadAll(path);
  struct Mutation {
    std::string from;
    std::string to;
  };
  for (const Mutation& m : std::vector<Mutation>{{"\"ph\":\"f\"", "\"ph\":\"i\""},
                                                 {"\"ph\":\"e\"", "\"ph\":\"i\""},
                                                 {"\"dur\":", "\"dur\":-1"},
                                                 {"\"name\":\"thread_name\"", "\"name\":\"x\""},
                                                 {"\"traceEvents\":[\n", OverlappingOp(text)}}) {
    std::string broken = text;
    const size_t at = broken.find(m.from);
    ASSERT_NE(at, std::string::npos) << m.from;
    broken.replace(at, m.from.size(), m.to);
    const std::string broken_path = TempPath("broken.json");
    WriteAll(broken_path, broken);
    const gradflow::testing::ProcessResult result = gradflow::testing::RunProcess(
        PYTHON3_PATH, {CHECK_TRACE_PY, broken_path, "--nodes", "1", "--iterations", "1:2"});
    EXPECT_NE(result.exit_code, 0) << "accepted with " << m.to << ": " << result.out;
  }
  // And a trace of other iterations than claimed.
  const gradflow::testing::ProcessResult result = gradflow::testing::RunProcess(
      PYTHON3_PATH, {CHECK_TRACE_PY, path, "--nodes", "1", "--iterations", "1:3"});
  EXPECT_NE(result.exit_code, 0) << result.out;
}

TEST(TraceTest, OnlyTheTraceItersWindowIsRecorded) {
  const std::string path = TraceOneNode(5, 2, 3);
  ExpectValidTrace(path, 1, "2:3");  // the checker rejects any event of iterations 1, 4 or 5
  const std::string text = ReadAll(path);
  EXPECT_THAT(text, Not(HasSubstr("\"name\":\"iteration 1\"")));
  EXPECT_THAT(text, Not(HasSubstr("\"name\":\"iteration 4\"")));
  EXPECT_THAT(text, HasSubstr("\"trace_iters\":[2,3]"));
}

TEST(TraceTest, TwoGlooNodesMergeIntoOneFile) {
  constexpr int kNodes = 2;
  dist::testing::ThreadWorld world =
      dist::testing::MakeThreadWorld(kNodes, dist::testing::TestOptions());
  ASSERT_EQ(world.ranks.size(), static_cast<size_t>(kNodes));
  const std::string path = TempPath("merged.json");
  std::vector<std::unique_ptr<TracedReplica>> replicas(kNodes);
  std::vector<absl::Status> results(kNodes);
  dist::testing::RunRanks(kNodes, [&](int rank) {
    dist::Collectives& c = *world.ranks[rank];
    absl::StatusOr<std::unique_ptr<TracedReplica>> replica = TracedReplica::Create(
        c, ReplicaOptions{.rank = rank, .first_iteration = 1, .last_iteration = 3});
    if (!replica.ok()) {
      results[rank] = replica.status();
      return;
    }
    replicas[rank] = *std::move(replica);
    absl::StatusOr<double> offset = MeasureClockOffsetMicros(c);
    if (!offset.ok()) {
      results[rank] = offset.status();
      return;
    }
    if (absl::Status s = replicas[rank]->Train(3); !s.ok()) {
      results[rank] = s;
      return;
    }
    results[rank] = WriteMergedTrace(c, replicas[rank]->tracer(), *offset, path);
  });
  for (int rank = 0; rank < kNodes; ++rank) EXPECT_TRUE(results[rank].ok()) << results[rank];
  // The collectives call the tracers until they are gone.
  world.DestroyRanks();
  replicas.clear();
  ExpectValidTrace(path, kNodes, "1:3");
  EXPECT_THAT(ReadAll(path), HasSubstr("\"cat\":\"collective\""));
}

TEST(TraceTest, ClockOffsetBetweenThreadsOfOneProcessIsNearZero) {
  std::unique_ptr<dist::Collectives> solo = dist::CreateSoloCollectives();
  absl::StatusOr<double> solo_offset = MeasureClockOffsetMicros(*solo);
  ASSERT_TRUE(solo_offset.ok()) << solo_offset.status();
  EXPECT_EQ(*solo_offset, 0.0);
  EXPECT_FALSE(MeasureClockOffsetMicros(*solo, 0).ok());

  dist::testing::ThreadWorld world =
      dist::testing::MakeThreadWorld(3, dist::testing::TestOptions());
  ASSERT_EQ(world.ranks.size(), 3u);
  std::vector<double> offsets(3, 1e9);
  dist::testing::RunRanks(3, [&](int rank) {
    absl::StatusOr<double> offset = MeasureClockOffsetMicros(*world.ranks[rank], 7);
    EXPECT_TRUE(offset.ok()) << offset.status();
    if (offset.ok()) offsets[rank] = *offset;
  });
  EXPECT_EQ(offsets[0], 0.0);
  // Every rank reads the same steady clock: the estimate is off by half a round trip at most.
  EXPECT_LT(std::fabs(offsets[1]), 5000.0);
  EXPECT_LT(std::fabs(offsets[2]), 5000.0);
}

TEST(TraceTest, GatherToRootDeliversEveryRanksBytes) {
  constexpr int kRanks = 3;
  dist::testing::ThreadWorld world =
      dist::testing::MakeThreadWorld(kRanks, dist::testing::TestOptions());
  ASSERT_EQ(world.ranks.size(), static_cast<size_t>(kRanks));
  std::vector<std::string> parts = {"rank zero", "", std::string(100001, '\0')};
  for (size_t i = 0; i < parts[2].size(); ++i) parts[2][i] = static_cast<char>(i * 31 % 256);
  std::vector<std::string> gathered;
  std::vector<absl::Status> results(kRanks);
  dist::testing::RunRanks(kRanks, [&](int rank) {
    results[rank] = GatherToRoot(*world.ranks[rank], parts[rank], rank == 0 ? &gathered : nullptr);
  });
  for (const absl::Status& s : results) EXPECT_TRUE(s.ok()) << s;
  ASSERT_EQ(gathered.size(), static_cast<size_t>(kRanks));
  for (int rank = 0; rank < kRanks; ++rank) EXPECT_EQ(gathered[rank], parts[rank]) << rank;
}

TEST(TraceTest, SummaryReportsOpsIterationsAndStalls) {
  const std::string path = TraceOneNode(4, 1, 4);
  std::ostringstream out;
  std::ostringstream err;
  ASSERT_EQ(TraceSummaryMain({path}, out, err), 0) << err.str();
  const std::string report = out.str();
  EXPECT_THAT(report, HasSubstr("Time per op type"));
  EXPECT_THAT(report, HasSubstr("Conv2D"));
  EXPECT_THAT(report, HasSubstr("Top ops by total time"));
  EXPECT_THAT(report, HasSubstr("Per iteration"));
  EXPECT_THAT(report, HasSubstr("node 0: 4 batches"));
  // One row per traced iteration of node 0.
  for (int it = 1; it <= 4; ++it) {
    EXPECT_THAT(report, ::testing::ContainsRegex(absl::StrCat("\n  0 +", it, " ")));
  }
  EXPECT_THAT(report, Not(HasSubstr("(no op events)")));
}

// Hand-computed: backward covers [0,100) and [150,200); the allreduces [50,120) and [300,310)
// spend 50 of their 80 us while backward runs, and one of the two overlaps it.
TEST(TraceTest, SummaryMeasuresAllreducesDuringBackward) {
  const std::string trace = R"({"traceEvents":[
{"name":"thread_name","ph":"M","ts":0,"pid":0,"tid":5,"args":{"name":"GPU collectives lane 0"}},
{"name":"c1","cat":"op","ph":"X","ts":0,"dur":100,"pid":0,"tid":4,"args":{"op":"Conv2DBackwardData","phase":"backward"}},
{"name":"f1","cat":"op","ph":"X","ts":100,"dur":50,"pid":0,"tid":4,"args":{"op":"Conv2D","phase":"forward"}},
{"name":"c2","cat":"op","ph":"X","ts":150,"dur":50,"pid":0,"tid":4,"args":{"op":"Relu","phase":"backward"}},
{"name":"allreduce","cat":"collective","ph":"X","ts":50,"dur":70,"pid":0,"tid":5,"args":{}},
{"name":"allreduce","cat":"collective","ph":"X","ts":300,"dur":10,"pid":0,"tid":5,"args":{}},
{"name":"barrier","cat":"collective","ph":"X","ts":0,"dur":500,"pid":0,"tid":5,"args":{}}]})";
  absl::StatusOr<std::string> report = SummarizeTrace(trace, "hand.json");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(*report, HasSubstr("node 0: 2 allreduces on GPU lanes, 0.080 ms; 0.050 ms ( 62.5%) "
                                 "while backward ops ran; 1 of them overlapped backward"));
  // A CPU trace's lanes are host threads.
  const std::string path = TraceOneNode(2, 1, 2);
  absl::StatusOr<std::string> cpu = SummarizeTrace(ReadAll(path), path);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_THAT(*cpu, ::testing::ContainsRegex("node 0: [0-9]+ allreduces on host lanes"));
}

TEST(TraceTest, SummaryRejectsMalformedFilesNamingThem) {
  const std::string dir = dist::testing::MakeTempDir();
  struct Case {
    std::string name;
    std::string text;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"truncated.json", "{\"traceEvents\":[{\"name\":\"a\",", "line 1, column"},
      {"garbage.json", "not json", "line 1, column 1"},
      {"trailing.json", "{\"traceEvents\":[]} x", "unexpected text after the JSON value"},
      {"second_line.json", "{\"traceEvents\":[\n{\"ph\":tru}]}", "line 2"},
      {"no_events.json", "{\"events\":[]}", "no \"traceEvents\" array"},
      {"bad_event.json", "{\"traceEvents\":[1]}", "traceEvents[0] is not an object"},
      {"deep.json", std::string(100000, '['), "nesting deeper than 200 levels"},
      {"empty.json", "", "unexpected end of input"},
  };
  for (const Case& c : cases) {
    const std::string path = absl::StrCat(dir, "/", c.name);
    WriteAll(path, c.text);
    std::ostringstream out;
    std::ostringstream err;
    EXPECT_EQ(TraceSummaryMain({path}, out, err), 1) << c.name;
    EXPECT_THAT(err.str(), HasSubstr(path)) << c.name;
    EXPECT_THAT(err.str(), HasSubstr(c.message)) << c.name;
    EXPECT_EQ(out.str(), "") << c.name;
  }
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_EQ(TraceSummaryMain({dir + "/missing.json"}, out, err), 1);
  EXPECT_THAT(err.str(), HasSubstr("cannot open " + dir + "/missing.json"));
  EXPECT_EQ(TraceSummaryMain({}, out, err), 2);
  EXPECT_EQ(TraceSummaryMain({"a.json", "b.json"}, out, err), 2);
  EXPECT_EQ(TraceSummaryMain({"--help"}, out, err), 0);
  EXPECT_THAT(out.str(), HasSubstr("usage: runtime trace-summary"));
}

TEST(ChromeJsonTest, StringsRoundTripThroughAJsonParser) {
  static constexpr char kNasty[] = "q\"b\\s/\n\t\x01 \xc3\xa9 \xff \0end";
  const std::string nasty(kNasty, sizeof(kNasty) - 1);
  const std::string json = absl::StrCat("[", JsonString(nasty), "]");
  absl::StatusOr<json::JsonValue> parsed = json::ParseJson(json, "strings");
  ASSERT_TRUE(parsed.ok()) << parsed.status() << " in " << json;
  ASSERT_EQ(parsed->items().size(), 1u);
  // Everything survives except the invalid byte, which becomes U+FFFD.
  static constexpr char kExpected[] = "q\"b\\s/\n\t\x01 \xc3\xa9 \xef\xbf\xbd \0end";
  EXPECT_EQ(parsed->items()[0].string(), std::string(kExpected, sizeof(kExpected) - 1));
  std::string number;
  AppendJsonNumber(&number, std::nan(""));
  EXPECT_EQ(number, "null");
  number.clear();
  AppendJsonNumber(&number, 12345678901.0);
  EXPECT_EQ(number, "12345678901");
}

TEST(ChromeJsonTest, WriteTraceFileIsAtomicAndNamesThePathOnError) {
  const std::string dir = dist::testing::MakeTempDir();
  const std::string path = dir + "/t.json";
  GRADFLOW_ASSERT_OK(WriteTraceFile(
      path, {"{\"name\":\"a\",\"ph\":\"i\",\"ts\":0,\"pid\":0,\"tid\":0}", ""}, "{\"k\":1}"));
  absl::StatusOr<json::JsonValue> parsed = json::ParseJson(ReadAll(path), path);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_NE(parsed->Find("traceEvents"), nullptr);
  EXPECT_EQ(parsed->Find("traceEvents")->items().size(), 1u);
  EXPECT_EQ(parsed->Find("otherData")->NumberOr("k", 0), 1);
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) files += entry.exists();
  EXPECT_EQ(files, 1u) << "no temporary file left behind";

  const std::string bad = dir + "/no/such/dir/t.json";
  const absl::Status s = WriteTraceFile(bad, {}, "{}");
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr(bad));
}

}  // namespace
}  // namespace gradflow::runtime::trace
