#include "runtime/dist/nccl_collectives.h"

#include <nccl.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_stream.h"
#include "ops/cuda/device.h"
#include "ops/cuda/device_clock.h"

namespace gradflow::runtime::dist {
namespace {

using Clock = std::chrono::steady_clock;
using ops::cuda::CudaStatus;

absl::Status NcclStatus(ncclResult_t result, const std::string& what) {
  if (result == ncclSuccess || result == ncclInProgress) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, " failed: ", ncclGetErrorString(result)));
}

// Non-blocking communicators finish some calls in the background: wait until `comm` is idle, or
// the deadline. A reported error ends the wait too.
// `abandon` (may be null): stop waiting once another operation has failed, since the
// communicators are about to be aborted and the abort waits for this caller's issue lock.
absl::Status WaitIdle(ncclComm_t comm, Clock::time_point deadline, const std::string& what,
                      const std::atomic<bool>* abandon = nullptr) {
  while (true) {
    if (abandon != nullptr && abandon->load()) {
      return absl::AbortedError(absl::StrCat(what, ": abandoned, another NCCL operation failed"));
    }
    ncclResult_t state = ncclSuccess;
    ncclResult_t query = ncclCommGetAsyncError(comm, &state);
    if (query != ncclSuccess) return NcclStatus(query, "ncclCommGetAsyncError");
    if (state != ncclInProgress) return NcclStatus(state, what);
    if (Clock::now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(what, " did not complete in time"));
    }
    std::this_thread::yield();
  }
}

std::string LaneKey(const NcclOptions& options, int lane) {
  return absl::StrCat(options.key_prefix, "/lane", lane, "/unique_id");
}

std::string Megabytes(int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3g MB", static_cast<double>(bytes) / 1e6);
  return text;
}

class NcclCollectivesImpl final : public NcclCollectives {
 public:
  NcclCollectivesImpl(int rank, int size, int device, NcclOptions options,
                      std::vector<ncclComm_t> comms, std::vector<cudaStream_t> streams,
                      float* barrier_word)
      : rank_(rank),
        size_(size),
        device_(device),
        options_(std::move(options)),
        comms_(std::move(comms)),
        streams_(std::move(streams)),
        barrier_word_(barrier_word),
        lanes_(comms_.size()),
        monitor_([this] { MonitorLoop(); }) {}

