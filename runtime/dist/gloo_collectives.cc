#include "runtime/dist/gloo_collectives.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gloo/allreduce_halving_doubling.h"
#include "gloo/allreduce_ring_chunked.h"
#include "gloo/barrier_all_to_one.h"
#include "gloo/broadcast_one_to_all.h"
#include "gloo/rendezvous/context.h"
#include "gloo/rendezvous/prefix_store.h"
#include "runtime/dist/gloo_device.h"
#include "runtime/dist/gloo_failure.h"
#include "runtime/dist/lane_worker.h"

namespace gradflow::runtime::dist {
namespace {

constexpr char kRing[] = "ring";
constexpr char kHalvingDoubling[] = "halving-doubling";

std::string JoinedKey(int rank) { return absl::StrCat("gloo/joined/", rank); }
std::string AddressesKey(int rank) { return absl::StrCat("gloo/addresses/", rank); }
std::string FailureKey(int rank) { return absl::StrCat("gloo/failure/", rank); }
std::string AliveKey(int rank) { return absl::StrCat("gloo/failed-but-alive/", rank); }

// What a rank that gave up publishes, so that the ranks it then disconnects from can name the
// original cause rather than the messenger.
struct FailureReport {
  absl::StatusCode code = absl::StatusCode::kUnavailable;
  std::string cause;  // e.g. "rank 1 closed its connection (node died?) [...]"
  int origin = 0;     // the rank that observed it first
};

std::string EncodeReport(const FailureReport& report) {
  return absl::StrCat(static_cast<int>(report.code), "\n", report.origin, "\n", report.cause);
}

std::optional<FailureReport> DecodeReport(const std::string& text) {
  std::vector<std::string> parts = absl::StrSplit(text, absl::MaxSplits('\n', 2));
  FailureReport report;
  int code = 0;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &code) ||
      !absl::SimpleAtoi(parts[1], &report.origin)) {
    return std::nullopt;
  }
  report.code = static_cast<absl::StatusCode>(code);
  report.cause = parts[2];
  return report;
}

struct Lane {
  GlooDevice device;
  std::shared_ptr<gloo::rendezvous::Context> context;  // null in a world of one
  // Repeated allreduces' algorithms by (data, count): set up once per bucket, reused every
  // iteration.
  // Touched by the lane's worker only.
  absl::flat_hash_map<std::pair<const float*, size_t>, std::unique_ptr<gloo::Algorithm>> allreduces;
  std::mutex issue_mutex;  // keeps sequence numbers in queue order
  int64_t next_sequence = 0;
  std::unique_ptr<LaneWorker> worker;
};

class GlooCollectives final : public Collectives {
 public:
  GlooCollectives(int rank, int size, GlooOptions options, std::unique_ptr<Store> report_store,
                  PeerDirectory peers, std::vector<std::unique_ptr<Lane>> lanes)
      : rank_(rank),
        size_(size),
        options_(std::move(options)),
        report_store_(std::move(report_store)),
        peers_(std::move(peers)),
        lanes_(std::move(lanes)),
        notifier_(std::make_unique<LaneWorker>()) {
    for (auto& lane : lanes_) lane->worker = std::make_unique<LaneWorker>();
  }

