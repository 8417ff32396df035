// The device memory a plan needs, allocated once: one flat, aligned allocation per BufferKind.
// CPU (host memory) for now; a CUDA build allocates the same layout on the device.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "scheduler/plan.h"

namespace gradflow::sched {

inline constexpr size_t kBufferAlignment = 64;  // a cache line, and what AVX-512 loads like

struct BuffersOptions {
  // Debugging aid: fill the arena with NaN (every byte 0xFF: NaN for every float type, -1 for
  // integers) when allocated, so that a kernel reading bytes nobody wrote shows up in results.
  bool poison_arena = false;
};

class Buffers {
 public:
  // Parameters, gradients, state and inputs start zeroed (alignment padding included, so that
  // reductions over a whole bucket see zeros there). ResourceExhausted names the buffer.
  static absl::StatusOr<std::unique_ptr<Buffers>> Allocate(const BufferSizes& sizes,
                                                           BuffersOptions options = {});
  ~Buffers();
  Buffers(const Buffers&) = delete;
  Buffers& operator=(const Buffers&) = delete;

  // Null for BufferKind::kNone. Every non-null base is kBufferAlignment-aligned.
  std::byte* base(BufferKind kind) const { return bases_[static_cast<size_t>(kind)]; }
  int64_t size(BufferKind kind) const { return sizes_.of(kind); }
  // Where a placed tensor's bytes are; null for kNone.
  void* data(const Placement& placement) const;

  // Fills the arena with the NaN pattern again, e.g. before every iteration of a debug run.
  void PoisonArena();

 private:
  explicit Buffers(const BufferSizes& sizes) : sizes_(sizes) {}

  BufferSizes sizes_;
  std::array<std::byte*, kNumBufferKinds> bases_ = {};
};

}  // namespace gradflow::sched
