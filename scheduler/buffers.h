// The device memory a plan needs, allocated once: one flat, aligned allocation per BufferKind.
// Host memory by default; a GPU replica passes its device's memory (BufferMemory) and gets the
// same layout there.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "scheduler/plan.h"

namespace gradflow::sched {

inline constexpr size_t kBufferAlignment = 64;  // a cache line, and what AVX-512 loads like

// Where a Buffers object's memory comes from and how it is filled. Implementations must outlive
// the Buffers they serve.
class BufferMemory {
 public:
  virtual ~BufferMemory() = default;
  // At least `bytes` (> 0), aligned to kBufferAlignment; ResourceExhausted when there is none.
  virtual absl::StatusOr<std::byte*> Allocate(size_t bytes) = 0;
  virtual void Free(std::byte* data) = 0;
  // Sets every byte of [data, data + bytes) to `value`; done when it returns.
  virtual absl::Status Fill(std::byte* data, int value, size_t bytes) = 0;
};

// Host memory (aligned_alloc), the default.
BufferMemory& HostBufferMemory();

struct BuffersOptions {
  // Debugging aid: fill the arena with NaN (every byte 0xFF: NaN for every float type, -1 for
  // integers) when allocated, so that a kernel reading bytes nobody wrote shows up in results.
  bool poison_arena = false;
  BufferMemory* memory = nullptr;  // null: HostBufferMemory()
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
  absl::Status PoisonArena();

 private:
  Buffers(const BufferSizes& sizes, BufferMemory& memory) : sizes_(sizes), memory_(memory) {}

  BufferSizes sizes_;
  BufferMemory& memory_;
  std::array<std::byte*, kNumBufferKinds> bases_ = {};
};

}  // namespace gradflow::sched