  ~GlooCollectives() override {
    if (size_ > 1 && !failed_.load()) SayGoodbye();
    for (auto& lane : lanes_) lane->worker.reset();
    notifier_.reset();
    for (auto& lane : lanes_) {
      try {
        lane->allreduces.clear();
        lane->context.reset();
        lane->device.device.reset();
      } catch (const std::exception&) {
        // Gloo's destructors may throw for connections already broken; nothing left to do.
      }
    }
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int lanes() const override { return static_cast<int>(lanes_.size()); }
  void AddObserver(CollectiveObserver* observer) override { observers_.push_back(observer); }

  void AllreduceSum(std::span<float> data, int lane, Done done) override {
    Allreduce(data, lane, /*repeated=*/false, std::move(done));
  }
  void AllreduceSumRepeated(std::span<float> data, int lane, Done done) override {
    Allreduce(data, lane, /*repeated=*/true, std::move(done));
  }

  void Broadcast(std::span<float> data, int root, Done done) override {
    if (root < 0 || root >= size_) {
      return Refuse(std::move(done),
                    absl::InvalidArgumentError(absl::StrCat(
                        "broadcast root ", root, " is not a rank of a job of ", size_, " nodes")));
    }
    Issue(CollectiveKind::kBroadcast, 0, data, root, /*repeated=*/false, std::move(done));
  }

  void Barrier(Done done) override {
    Issue(CollectiveKind::kBarrier, 0, {}, 0, /*repeated=*/false, std::move(done));
  }

 private:
  void Allreduce(std::span<float> data, int lane, bool repeated, Done done) {
    if (lane < 0 || lane >= lanes()) {
      return Refuse(std::move(done),
                    absl::InvalidArgumentError(
                        absl::StrCat("allreduce lane ", lane, " is outside [0, ", lanes(), ")")));
    }
    if (data.size() > static_cast<size_t>(INT_MAX)) {
      return Refuse(std::move(done),
                    absl::InvalidArgumentError(absl::StrCat("allreduce of ", data.size(),
                                                            " floats exceeds Gloo's limit of ",
                                                            INT_MAX, " elements; split it")));
    }
    Issue(CollectiveKind::kAllreduce, lane, data, 0, repeated, std::move(done));
  }

  struct Operation {
    CollectiveEvent event;
    std::span<float> data;
    int root = 0;
    bool repeated = false;  // AllreduceSumRepeated: keep the algorithm for the next call
    Done done;
  };

  // Completes `done` on a communication thread without touching any lane.
  void Refuse(Done done, absl::Status status) {
    auto shared = std::make_shared<Done>(std::move(done));
    auto complete = [shared, status] { (*shared)(status); };
    notifier_->Post({complete, complete});
  }

  void Issue(CollectiveKind kind, int lane_index, std::span<float> data, int root, bool repeated,
             Done done) {
    if (failed_.load()) return Refuse(std::move(done), Failure());
    Lane& lane = *lanes_[lane_index];
    auto op = std::make_shared<Operation>();
    op->event.kind = kind;
    op->event.lane = lane_index;
    op->event.bytes = static_cast<int64_t>(data.size_bytes());
    op->event.algorithm = AlgorithmName(kind, data.size_bytes());
    op->data = data;
    op->root = root;
    op->repeated = repeated;
    op->done = std::move(done);
    std::lock_guard<std::mutex> lock(lane.issue_mutex);
    op->event.sequence = lane.next_sequence++;
    lane.worker->Post({[this, op] { Run(*op); },
                       [op] {
                         op->done(absl::CancelledError(absl::StrCat(
                             CollectiveKindName(op->event.kind), " on lane ", op->event.lane,
                             " did not run: the collectives were shut down first")));
                       }});
  }

  std::string AlgorithmName(CollectiveKind kind, size_t bytes) const {
    switch (kind) {
      case CollectiveKind::kAllreduce:
        if (size_ == 1) return "local";
        if (options_.algorithm == "auto") {
          return static_cast<int64_t>(bytes) >= options_.ring_min_bytes ? kRing : kHalvingDoubling;
        }
        return options_.algorithm;
      case CollectiveKind::kBroadcast:
        return size_ == 1 ? "local" : "one-to-all";
      case CollectiveKind::kBarrier:
        return "";
    }
    return "";
  }

  // On the lane's worker.
  void Run(Operation& op) {
    if (failed_.load()) {
      op.done(Failure());
      return;
    }
    op.event.start = std::chrono::steady_clock::now();
    for (CollectiveObserver* observer : observers_) observer->OnCollectiveStart(op.event);
    absl::Status status;
    try {
      Execute(op);
    } catch (const std::exception& e) {
      status = Fail(op, ClassifyGlooError(e.what(), peers_, options_.timeout, Partners(op)));
    }
    op.event.end = std::chrono::steady_clock::now();
    op.event.status = status;
    for (CollectiveObserver* observer : observers_) observer->OnCollectiveEnd(op.event);
    op.done(std::move(status));
  }

  // Throws Gloo's exceptions.
  void Execute(Operation& op) {
    if (size_ == 1) return;
    Lane& lane = *lanes_[op.event.lane];
    switch (op.event.kind) {
      case CollectiveKind::kAllreduce: {
        if (op.data.empty()) return;
        // Every rank creates its algorithms in the same order on a lane (its queue is FIFO and
        // issue order is the same everywhere), so Gloo's slots agree across ranks, as long as
        // every rank finds the same calls cached: only repeated ones are.
        auto create = [&]() -> std::unique_ptr<gloo::Algorithm> {
          const std::vector<float*> pointers = {op.data.data()};
          const int count = static_cast<int>(op.data.size());
          if (op.event.algorithm == kRing) {
            return std::make_unique<gloo::AllreduceRingChunked<float>>(lane.context, pointers,
                                                                       count);
          }
          return std::make_unique<gloo::AllreduceHalvingDoubling<float>>(lane.context, pointers,
                                                                         count);
        };
        if (!op.repeated) {
          create()->run();
          return;
        }
        std::unique_ptr<gloo::Algorithm>& algorithm =
            lane.allreduces[{op.data.data(), op.data.size()}];
        if (algorithm == nullptr) algorithm = create();
        algorithm->run();
        return;
      }
      case CollectiveKind::kBroadcast: {
        if (op.data.empty()) return;
        gloo::BroadcastOneToAll<float> broadcast(lane.context, {op.data.data()}, op.data.size(),
                                                 op.root);
        broadcast.run();
        return;
      }
      case CollectiveKind::kBarrier: {
        gloo::BarrierAllToOne barrier(lane.context);
        barrier.run();
        return;
      }
    }
  }

  // The ranks an operation exchanges data with, named when Gloo's error names no peer.
  std::vector<int> Partners(const Operation& op) const {
    if (op.event.kind == CollectiveKind::kAllreduce && op.event.algorithm == kRing) {
      const int left = (rank_ + size_ - 1) % size_;
      const int right = (rank_ + 1) % size_;
      return left == right ? std::vector<int>{left} : std::vector<int>{left, right};
    }
    std::vector<int> others;
    for (int r = 0; r < size_; ++r) {
      if (r != rank_) others.push_back(r);
    }
    return others;
  }

  absl::Status Failure() {
    std::lock_guard<std::mutex> lock(failure_mutex_);
    return failure_;
  }

  // Records the first failure (the object is unusable from now on), tells the other ranks why and
  // disconnects from them so that none waits out its timeout. Returns the first failure.
  absl::Status Fail(const Operation& op, GlooFailure failure) {
    if (failed_.load()) return Failure();  // another lane failed first
    // Tell the others at once that this rank is alive and saw the failure: a rank that does not
    // say so within the grace period is the one at fault.
    if (!marked_alive_.exchange(true)) (void)report_store_->Set(AliveKey(rank_), "1");
    const auto grace =
        std::min<std::chrono::milliseconds>(std::chrono::milliseconds(700), options_.timeout / 5);
    FailureReport report{failure.code, failure.what, rank_};
    std::string cause = failure.what;
    // A rank that does not say within the grace period that it saw the failure too is dead,
    // stalled or not taking part: that is the rank at fault.
    std::vector<int> silent = SilentRanks(grace, 0);
    // A live rank whose socket to a dead peer reports nothing notices the failure only at its
    // own timeout: while several ranks are silent, wait up to the timeout for the live ones to
    // speak up, so that only the dead stay named.
    if (silent.size() > 1) silent = SilentRanks(options_.timeout, 1);
    const bool named_is_silent =
        failure.rank && std::find(silent.begin(), silent.end(), *failure.rank) != silent.end();
    std::optional<FailureReport> theirs;
    if (failure.rank && silent.empty()) {
      // Every rank is alive: the named peer gave up first, for a reason of its own, and closed
      // its connections. Its report comes after its own grace period.
      absl::StatusOr<std::string> published =
          report_store_->Get(FailureKey(*failure.rank), 2 * grace);
      if (published.ok()) theirs = DecodeReport(*published);
    }
    if (theirs) {
      report = *theirs;
      cause = absl::StrCat(theirs->cause, " (reported by rank ", theirs->origin, ")");
    } else if (!named_is_silent && !silent.empty()) {
      // Gloo named no peer, or one that is not at fault (the accepting side of a TCP connection
      // even names the peer's ephemeral port, published nowhere): blame the silent ranks.
      const std::string who =
          absl::StrCat(silent.size() == 1 ? "rank " : "ranks ", absl::StrJoin(silent, ", "));
      const size_t gloo_part = failure.what.rfind(" [gloo: ");
      const std::string gloo_said =
          gloo_part == std::string::npos ? "" : failure.what.substr(gloo_part);
      failure.what = failure.code == absl::StatusCode::kDeadlineExceeded
                         ? absl::StrCat(who, " did not respond within ",
                                        DurationText(options_.timeout), gloo_said)
                         : absl::StrCat(who, silent.size() == 1 ? " closed its" : " closed their",
                                        " connection (node died?)", gloo_said);
      report.cause = cause = failure.what;
    }
    absl::Status status(report.code, absl::StrCat(CollectiveKindName(op.event.kind), " on lane ",
                                                  op.event.lane, " failed: ", cause));
    {
      std::lock_guard<std::mutex> lock(failure_mutex_);
      if (failed_.load()) return failure_;
      failure_ = status;
      failed_.store(true);
    }
    // Best effort: the store may be gone too.
    (void)report_store_->Set(FailureKey(rank_), EncodeReport(report));
    for (auto& lane : lanes_) {
      try {
        if (lane->context) lane->context->closeConnections();
      } catch (const std::exception&) {
        // Already broken; closing is only a courtesy to the peers.
      }
    }
    return status;
  }

  // The other ranks that have not said, within `grace`, that they saw the failure too; returns
  // early once no more than `enough` are left.
  std::vector<int> SilentRanks(std::chrono::milliseconds grace, size_t enough) {
    std::vector<int> silent;
    for (int r = 0; r < size_; ++r) {
      if (r != rank_) silent.push_back(r);
    }
    const auto deadline = std::chrono::steady_clock::now() + grace;
    for (;;) {
      std::vector<int> still;
      for (int r : silent) {
        absl::StatusOr<bool> said = report_store_->Check({AliveKey(r)});
        if (!said.ok() || !*said) still.push_back(r);
      }
      silent = std::move(still);
      if (silent.size() <= enough || std::chrono::steady_clock::now() >= deadline) return silent;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  // A rank that disconnects right after its last operation can make a peer that has not yet
  // consumed that operation's final message fail (Gloo reports the closed socket first). A
  // barrier on every lane before disconnecting ensures every rank has finished every operation.
  void SayGoodbye() {
    std::vector<std::future<void>> finished;
    for (auto& lane : lanes_) {
      auto promise = std::make_shared<std::promise<void>>();
      finished.push_back(promise->get_future());
      std::shared_ptr<gloo::rendezvous::Context> shared = lane->context;
      lane->worker->Post({[shared, promise] {
                            try {
                              gloo::BarrierAllToOne barrier(shared);
                              barrier.run();
                            } catch (const std::exception&) {
                              // A peer already left or failed: nothing to protect any more.
                            }
                            promise->set_value();
                          },
                          [promise] { promise->set_value(); }});
    }
    for (auto& f : finished) f.wait();
  }

  const int rank_;
  const int size_;
  const GlooOptions options_;
  std::unique_ptr<Store> report_store_;
  PeerDirectory peers_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  std::vector<CollectiveObserver*> observers_;
  std::mutex failure_mutex_;
  absl::Status failure_;
  std::atomic<bool> failed_{false};
  std::atomic<bool> marked_alive_{false};
  std::unique_ptr<LaneWorker> notifier_;  // completes operations refused at issue
};

absl::Status ValidateOptions(int rank, int size, const GlooOptions& options) {
  if (size < 1 || rank < 0 || rank >= size) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank ", rank, " is outside a job of ", size, " nodes"));
  }
  if (options.lanes < 1 || options.lanes > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("lanes must be in [1, 64], got ", options.lanes));
  }
  if (options.timeout <= std::chrono::milliseconds::zero()) {
    return absl::InvalidArgumentError(
        absl::StrCat("collective timeout must be positive, got ", options.timeout.count(), " ms"));
  }
  if (options.algorithm != "auto" && options.algorithm != kRing &&
      options.algorithm != kHalvingDoubling) {
    return absl::InvalidArgumentError(absl::StrCat("unknown allreduce algorithm '",
                                                   options.algorithm,
                                                   "' (expected auto, ring or halving-doubling)"));
  }
  return absl::OkStatus();
}

// Why connecting a lane failed: names the ranks that never showed up, when some did not.
absl::Status ConnectError(Store& store, int lane, int size, const std::string& gloo_message) {
  std::vector<int> missing;
  for (int r = 0; r < size; ++r) {
    absl::StatusOr<bool> joined = store.Check({JoinedKey(r)});
    if (joined.ok() && !*joined) missing.push_back(r);
  }
  if (!missing.empty()) {
    return absl::DeadlineExceededError(absl::StrCat(
        "connecting lane ", lane, " failed: ", missing.size() == 1 ? "rank " : "ranks ",
        absl::StrJoin(missing, ", "), " never joined rendezvous ", store.Describe(),
        " [gloo: ", StripGlooLocation(gloo_message), "]"));
  }
  return absl::UnavailableError(
      absl::StrCat("connecting lane ", lane, " failed: ", StripGlooLocation(gloo_message)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Collectives>> CreateGlooCollectives(Store& store, int rank, int size,
                                                                   const GlooOptions& options) {
  if (absl::Status valid = ValidateOptions(rank, size, options); !valid.ok()) return valid;
  absl::StatusOr<std::unique_ptr<Store>> report_store = store.Reopen();
  if (!report_store.ok()) return report_store.status();
  if (absl::Status joined = store.Set(JoinedKey(rank), "1"); !joined.ok()) return joined;

  std::vector<std::unique_ptr<Lane>> lanes;
  PeerDirectory peers;
  std::string my_addresses;
  for (int i = 0; i < options.lanes; ++i) {
    auto lane = std::make_unique<Lane>();
    if (size > 1) {
      absl::StatusOr<GlooDevice> device = OpenGlooDevice(options);
      if (!device.ok()) return device.status();
      lane->device = *std::move(device);
      lane->context = std::make_shared<gloo::rendezvous::Context>(rank, size);
      try {
        // Pairs take their timeout from the context when they are created.
        lane->context->setTimeout(options.timeout);
        gloo::rendezvous::PrefixStore lane_store(absl::StrCat("gloo/lane", i), store.gloo());
        lane->context->connectFullMesh(lane_store, lane->device.device);
        for (int r = 0; r < size; ++r) {
          if (r == rank) continue;
          absl::StrAppend(&my_addresses, lane->context->getPair(r)->address().str(), "\n");
        }
      } catch (const std::exception& e) {
        return ConnectError(store, i, size, e.what());
      }
    }
    lanes.push_back(std::move(lane));
  }

  if (size > 1) {
    if (absl::Status s = store.Set(AddressesKey(rank), my_addresses); !s.ok()) return s;
    for (int r = 0; r < size; ++r) {
      if (r == rank) continue;
      absl::StatusOr<std::string> theirs = store.Get(AddressesKey(r));
      if (!theirs.ok()) return theirs.status();
      for (absl::string_view address : absl::StrSplit(*theirs, '\n', absl::SkipEmpty())) {
        peers.Add(std::string(address), r);
      }
    }
  }
  return std::unique_ptr<Collectives>(new GlooCollectives(
      rank, size, options, *std::move(report_store), std::move(peers), std::move(lanes)));
}

}  // namespace gradflow::runtime::dist