  ~NcclCollectivesImpl() override {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // Every issued operation completes (or fails on the timeout) before the monitor stops.
      drained_.wait(lock, [this] { return pending_ == 0; });
      stopping_ = true;
    }
    work_.notify_all();
    monitor_.join();
    cudaSetDevice(device_);
    // An aborted communicator is freed already (AbortCommunicators nulls it).
    for (ncclComm_t comm : comms_) {
      if (comm != nullptr) ncclCommDestroy(comm);
    }
    for (Lane& lane : lanes_) {
      for (cudaEvent_t event : lane.spare_events) cudaEventDestroy(event);
    }
    for (cudaStream_t stream : streams_) cudaStreamDestroy(stream);
    cudaFree(barrier_word_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int lanes() const override { return static_cast<int>(comms_.size()); }
  int device() const override { return device_; }
  cudaStream_t lane_stream(int lane) const override { return streams_.at(lane); }
  void AddObserver(CollectiveObserver* observer) override { observers_.push_back(observer); }

  void AllreduceSumAfter(std::span<float> data, int lane, sched::Event* ready, Done done) override {
    Issue(CollectiveKind::kAllreduce, lane, static_cast<int64_t>(data.size_bytes()), ready,
          std::move(done), [&](ncclComm_t comm, cudaStream_t stream) {
            return ncclAllReduce(data.data(), data.data(), data.size(), ncclFloat, ncclSum, comm,
                                 stream);
          });
  }

  void Broadcast(std::span<float> data, int root, Done done) override {
    if (root < 0 || root >= size_) {
      Complete(std::move(done), absl::InvalidArgumentError(absl::StrCat(
                                    "broadcast root ", root, " is not a rank of ", size_)));
      return;
    }
    Issue(CollectiveKind::kBroadcast, 0, static_cast<int64_t>(data.size_bytes()), nullptr,
          std::move(done), [&](ncclComm_t comm, cudaStream_t stream) {
            return ncclBroadcast(data.data(), data.data(), data.size(), ncclFloat, root, comm,
                                 stream);
          });
  }

  void Barrier(Done done) override {
    Issue(CollectiveKind::kBarrier, 0, 0, nullptr, std::move(done),
          [&](ncclComm_t comm, cudaStream_t stream) {
            return ncclAllReduce(barrier_word_, barrier_word_, 1, ncclFloat, ncclSum, comm, stream);
          });
  }

  absl::Status RecordCompletion(int lane, sched::Event& event) override {
    auto* cuda_event = dynamic_cast<ops::cuda::CudaEvent*>(&event);
    if (cuda_event == nullptr) {
      return absl::InvalidArgumentError("NCCL lanes record CUDA events only");
    }
    if (lane < 0 || lane >= lanes()) {
      return absl::InvalidArgumentError(
          absl::StrCat("lane ", lane, " is not in [0, ", lanes(), ")"));
    }
    std::lock_guard<std::mutex> issue_lock(issue_mutex_);
    GF_CUDA_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(device_), "cudaSetDevice"));
    return CudaStatus(cudaEventRecord(cuda_event->handle(), streams_[lane]), "cudaEventRecord");
  }

 private:
  struct Pending {
    cudaEvent_t event = nullptr;  // null: complete already, with `status`
    // While a profiler times the device: when the lane's stream began and ended the call.
    std::unique_ptr<sched::DeviceTimestamp> device_start;
    std::unique_ptr<sched::DeviceTimestamp> device_end;
    absl::Status status;
    Done done;
    CollectiveEvent info;
    Clock::time_point deadline;
  };
  struct Lane {
    std::deque<Pending> queue;
    std::vector<cudaEvent_t> spare_events;
    int64_t sequence = 0;
  };

  // Hands a result to the monitor thread, so that `done` runs on a communication thread.
  void Complete(Done done, absl::Status status) {
    Pending p;
    p.status = std::move(status);
    p.done = std::move(done);
    std::lock_guard<std::mutex> lock(mutex_);
    immediate_.push_back(std::move(p));
    ++pending_;
    work_.notify_all();
  }

  template <typename Call>
  void Issue(CollectiveKind kind, int lane, int64_t bytes, sched::Event* ready, Done done,
             Call call) {
    if (lane < 0 || lane >= lanes()) {
      Complete(std::move(done),
               absl::InvalidArgumentError(absl::StrCat(CollectiveKindName(kind), " on lane ", lane,
                                                       ": lanes are 0..", lanes() - 1)));
      return;
    }
    Lane& l = lanes_[lane];
    bool communicators_broken = false;
    {
      // NCCL: "not safe to issue NCCL operations in parallel to independent communicators
      // located on the same device", so one lock serves every lane; it is taken before mutex_.
      std::lock_guard<std::mutex> issue_lock(issue_mutex_);
      {
        // Checked under the issue lock: an abort takes it too, so no call reaches a freed
        // communicator.
        std::lock_guard<std::mutex> lock(mutex_);
        if (!failure_.ok()) {
          Pending p;
          p.status = failure_;
          p.done = std::move(done);
          immediate_.push_back(std::move(p));
          ++pending_;
          work_.notify_all();
          return;
        }
      }
      communicators_broken = IssueLocked(kind, lane, bytes, ready, std::move(done), call, l);
    }
    if (communicators_broken) AbortCommunicators();
  }

  // With issue_mutex_ held. True when the NCCL call failed or never finished enqueueing: the
  // communicator is then in an unknown state, and everything fails and is aborted.
  template <typename Call>
  bool IssueLocked(CollectiveKind kind, int lane, int64_t bytes, sched::Event* ready, Done done,
                   Call& call, Lane& l) {
    Pending p;
    p.done = std::move(done);
    p.info.kind = kind;
    p.info.lane = lane;
    p.info.bytes = bytes;
    p.info.algorithm = kind == CollectiveKind::kBarrier ? "" : "nccl";
    p.info.start = Clock::now();
    p.deadline = p.info.start + options_.timeout;
    bool called_nccl = false;
    absl::Status status = Launch(lane, ready, call, p, called_nccl);
    std::lock_guard<std::mutex> lock(mutex_);
    p.info.sequence = l.sequence++;
    if (!failure_.ok()) {
      // Failed while this call was launching: the monitor no longer polls the lanes, so the
      // operation completes now with the failure, and the communicators are aborted.
      p.status = failure_;
      if (p.event != nullptr) l.spare_events.push_back(p.event);
      p.event = nullptr;
      for (CollectiveObserver* observer : observers_) observer->OnCollectiveStart(p.info);
      immediate_.push_back(std::move(p));
      ++pending_;
      work_.notify_all();
      return true;
    }
    if (!status.ok()) {
      p.status = absl::InternalError(
          absl::StrCat(CollectiveKindName(kind), " on lane ", lane, ": ", status.message()));
      if (p.event != nullptr) l.spare_events.push_back(p.event);
      p.event = nullptr;
    }
    for (CollectiveObserver* observer : observers_) observer->OnCollectiveStart(p.info);
    l.queue.push_back(std::move(p));
    ++pending_;
    if (!status.ok() && called_nccl) {
      std::vector<Pending> finished;
      FailLocked(absl::InternalError(absl::StrCat(CollectiveKindName(kind), " on lane ", lane,
                                                  " failed to enqueue: ", status.message(),
                                                  "; NCCL communicators aborted")),
                 finished);
      pending_ -= finished.size();
      for (Pending& f : finished) {
        immediate_.push_back(std::move(f));
        ++pending_;
      }
    }
    work_.notify_all();
    return !status.ok() && called_nccl;
  }

  template <typename Call>
  absl::Status Launch(int lane, sched::Event* ready, Call& call, Pending& p, bool& called_nccl) {
    GF_CUDA_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(device_), "cudaSetDevice"));
    if (ready != nullptr) {
      auto* cuda_event = dynamic_cast<ops::cuda::CudaEvent*>(ready);
      if (cuda_event == nullptr) {
        return absl::InvalidArgumentError("the ready event of an NCCL operation must be CUDA's");
      }
      GF_CUDA_RETURN_IF_ERROR(CudaStatus(
          cudaStreamWaitEvent(streams_[lane], cuda_event->handle(), 0), "cudaStreamWaitEvent"));
    }
    std::shared_ptr<const ops::cuda::DeviceClock> clock = ops::cuda::CurrentDeviceClock(device_);
    p.device_start = timing_events_->Mark(clock, streams_[lane]);
    called_nccl = true;
    GF_CUDA_RETURN_IF_ERROR(NcclStatus(call(comms_[lane], streams_[lane]), "NCCL call"));
    // A non-blocking communicator may enqueue the kernel only once it is idle again (the first
    // operation sets up connections): the end mark goes after that.
    GF_CUDA_RETURN_IF_ERROR(
        WaitIdle(comms_[lane], p.deadline, "enqueueing the NCCL call", &failed_));
    p.device_end = timing_events_->Mark(std::move(clock), streams_[lane]);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      Lane& l = lanes_[lane];
      if (!l.spare_events.empty()) {
        p.event = l.spare_events.back();
        l.spare_events.pop_back();
      }
    }
    if (p.event == nullptr) {
      GF_CUDA_RETURN_IF_ERROR(CudaStatus(cudaEventCreateWithFlags(&p.event, cudaEventDisableTiming),
                                         "cudaEventCreate"));
    }
    return CudaStatus(cudaEventRecord(p.event, streams_[lane]), "cudaEventRecord");
  }

  // Fails everything: completes every pending operation with `status`, and every later one.
  // Called with mutex_ held; the caller then calls AbortCommunicators without it.
  void FailLocked(absl::Status status, std::vector<Pending>& finished) {
    if (failure_.ok()) failure_ = std::move(status);
    failed_.store(true);
    for (Lane& lane : lanes_) {
      while (!lane.queue.empty()) {
        Pending p = std::move(lane.queue.front());
        lane.queue.pop_front();
        p.status = failure_;
        if (p.event != nullptr) lane.spare_events.push_back(p.event);
        p.event = nullptr;
        finished.push_back(std::move(p));
      }
    }
  }

  // Aborts (and frees) every communicator once something has failed, which unblocks their
  // kernels. Takes the issue lock first, as Issue does, so no thread is inside an NCCL call on a
  // communicator being freed; a call stuck enqueueing holds it at most until its deadline.
  void AbortCommunicators() {
    std::lock_guard<std::mutex> issue_lock(issue_mutex_);
    std::lock_guard<std::mutex> lock(mutex_);
    if (failure_.ok() || aborted_) return;
    cudaSetDevice(device_);
    for (ncclComm_t& comm : comms_) {
      if (comm != nullptr) ncclCommAbort(comm);
      comm = nullptr;
    }
    aborted_ = true;
  }

  void MonitorLoop() {
    cudaSetDevice(device_);
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      if (pending_ == 0) {
        if (stopping_) return;
        work_.wait(lock, [this] { return stopping_ || pending_ > 0; });
        continue;
      }
      std::vector<Pending> finished;
      while (!immediate_.empty()) {
        finished.push_back(std::move(immediate_.front()));
        immediate_.pop_front();
      }
      const Clock::time_point now = Clock::now();
      for (size_t index = 0; index < lanes_.size() && failure_.ok(); ++index) {
        Lane& lane = lanes_[index];
        while (!lane.queue.empty()) {
          Pending& p = lane.queue.front();
          if (p.event != nullptr) {
            const cudaError_t query = cudaEventQuery(p.event);
            if (query == cudaErrorNotReady) {
              if (now > p.deadline) {
                FailLocked(absl::DeadlineExceededError(absl::StrCat(
                               CollectiveKindName(p.info.kind), " #", p.info.sequence, " on lane ",
                               index, " (", Megabytes(p.info.bytes), ") made no progress within ",
                               DurationText(options_.timeout),
                               ": a peer rank stalled or died; NCCL communicators aborted")),
                           finished);
              }
              break;
            }
            p.status = CudaStatus(query, "an NCCL operation");
            lane.spare_events.push_back(p.event);
            p.event = nullptr;
          }
          finished.push_back(std::move(p));
          lane.queue.pop_front();
        }
      }
      if (failure_.ok()) {
        for (size_t index = 0; index < comms_.size(); ++index) {
          ncclResult_t state = ncclSuccess;
          if (ncclCommGetAsyncError(comms_[index], &state) == ncclSuccess && state != ncclSuccess &&
              state != ncclInProgress) {
            FailLocked(absl::UnavailableError(absl::StrCat(
                           "NCCL reported '", ncclGetErrorString(state), "' on lane ", index,
                           " (a peer rank died or the network failed); communicators aborted")),
                       finished);
            break;
          }
        }
      }
      pending_ -= finished.size();
      const bool failed = !failure_.ok();
      lock.unlock();
      // Before the callbacks: a caller told of the failure may synchronize a stream that waits
      // on a stuck NCCL kernel, which only the abort releases.
      if (failed) AbortCommunicators();
      for (Pending& p : finished) {
        p.info.end = Clock::now();
        if (p.status.ok() && p.device_start != nullptr && p.device_end != nullptr) {
          absl::StatusOr<Clock::time_point> start = p.device_start->Time();
          absl::StatusOr<Clock::time_point> end = p.device_end->Time();
          if (start.ok() && end.ok()) {
            p.info.start = *start;
            p.info.end = *end;
            p.info.device_timed = true;
          }
        }
        p.device_start.reset();
        p.device_end.reset();
        p.info.status = p.status;
        if (p.info.start != Clock::time_point()) {
          for (CollectiveObserver* observer : observers_) observer->OnCollectiveEnd(p.info);
        }
        if (p.done) p.done(p.status);
      }
      lock.lock();
      if (pending_ == 0) {
        drained_.notify_all();
      } else if (finished.empty()) {
        // Polling: collectives last from microseconds to tens of milliseconds.
        work_.wait_for(lock, std::chrono::microseconds(50));
      }
    }
  }

  const int rank_, size_, device_;
  const NcclOptions options_;
  std::vector<ncclComm_t> comms_;
  std::vector<cudaStream_t> streams_;
  float* barrier_word_;
  std::vector<CollectiveObserver*> observers_;
  const std::shared_ptr<ops::cuda::TimingEventPool> timing_events_ =
      std::make_shared<ops::cuda::TimingEventPool>(device_);

  std::mutex issue_mutex_;  // NCCL calls on any lane; taken before mutex_
  std::atomic<bool> failed_{false};  // failure_ is set: read without mutex_ by WaitIdle
  std::mutex mutex_;
  std::condition_variable work_;
  std::condition_variable drained_;
  std::vector<Lane> lanes_;
  std::deque<Pending> immediate_;
  size_t pending_ = 0;
  bool stopping_ = false;
  bool aborted_ = false;
  absl::Status failure_;
  std::thread monitor_;
};

