// Collectives over NCCL for device memory (CUDA builds only): one communicator per lane, each with
// its own high-priority communication stream, so that several gradient buckets are reduced at
// once while the compute stream goes on with backward.
//
// Setup: rank 0 creates one ncclUniqueId per lane and publishes it in the rendezvous store under
// "<key_prefix>/lane<L>/unique_id"; every rank reads them and joins with ncclCommInitRankConfig in
// non-blocking mode, so that a rank that never shows up is a DeadlineExceeded within the timeout,
// not a hang. Several local GPUs of one process: CreateNcclCollectivesForDevices initializes their
// communicators inside one ncclGroupStart/End, as NCCL requires when one thread drives them.
//
// Operations: `data` spans are device memory of this object's device. An allreduce is enqueued on
// the lane's stream, after `ready` (an event the compute stream recorded when the bucket's last
// gradient was written) when given, so the host never waits for backward to finish. Completion is
// seen by a monitor thread that polls a CUDA event recorded after the NCCL call (host functions
// cannot be used: a stream whose communicator is aborted never reaches them); `done` runs on that
// thread. RecordCompletion lets a compute stream wait for a lane on the device instead (the
// bucket's SGD update).
//
// Failure: an operation still running after the timeout, or an asynchronous NCCL error (a peer
// died, the network broke), aborts every communicator (ncclCommAbort) and fails that operation
// and every later one. NCCL cannot tell which peer stalled, so the message says what was running
// and for how long ("allreduce #12 on lane 1 (25 MB) made no progress within 5 s: a peer rank
// stalled or died; NCCL communicators aborted").
#pragma once

#include <cuda_runtime_api.h>

#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/dist/collectives.h"
#include "runtime/dist/store.h"
#include "scheduler/stream.h"

namespace gradflow::runtime::dist {

// Lanes for gradient buckets over NCCL: one communicator per GPU. NCCL's guide warns that
// operations on several communicators of one device can deadlock when their kernels are not
// scheduled in the same order on every GPU ("Using multiple NCCL communicators concurrently").
// One communication stream already runs beside the compute stream, which is the overlap that
// matters; PyTorch DDP and Horovod also use one.
inline constexpr int kGradientNcclLanes = 1;

struct NcclOptions {
  int lanes = 2;
  std::chrono::milliseconds timeout{300000};
  // Store keys of this job's unique ids; one NCCL collectives object per prefix and store job.
  std::string key_prefix = "nccl";
};

class NcclCollectives : public Collectives {
 public:
  // AllreduceSum of the interface: `data` must already hold its final values when the call is
  // made (e.g. after a synchronize). The overlapped form is AllreduceSumAfter.
  void AllreduceSum(std::span<float> data, int lane, Done done) override {
    AllreduceSumAfter(data, lane, nullptr, std::move(done));
  }
  // Reduces once `ready` (a CUDA event of any device, see ops/cuda/cuda_stream.h) has been
  // reached on the device; null means "now".
  virtual void AllreduceSumAfter(std::span<float> data, int lane, sched::Event* ready,
                                 Done done) = 0;
  // Records into `event` (a CUDA event) the end of everything issued so far on `lane`.
  virtual absl::Status RecordCompletion(int lane, sched::Event& event) = 0;
  virtual int device() const = 0;
  virtual cudaStream_t lane_stream(int lane) const = 0;
};

// One rank on `device` in a world of `size` ranks. FailedPrecondition without a GPU.
absl::StatusOr<std::unique_ptr<NcclCollectives>> CreateNcclCollectives(Store& store, int rank,
                                                                       int size, int device,
                                                                       const NcclOptions& options);

// Ranks first_rank .. first_rank + devices.size() - 1, one per local device, created together.
absl::StatusOr<std::vector<std::unique_ptr<NcclCollectives>>> CreateNcclCollectivesForDevices(
    Store& store, int first_rank, int size, std::span<const int> devices,
    const NcclOptions& options);

}  // namespace gradflow::runtime::dist
