#include "runtime/project/project_main.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "graph/serialize.h"
#include "models/zoo.h"
#include "ops/registry.h"

namespace gradflow::runtime::project {
namespace {

std::string TempDir() {
  const char* dir = std::getenv("GRADFLOW_TEST_TMPDIR");
  std::string path = absl::StrCat(dir != nullptr ? dir : "/tmp", "/runtime_project");
  std::filesystem::create_directories(path);
  return path;
}

struct CliRun {
  int code = 0;
  std::string out;
  std::string err;
};

CliRun Project(std::vector<std::string> args) {
  std::ostringstream out, err;
  CliRun r;
  r.code = ProjectMain(args, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

class ProjectMainTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<graph::Graph> graph = models::BuildModel("mlp", {}, ops::StandardOps());
    ASSERT_TRUE(graph.ok()) << graph.status();
    graph_path_ = new std::string(TempDir() + "/mlp.fb");
    ASSERT_TRUE(graph::SaveGraph(*graph, *graph_path_).ok());
  }
  static void TearDownTestSuite() { delete graph_path_; }
  // Two one-device nodes of the mlp from FLOP shares (20 + 40 ms) over the link in `link`.
  static std::vector<std::string> TwoCpuNodesArgs(const std::string& link) {
    return {"--graph",
            *graph_path_,
            "--from-flops",
            "--forward-ms",
            "20",
            "--backward-ms",
            "40",
            "--nodes",
            "2",
            "--devices-per-node",
            "1",
            "--intra-node",
            "none",
            "--link-file",
            link};
  }
  static std::string* graph_path_;
};

std::string* ProjectMainTest::graph_path_ = nullptr;

TEST_F(ProjectMainTest, FlopsModePrintsATableAndWritesJsonAndATimeTable) {
  const std::string json = TempDir() + "/p.json";
  const std::string table = TempDir() + "/t.txt";
  CliRun r = Project({"--graph", *graph_path_, "--from-flops", "--forward-ms", "2", "--backward-ms",
                      "4", "--nodes", "1,4", "--devices-per-node", "1", "--intra-node", "none",
                      "--link-gbps", "10", "--json", json, "--write-table", table});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("efficiency"), std::string::npos) << r.out;
  std::ifstream j(json);
  std::stringstream jtext;
  jtext << j.rdbuf();
  EXPECT_NE(jtext.str().find("\"nodes\": 4"), std::string::npos) << jtext.str();
  // The time table written is accepted back, with the same result.
  CliRun again = Project({"--graph", *graph_path_, "--table", table, "--nodes", "1,4",
                          "--devices-per-node", "1", "--intra-node", "none", "--link-gbps", "10"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out.substr(again.out.find(" nodes")), r.out.substr(r.out.find(" nodes")));
}

// A CPU-only host: the allreduces' CPU time, read from the link file, comes out of compute.
TEST_F(ProjectMainTest, HostCoresTakeTheAllreducesCpuFromCompute) {
  const std::string link = TempDir() + "/link_cpu.txt";
  std::ofstream(link) << "latency_us 50\nlink_gbps 8\ncpu_us_per_mb 2000\n";
  std::vector<std::string> base = TwoCpuNodesArgs(link);
  for (const std::string& a : {std::string("--json"), TempDir() + "/host.json"}) base.push_back(a);
  CliRun off = Project(base);
  ASSERT_EQ(off.code, 0) << off.err;
  std::vector<std::string> args = base;
  for (const char* a : {"--host-cores", "2", "--nodes-per-host", "2"}) args.push_back(a);
  CliRun on = Project(args);
  ASSERT_EQ(on.code, 0) << on.err;
  EXPECT_NE(on.out.find("host: 2 cores shared by up to 2 nodes x 1 compute thread"),
            std::string::npos)
      << on.out;
  EXPECT_EQ(off.out.find("host:"), std::string::npos) << off.out;
  auto iteration_ms = [](const std::string& out) {
    std::istringstream table(out.substr(out.find("\n     2 ")));
    int64_t nodes = 0, devices = 0;
    double ms = 0;
    table >> nodes >> devices >> ms;
    return ms;
  };
  EXPECT_GT(iteration_ms(on.out), iteration_ms(off.out)) << on.out << off.out;
}

// The link file's loaded latency is used with --host-cores (2 single-threaded nodes on 2 cores:
// compute fills them) and --latency-loaded-us overrides it. Small buckets on one lane: the
// mlp's first buckets are reduced while the last backward steps still compute, so 20 ms rounds
// there hold up the lane and the last bucket comes later.
TEST_F(ProjectMainTest, LoadedLatencyFromTheLinkFileAppliesWithHostCores) {
  const std::string idle_link = TempDir() + "/link_idle.txt";
  const std::string loaded_link = TempDir() + "/link_loaded.txt";
  const std::string json = TempDir() + "/loaded.json";
  std::ofstream(idle_link) << "latency_us 50\nlink_gbps 8\ncpu_us_per_mb 500\n";
  std::ofstream(loaded_link) << "latency_us 50\nlink_gbps 8\ncpu_us_per_mb 500\n"
                                "latency_loaded_us 20000\nbusy_threads 1\n";
  double seconds = 0;
  auto run = [&](const std::string& link, std::vector<std::string> more) {
    std::vector<std::string> args = TwoCpuNodesArgs(link);
    for (const char* a : {"--host-cores", "2", "--nodes-per-host", "2", "--bucket-mb", "0.2",
                          "--lanes", "1", "--json"}) {
      args.push_back(a);
    }
    args.push_back(json);
    args.insert(args.end(), more.begin(), more.end());
    CliRun r = Project(args);
    std::ifstream in(json);
    std::stringstream text;
    text << in.rdbuf();
    const std::string key = "\"iteration_seconds\": ";
    const size_t at = text.str().find(key);
    seconds = at == std::string::npos ? -1 : std::stod(text.str().substr(at + key.size()));
    return r;
  };
  CliRun idle = run(idle_link, {});
  ASSERT_EQ(idle.code, 0) << idle.err;
  const double idle_seconds = seconds;
  EXPECT_EQ(idle.out.find("while compute fills the cores"), std::string::npos) << idle.out;
  CliRun loaded = run(loaded_link, {});
  ASSERT_EQ(loaded.code, 0) << loaded.err;
  EXPECT_NE(loaded.out.find("20000 us per message round while compute fills the cores "
                            "(measured beside 1 busy thread per rank), 50 us otherwise"),
            std::string::npos)
      << loaded.out;
  EXPECT_GT(seconds, idle_seconds + 1e-5) << loaded.out << idle.out;
  // The flag replaces the file's figure: the idle latency given as the loaded one is the idle run.
  CliRun flag = run(loaded_link, {"--latency-loaded-us", "50"});
  ASSERT_EQ(flag.code, 0) << flag.err;
  EXPECT_NE(flag.out.find("(--latency-loaded-us)"), std::string::npos) << flag.out;
  EXPECT_DOUBLE_EQ(seconds, idle_seconds);
  CliRun bad = run(loaded_link, {"--latency-loaded-us", "-1"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("--latency-loaded-us"), std::string::npos) << bad.err;
}

TEST_F(ProjectMainTest, BadInputNamesTheFlagOrFile) {
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string error;
  };
  const std::string g = *graph_path_;
  for (const Case& c : std::vector<Case>{
           {{"--from-flops", "--forward-ms", "1", "--backward-ms", "1"}, 2, "--graph"},
           {{"--graph", g}, 2, "exactly one of --from"},
           {{"--graph", g, "--from-flops"}, 2, "--forward-ms"},
           {{"--graph", g, "--from-flops", "--forward-ms", "1", "--backward-ms", "1", "--nodes",
             "0"},
            2,
            "--nodes"},
           {{"--graph", g, "--from-flops", "--forward-ms", "1", "--backward-ms", "1", "--algo",
             "tree"},
            2,
            "--algo"},
           {{"--graph", g, "--from-flops", "--forward-ms", "1", "--backward-ms", "1",
             "--intra-node", "none"},
            2,
            "--intra-node none"},
           {{"--graph", g, "--from-flops", "--forward-ms", "1", "--backward-ms", "1", "--link-gbps",
             "-3"},
            2,
            "--link-gbps"},
           {{"--graph", g, "--from-flops", "--forward-ms", "1", "--backward-ms", "1",
             "--scale-compute", "0"},
            2,
            "--scale-compute"},
           {{"--graph", g, "--from", "/nonexistent/t.json"}, 1, "/nonexistent/t.json"},
           {{"--graph", g, "--table", "/nonexistent/t.txt"}, 1, "/nonexistent/t.txt"},
           {{"--graph", "/nonexistent/g.fb", "--from-flops", "--forward-ms", "1", "--backward-ms",
             "1"},
            1,
            "/nonexistent/g.fb"},
           {{"--graph", g, "--from-flops", "--forward-ms", "1", "--backward-ms", "1", "--link-file",
             "/nonexistent/l.txt"},
            1,
            "/nonexistent/l.txt"},
           {{"--graph", g, "--frobnicate"}, 2, "--frobnicate"},
           {{"--graph", g, "--from-flops", "--forward-ms", "1", "--backward-ms", "1",
             "--host-cores", "2"},
            2,
            "--devices-per-node is 8"},
           {{"--graph", g, "--from-flops", "--forward-ms", "1", "--backward-ms", "1",
             "--host-cores", "2", "--devices-per-node", "1", "--intra-node", "none"},
            2,
            "--cpu-us-per-mb"},
           {{"--graph", g, "--from-flops", "--forward-ms", "1", "--backward-ms", "1",
             "--nodes-per-host", "2"},
            2,
            "go with --host-cores"},
           {{"--graph", g, "--from-flops", "--forward-ms", "1", "--backward-ms", "1",
             "--cpu-us-per-mb-loaded", "900"},
            2,
            "go with --host-cores"},
           {{"--graph", g, "--from-flops", "--forward-ms", "1", "--backward-ms", "1",
             "--latency-loaded-us", "900"},
            2,
            "go with --host-cores"},
           {{"--graph", g, "--from-flops", "--forward-ms", "1", "--backward-ms", "1",
             "--host-cores", "-1"},
            2,
            "--host-cores"},
       }) {
    CliRun r = Project(c.args);
    EXPECT_EQ(r.code, c.code) << r.err;
    EXPECT_NE(r.err.find(c.error), std::string::npos) << r.err;
  }
  // A trace recorded with another graph: the step count disagrees.
  const std::string trace = TempDir() + "/other.json";
  std::ofstream(trace) << R"({"traceEvents": [], "otherData": {"gradflow": {"batch_per_node": 8,
      "steps": 3, "nodes": 1, "buckets": []}}})";
  CliRun r = Project({"--graph", g, "--from", trace});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("was the trace recorded with this graph"), std::string::npos) << r.err;
  std::ofstream(trace) << "{\"traceEvents\": [";
  r = Project({"--graph", g, "--from", trace});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(trace), std::string::npos) << r.err;
}