absl::StatusOr<ncclUniqueId> ReadUniqueId(Store& store, const std::string& key) {
  absl::StatusOr<std::string> hex = store.Get(key);
  if (!hex.ok()) return hex.status();
  const std::string bytes = absl::HexStringToBytes(*hex);
  ncclUniqueId id;
  if (bytes.size() != sizeof(id.internal)) {
    return absl::DataLossError(absl::StrCat("store key '", key, "' in ", store.Describe(),
                                            " holds ", bytes.size(), " bytes, not an NCCL id of ",
                                            sizeof(id.internal)));
  }
  std::copy(bytes.begin(), bytes.end(), id.internal);
  return id;
}

}  // namespace

absl::StatusOr<std::vector<std::unique_ptr<NcclCollectives>>> CreateNcclCollectivesForDevices(
    Store& store, int first_rank, int size, std::span<const int> devices,
    const NcclOptions& options) {
  const int local = static_cast<int>(devices.size());
  if (size < 1 || first_rank < 0 || local < 1 || first_rank + local > size || options.lanes < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("NCCL collectives need 1 <= lanes (got ", options.lanes, ") and local ranks ",
                     first_rank, "..", first_rank + local - 1, " inside a world of ", size));
  }
  GF_CUDA_RETURN_IF_ERROR(ops::cuda::RequireCudaDevice());
  absl::StatusOr<int> count = ops::cuda::CudaDeviceCount();
  if (!count.ok()) return count.status();
  for (int device : devices) {
    if (device < 0 || device >= *count) {
      return absl::InvalidArgumentError(
          absl::StrCat("CUDA device ", device, " does not exist (this machine has ", *count, ")"));
    }
  }
  const int lanes = options.lanes;
  std::vector<ncclUniqueId> ids(static_cast<size_t>(lanes));
  for (int lane = 0; lane < lanes; ++lane) {
    const std::string key = LaneKey(options, lane);
    if (first_rank == 0) {
      ncclUniqueId id;
      GF_CUDA_RETURN_IF_ERROR(NcclStatus(ncclGetUniqueId(&id), "ncclGetUniqueId"));
      GF_CUDA_RETURN_IF_ERROR(store.Set(
          key, absl::BytesToHexString(absl::string_view(id.internal, sizeof(id.internal)))));
    }
    absl::StatusOr<ncclUniqueId> id = ReadUniqueId(store, key);
    if (!id.ok()) return id.status();
    ids[static_cast<size_t>(lane)] = *id;
  }

  // Per local device: lane streams (the most urgent priority) and the barrier's word.
  std::vector<std::vector<cudaStream_t>> streams(devices.size());
  std::vector<float*> barrier_words(devices.size(), nullptr);
  std::vector<std::vector<ncclComm_t>> comms(devices.size(),
                                             std::vector<ncclComm_t>(lanes, nullptr));
  auto cleanup = [&] {
    for (size_t i = 0; i < devices.size(); ++i) {
      cudaSetDevice(devices[i]);
      for (ncclComm_t comm : comms[i]) {
        if (comm != nullptr) ncclCommAbort(comm);
      }
      for (cudaStream_t s : streams[i]) cudaStreamDestroy(s);
      if (barrier_words[i] != nullptr) cudaFree(barrier_words[i]);
    }
  };
  for (size_t i = 0; i < devices.size(); ++i) {
    absl::Status s = CudaStatus(cudaSetDevice(devices[i]), "cudaSetDevice");
    int least = 0, greatest = 0;
    if (s.ok())
      s = CudaStatus(cudaDeviceGetStreamPriorityRange(&least, &greatest),
                     "cudaDeviceGetStreamPriorityRange");
    for (int lane = 0; lane < lanes && s.ok(); ++lane) {
      cudaStream_t stream = nullptr;
      s = CudaStatus(cudaStreamCreateWithPriority(&stream, cudaStreamNonBlocking, greatest),
                     "cudaStreamCreateWithPriority");
      if (s.ok()) streams[i].push_back(stream);
    }
    void* word = nullptr;
    if (s.ok()) s = CudaStatus(cudaMalloc(&word, sizeof(float)), "cudaMalloc (barrier)");
    barrier_words[i] = static_cast<float*>(word);
    if (!s.ok()) {
      cleanup();
      return s;
    }
  }

  const Clock::time_point deadline = Clock::now() + options.timeout;
  for (int lane = 0; lane < lanes; ++lane) {
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;  // a missing peer becomes a timeout, not a hang
    absl::Status s = NcclStatus(ncclGroupStart(), "ncclGroupStart");
    for (size_t i = 0; i < devices.size() && s.ok(); ++i) {
      s = CudaStatus(cudaSetDevice(devices[i]), "cudaSetDevice");
      if (s.ok()) {
        s = NcclStatus(ncclCommInitRankConfig(&comms[i][lane], size, ids[lane],
                                              first_rank + static_cast<int>(i), &config),
                       "ncclCommInitRankConfig");
      }
    }
    absl::Status end = NcclStatus(ncclGroupEnd(), "ncclGroupEnd");
    if (s.ok()) s = end;
    for (size_t i = 0; i < devices.size() && s.ok(); ++i) {
      s = WaitIdle(comms[i][lane], deadline,
                   absl::StrCat("joining the NCCL communicator of lane ", lane, " as rank ",
                                first_rank + static_cast<int>(i), " of ", size));
    }
    if (!s.ok()) {
      cleanup();
      if (absl::IsDeadlineExceeded(s)) {
        return absl::DeadlineExceededError(absl::StrCat(
            s.message(), " within ", DurationText(options.timeout),
            ": not every rank joined (a peer did not start, or runs another job's store)"));
      }
      return s;
    }
  }

  std::vector<std::unique_ptr<NcclCollectives>> result;
  for (size_t i = 0; i < devices.size(); ++i) {
    result.push_back(std::make_unique<NcclCollectivesImpl>(
        first_rank + static_cast<int>(i), size, devices[i], options, std::move(comms[i]),
        std::move(streams[i]), barrier_words[i]));
  }
  return result;
}

absl::StatusOr<std::unique_ptr<NcclCollectives>> CreateNcclCollectives(Store& store, int rank,
                                                                       int size, int device,
                                                                       const NcclOptions& options) {
  const int devices[] = {device};
  absl::StatusOr<std::vector<std::unique_ptr<NcclCollectives>>> created =
      CreateNcclCollectivesForDevices(store, rank, size, devices, options);
  if (!created.ok()) return created.status();
  return std::move(created->front());
}

}  // namespace gradflow::runtime::dist
