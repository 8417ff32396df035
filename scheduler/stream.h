// Device streams and events: the one interface through which the executor drives a device.
// The CPU implements it now (scheduler/cpu_stream.h); CUDA streams and events implement it later
// with the same meaning, so the executor never needs to know which device runs a step.
//
// The executor only ever enqueues: it issues work on a stream, orders streams against each other
// with events, and learns about completion through host callbacks. The host blocks on a device
// only where it needs a value (Event::HostWait, Stream::Synchronize), never inside an iteration.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace gradflow::sched {

using Work = absl::AnyInvocable<void() &&>;

// A point in a stream's sequence of work. Record it on a stream, then wait for it from the host
// or from another stream. Recording again moves the point; waits always refer to the latest
// Record made before the wait was issued (CUDA event semantics). An event never recorded counts
// as complete.
class Event {
 public:
  virtual ~Event() = default;
  // Blocks the calling thread until the recorded point has been reached.
  virtual absl::Status HostWait() = 0;
  // Whether the recorded point has been reached, without blocking.
  virtual bool Done() = 0;
};

// A time taken by a device at a point of a stream's work (profiling). On a GPU the host only
// issues work, so the host's clock says when a kernel was launched, not when it ran.
class DeviceTimestamp {
 public:
  virtual ~DeviceTimestamp() = default;
  // The device's time of the point, on the host's steady clock. Valid once the stream has
  // passed the point (e.g. after Synchronize or a later callback); FailedPrecondition before.
  virtual absl::StatusOr<std::chrono::steady_clock::time_point> Time() = 0;
};

// An in-order queue of work on one device. Thread-safe: any thread may enqueue, but the order
// between two threads' items is the order in which their calls happened.
class Stream {
 public:
  virtual ~Stream() = default;

  // Issues `work`; it takes effect after everything enqueued earlier and before anything
  // enqueued later. On the CPU `work` is the computation itself and runs on the stream's thread;
  // on a GPU it is a launch, and its effect on the device completes after it returns.
  virtual void Enqueue(Work work) = 0;
  // Runs `callback` on a host thread once everything enqueued earlier has completed on the
  // device. Callbacks must be short and must not call this stream's blocking functions (CUDA
  // host functions may not call CUDA at all): use them to hand work to other threads.
  virtual void EnqueueHostCallback(Work callback) = 0;

  // A new event that this stream (and every stream of the same device) can record and wait on.
  virtual std::unique_ptr<Event> CreateEvent() = 0;
  // Places `event` after everything enqueued so far. InvalidArgument for another device's event.
  virtual absl::Status Record(Event& event) = 0;
  // Work enqueued after this call starts only once `event`'s recorded point has been reached.
  // The host does not block.
  virtual absl::Status Wait(Event& event) = 0;

  // Blocks the calling thread until everything enqueued so far has completed.
  virtual absl::Status Synchronize() = 0;
  // A failure of work that already ran asynchronously (a faulted GPU kernel), without blocking;
  // OK while none is known. Streams whose work runs when issued report failures from it directly.
  virtual absl::Status AsyncError() { return absl::OkStatus(); }

  // Device timing, for profilers. StartTiming ties the device's clock to the host's steady clock
  // (it may wait for the stream to drain: call it only between iterations); MarkTime, called from
  // inside a work item running on this stream, takes a timestamp at that point of the stream's
  // order. Streams whose work runs on the host when issued (the CPU's) time on the host clock.
  virtual absl::Status StartTiming() { return absl::OkStatus(); }
  virtual std::unique_ptr<DeviceTimestamp> MarkTime() = 0;
};

}  // namespace gradflow::sched
