// The world of one rank: nothing to exchange, so every operation completes inline.
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/dist/collectives.h"

namespace gradflow::runtime::dist {
namespace {

class SoloCollectives final : public Collectives {
 public:
  explicit SoloCollectives(int lanes) : sequences_(lanes, 0) {}

  int rank() const override { return 0; }
  int size() const override { return 1; }
  int lanes() const override { return static_cast<int>(sequences_.size()); }
  void AddObserver(CollectiveObserver* observer) override { observers_.push_back(observer); }

  void AllreduceSum(std::span<float> data, int lane, Done done) override {
    if (lane < 0 || lane >= lanes()) {
      done(absl::InvalidArgumentError(
          absl::StrCat("allreduce lane ", lane, " is outside [0, ", lanes(), ")")));
      return;
    }
    Complete(CollectiveKind::kAllreduce, lane, data.size_bytes(), "local", std::move(done));
  }

  void Broadcast(std::span<float> data, int root, Done done) override {
    if (root != 0) {
      done(absl::InvalidArgumentError(
          absl::StrCat("broadcast root ", root, " is not a rank of a one-node job")));
      return;
    }
    Complete(CollectiveKind::kBroadcast, 0, data.size_bytes(), "local", std::move(done));
  }

  void Barrier(Done done) override {
    Complete(CollectiveKind::kBarrier, 0, 0, "", std::move(done));
  }

 private:
  void Complete(CollectiveKind kind, int lane, size_t bytes, const char* algorithm, Done done) {
    CollectiveEvent event;
    event.kind = kind;
    event.lane = lane;
    event.bytes = static_cast<int64_t>(bytes);
    event.algorithm = algorithm;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      event.sequence = sequences_[lane]++;
    }
    event.start = std::chrono::steady_clock::now();
    for (CollectiveObserver* observer : observers_) observer->OnCollectiveStart(event);
    event.end = std::chrono::steady_clock::now();
    for (CollectiveObserver* observer : observers_) observer->OnCollectiveEnd(event);
    done(absl::OkStatus());
  }

  std::mutex mutex_;
  std::vector<int64_t> sequences_;
  std::vector<CollectiveObserver*> observers_;
};

}  // namespace

std::unique_ptr<Collectives> CreateSoloCollectives(int lanes) {
  return std::make_unique<SoloCollectives>(lanes < 1 ? 1 : lanes);
}

}  // namespace gradflow::runtime::dist
