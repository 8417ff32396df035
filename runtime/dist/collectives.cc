#include "runtime/dist/collectives.h"

#include <future>
#include <memory>

namespace gradflow::runtime::dist {
namespace {

// Issues an operation and blocks until its `done` runs. The implementation's own timeout bounds
// the wait, so no timeout here.
template <typename Issue>
absl::Status WaitFor(Issue issue) {
  auto promise = std::make_shared<std::promise<absl::Status>>();
  std::future<absl::Status> result = promise->get_future();
  issue([promise](absl::Status status) { promise->set_value(std::move(status)); });
  return result.get();
}

}  // namespace

const char* CollectiveKindName(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::kAllreduce:
      return "allreduce";
    case CollectiveKind::kBroadcast:
      return "broadcast";
    case CollectiveKind::kBarrier:
      return "barrier";
  }
  return "unknown collective";
}

absl::Status AllreduceSumSync(Collectives& collectives, std::span<float> data, int lane) {
  return WaitFor([&](Done done) { collectives.AllreduceSum(data, lane, std::move(done)); });
}

absl::Status AllreduceSumRepeatedSync(Collectives& collectives, std::span<float> data, int lane) {
  return WaitFor([&](Done done) { collectives.AllreduceSumRepeated(data, lane, std::move(done)); });
}

absl::Status BroadcastSync(Collectives& collectives, std::span<float> data, int root) {
  return WaitFor([&](Done done) { collectives.Broadcast(data, root, std::move(done)); });
}

absl::Status BarrierSync(Collectives& collectives) {
  return WaitFor([&](Done done) { collectives.Barrier(std::move(done)); });
}

}  // namespace gradflow::runtime::dist