TEST(BenchAllreduceMainTest, UsageErrorsNameTheFlag) {
  std::ostringstream out, err;
  EXPECT_EQ(BenchAllreduceMain({"--nodes", "1"}, out, err), 2);
  EXPECT_NE(err.str().find("--nodes"), std::string::npos);
  EXPECT_EQ(BenchAllreduceMain({"--nodes", "2", "--sizes", "1M"}, out, err), 2);
  EXPECT_NE(err.str().find("--sizes"), std::string::npos);
  EXPECT_EQ(BenchAllreduceMain({"--nodes", "2", "--algo", "tree"}, out, err), 2);
  EXPECT_NE(err.str().find("--algo"), std::string::npos);
}

// The measuring side of bench-allreduce, with its two ranks as threads of this process (the
// launcher side re-runs the `runtime` binary, which a test cannot).
// Runs both ranks of `bench-allreduce --nodes 2 --sizes 4K,64K` as threads of this process, with
// `extra` flags, and returns the result file rank 0 wrote.
std::string RunTwoBenchRanks(const std::string& name, const std::vector<std::string>& extra) {
  const std::string dir = TempDir() + "/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string result = dir + "/result.txt";
  int codes[2] = {-1, -1};
  std::vector<std::thread> ranks;
  for (int rank = 0; rank < 2; ++rank) {
    ranks.emplace_back([&, rank] {
      std::vector<std::string> args = {"--nodes",      "2",
                                       "--sizes",      "4K,64K",
                                       "--iters",      "3",
                                       "--warmup",     "1",
                                       "--timeout",    "30",
                                       "--node-rank",  absl::StrCat(rank),
                                       "--rendezvous", "file://" + dir,
                                       "--result",     result};
      args.insert(args.end(), extra.begin(), extra.end());
      std::ostringstream out, err;
      codes[rank] = BenchAllreduceMain(args, out, err);
    });
  }
  for (std::thread& t : ranks) t.join();
  EXPECT_EQ(codes[0], 0);
  EXPECT_EQ(codes[1], 0);
  return result;
}

