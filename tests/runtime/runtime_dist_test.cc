// Data-parallel training as a user runs it: `runtime --nodes N` starting real node processes,
// or nodes started one by one with --rendezvous as on a cluster; Gloo over loopback, real files,
// a real redis-server.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/train/checkpoint.h"
#include "tests/runtime/final_parameters.h"
#include "tests/runtime_data/test_files.h"
#include "tests/support/background_process.h"
#include "tests/support/subprocess.h"

namespace gradflow::runtime {
namespace {

using ::gradflow::testing::BackgroundProcess;
using ::gradflow::testing::ProcessResult;
using ::gradflow::testing::RunProcess;
using ::testing::HasSubstr;
using namespace std::chrono_literals;
namespace data_testing = ::gradflow::runtime::data::testing;

ProcessResult Runtime(std::vector<std::string> args) { return RunProcess(RUNTIME_PATH, args); }

std::vector<std::string> With(std::vector<std::string> args, const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

std::string Compile(const std::string& dir, const std::string& model,
                    std::vector<std::string> options = {}) {
  const std::string path = dir + "/" + model + ".fb";
  std::vector<std::string> args = {model, "-o", path};
  args.insert(args.end(), options.begin(), options.end());
  const ProcessResult r = RunProcess(MODELC_PATH, args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return path;
}

// k iterations at a fixed lr (no warmup, no decay within the run) on a fixed synthetic set.
std::vector<std::string> TrainArgs(const std::string& graph, int64_t batch, int64_t iters,
                                   int timeout_seconds = 20) {
  return {"--graph", graph, "--data", "synthetic:256,16", "--batch", std::to_string(batch),
          "--epochs", "100", "--iters", std::to_string(iters), "--threads", "1", "--seed", "3",
          "--warmup", "none", "--lr", "0.05", "--lr-reference-batch", "8", "--eval-every", "0",
          "--log-every", "1", "--timeout", std::to_string(timeout_seconds)};
}

using ::gradflow::testing::FinalParameters;
using ::gradflow::testing::RelativeError;

// N nodes of batch b take the same k steps as one node of batch N*b: same global batch, same
// examples per step (each global batch is cut into the nodes' shares), loss normalized by the
// global batch. Only the order of floating-point sums differs.
void ExpectSameStepsAsOneNode(int nodes) {
  const std::string dir = data_testing::FreshTempDir("dist-equivalence-" + std::to_string(nodes));
  const std::string graph = Compile(dir, "fmnist-cnn");  // no batch norm
  const int64_t global_batch = 8;
  const int64_t iters = 4;
  ProcessResult one = Runtime(
      With(TrainArgs(graph, global_batch, iters), {"--checkpoint-dir", dir + "/one"}));
  ASSERT_EQ(one.exit_code, 0) << one.err << one.out;
  ProcessResult many = Runtime(With(TrainArgs(graph, global_batch / nodes, iters),
                                    {"--nodes", std::to_string(nodes), "--checkpoint-dir",
                                     dir + "/many", "--bucket-mb", "0.05"}));
  ASSERT_EQ(many.exit_code, 0) << many.err << many.out;
  EXPECT_THAT(many.out, HasSubstr("[node 0] "));
  EXPECT_THAT(many.out, HasSubstr("parameters identical on all " + std::to_string(nodes)));
  const std::vector<float> a = FinalParameters(dir + "/one", iters);
  const std::vector<float> b = FinalParameters(dir + "/many", iters);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  EXPECT_LT(RelativeError(b, a), 1e-5);
  // And training did move the parameters: the comparison is not between two initializations.
  const ProcessResult zero =
      Runtime(With(TrainArgs(graph, global_batch, 1), {"--checkpoint-dir", dir + "/first"}));
  ASSERT_EQ(zero.exit_code, 0) << zero.err;
  EXPECT_GT(RelativeError(FinalParameters(dir + "/first", 1), a), 1e-4);
}

TEST(RuntimeDistTest, TwoNodesTakeTheSameStepsAsOneNodeWithTheirGlobalBatch) {
  ExpectSameStepsAsOneNode(2);
}

TEST(RuntimeDistTest, FourNodesTakeTheSameStepsAsOneNodeWithTheirGlobalBatch) {
  ExpectSameStepsAsOneNode(4);
}

// With batch norm each replica normalizes with its own batch's statistics, yet the allreduced
// gradients, hence the parameters, are bitwise identical everywhere. Every node checks that at
// the end against node 0's checksum and fails otherwise.
TEST(RuntimeDistTest, ReplicasWithBatchNormEndBitwiseIdentical) {
  const std::string dir = data_testing::FreshTempDir("dist-bn");
  const std::string graph = Compile(dir, "resnet-fmnist");
  const ProcessResult r = Runtime(With(TrainArgs(graph, 4, 3), {"--nodes", "2"}));
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_THAT(r.out, HasSubstr("[node 0] node 0: per iteration"));
  EXPECT_THAT(r.out, HasSubstr("[node 1] node 1: per iteration"));
  const std::regex checksum("node ([01]): .*parameters identical on all 2 nodes \\(checksum ([0-9a-f]+)\\)");
  std::vector<std::string> sums;
  for (std::sregex_iterator it(r.out.begin(), r.out.end(), checksum), end; it != end; ++it) {
    sums.push_back((*it)[2]);
  }
  ASSERT_EQ(sums.size(), 2u) << r.out;
  EXPECT_EQ(sums[0], sums[1]);
}

// Virtual replicas (--replicas-per-node K) behave like K real nodes: each micro-batch is
// normalized with its own BN statistics and the gradients are summed before the allreduce.
TEST(RuntimeDistTest, VirtualReplicasTakeTheSameStepsAsRealNodes) {
  const std::string dir = data_testing::FreshTempDir("dist-virtual");
  const std::string graph = Compile(dir, "resnet-fmnist");  // with batch norm
  const int64_t iters = 3;
  auto run = [&](const std::string& name, int nodes, int replicas) {
    const ProcessResult r = Runtime(With(
        TrainArgs(graph, 2, iters), {"--nodes", std::to_string(nodes), "--replicas-per-node",
                                     std::to_string(replicas), "--checkpoint-dir", dir + "/" + name}));
    EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
    return FinalParameters(dir + "/" + name, iters);
  };
  const std::vector<float> real = run("real", 4, 1);
  const std::vector<float> virtual_only = run("virtual", 1, 4);
  const std::vector<float> mixed = run("mixed", 2, 2);
  ASSERT_FALSE(real.empty());
  ASSERT_EQ(real.size(), virtual_only.size());
  ASSERT_EQ(real.size(), mixed.size());
  EXPECT_LT(RelativeError(virtual_only, real), 1e-5);
  EXPECT_LT(RelativeError(mixed, real), 1e-5);
  // One node with the whole batch of 8 normalizes differently: the comparison can tell.
  const ProcessResult one = Runtime(With(TrainArgs(graph, 8, iters), {"--checkpoint-dir", dir + "/one"}));
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_GT(RelativeError(FinalParameters(dir + "/one", iters), real), 1e-4);
}

// One node process driving several devices (--devices-per-node, here CPU replicas sharing the
// cores): each device normalizes its own share and the buckets are summed over the devices,
// then across nodes, so 1 x 4 devices and 2 x 2 take the steps of 4 real nodes.
TEST(RuntimeDistTest, DevicesOfOneProcessTakeTheSameStepsAsRealNodes) {
  const std::string dir = data_testing::FreshTempDir("dist-devices");
  const std::string graph = Compile(dir, "resnet-fmnist");  // with batch norm
  const int64_t iters = 3;
  auto run = [&](const std::string& name, int nodes, int devices) {
    const ProcessResult r = Runtime(With(
        TrainArgs(graph, 2, iters), {"--nodes", std::to_string(nodes), "--devices-per-node",
                                     std::to_string(devices), "--bucket-mb", "0.05",
                                     "--checkpoint-dir", dir + "/" + name}));
    EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
    if (devices > 1) {
      EXPECT_THAT(r.out, HasSubstr(std::to_string(devices) + " devices x "));
    }
    return FinalParameters(dir + "/" + name, iters);
  };
  const std::vector<float> real = run("real", 4, 1);
  const std::vector<float> devices_only = run("devices", 1, 4);
  const std::vector<float> mixed = run("mixed", 2, 2);
  ASSERT_FALSE(real.empty());
  EXPECT_LT(RelativeError(devices_only, real), 1e-5);
  EXPECT_LT(RelativeError(mixed, real), 1e-5);
  const ProcessResult one = Runtime(With(TrainArgs(graph, 8, iters), {"--checkpoint-dir", dir + "/one"}));
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_GT(RelativeError(FinalParameters(dir + "/one", iters), real), 1e-4);
}

// Tracing across nodes through the CLI: node 0 writes one merged file that a real JSON parser
// (Python's) accepts and that satisfies the trace checker (nesting, flows, named threads, every
// gradient in exactly one bucket allreduce per traced iteration).
TEST(RuntimeDistTest, TwoNodeTraceIsOneValidMergedFile) {
  const std::string dir = data_testing::FreshTempDir("dist-trace");
  const std::string graph = Compile(dir, "resnet-fmnist");
  const std::string trace = dir + "/trace.json";
  const ProcessResult r = Runtime(With(TrainArgs(graph, 4, 4), {"--nodes", "2", "--bucket-mb", "0.05",
                                                               "--trace", trace, "--trace-iters", "2:3"}));
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_THAT(r.out, HasSubstr("trace written to " + trace));
  const ProcessResult check =
      RunProcess("/usr/bin/python3", {CHECK_TRACE_PY, "--nodes", "2", "--iterations", "2:3", trace});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  const ProcessResult summary = Runtime({"trace-summary", trace});
  EXPECT_EQ(summary.exit_code, 0) << summary.err;
  EXPECT_THAT(summary.out, HasSubstr("Conv2DBackwardFilter"));
  EXPECT_THAT(summary.out, HasSubstr("exposed"));
  EXPECT_EQ(Runtime({"--graph", graph, "--trace-iters", "3:2", "--trace", trace}).exit_code, 2);
  EXPECT_EQ(Runtime({"--graph", graph, "--trace-iters", "2:3"}).exit_code, 2);
}

struct Overlap {
  int64_t buckets = 0;
  int64_t during_backward = 0;
  int64_t allreduces = 0;
};

Overlap ParseOverlap(const std::string& out) {
  const std::regex line("node 0: .* (\\d+) buckets?, (\\d+) of (\\d+) allreduces started during backward");
  std::smatch m;
  Overlap o;
  if (std::regex_search(out, m, line)) {
    o.buckets = std::stoll(m[1]);
    o.during_backward = std::stoll(m[2]);
    o.allreduces = std::stoll(m[3]);
  }
  return o;
}

// The executor's own node events show the allreduce of early buckets starting while backward
// still runs; with one huge bucket nothing can start before backward ends.
TEST(RuntimeDistTest, BucketAllreducesStartDuringBackward) {
  const std::string dir = data_testing::FreshTempDir("dist-overlap");
  const std::string graph = Compile(dir, "resnet-fmnist");
  const ProcessResult small = Runtime(With(TrainArgs(graph, 4, 3), {"--nodes", "2", "--bucket-mb", "0.02"}));
  ASSERT_EQ(small.exit_code, 0) << small.err << small.out;
  const Overlap many = ParseOverlap(small.out);
  EXPECT_GT(many.buckets, 10) << small.out;
  EXPECT_EQ(many.allreduces, 3 * many.buckets);
  // Every bucket but the last becomes ready before the last backward step, and its allreduce
  // starts on the compute stream right after its ready step: in every iteration.
  EXPECT_GE(many.during_backward, 3 * (many.buckets - 1)) << small.out;

  const ProcessResult huge =
      Runtime(With(TrainArgs(graph, 4, 3),
                   {"--nodes", "2", "--bucket-mb", "10000", "--first-layers-bucket-mb", "0"}));
  ASSERT_EQ(huge.exit_code, 0) << huge.err << huge.out;
  const Overlap one = ParseOverlap(huge.out);
  EXPECT_EQ(one.buckets, 1) << huge.out;
  EXPECT_EQ(one.during_backward, 0);

  // The first layers' own bucket (the whole model is 0.7 MB, under the default 1 MB):
  // everything else is reduced during backward, in one bucket, every iteration.
  const ProcessResult split =
      Runtime(With(TrainArgs(graph, 4, 3),
                   {"--nodes", "2", "--bucket-mb", "10000", "--first-layers-bucket-mb", "0.1"}));
  ASSERT_EQ(split.exit_code, 0) << split.err << split.out;
  const Overlap two = ParseOverlap(split.out);
  EXPECT_EQ(two.buckets, 2) << split.out;
  EXPECT_EQ(two.during_backward, 3) << split.out;
}

// Nodes started one by one, as a cluster scheduler would.
std::vector<std::string> NodeArgs(const std::string& graph, int nodes, int rank,
                                  const std::string& rendezvous, const std::string& job,
                                  int64_t batch = 4) {
  return With(TrainArgs(graph, batch, 1000, /*timeout_seconds=*/4),
              {"--nodes", std::to_string(nodes), "--node-rank", std::to_string(rank), "--rendezvous",
               rendezvous, "--job-id", job});
}

void ExpectPeerFailureIsNamed(int signal) {
  const std::string dir = data_testing::FreshTempDir("dist-failure-" + std::to_string(signal));
  const std::string graph = Compile(dir, "fmnist-cnn");
  const std::string rendezvous = "file://" + dir + "/rdzv";
  BackgroundProcess node0(RUNTIME_PATH, NodeArgs(graph, 3, 0, rendezvous, "job"));
  BackgroundProcess node1(RUNTIME_PATH, NodeArgs(graph, 3, 1, rendezvous, "job"));
  BackgroundProcess node2(RUNTIME_PATH, NodeArgs(graph, 3, 2, rendezvous, "job"));
  ASSERT_TRUE(node0.WaitForOutput("iter 3/", 60s)) << node0.Wait(1s).err;
  const auto failed_at = std::chrono::steady_clock::now();
  node1.Signal(signal);
  bool timed_out = false;
  const ProcessResult r0 = node0.Wait(30s, &timed_out);
  EXPECT_FALSE(timed_out) << "node 0 hung after node 1 failed";
  const ProcessResult r2 = node2.Wait(30s, &timed_out);
  EXPECT_FALSE(timed_out) << "node 2 hung after node 1 failed";
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - failed_at).count();
  for (const ProcessResult* r : {&r0, &r2}) {
    EXPECT_FALSE(r->signaled) << r->err;
    EXPECT_EQ(r->exit_code, 1) << r->err;
    EXPECT_THAT(r->err, HasSubstr("rank 1")) << r->err;
  }
  EXPECT_LT(seconds, 4 + 10) << "the survivors took longer than the timeout to notice";
  if (signal == SIGSTOP) node1.Signal(SIGKILL);
  node1.Wait(10s);
}

TEST(RuntimeDistTest, KilledNodeMakesTheOthersFailNamingIt) { ExpectPeerFailureIsNamed(SIGKILL); }

TEST(RuntimeDistTest, StalledNodeMakesTheOthersFailWithinTheTimeout) {
  ExpectPeerFailureIsNamed(SIGSTOP);
}

// The local launcher: one node killed, the job fails naming it and leaves no process behind.
TEST(RuntimeDistTest, LauncherReportsAKilledNodeAndLeavesNoOrphans) {
  const std::string dir = data_testing::FreshTempDir("dist-launcher-kill");
  const std::string graph = Compile(dir, "fmnist-cnn");
  BackgroundProcess job(RUNTIME_PATH, With(TrainArgs(graph, 4, 1000, 4), {"--nodes", "2"}));
  ASSERT_TRUE(job.WaitForOutput("iter 3/", 60s)) << job.Wait(1s).err;
  std::vector<pid_t> nodes = testing::ChildrenOf(job.pid());
  ASSERT_EQ(nodes.size(), 2u);
  pid_t victim = -1;
  for (pid_t pid : nodes) {
    if (testing::CommandLineOf(pid).find("--node-rank 1 ") != std::string::npos) victim = pid;
  }
  ASSERT_GT(victim, 0);
  ::kill(victim, SIGKILL);
  bool timed_out = false;
  const ProcessResult r = job.Wait(40s, &timed_out);
  EXPECT_FALSE(timed_out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("node 1"));
  EXPECT_THAT(r.err, HasSubstr("SIGKILL"));
  EXPECT_THAT(r.err, HasSubstr("rank 1"));  // node 0's own message
  for (pid_t pid : nodes) EXPECT_NE(::kill(pid, 0), 0) << "node process " << pid << " survived";
}

TEST(RuntimeDistTest, MismatchedGraphsOrFlagsAreRefusedAtStart) {
  const std::string dir = data_testing::FreshTempDir("dist-mismatch");
  const std::string a = Compile(dir, "fmnist-cnn");
  const std::string b = Compile(dir, "resnet-fmnist");
  const std::string rendezvous = "file://" + dir + "/rdzv";
  {
    BackgroundProcess node0(RUNTIME_PATH, NodeArgs(a, 2, 0, rendezvous, "graphs"));
    BackgroundProcess node1(RUNTIME_PATH, NodeArgs(b, 2, 1, rendezvous, "graphs"));
    const ProcessResult r0 = node0.Wait(30s);
    const ProcessResult r1 = node1.Wait(30s);
    EXPECT_EQ(r0.exit_code, 1) << r0.err;
    EXPECT_EQ(r1.exit_code, 1) << r1.err;
    EXPECT_THAT(r0.err + r1.err, HasSubstr("graph="));
  }
  {
    BackgroundProcess node0(RUNTIME_PATH, NodeArgs(a, 2, 0, rendezvous, "flags"));
    BackgroundProcess node1(RUNTIME_PATH, NodeArgs(a, 2, 1, rendezvous, "flags", /*batch=*/2));
    const ProcessResult r0 = node0.Wait(30s);
    const ProcessResult r1 = node1.Wait(30s);
    EXPECT_EQ(r0.exit_code, 1) << r0.err;
    EXPECT_EQ(r1.exit_code, 1) << r1.err;
    EXPECT_THAT(r0.err + r1.err, HasSubstr("batch="));
  }
}

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t length = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

TEST(RuntimeDistTest, NodesMeetThroughRedis) {
  if (!std::filesystem::exists("/usr/bin/redis-server")) GTEST_SKIP() << "no redis-server";
  const std::string dir = data_testing::FreshTempDir("dist-redis");
  const std::string graph = Compile(dir, "fmnist-cnn");
  const int port = FreePort();
  BackgroundProcess redis("/usr/bin/redis-server",
                          {"--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no", "--dir", dir});
  ASSERT_TRUE(redis.WaitForOutput("Ready to accept connections", 10s)) << redis.Wait(1s).out;
  const std::string uri = "redis://127.0.0.1:" + std::to_string(port);
  const std::string job = "redis-test-" + std::to_string(::getpid());
  auto args = [&](int rank) {
    return With(TrainArgs(graph, 4, 3), {"--nodes", "2", "--node-rank", std::to_string(rank),
                                         "--rendezvous", uri, "--job-id", job});
  };
  BackgroundProcess node0(RUNTIME_PATH, args(0));
  BackgroundProcess node1(RUNTIME_PATH, args(1));
  const ProcessResult r0 = node0.Wait(60s);
  const ProcessResult r1 = node1.Wait(60s);
  EXPECT_EQ(r0.exit_code, 0) << r0.err << r0.out;
  EXPECT_EQ(r1.exit_code, 0) << r1.err;
  EXPECT_THAT(r0.out, HasSubstr("parameters identical on all 2 nodes"));
  redis.Signal(SIGTERM);
  redis.Wait(10s);
}

// On a cluster the scheduler's launcher gives the rank (SLURM_PROCID, OMPI_COMM_WORLD_RANK).
TEST(RuntimeDistTest, RankComesFromTheClusterEnvironment) {
  const std::string dir = data_testing::FreshTempDir("dist-env-rank");
  const std::string graph = Compile(dir, "fmnist-cnn");
  const std::string rendezvous = "file://" + dir + "/rdzv";
  auto args = [&] {
    return With(TrainArgs(graph, 4, 2), {"--nodes", "2", "--rendezvous", rendezvous, "--job-id", "env"});
  };
  ::setenv("SLURM_PROCID", "0", 1);
  BackgroundProcess node0(RUNTIME_PATH, args());
  ::unsetenv("SLURM_PROCID");
  ::setenv("OMPI_COMM_WORLD_RANK", "1", 1);
  BackgroundProcess node1(RUNTIME_PATH, args());
  ::unsetenv("OMPI_COMM_WORLD_RANK");
  const ProcessResult r0 = node0.Wait(60s);
  const ProcessResult r1 = node1.Wait(60s);
  EXPECT_EQ(r0.exit_code, 0) << r0.err;
  EXPECT_EQ(r1.exit_code, 0) << r1.err;
  EXPECT_THAT(r1.out, HasSubstr("node 1: per iteration"));
}

TEST(RuntimeDistTest, HelpDocumentsTheDataParallelFlags) {
  const ProcessResult r = Runtime({"--help"});
  ASSERT_EQ(r.exit_code, 0);
  for (const char* flag : {"--nodes N", "--node-rank N", "--rendezvous URI", "--job-id ID",
                           "--timeout X", "--bucket-mb X", "--comm-lanes N", "--allreduce-algo ALGO",
                           "--replicas-per-node N", "--trace FILE", "--trace-iters A:B",
                           "--summary-json FILE"}) {
    EXPECT_THAT(r.out, HasSubstr(flag));
  }
  EXPECT_THAT(r.out, HasSubstr("[25]"));   // bucket cap in MB
  EXPECT_THAT(r.out, HasSubstr("[300]"));  // timeout in seconds
}

TEST(RuntimeDistTest, UsageErrorsNameTheFlag) {
  ProcessResult r = Runtime({"--graph", "x.fb", "--nodes", "0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--nodes"));
  r = Runtime({"--graph", "x.fb", "--nodes", "2", "--node-rank", "1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--node-rank needs --rendezvous"));
  r = Runtime({"--graph", "x.fb", "--nodes", "2", "--node-rank", "2", "--rendezvous", "file:///tmp/x"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--node-rank 2 is not below --nodes 2"));
  r = Runtime({"--graph", "x.fb", "--bucket-mb", "0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--bucket-mb"));
  r = Runtime({"--graph", "x.fb", "--allreduce-algo", "tree"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--allreduce-algo"));
}

TEST(RuntimeDistTest, BadRendezvousIsAClearError) {
  const std::string dir = data_testing::FreshTempDir("dist-bad-rdzv");
  const std::string graph = Compile(dir, "fmnist-cnn");
  const ProcessResult r = Runtime(With(TrainArgs(graph, 4, 2), {"--nodes", "2", "--node-rank", "0",
                                                                "--rendezvous", "tcp://nowhere"}));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--rendezvous"));
  EXPECT_THAT(r.err, HasSubstr("tcp://nowhere"));
}

}  // namespace
}  // namespace gradflow::runtime
