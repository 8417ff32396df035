// Rendezvous through a real redis-server started on loopback by the test.
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/dist/gloo_collectives.h"
#include "tests/runtime_dist/dist_test_util.h"

namespace gradflow::runtime::dist {
namespace {

using ::testing::HasSubstr;

constexpr char kRedisServer[] = "/usr/bin/redis-server";

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

// A redis-server child on 127.0.0.1, killed (and reaped) when this goes out of scope.
class RedisServer {
 public:
  RedisServer() : port_(FreePort()) {
    const std::string port = std::to_string(port_);
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      execl(kRedisServer, kRedisServer, "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--loglevel", "warning", static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~RedisServer() {
    if (pid_ <= 0) return;  // fork failed; kill(-1) would hit every process of the user
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  RendezvousSpec spec() const {
    RendezvousSpec spec;
    spec.kind = RendezvousSpec::Kind::kRedis;
    spec.host = "127.0.0.1";
    spec.port = port_;
    return spec;
  }
  // Waits until the server accepts connections.
  std::unique_ptr<Store> Connect(const std::string& job) {
    for (int attempt = 0; attempt < 250; ++attempt) {
      auto store = Store::Open(spec(), job, std::chrono::seconds(5));
      if (store.ok()) return *std::move(store);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "redis-server did not start on port " << port_;
    return nullptr;
  }

 private:
  int port_;
  pid_t pid_ = -1;
};

TEST(RedisRendezvousTest, TwoRanksMeetThroughRedisAndAllreduce) {
  if (access(kRedisServer, X_OK) != 0) GTEST_SKIP() << kRedisServer << " is not installed";
  RedisServer server;
  const std::string job = testing::UniqueJobId();
  std::vector<std::unique_ptr<Store>> stores;
  for (int r = 0; r < 2; ++r) stores.push_back(server.Connect(job));
  ASSERT_TRUE(stores[0] && stores[1]);
  // Another job on the same server does not collide.
  auto other_job = server.Connect(testing::UniqueJobId());
  ASSERT_TRUE(other_job->Set("gloo/joined/0", "x").ok());

  EXPECT_TRUE(CheckSameEverywhere(*stores[0], 0, 1, "graph", "hash=1").ok());
  std::vector<std::vector<float>> data = {{1.0f, 2.0f, 3.0f}, {10.0f, 20.0f, 30.0f}};
  testing::RunRanks(2, [&](int rank) {
    auto collectives = CreateGlooCollectives(*stores[rank], rank, 2, testing::TestOptions());
    ASSERT_TRUE(collectives.ok()) << collectives.status();
    EXPECT_TRUE(AllreduceSumSync(**collectives, data[rank], 1).ok());
  });
  EXPECT_EQ(data[0], (std::vector<float>{11.0f, 22.0f, 33.0f}));
  EXPECT_EQ(data[1], data[0]);
}

TEST(RedisRendezvousTest, UnreachableServerIsNamed) {
  RendezvousSpec spec;
  spec.kind = RendezvousSpec::Kind::kRedis;
  spec.host = "127.0.0.1";
  spec.port = FreePort();
  auto store = Store::Open(spec, "job", std::chrono::seconds(1));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(store.status().message(),
              HasSubstr("redis://127.0.0.1:" + std::to_string(spec.port)));
}

}  // namespace
}  // namespace gradflow::runtime::dist