TEST(BenchAllreduceMainTest, RanksTimeEverySizeAndRankZeroWritesThem) {
  std::ifstream in(RunTwoBenchRanks("bench_rendezvous", {}));
  // "bytes seconds process_cpu host_cpu loaded_seconds loaded_cpu" per size; the ranks share
  // this process, so its CPU time counts both (still at least one rank's). The host's busy time
  // counts whole clock ticks: 0 or more, or -1 without /proc/stat. Without --busy-threads the
  // loaded columns are -1.
  double bytes = 0, seconds = 0, cpu_seconds = -1, host_cpu_seconds = -2, loaded = 0,
         loaded_cpu = 0;
  ASSERT_TRUE(in >> bytes >> seconds >> cpu_seconds >> host_cpu_seconds >> loaded >> loaded_cpu);
  EXPECT_EQ(bytes, 4096);
  EXPECT_GT(seconds, 0);
  EXPECT_GE(cpu_seconds, 0);
  EXPECT_GE(host_cpu_seconds, -1);
  EXPECT_EQ(loaded, -1);
  EXPECT_EQ(loaded_cpu, -1);
  ASSERT_TRUE(in >> bytes >> seconds >> cpu_seconds >> host_cpu_seconds >> loaded >> loaded_cpu);
  EXPECT_EQ(bytes, 65536);
  EXPECT_GT(cpu_seconds, 0);
  EXPECT_FALSE(in >> bytes);
}

// With --busy-threads each size is timed a second time beside compute threads: the loaded
// columns are then measured (a time, and the process's CPU less the busy threads').
TEST(BenchAllreduceMainTest, BusyThreadsTimeEverySizeAgainBesideCompute) {
  std::ifstream in(RunTwoBenchRanks("bench_rendezvous_busy", {"--busy-threads", "1"}));
  double bytes = 0, seconds = 0, cpu_seconds = -1, host_cpu_seconds = -2, loaded = -1,
         loaded_cpu = -2;
  for (int64_t size : {4096, 65536}) {
    ASSERT_TRUE(in >> bytes >> seconds >> cpu_seconds >> host_cpu_seconds >> loaded >> loaded_cpu);
    EXPECT_EQ(bytes, size);
    EXPECT_GT(loaded, 0);
    EXPECT_GE(loaded_cpu, 0);
  }
  EXPECT_FALSE(in >> bytes);
}

}  // namespace
}  // namespace gradflow::runtime::project
