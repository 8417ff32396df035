#include "tests/runtime_dist/dist_test_util.h"

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace gradflow::runtime::dist::testing {

std::string MakeTempDir() {
  const char* base = getenv("GRADFLOW_TEST_TMPDIR");
  std::string root = (base != nullptr && base[0] != '\0') ? base : "/tmp";
  std::filesystem::create_directories(root);
  std::string pattern = root + "/dist-XXXXXX";
  char* made = mkdtemp(pattern.data());
  EXPECT_NE(made, nullptr) << "mkdtemp under " << root;
  return std::filesystem::absolute(pattern).string();
}

std::string UniqueJobId() {
  static std::atomic<int> counter{0};
  return absl::StrCat("job-", getpid(), "-", counter++, "-",
                      std::chrono::steady_clock::now().time_since_epoch().count());
}

RendezvousSpec FreshFileRendezvous() {
  RendezvousSpec spec;
  spec.kind = RendezvousSpec::Kind::kFile;
  spec.path = MakeTempDir();
  return spec;
}

void RunRanks(int size, const std::function<void(int rank)>& fn) {
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r) threads.emplace_back([&fn, r] { fn(r); });
  for (auto& t : threads) t.join();
}

ThreadWorld MakeThreadWorld(int size, const GlooOptions& options) {
  const RendezvousSpec spec = FreshFileRendezvous();
  const std::string job = UniqueJobId();
  ThreadWorld world;
  world.stores.resize(size);
  world.ranks.resize(size);
  for (int r = 0; r < size; ++r) {
    auto store = Store::Open(spec, job, options.timeout);
    EXPECT_TRUE(store.ok()) << store.status();
    if (store.ok()) world.stores[r] = *std::move(store);
  }
  RunRanks(size, [&](int rank) {
    auto collectives = CreateGlooCollectives(*world.stores[rank], rank, size, options);
    EXPECT_TRUE(collectives.ok()) << "rank " << rank << ": " << collectives.status();
    if (collectives.ok()) world.ranks[rank] = *std::move(collectives);
  });
  return world;
}

void ThreadWorld::DestroyRanks() {
  RunRanks(static_cast<int>(ranks.size()), [this](int rank) { ranks[rank].reset(); });
  ranks.clear();
}

GlooOptions TestOptions(std::chrono::milliseconds timeout) {
  GlooOptions options;
  options.timeout = timeout;
  options.hostname = "127.0.0.1";
  options.transport = "tcp";
  return options;
}

}  // namespace gradflow::runtime::dist::testing
