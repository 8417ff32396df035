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
TEST(BenchAllreduceMainTest, RanksTimeEverySizeAndRankZeroWritesThem) {
  const std::string dir = TempDir() + "/bench_rendezvous";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string result = dir + "/result.txt";
  int codes[2] = {-1, -1};
  std::vector<std::thread> ranks;
  for (int rank = 0; rank < 2; ++rank) {
    ranks.emplace_back([&, rank] {
      std::ostringstream out, err;
      codes[rank] = BenchAllreduceMain(
          {"--nodes", "2", "--sizes", "4K,64K", "--iters", "3", "--warmup", "1", "--timeout", "30",
           "--node-rank", absl::StrCat(rank), "--rendezvous", "file://" + dir, "--result", result},
          out, err);
    });
  }
  for (std::thread& t : ranks) t.join();
  EXPECT_EQ(codes[0], 0);
  EXPECT_EQ(codes[1], 0);
  std::ifstream in(result);
  double bytes = 0, seconds = 0;
  ASSERT_TRUE(in >> bytes >> seconds);
  EXPECT_EQ(bytes, 4096);
  EXPECT_GT(seconds, 0);
  ASSERT_TRUE(in >> bytes >> seconds);
  EXPECT_EQ(bytes, 65536);
  EXPECT_FALSE(in >> bytes);
}

}  // namespace
}  // namespace gradflow::runtime::project
