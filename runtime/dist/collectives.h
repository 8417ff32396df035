// Collectives between the replicas of one training job, behind one asynchronous interface so the
// trainer never knows which transport runs them (Gloo over TCP or ibverbs for host memory; NCCL
// for device memory later).
//
// Ordering contract (what keeps a job from hanging): every rank issues the same calls, with the
// same sizes, in the same order on each lane. A lane is an independent channel with its own
// connections and one operation in flight at a time; several lanes let several gradient buckets
// be reduced at once (the paper ran its buckets on separate Gloo contexts).
//
// Every call returns at once; `done` runs exactly once, on a communication thread, when the
// operation has finished on this rank or failed. A failure is final for the whole object: the
// operation's status and every later call's status say why, naming the peer rank at fault where
// it can be known (kUnavailable: a peer closed its connections or died; kDeadlineExceeded: no
// progress within the timeout).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "absl/status/status.h"

namespace gradflow::runtime::dist {

using Done = std::function<void(absl::Status)>;

enum class CollectiveKind : int8_t { kAllreduce, kBroadcast, kBarrier };
const char* CollectiveKindName(CollectiveKind kind);

// What ran, for observers (tracing, the trainer's communication counters).
struct CollectiveEvent {
  CollectiveKind kind = CollectiveKind::kAllreduce;
  int lane = 0;
  int64_t bytes = 0;
  std::string algorithm;  // e.g. "ring", "halving-doubling"; empty for barriers
  int64_t sequence = 0;   // per lane, from 0: the n-th operation issued on the lane
  std::chrono::steady_clock::time_point start;  // when the lane began it (not when it was issued)
  std::chrono::steady_clock::time_point end;    // OnCollectiveEnd only
  absl::Status status;                          // OnCollectiveEnd only
  // start and end are the device's (a GPU lane's kernels), not a communication thread's.
  bool device_timed = false;
};

// Called from communication threads; must be thread-safe and quick.
class CollectiveObserver {
 public:
  virtual ~CollectiveObserver() = default;
  virtual void OnCollectiveStart(const CollectiveEvent& /*event*/) {}
  virtual void OnCollectiveEnd(const CollectiveEvent& /*event*/) {}
};

class Collectives {
 public:
  virtual ~Collectives() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int lanes() const = 0;

  // Only before the first operation. The observer must outlive this object.
  virtual void AddObserver(CollectiveObserver* observer) = 0;

  // Sums `data` elementwise over all ranks, in place; every rank ends with bitwise-identical
  // values. `data` must stay valid and untouched until `done` runs. lane in [0, lanes()).
  virtual void AllreduceSum(std::span<float> data, int lane, Done done) = 0;
  // The same for memory reduced again and again at the same address (a gradient bucket):
  // implementations may keep what the first call set up (Gloo's algorithm and its buffers), so
  // fixed buckets cost nothing to set up after the first iteration. Every rank must use it for
  // the same calls. One-off or short-lived buffers go through AllreduceSum: a freed buffer's
  // address reused on one rank and not on another would make the ranks disagree about what is
  // set up already.
  virtual void AllreduceSumRepeated(std::span<float> data, int lane, Done done) {
    AllreduceSum(data, lane, std::move(done));
  }
  // Copies `root`'s `data` to every rank (lane 0).
  virtual void Broadcast(std::span<float> data, int root, Done done) = 0;
  // Returns once every rank has entered it (lane 0).
  virtual void Barrier(Done done) = 0;
};

// Blocking forms for setup and teardown: issue, then wait for `done` (the object's own timeout
// bounds the wait).
absl::Status AllreduceSumSync(Collectives& collectives, std::span<float> data, int lane = 0);
absl::Status AllreduceSumRepeatedSync(Collectives& collectives, std::span<float> data,
                                      int lane = 0);
absl::Status BroadcastSync(Collectives& collectives, std::span<float> data, int root);
absl::Status BarrierSync(Collectives& collectives);

// The world of one rank: every operation completes at once, inline, with the data unchanged.
std::unique_ptr<Collectives> CreateSoloCollectives(int lanes = 1);

}  // namespace gradflow::runtime::dist
